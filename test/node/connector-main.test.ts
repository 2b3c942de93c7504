// The whole connector: startConnector (link + supervisor + server-everything) against a gateway stand-in, and the
// real CLI as a process — config file, env, JSON logs, drain on SIGTERM, exit codes, no leftover processes.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startConnector } from "../../connector/main.ts";
import { UpstreamErrorCode } from "../../src/link/errors.ts";
import { Gateway, type Frame } from "./connector-fixtures/test-gateway.ts";

const BIN = fileURLToPath(new URL("../../connector/bin/mcp-gateway-connector.mjs", import.meta.url));
const FAKE = fileURLToPath(new URL("./connector-fixtures/fake-mcp-server.mjs", import.meta.url));
const EXIT_WITHOUT_STOP = fileURLToPath(new URL("./connector-fixtures/exit-without-stop.mjs", import.meta.url));
const CLI_THEN_CRASH = fileURLToPath(new URL("./connector-fixtures/cli-then-crash.mjs", import.meta.url));
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
      servers: [{ id: "everything", command: process.execPath, args: [EVERYTHING, "stdio"], env: {}, enabled: true, timeout: 12_345 }],
      url: g.url.replace(/^ws/, "http").replace(/\/connect$/, ""),
      token: TOKEN,
      replicaId: "host-1",
      log: () => {},
      heartbeatIntervalMs: 20_000,
    });
    cleanups.push(() => handle.stop());
    const peer = await g.peer(0);
    // The edge needs both: how long to wait for a call (the server's timeout), when to count the replica gone.
    expect(await peer.next((f) => f.type === "hello")).toMatchObject({ replicaId: "host-1", heartbeatMs: 20_000, servers: [{ id: "everything", timeoutMs: 12_345 }] });
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

  /** A gateway.yaml with the fake server under each id, and the env that points the CLI at `g`. */
  function setupCli(g: Gateway, ids: string[]) {
    const dir = mkdtempSync(join(tmpdir(), "connector-cli-"));
    const config = join(dir, "gateway.yaml");
    const servers = ids.map((id) => `  - id: ${id}\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(FAKE)}]\n`).join("");
    writeFileSync(config, `servers:\n${servers}`);
    return { config, env: { MCP_GATEWAY_URL: g.url.replace(/^ws/, "http").replace(/\/connect$/, ""), MCP_GATEWAY_CONNECTOR_TOKEN: TOKEN } };
  }

  it("drains on SIGTERM: reports its servers stopped, finishes the call in flight, refuses new ones, stops its servers and exits 0", async () => {
    const g = await gateway();
    const { config, env } = setupCli(g, ["fake", "spare"]);
    const cli = run(["--config", config], env);

    const peer = await g.peer(0, 10_000);
    expect(peer.request.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(await peer.next((f) => f.type === "hello")).toMatchObject({ heartbeatMs: 15_000, servers: [{ id: "fake", timeoutMs: 60_000 }, { id: "spare" }] });
    await peer.next(isHealthy("fake"), 15_000);
    await peer.next(isHealthy("spare"), 15_000);
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
    const slow = await peer.next((f) => f.callId === "slow" && f.type === "result");
    expect(textOf(slow)).toBe("waited 1000");
    // Every server was reported stopped before the call in flight ended, so the edge stopped choosing this replica.
    const stoppedAt = (id: string) =>
      peer.frames.findIndex((f) => f.type === "status" && (f.server as { id: string }).id === id && (f.server as { health: string }).health === "stopped");
    const slowAt = peer.frames.indexOf(slow);
    for (const id of ["fake", "spare"]) {
      expect(stoppedAt(id)).toBeGreaterThan(-1);
      expect(stoppedAt(id)).toBeLessThan(slowAt);
      expect((peer.frames[stoppedAt(id)]!.server as { detail: string }).detail).toBe("the connector is shutting down");
    }
    const afterStop = peer.frames.slice(Math.min(stoppedAt("fake"), stoppedAt("spare")));
    expect(afterStop.filter((f) => f.type === "status").map((f) => (f.server as { health: string }).health)).toEqual(["stopped", "stopped"]);
    expect(await cli.exited).toBe(0);
    expect(isAlive(serverPid)).toBe(false);
    await expect.poll(() => isAlive(grandchildPid)).toBe(false);

    const lines = cli.stderr().trim().split("\n");
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(cli.stderr()).not.toContain(TOKEN);
    expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(expect.arrayContaining(["connector_starting", "server_ready", "link_open", "connector_stopped"]));
  });

  for (const mode of ["throw", "reject"] as const) {
    it(`on an ${mode === "throw" ? "uncaught exception" : "unhandled rejection"}: logs connector_crashed without the token, kills its servers' process groups and exits 1`, async () => {
      const g = await gateway();
      const { config, env } = setupCli(g, ["fake"]);
      const child = spawn(process.execPath, [CLI_THEN_CRASH, mode, "--config", config], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      cleanups.push(() => {
        child.kill("SIGKILL");
      });

      const peer = await g.peer(0, 10_000);
      await peer.next(isHealthy("fake"), 15_000);
      peer.send({ type: "rpc", callId: "pid", serverId: "fake", request: { method: "tools/call", params: { name: "pid" } } });
      peer.send({ type: "rpc", callId: "gc", serverId: "fake", request: { method: "tools/call", params: { name: "spawn-grandchild" } } });
      const serverPid = Number(textOf(await peer.next((f) => f.callId === "pid" && f.type === "result")));
      const grandchildPid = Number(textOf(await peer.next((f) => f.callId === "gc" && f.type === "result")));
      expect(isAlive(serverPid) && isAlive(grandchildPid)).toBe(true);

      child.kill("SIGUSR2");
      expect(await exited).toBe(1);
      // SIGKILL to the groups before exiting: no grace period, so they are gone (or zombies) almost at once.
      await expect.poll(() => isAlive(serverPid) || isAlive(grandchildPid), { timeout: 2_000 }).toBe(false);
      const crash = stderr
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.event === "connector_crashed");
      expect(crash).toMatchObject({
        level: "error",
        kind: mode === "throw" ? "uncaughtException" : "unhandledRejection",
        error: "Error",
        message: mode === "throw" ? "injected crash holding [redacted]" : "injected rejection",
      });
      expect(stderr).not.toContain(TOKEN);
    });
  }

  it("kills its servers' process groups when the process exits without stop()", async () => {
    const child = spawn(process.execPath, [EXIT_WITHOUT_STOP], { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "inherit"] });
    cleanups.push(() => {
      child.kill("SIGKILL");
    });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code).toBe(0);
    const { leader, grandchild } = JSON.parse(stdout) as { leader: number; grandchild: number };
    expect(leader).toBeGreaterThan(0);
    expect(grandchild).toBeGreaterThan(0);
    await expect.poll(() => isAlive(leader) || isAlive(grandchild), { timeout: 2_000 }).toBe(false);
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

describe("the installed command and its bundle", () => {
  /** A copy of the command next to a stand-in bundle (its main exits 0) built from one source, src/a.ts. */
  function installed(): { dir: string; run: () => { status: number | null; stderr: string } } {
    const dir = mkdtempSync(join(tmpdir(), "connector-bin-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    for (const sub of ["connector/bin", "connector/dist", "src"]) mkdirSync(join(dir, sub), { recursive: true });
    copyFileSync(BIN, join(dir, "connector/bin/mcp-gateway-connector.mjs"));
    writeFileSync(join(dir, "src/a.ts"), "export {};\n");
    writeFileSync(join(dir, "connector/dist/mcp-gateway-connector.mjs"), "export async function main() { return 0; }\n");
    writeFileSync(join(dir, "connector/dist/inputs.json"), JSON.stringify(["src/a.ts"]));
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, "src/a.ts"), past, past);
    const run = () => {
      const result = spawnSync(process.execPath, [join(dir, "connector/bin/mcp-gateway-connector.mjs")], { encoding: "utf8" });
      return { status: result.status, stderr: result.stderr };
    };
    return { dir, run };
  }

  it("runs the bundle quietly when it is newer than its sources, and warns when a source changed after it", () => {
    const { dir, run } = installed();
    expect(run()).toEqual({ status: 0, stderr: "" });
    const future = new Date(Date.now() + 60_000);
    utimesSync(join(dir, "src/a.ts"), future, future);
    const stale = run();
    expect(stale.status).toBe(0);
    expect(stale.stderr).toContain("warning: connector/dist/ is older than its sources (src/a.ts); run `npm run build:connector`");
  });

  it("refuses to start without a bundle, saying how to make one", () => {
    const { dir, run } = installed();
    rmSync(join(dir, "connector/dist"), { recursive: true });
    const missing = run();
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("connector/dist/ is missing; run `npm run build:connector`");
  });

  it("is built from the current sources by the test set-up, without the MCP SDK", () => {
    const bundle = readFileSync(fileURLToPath(new URL("../../connector/dist/mcp-gateway-connector.mjs", import.meta.url)), "utf8");
    const inputs = JSON.parse(readFileSync(fileURLToPath(new URL("../../connector/dist/inputs.json", import.meta.url)), "utf8")) as string[];
    expect(inputs).toContain("connector/main.ts");
    expect(inputs).toContain("connector/handshake.ts");
    expect(bundle).toContain("// connector/handshake.ts");
    expect(bundle).not.toContain("node_modules/@modelcontextprotocol/");
    expect(execFileSync(process.execPath, [BIN, "--help"], { encoding: "utf8" })).toContain("Usage: mcp-gateway-connector");
  });
});
