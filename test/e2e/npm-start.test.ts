/**
 * `npm start` as a new user runs it: no gateway.yaml yet → one is created, the demo key is printed once on its own
 * line and stored only as a digest, the gateway serves the demo servers' tools with that key, and Ctrl-C stops
 * every process it started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/local-gateway.ts";
import { sha256Hex } from "../../src/auth/secrets.ts";

const dir = mkdtempSync(join(tmpdir(), "mcp-gateway-start-"));
let start: ChildProcess | undefined;

afterAll(() => {
  if (start?.exitCode === null) start.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

it("creates gateway.yaml, prints the demo key once, serves /mcp with it, and stops everything on Ctrl-C", async () => {
  const port = await freePort();
  const configPath = join(dir, "gateway.yaml");
  start = spawn(process.execPath, [join(PROJECT_ROOT, "scripts/start.ts")], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, PORT: String(port), MCP_GATEWAY_CONFIG: configPath, MCP_GATEWAY_STATE: join(dir, "state") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  start.stdout?.on("data", (chunk) => (output += chunk));
  start.stderr?.on("data", (chunk) => (output += chunk));

  await expect.poll(() => output, { timeout: 90_000, interval: 250 }).toMatch(/^gw_[A-Za-z0-9_-]{43}$/m);
  const key = /^(gw_[A-Za-z0-9_-]{43})$/m.exec(output)?.[1] as string;
  const stored = readFileSync(configPath, "utf8");
  expect(stored).not.toContain(key);
  expect(stored).toContain(await sha256Hex(key));

  const listTools = async () => {
    const response = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
    });
    const data = (await response.text()).split("\n").find((line) => line.startsWith("data: "));
    return data ? (JSON.parse(data.slice(6)).result?.tools ?? []).map((t: { name: string }) => t.name) : [];
  };
  await expect.poll(listTools, { timeout: 60_000, interval: 500 }).toEqual(expect.arrayContaining(["everything__echo", "memory__read_graph"]));
  expect(output.match(new RegExp(key, "g"))).toHaveLength(1);

  // The example's policies are live: the demo key may not delete memories (a deny rule for every role) nor read
  // the connector host's environment, and those tools are not even listed to it.
  const names = await listTools();
  expect(names).not.toContain("memory__delete_entities");
  expect(names).not.toContain("everything__get-env");
  const denied = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "memory__delete_entities", arguments: { entityNames: ["x"] } } }),
  });
  const deniedMessage = JSON.parse(((await denied.text()).split("\n").find((l) => l.startsWith("data: ")) ?? "data: {}").slice(6));
  expect(deniedMessage.error).toMatchObject({ code: -32003, data: { ruleId: "guardrails.rules[1]", policyId: "guardrails" } });

  // The second key printed is the tenant's admin key: it administers the demo tenant through /admin/v1.
  const adminKey = [...output.matchAll(/^(gw_[A-Za-z0-9_-]{43})$/gm)].map((m) => m[1])[1] as string;
  expect(stored).toContain(await sha256Hex(adminKey));
  const whoami = await fetch(`http://127.0.0.1:${port}/admin/v1/whoami`, { headers: { authorization: `Bearer ${adminKey}` } });
  expect(await whoami.json()).toMatchObject({ tenant: "demo", roles: ["admin"], platformAdmin: false });

  const exited = new Promise<number | null>((resolve) => start?.once("exit", resolve));
  start.kill("SIGINT");
  expect(await exited).toBe(0);
  await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
}, 180_000);
