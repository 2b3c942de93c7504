/**
 * The `mcp-gateway` CLI against the real local gateway (workerd, local D1, the real connector and servers): every
 * admin command, and `config apply` changing what an agent may do while the stack runs, with no restart.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../connector/cli/main.ts";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { rawPost, startStack, EVERYTHING_SERVER, type Stack } from "./stack.ts";

let stack: Stack;
let dir: string;

beforeAll(async () => {
  stack = await startStack(() => [EVERYTHING_SERVER]);
  dir = mkdtempSync(join(tmpdir(), "mcp-gateway-cli-e2e-"));
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI in-process as the tenant's admin (or with `env` overrides); resolves with exit code and output. */
async function cli(argv: string[], env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, { MCP_GATEWAY_URL: stack.url.origin, MCP_GATEWAY_ADMIN_KEY: stack.adminKey, ...env }, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    cwd: dir,
  });
  return { code, stdout, stderr };
}

async function json(argv: string[]) {
  const run = await cli([...argv, "--json"]);
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout);
}

const callEcho = async (key = stack.apiKey) =>
  (await rawPost(stack, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "everything__echo", arguments: { message: "hi" } } }), key)).messages[0];

/** The e2e tenant's file with the given policies (the keys are the stack's own, by digest). */
function tenantFile(policies: string, keys: string): string {
  return `tenant: e2e\nauth:\n  keys:\n${keys}servers:\n  - { id: everything, command: node }\npolicies:\n${policies}`;
}

describe("mcp-gateway against the real gateway", () => {
  it("says who the admin key is", async () => {
    expect(await json(["whoami"])).toMatchObject({ tenant: "e2e", keyId: "e2e-admin", roles: ["admin"], platformAdmin: false });
  });

  it("lists the servers the connector reports, with their status", async () => {
    const { servers } = await json(["servers", "list"]);
    expect(servers).toEqual([expect.objectContaining({ id: "everything", status: "healthy", connectorId: "local" })]);
    const table = await cli(["servers", "list"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/everything\s+.*healthy/);
  });

  it("creates a key that works at once, lists it without its secret, rotates and revokes it", async () => {
    const created = await json(["keys", "create", "CLI agent", "cli-agent", "reader", "--id", "cli-key"]);
    expect(created.key).toMatch(/^gw_/);
    expect((await callEcho(created.key)).result.content[0].text).toContain("hi");

    const listed = await cli(["keys", "list", "--json"]);
    expect(listed.stdout).not.toContain(created.key);
    expect(JSON.parse(listed.stdout).keys.map((k: { id: string }) => k.id)).toContain("cli-key");

    const rotated = await json(["keys", "rotate", "cli-key"]);
    expect(rotated.key).not.toBe(created.key);
    expect((await rawPost(stack, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }), created.key)).status).toBe(401);
    expect((await callEcho(rotated.key)).result).toBeDefined();

    expect(await json(["keys", "revoke", "cli-key"])).toEqual({ id: "cli-key", enabled: false });
    expect((await rawPost(stack, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }), rotated.key)).status).toBe(401);
  });

  it("creates, lists and revokes a connector; the token is printed once", async () => {
    const created = await cli(["connectors", "create", "edge-2", "--name", "Second host"]);
    expect(created.code).toBe(0);
    const token = /gwc_[A-Za-z0-9_-]+/.exec(created.stdout)?.[0] as string;
    expect(token).toBeDefined();
    const { connectors } = await json(["connectors", "list"]);
    expect(connectors).toEqual(expect.arrayContaining([expect.objectContaining({ id: "edge-2", name: "Second host", enabled: true })]));
    expect(JSON.stringify(connectors)).not.toContain(token);
    expect(await json(["connectors", "revoke", "edge-2"])).toEqual({ id: "edge-2", enabled: false });
  });

  it("refuses a consumer key with the gateway's 403, exit 1", async () => {
    const run = await cli(["keys", "list"], { MCP_GATEWAY_ADMIN_KEY: stack.apiKey });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/forbidden/);
    expect(run.stdout).toBe("");
  });

  it("validates a file locally and refuses a bad one with path-named errors, exit 2, without a request", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, tenantFile("  - { id: p, roles: [reader], rules: [{ action: permit }] }\n", ""));
    const run = await cli(["config", "apply", bad]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('policies[0].rules[0].action: expected "allow" | "deny", got "permit"');
  });

  it("applies a new policy to the running gateway, which enforces it within seconds, and back", async () => {
    const { keys } = await json(["keys", "list"]);
    expect(keys.map((k: { id: string }) => k.id)).toEqual(expect.arrayContaining(["e2e-key", "e2e-admin"]));
    // The stack's keys are config-sourced; the new file keeps them (by the digests the stack seeded) so they survive.
    const digests = await keyDigests();
    const keyLines =
      `    - { id: e2e-key, keyHash: ${digests["e2e-key"]}, name: e2e agent, consumerId: e2e-agent, roles: [reader] }\n` +
      `    - { id: e2e-admin, keyHash: ${digests["e2e-admin"]}, name: e2e admin, consumerId: e2e-admin, roles: [admin] }\n`;
    const file = join(dir, "gateway.yaml");
    writeFileSync(
      file,
      "# the operator's comments stay\n" +
        tenantFile(
          "  - { id: readers, roles: [reader], rules: [{ server: everything, action: allow }] }\n" +
            "  - { id: no-echo, roles: [reader], rules: [{ server: everything, tool: echo, action: deny }] }\n",
          keyLines,
        ),
    );
    const before = (await json(["config", "validate", file])) as { ok: boolean };
    expect(before.ok).toBe(true);
    const applied = await cli(["config", "apply", file]);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/version \d+/);
    // The per-isolate cache re-checks the version every second: the deny is live well within 5 s.
    await expect.poll(async () => (await callEcho()).error?.data?.ruleId, { timeout: 5_000, interval: 200 }).toBe("no-echo.rules[0]");

    writeFileSync(file, tenantFile("  - { id: readers, roles: [reader], rules: [{ server: everything, action: allow }] }\n", keyLines));
    expect((await cli(["config", "apply", file])).code).toBe(0);
    await expect.poll(async () => (await callEcho()).result?.content?.[0]?.text, { timeout: 5_000, interval: 200 }).toContain("hi");
  });
});

/** The digests of the stack's own keys (the admin API never shows one), recomputed from the keys themselves. */
async function keyDigests(): Promise<Record<string, string>> {
  return { "e2e-key": await sha256Hex(stack.apiKey), "e2e-admin": await sha256Hex(stack.adminKey) };
}
