// The supervisor against real child processes: @modelcontextprotocol/server-everything (a real MCP server from npm)
// and a small fake server that misbehaves on request (test/node/connector-fixtures/fake-mcp-server.mjs).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { LogFields, Logger } from "../../connector/log.ts";
import type { RelayOutcome } from "../../connector/relay.ts";
import { Supervisor, type RestartOptions } from "../../connector/supervisor.ts";
import { UpstreamSession } from "../../connector/upstream-session.ts";
import type { ServerConfig } from "../../src/config/schema.ts";
import { JsonRpcErrorCode, UpstreamErrorCode } from "../../src/link/errors.ts";
import type { RelayedNotification, ServerReport } from "../../src/link/protocol.ts";

const EVERYTHING = fileURLToPath(import.meta.resolve("@modelcontextprotocol/server-everything/dist/index.js"));
const FAKE = fileURLToPath(new URL("./connector-fixtures/fake-mcp-server.mjs", import.meta.url));
const FAST_RESTART: Partial<RestartOptions> = { backoff: { initialMs: 20, maxMs: 100, jitter: 0 }, crashLoop: { crashes: 3, windowMs: 60_000 }, stopGraceMs: 1_000 };

function server(config: Partial<ServerConfig> & Pick<ServerConfig, "id" | "command">): ServerConfig {
  return { args: [], env: {}, enabled: true, timeout: 10_000, ...config };
}
const everything = (extra: Partial<ServerConfig> = {}) => server({ id: "everything", command: process.execPath, args: [EVERYTHING, "stdio"], ...extra });
const fake = (extra: Partial<ServerConfig> = {}) => server({ id: "fake", command: process.execPath, args: [FAKE], ...extra });

type LogEntry = { level: string; event: string } & LogFields;
let running: Supervisor[] = [];

function start(
  servers: ServerConfig[],
  hostEnv: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: process.env.HOME },
  restart: Partial<RestartOptions> = {},
) {
  const logs: LogEntry[] = [];
  const log: Logger = (level, event, fields = {}) => logs.push({ level, event, ...fields });
  const supervisor = new Supervisor({ servers, hostEnv, connectorVersion: "test", log, restart: { ...FAST_RESTART, ...restart } });
  running.push(supervisor);
  supervisor.start();
  return { supervisor, logs };
}

afterEach(async () => {
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});

/** Resolves with the first report of `serverId` (current or future) that satisfies `accept`. */
function reportWhere(supervisor: Supervisor, serverId: string, accept: (r: ServerReport) => boolean, timeoutMs = 15_000): Promise<ServerReport> {
  return new Promise((resolve, reject) => {
    const current = supervisor.report(serverId);
    if (current && accept(current)) return resolve(current);
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching report for ${serverId}; last: ${JSON.stringify(supervisor.report(serverId)?.health)} ${supervisor.report(serverId)?.detail}`));
    }, timeoutMs);
    const off = supervisor.onReport((r) => {
      if (r.id === serverId && accept(r)) {
        clearTimeout(timer);
        off();
        resolve(r);
      }
    });
  });
}
const healthy = (supervisor: Supervisor, id: string) => reportWhere(supervisor, id, (r) => r.health === "healthy");

function callTool(supervisor: Supervisor, serverId: string, callId: string, name: string, args: Record<string, unknown> = {}, notes: unknown[] = []) {
  return supervisor.relay(serverId, callId, { method: "tools/call", params: { name, arguments: args } }, (n) => notes.push(n));
}
function textOf(outcome: RelayOutcome): string {
  if ("error" in outcome) throw new Error(`call failed: ${outcome.error.message}`);
  return (outcome.result.content as { text: string }[])[0]!.text;
}
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // An orphan reparented to a PID 1 that does not reap stays a zombie: dead all the same.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("supervisor with server-everything", () => {
  it("reports its catalog: tools, resources, resource templates and prompts", async () => {
    const { supervisor } = start([everything()]);
    const report = await healthy(supervisor, "everything");
    const tools = report.catalog.tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(["echo", "get-sum", "trigger-long-running-operation"]));
    expect(report.catalog.resources.length).toBeGreaterThan(0);
    expect(report.catalog.resourceTemplates.length).toBeGreaterThan(0);
    expect(report.catalog.prompts.length).toBeGreaterThan(0);
    expect(report).toMatchObject({ id: "everything", name: "everything", health: "healthy", timeoutMs: 10_000 });
  });

  it("relays a tool call and passes the result through", async () => {
    const { supervisor, logs } = start([everything()]);
    await healthy(supervisor, "everything");
    const outcome = await callTool(supervisor, "everything", "call-1", "get-sum", { a: 2, b: 40 });
    expect(textOf(outcome)).toContain("42");
    expect(logs.find((l) => l.event === "call_relayed")).toMatchObject({ server: "everything", callId: "call-1", status: "ok" });
  });

  it("forwards every progress notification, without the token, before the result", async () => {
    const { supervisor } = start([everything()]);
    await healthy(supervisor, "everything");
    // duration 0: all five notifications and the result leave the server back to back, in one read or a few.
    for (let round = 0; round < 3; round++) {
      const seen: string[] = [];
      const notes: RelayedNotification[] = [];
      const outcome = await supervisor.relay(
        "everything",
        `progress-${round}`,
        { method: "tools/call", params: { name: "trigger-long-running-operation", arguments: { duration: 0, steps: 5 }, _meta: { progressToken: "agent-token" } } },
        (n) => {
          notes.push(n);
          seen.push(n.method);
        },
      );
      seen.push("result");
      expect(textOf(outcome)).toContain("Long running operation completed");
      expect(seen).toEqual([...Array(5).fill("notifications/progress"), "result"]);
      expect(notes.map((n) => n.params)).toEqual([1, 2, 3, 4, 5].map((progress) => ({ progress, total: 5 })));
    }
  });

  it("fails the pending call at once when the child dies, then restarts it", async () => {
    const { supervisor } = start([everything()]);
    await healthy(supervisor, "everything");
    const firstPid = supervisor.pid("everything")!;
    let killedAt = 0;
    // Kill it at the first progress notification: the call is then certainly in flight upstream.
    const outcome = await supervisor.relay(
      "everything",
      "doomed",
      { method: "tools/call", params: { name: "trigger-long-running-operation", arguments: { duration: 30, steps: 30 } } },
      () => {
        if (killedAt !== 0) return;
        killedAt = Date.now();
        process.kill(firstPid, "SIGKILL");
      },
    );
    expect(Date.now() - killedAt).toBeLessThan(1_000);
    expect(outcome).toMatchObject({ error: { code: UpstreamErrorCode.Crashed, message: expect.stringContaining("crashed") } });

    await healthy(supervisor, "everything");
    expect(supervisor.pid("everything")).not.toBe(firstPid);
    expect(textOf(await callTool(supervisor, "everything", "after", "echo", { message: "back" }))).toContain("back");
  });

  it("gives the child only its declared env, never the connector's secrets", async () => {
    const hostEnv = { PATH: process.env.PATH, HOME: "/tmp", DB_PASSWORD: "pw-from-host", MCP_GATEWAY_CONNECTOR_TOKEN: "connector-secret" };
    const { supervisor } = start([everything({ env: { DB_PASSWORD: "${DB_PASSWORD}", MODE: "demo" } })], hostEnv);
    await healthy(supervisor, "everything");
    const env = JSON.parse(textOf(await callTool(supervisor, "everything", "env", "get-env"))) as Record<string, string>;
    expect(env).toMatchObject({ DB_PASSWORD: "pw-from-host", MODE: "demo", HOME: "/tmp" });
    expect(env).not.toHaveProperty("MCP_GATEWAY_CONNECTOR_TOKEN");
    expect(JSON.stringify(env)).not.toContain("connector-secret");
  });

  it("stops the child on stop()", async () => {
    const { supervisor } = start([everything()]);
    await healthy(supervisor, "everything");
    const pid = supervisor.pid("everything")!;
    await supervisor.stop();
    expect(isAlive(pid)).toBe(false);
    expect(supervisor.report("everything")?.health).toBe("stopped");
  });
});

describe("supervisor with a misbehaving server", () => {
  it("follows nextCursor to build the whole catalog", async () => {
    const { supervisor } = start([fake()]);
    const report = await healthy(supervisor, "fake");
    expect(report.catalog.tools.map((t) => t.name)).toEqual(["pid", "big", "sleep", "log", "sample", "ping-client", "odd-notifications", "add-tool", "spawn-grandchild", "wait"]);
    expect(report.catalog.resources).toEqual([]);
  });

  it("times a call out after the server's timeout and cancels it upstream", async () => {
    const { supervisor, logs } = start([fake({ timeout: 300 })]);
    await healthy(supervisor, "fake");
    const outcome = await callTool(supervisor, "fake", "slow", "sleep");
    expect(outcome).toMatchObject({ error: { code: UpstreamErrorCode.Timeout, message: expect.stringContaining("300 ms") } });
    await eventually(() => logs.some((l) => l.event === "server_stderr" && String(l.line).startsWith("cancelled gw-")));
  });

  it("fails an oversized answer with TooLarge and keeps serving", async () => {
    const { supervisor } = start([fake()]);
    await healthy(supervisor, "fake");
    const outcome = await callTool(supervisor, "fake", "huge", "big");
    expect(outcome).toMatchObject({ error: { code: UpstreamErrorCode.TooLarge } });
    expect(Number(textOf(await callTool(supervisor, "fake", "next", "pid")))).toBe(supervisor.pid("fake"));
  });

  it("answers server→client requests (sampling) with a clear error", async () => {
    const { supervisor } = start([fake()]);
    await healthy(supervisor, "fake");
    const reply = JSON.parse(textOf(await callTool(supervisor, "fake", "s", "sample"))) as { code: number; message: string };
    expect(reply.code).toBe(JsonRpcErrorCode.MethodNotFound);
    expect(reply.message).toMatch(/does not relay server-to-client requests \(sampling\/createMessage\)/);
  });

  it("answers the server's own pings, as MCP lets either side ping", async () => {
    const { supervisor } = start([fake()]);
    await healthy(supervisor, "fake");
    expect(JSON.parse(textOf(await callTool(supervisor, "fake", "p", "ping-client")))).toEqual({});
  });

  it("ignores notifications named like Object.prototype's members (constructor, __proto__, …) and keeps serving", async () => {
    const { supervisor } = start([fake()]);
    await healthy(supervisor, "fake");
    expect(textOf(await callTool(supervisor, "fake", "odd", "odd-notifications"))).toBe("sent");
    expect(Number(textOf(await callTool(supervisor, "fake", "after", "pid")))).toBe(supervisor.pid("fake"));
  });

  it("gives initialize the whole start window, not the server's per-call timeout, and never cancels it", async () => {
    const slow = start([fake({ timeout: 100, env: { FAKE_INIT_DELAY_MS: "400" } })]);
    expect((await healthy(slow.supervisor, "fake")).health).toBe("healthy");

    const { supervisor, logs } = start([fake({ env: { FAKE_INIT_DELAY_MS: "60000" } })], undefined, { startTimeoutMs: 300 });
    const report = await reportWhere(supervisor, "fake", (r) => r.health === "unhealthy");
    expect(report.detail).toMatch(/did not initialise within 300 ms/);
    await new Promise((resolve) => setTimeout(resolve, 200)); // anything the child said on its way out has arrived
    expect(logs.filter((l) => l.event === "server_stderr").map((l) => l.line)).not.toContainEqual(expect.stringMatching(/^cancelled/));
  });

  it("fails a request to a session whose child has exited at once, not after the server's timeout", async () => {
    const logs: LogEntry[] = [];
    const session = new UpstreamSession({
      server: fake({ timeout: 60_000 }),
      env: { PATH: process.env.PATH ?? "" },
      connectorVersion: "test",
      startTimeoutMs: 10_000,
      log: (level, event, fields = {}) => logs.push({ level, event, ...fields }),
      onStderr: () => {},
      onListChanged: () => {},
    });
    await session.start();
    session.killSync();
    await session.exited;
    const startedAt = Date.now();
    const outcome = await session.relay("late", { method: "tools/call", params: { name: "pid", arguments: {} } }, () => {});
    expect(outcome).toMatchObject({ error: { code: UpstreamErrorCode.Crashed, message: expect.stringContaining("killed by signal SIGKILL") } });
    await expect(session.fetchCatalog(["tools"])).rejects.toThrow(/crashed \(killed by signal SIGKILL\)/);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });

  it("marks a server that answers initialize with an unsupported protocol version unhealthy, naming the version", async () => {
    const { supervisor, logs } = start([fake({ env: { FAKE_PROTOCOL_VERSION: "1999-01-01" } })]);
    const report = await reportWhere(supervisor, "fake", (r) => r.health === "unhealthy");
    expect(report.detail).toMatch(/^could not start: it failed to initialise: it speaks MCP protocol version "1999-01-01", which the connector does not support \(it supports 2025-11-25, /);
    expect(logs.some((l) => l.event === "server_ready")).toBe(false);
  });

  it("gives a log message to the only call in flight, and to no call when several are", async () => {
    const { supervisor, logs } = start([fake()]);
    await healthy(supervisor, "fake");
    const alone: RelayedNotification[] = [];
    await callTool(supervisor, "fake", "alone", "log", {}, alone);
    expect(alone).toEqual([{ method: "notifications/message", params: { level: "info", data: expect.stringContaining("log line") } }]);

    const other = callTool(supervisor, "fake", "other", "sleep");
    const crowded: RelayedNotification[] = [];
    await callTool(supervisor, "fake", "crowded", "log", {}, crowded);
    expect(crowded).toEqual([]);
    expect(logs.some((l) => l.event === "server_log" && l.inFlight === 2)).toBe(true);
    supervisor.cancel("other", "test over");
    expect(await other).toMatchObject({ error: { code: JsonRpcErrorCode.RequestCancelled } });
  });

  it("refetches the catalog on list_changed and reports it", async () => {
    const { supervisor } = start([fake()]);
    await healthy(supervisor, "fake");
    const changed = reportWhere(supervisor, "fake", (r) => r.catalog.tools.some((t) => t.name.startsWith("added-")));
    await callTool(supervisor, "fake", "add", "add-tool");
    expect((await changed).catalog.tools).toHaveLength(11);
  });

  it("stops the whole process group, grandchildren included", async () => {
    const { supervisor } = start([fake()]);
    await healthy(supervisor, "fake");
    const leader = supervisor.pid("fake")!;
    const grandchild = Number(textOf(await callTool(supervisor, "fake", "gc", "spawn-grandchild")));
    expect(isAlive(grandchild)).toBe(true);
    await supervisor.stop();
    expect(isAlive(leader)).toBe(false);
    await eventually(() => !isAlive(grandchild), 2_000);
  });

  it("marks a crash-looping server unhealthy, keeps what it printed in the local log only, and keeps retrying", async () => {
    // Not a ${VAR} secret, so nothing masks it: only keeping stderr out of reports keeps it on this host.
    const printed = "FATAL: connect postgres://admin:pg-pass-from-file@db.internal/prod refused";
    const seen: ServerReport[] = [];
    const { supervisor, logs } = start([fake({ env: { FAKE_CRASH_AFTER_MS: "50", FAKE_STDERR: printed } })]);
    supervisor.onReport((r) => seen.push(r));
    const report = await reportWhere(supervisor, "fake", (r) => r.health === "unhealthy");
    expect(report.detail).toBe(
      "crashed 3 times within 60 s (last: exit code 3); still retrying with backoff; its stderr is in the connector's log on this host (event server_stderr)",
    );
    expect(JSON.stringify([...seen, report, supervisor.reports()])).not.toContain("pg-pass-from-file");
    expect(logs.filter((l) => l.event === "server_stderr" && l.server === "fake").map((l) => l.line)).toContain(printed);
    expect(await callTool(supervisor, "fake", "x", "pid")).toMatchObject({ error: { code: UpstreamErrorCode.Unavailable, message: expect.not.stringContaining("pg-pass") } });
  });

  it("marks a server that cannot initialise unhealthy without its stderr, which goes to the local log with secrets masked", async () => {
    const script = "console.error('boom: cannot reach db with password ' + process.env.DB_PASSWORD); process.exit(1)";
    const hostEnv = { PATH: process.env.PATH, DB_PASSWORD: "hunter2-secret" };
    const seen: ServerReport[] = [];
    const { supervisor, logs } = start([server({ id: "broken", command: process.execPath, args: ["-e", script], env: { DB_PASSWORD: "${DB_PASSWORD}" } })], hostEnv);
    supervisor.onReport((r) => seen.push(r));
    const report = await reportWhere(supervisor, "broken", (r) => r.health === "unhealthy");
    expect(report.detail).toBe("could not start: it exited (exit code 1) before it finished initialising; its stderr is in the connector's log on this host (event server_stderr)");
    expect(JSON.stringify([...seen, report])).not.toContain("boom");
    expect(logs.find((l) => l.event === "server_stderr" && l.server === "broken")).toMatchObject({ line: "boom: cannot reach db with password [redacted]" });
    expect(JSON.stringify([...seen, report])).not.toContain("hunter2-secret");
    expect(JSON.stringify(logs)).not.toContain("hunter2-secret");
  });

  it("marks a server whose command does not exist unhealthy, saying so", async () => {
    const { supervisor } = start([server({ id: "missing", command: "/nonexistent/mcp-server" })]);
    const report = await reportWhere(supervisor, "missing", (r) => r.health === "unhealthy");
    expect(report.detail).toMatch(/could not start: its command was not found/);
  });

  it("never starts a server whose env references an unset variable", async () => {
    const { supervisor } = start([fake({ env: { TOKEN: "${MISSING_TOKEN}" } })]);
    const report = supervisor.report("fake")!;
    expect(report.health).toBe("unhealthy");
    expect(report.detail).toContain("MISSING_TOKEN");
    expect(supervisor.pid("fake")).toBeUndefined();
  });

  it("answers calls for unknown or disabled servers with Unavailable", async () => {
    const { supervisor } = start([fake({ enabled: false })]);
    expect(supervisor.report("fake")).toMatchObject({ health: "stopped" });
    expect(await callTool(supervisor, "fake", "a", "pid")).toMatchObject({ error: { code: UpstreamErrorCode.Unavailable } });
    expect(await callTool(supervisor, "nope", "b", "pid")).toMatchObject({
      error: { code: UpstreamErrorCode.Unavailable, message: expect.stringContaining('"nope"') },
    });
  });

  it("drains: lets calls in flight finish, refuses new ones, fails the stragglers", async () => {
    const { supervisor } = start([fake()]);
    await healthy(supervisor, "fake");
    const quick = callTool(supervisor, "fake", "quick", "wait", { ms: 100 });
    const stuck = callTool(supervisor, "fake", "stuck", "sleep");
    const drained = supervisor.drain(500);
    expect(await callTool(supervisor, "fake", "late", "pid")).toMatchObject({ error: { code: UpstreamErrorCode.Unavailable, message: expect.stringContaining("shutting down") } });
    expect(textOf(await quick)).toBe("waited 100");
    await drained;
    expect(await stuck).toMatchObject({ error: { code: UpstreamErrorCode.Unavailable } });
  });

  it("drains: reports every server stopped at once, and restarts none while its calls finish", async () => {
    const { supervisor, logs } = start([fake(), fake({ id: "other" })]);
    await Promise.all([healthy(supervisor, "fake"), healthy(supervisor, "other")]);
    const seen: ServerReport[] = [];
    supervisor.onReport((r) => seen.push(r));
    const stuck = callTool(supervisor, "fake", "stuck", "sleep");
    const drained = supervisor.drain(300);
    // Synchronously, before any call has finished: the edge must stop choosing this replica now.
    expect(seen.map((r) => [r.id, r.health, r.detail])).toEqual([
      ["fake", "stopped", "the connector is shutting down"],
      ["other", "stopped", "the connector is shutting down"],
    ]);
    expect(supervisor.reports().map((r) => r.health)).toEqual(["stopped", "stopped"]);
    // A child that dies during the drain fails its calls as before but is not brought back (nor reported healthy).
    process.kill(supervisor.pid("fake")!, "SIGKILL");
    expect(await stuck).toMatchObject({ error: { code: UpstreamErrorCode.Crashed } });
    await drained;
    await new Promise((r) => setTimeout(r, 100)); // well past the 20 ms restart backoff
    expect(seen.every((r) => r.health === "stopped")).toBe(true);
    expect(logs.filter((l) => l.event === "server_starting")).toHaveLength(2);
  });

  it("killAllSync() SIGKILLs every child's process group at once, grandchildren included", async () => {
    const { supervisor } = start([fake(), everything()]);
    await Promise.all([healthy(supervisor, "fake"), healthy(supervisor, "everything")]);
    const leaders = [supervisor.pid("fake")!, supervisor.pid("everything")!];
    const grandchild = Number(textOf(await callTool(supervisor, "fake", "gc", "spawn-grandchild")));
    expect([...leaders, grandchild].every(isAlive)).toBe(true);
    supervisor.killAllSync();
    // Nothing awaited in between: the signals went out synchronously (SIGKILL cannot be ignored).
    await eventually(() => ![...leaders, grandchild].some(isAlive), 2_000);
  });
});
