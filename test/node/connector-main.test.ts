// The whole connector: startConnector (link + supervisor + server-everything) against a gateway stand-in, and the
// real CLI as a process — config file, env, JSON logs, drain on SIGTERM, exit codes, no leftover processes.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startConnector } from "../../connector/main.ts";
import { UpstreamErrorCode } from "../../src/link/errors.ts";
import { Gateway, type Frame } from "./connector-fixtures/test-gateway.ts";

const BIN = fileURLToPath(new URL("../../connector/bin/mcp-gateway-connector.mjs", import.meta.url));
const FAKE = fileURLToPath(new URL("./connector-fixtures/fake-mcp-server.mjs", import.meta.url));
const EVERYTHING = fileURLToPath(import.meta.resolve("@modelcontextprotocol/server-everything/dist/index.js"));
const TOKEN = "ct_test_token_never_logged";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gateway(): Promise<Gateway> {
  const g = new Gateway();
  await g.listening;
  cleanups.push(() => g.close());
  return g;
}

const textOf = (frame: Frame) => ((frame.result as { content: { text: string }[] }).content[0]!.text);
const isHealthy = (id: string) => (f: Frame) =>
  (f.type === "status" && (f.server as { id: string; health: string }).id === id && (f.server as { health: string }).health === "healthy") ||
  (f.type === "hello" && (f.servers as { id: string; health: string }[]).some((s) => s.id === id && s.health === "healthy"));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("startConnector", () => {
  it("announces server-everything, reports it healthy with its tools, and relays a call", async () => {
    const g = await gateway();
    const handle = startConnector({
      servers: [{ id: "everything", command: process.execPath, args: [EVERYTHING, "stdio"], env: {}, enabled: true, timeout: 10_000 }],
      url: g.url.replace(/^ws/, "http").replace(/\/connect$/, ""),
      token: TOKEN,
      replicaId: "host-1",
      log: () => {},
    });
    cleanups.push(() => handle.stop());
    const peer = await g.peer(0);
    expect(await peer.next((f) => f.type === "hello")).toMatchObject({ replicaId: "host-1", servers: [{ id: "everything" }] });
    const ready = await peer.next(isHealthy("everything"), 15_000);
    const server = (ready.server ?? (ready.servers as unknown[])[0]) as { catalog: { tools: { name: string }[] } };
    expect(server.catalog.tools.map((t) => t.name)).toContain("echo");

    peer.send({ type: "welcome", tenant: "demo", connector: "c1" });
    peer.send({ type: "rpc", callId: "e-1", serverId: "everything", request: { method: "tools/call", params: { name: "echo", arguments: { message: "via the link" } } } });
    expect(textOf(await peer.next((f) => f.type === "result" && f.callId === "e-1"))).toContain("via the link");
    await expect.poll(() => handle.link.connected).toBe(true);
  });
});

describe("mcp-gateway-connector CLI", () => {
  function run(args: string[], env: Record<string, string>) {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    cleanups.push(() => {
      child.kill("SIGKILL");
    });
    return { child, exited, stderr: () => stderr };
  }

  it("drains on SIGTERM: finishes the call in flight, refuses new ones, stops its servers and exits 0", async () => {
    const g = await gateway();
    const dir = mkdtempSync(join(tmpdir(), "connector-cli-"));
    const config = join(dir, "gateway.yaml");
    writeFileSync(config, `servers:\n  - id: fake\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(FAKE)}]\n`);
    const cli = run(["--config", config], { MCP_GATEWAY_URL: g.url.replace(/^ws/, "http").replace(/\/connect$/, ""), MCP_GATEWAY_CONNECTOR_TOKEN: TOKEN });

    const peer = await g.peer(0, 10_000);
    expect(peer.request.headers.authorization).toBe(`Bearer ${TOKEN}`);
    await peer.next(isHealthy("fake"), 15_000);
    peer.send({ type: "rpc", callId: "pid", serverId: "fake", request: { method: "tools/call", params: { name: "pid" } } });
    peer.send({ type: "rpc", callId: "gc", serverId: "fake", request: { method: "tools/call", params: { name: "spawn-grandchild" } } });
    const serverPid = Number(textOf(await peer.next((f) => f.callId === "pid" && f.type === "result")));
    const grandchildPid = Number(textOf(await peer.next((f) => f.callId === "gc" && f.type === "result")));
    expect(isAlive(serverPid) && isAlive(grandchildPid)).toBe(true);

    peer.send({ type: "rpc", callId: "slow", serverId: "fake", request: { method: "tools/call", params: { name: "wait", arguments: { ms: 1_000 } } } });
    await expect.poll(() => cli.stderr()).toContain('"callId":"gc"'); // the connector is past the earlier calls
    cli.child.kill("SIGTERM");
    await expect.poll(() => cli.stderr()).toContain('"event":"connector_draining"');
    peer.send({ type: "rpc", callId: "late", serverId: "fake", request: { method: "tools/call", params: { name: "pid" } } });

    expect(await peer.next((f) => f.callId === "late" && f.type === "result")).toMatchObject({
      error: { code: UpstreamErrorCode.Unavailable, message: expect.stringContaining("shutting down") },
    });
    expect(textOf(await peer.next((f) => f.callId === "slow" && f.type === "result"))).toBe("waited 1000");
    expect(await cli.exited).toBe(0);
    expect(isAlive(serverPid)).toBe(false);
    await expect.poll(() => isAlive(grandchildPid)).toBe(false);

    const lines = cli.stderr().trim().split("\n");
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(cli.stderr()).not.toContain(TOKEN);
    expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(expect.arrayContaining(["connector_starting", "server_ready", "link_open", "connector_stopped"]));
  });

  it("exits 2 naming the path of every bad key in the config", async () => {
    const dir = mkdtempSync(join(tmpdir(), "connector-cli-"));
    const config = join(dir, "gateway.yaml");
    writeFileSync(config, "servers:\n  - id: ok\n    command: node\n    timeout: 5\n  - id: bad__id\n    command: node\n");
    const cli = run(["--config", config], { MCP_GATEWAY_URL: "https://gw.example.com", MCP_GATEWAY_CONNECTOR_TOKEN: TOKEN });
    expect(await cli.exited).toBe(2);
    expect(cli.stderr()).toContain("servers[0].timeout");
    expect(cli.stderr()).toContain("servers[1].id");
  });

  it("exits 2 without a token, saying which variable to set", async () => {
    const cli = run([], { MCP_GATEWAY_URL: "https://gw.example.com" });
    expect(await cli.exited).toBe(2);
    expect(cli.stderr()).toContain("MCP_GATEWAY_CONNECTOR_TOKEN");
  });
});
