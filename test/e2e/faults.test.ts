/**
 * Faults under load through the real stack. A background load (8 callers looping on server-everything's `echo`,
 * 2 on a second, crashable server) runs while each fault happens:
 *   (a) the stdio child (server-everything) is SIGKILLed with a long call in flight;
 *   (b) a child crash-loops (it crashes shortly after every start, 5 times: the connector's crash-loop threshold);
 *   (c) the connector process is SIGKILLed (no drain) and started again;
 *   (d) the Worker (workerd: every Durable Object evicted, every socket closed) is disposed and started again on
 *       the same persist directory and port, so the connector has to redial.
 * After each: no call hung (each settled within HANG_MS), every JSON-RPC error was a clear upstream error
 * (-32091 unavailable / -32092 crashed, with a message), a call succeeds within 5 s of the fault's end, and the
 * audit chain verifies with no fork; the entries match the calls one to one (see `checkAudit`).
 *
 * Every call carries a unique tag in its arguments, so each audit entry is matched to the call that made it.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/local-gateway.ts";
import { adminFetch, EVERYTHING_SERVER, startStack, verifyAudit, waitForTools, type Stack } from "./stack.ts";

/** A call that has not settled after this long hung (every call here is an echo or a 20 ms wait). */
const HANG_MS = 15_000;
const RECOVERY_MS = 5_000;
const CRASH_LOOP_CRASHES = 5;
const UNAVAILABLE = -32091;
const CRASHED = -32092;

const FAKE_SERVER = join(PROJECT_ROOT, "test/node/connector-fixtures/fake-mcp-server.mjs");
/**
 * The crashable server: the connector tests' fake server, which crashes 400 ms after starting while the file
 * CRASHES_FILE holds a positive count (decremented at each start). Empty or absent: a well-behaved server.
 */
const CRASHY_SCRIPT = `
const fs = require("node:fs");
let left = 0;
try { left = Number(fs.readFileSync(process.env.CRASHES_FILE, "utf8")) || 0; } catch {}
if (left > 0) { fs.writeFileSync(process.env.CRASHES_FILE, String(left - 1)); process.env.FAKE_CRASH_AFTER_MS = "400"; }
import(${JSON.stringify(new URL(`file://${FAKE_SERVER}`).href)});
`;
let crashesFile = "";
const crashyServer = (dir: string) => {
  crashesFile = join(dir, "crashes");
  return { id: "crashy", name: "Crashable", command: process.execPath, args: ["-e", CRASHY_SCRIPT], env: { CRASHES_FILE: crashesFile }, timeout: 10_000 };
};

type Outcome = "ok" | "error" | "refused" | "cut" | "hung";
interface Call {
  /** Unique per call; in the call's arguments unless `tagged` is false (a tool whose schema has no room for it). */
  tag: string;
  tagged: boolean;
  tool: string;
  startedAt: number;
  settledAt: number;
  outcome: Outcome;
  status?: number;
  code?: number;
  message?: string;
  text?: string;
}

let stack: Stack;
const run = `${process.pid}-${Date.now()}`;
/** Every call made by this file, in order of settling. */
const ledger: Call[] = [];
let nextId = 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  stack = await startStack((dir) => [EVERYTHING_SERVER, crashyServer(dir)], {
    rateLimit: { enabled: true, defaultPerMinute: 1_000_000, burst: 1_000_000 },
  });
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
});

/**
 * One tools/call as a raw JSON-RPC POST with a unique id and a unique tag in its arguments, bounded by HANG_MS.
 * Outcomes: ok (a result), error (a JSON-RPC error, or an answer that is not one: e.g. an HTML 5xx, which fails
 * `expectClearFailures`), refused (no connection: the Worker is down), cut (the connection dropped before an
 * answer: the Worker went down during the call), hung (no answer within HANG_MS).
 * With `onProgress`, the call carries a progress token and `onProgress` runs at each progress notification for it
 * (read from the SSE stream as it arrives, before the answer).
 */
async function call(tool: string, args: (tag: string) => Record<string, unknown>, tagged = true, onProgress?: () => void): Promise<Call> {
  const id = ++nextId;
  const tag = `${run}#${id}`;
  const progressToken = `progress-${tag}`;
  const startedAt = Date.now();
  const record = (fields: Omit<Call, "tag" | "tagged" | "tool" | "startedAt" | "settledAt">): Call => {
    const entry = { tag, tagged, tool, startedAt, settledAt: Date.now(), ...fields };
    ledger.push(entry);
    return entry;
  };
  let response: Response;
  let text = "";
  try {
    const params = { name: tool, arguments: args(tag), ...(onProgress ? { _meta: { progressToken } } : {}) };
    response = await fetch(stack.mcpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${stack.apiKey}` },
      body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params }),
      signal: AbortSignal.timeout(HANG_MS),
    });
    // Read the body as it arrives (progress notifications come before the answer); a dropped connection throws here.
    const decoder = new TextDecoder();
    let seen = 0;
    for await (const chunk of response.body ?? []) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      if (!onProgress) continue;
      const complete = text.lastIndexOf("\n") + 1;
      for (const line of text.slice(seen, complete).split("\n")) {
        if (!line.startsWith("data: ") || !line.includes(progressToken)) continue;
        try {
          const message = JSON.parse(line.slice(6));
          if (message.method === "notifications/progress" && message.params?.progressToken === progressToken) onProgress();
        } catch {
          // not JSON: judged with the whole body below
        }
      }
      seen = complete;
    }
    text += decoder.decode();
  } catch (error) {
    const e = error as Error & { cause?: { code?: string } };
    if (e.name === "TimeoutError") return record({ outcome: "hung", message: e.message });
    if (e.cause?.code === "ECONNREFUSED") return record({ outcome: "refused", message: String(e.cause.code) });
    return record({ outcome: "cut", message: `${e.message}: ${String(e.cause ?? "")}` });
  }
  // The whole body arrived: anything but a JSON-RPC answer to this call (an HTML 5xx while workerd restarts, a
  // truncated body) is an error with its status, never a "cut".
  let messages: any[];
  try {
    messages = (response.headers.get("content-type") ?? "").includes("event-stream")
      ? text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)))
      : [JSON.parse(text)];
  } catch (error) {
    return record({ outcome: "error", status: response.status, message: `unparsable answer (${(error as Error).message}): ${text.slice(0, 300)}` });
  }
  const answer = messages.find((m) => m?.id === id);
  if (answer?.result) return record({ outcome: "ok", status: response.status, text: answer.result.content?.[0]?.text });
  if (answer?.error) return record({ outcome: "error", status: response.status, code: answer.error.code, message: answer.error.message });
  return record({ outcome: "error", status: response.status, message: `no answer to id ${id}: ${text.slice(0, 300)}` });
}

const echo = () => call("everything__echo", (tag) => ({ message: tag }));
const wait = () => call("crashy__wait", (tag) => ({ ms: 20, tag }));

/** Callers looping until stopped; a failed call is followed by a short pause (no busy loop while the Worker is down). */
function backgroundLoad(): { stop(): Promise<Call[]> } {
  let running = true;
  const mine: Call[] = [];
  const loop = async (make: () => Promise<Call>) => {
    while (running) {
      const result = await make();
      mine.push(result);
      if (result.outcome !== "ok") await sleep(50);
    }
  };
  const loops = [...Array.from({ length: 8 }, () => loop(echo)), ...Array.from({ length: 2 }, () => loop(wait))];
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return mine;
    },
  };
}

/** Calls `make` every 100 ms until one succeeds (bounded); resolves with the time it succeeded. */
async function firstSuccess(make: () => Promise<Call>, withinMs = 60_000): Promise<number> {
  const deadline = Date.now() + withinMs;
  const failures: Call[] = [];
  while (Date.now() < deadline) {
    const result = await make();
    if (result.outcome === "ok") return result.settledAt;
    failures.push(result);
    await sleep(100);
  }
  const last = failures.slice(-5).map((c) => JSON.stringify(c)).join("\n");
  throw new Error(`no successful call within ${withinMs} ms; the last failures:\n${last}\nconnector output:\n${stack.connector.output.slice(-4000)}`);
}

/** No call hung; every JSON-RPC error is -32091/-32092 with a message; `transport` says whether refused/cut calls may occur. */
function expectClearFailures(calls: Call[], transport: boolean) {
  expect(calls.filter((c) => c.outcome === "hung")).toEqual([]);
  expect(calls.every((c) => c.settledAt - c.startedAt < HANG_MS)).toBe(true);
  const unclear = calls.filter(
    (c) => c.outcome === "error" && !(c.status === 200 && (c.code === UNAVAILABLE || c.code === CRASHED) && typeof c.message === "string" && c.message.length > 10),
  );
  expect(unclear).toEqual([]);
  if (!transport) expect(calls.filter((c) => c.outcome === "refused" || c.outcome === "cut")).toEqual([]);
  // A success is the call's own answer: no cross-talk between concurrent calls.
  const crossed = calls.filter((c) => c.outcome === "ok" && c.tool === "everything__echo" && c.text !== `Echo: ${c.tag}`);
  expect(crossed).toEqual([]);
}

/**
 * The audit chain after the calls so far (verification ships the AuditLog object's entries to D1 first):
 * - it verifies (ok) from seq 1 to the AuditLog object's head, and the D1 copy is seq 1…head with no gap and no
 *   duplicate (no fork: one entry per seq, each linked to the one before — what verify checks);
 * - every call answered by the gateway (a result or a JSON-RPC error) has exactly one entry, tagged with its own
 *   tag, with the status (ok/error) and error code it was answered with;
 * - a call refused before reaching the Worker has none; a call cut by the Worker going down has at most one (it
 *   may have been recorded before the connection dropped);
 * - no entry exists that no call of this file explains (besides `extra`, the untagged calls made on purpose).
 */
async function checkAudit(extra: { tool: string; count: number }[] = []) {
  const verified = await verifyAudit(stack);
  expect(verified).toMatchObject({ type: "result", ok: true, firstSeq: 1 });
  const head = verified.head.seq as number;
  expect(verified.entries).toBe(head);
  const [shape] = await stack.query("SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS seqs, COUNT(DISTINCT prev_hash) AS prevs, MIN(seq) AS lo, MAX(seq) AS hi FROM audit_entries WHERE tenant_id = 'e2e'");
  expect(shape).toEqual({ n: head, seqs: head, prevs: head, lo: 1, hi: head });

  const rows = await stack.query("SELECT seq, tool, status, error_code, arguments FROM audit_entries WHERE tenant_id = 'e2e' ORDER BY seq");
  const byTag = new Map<string, Record<string, unknown>[]>();
  const untagged = new Map<string, number>();
  for (const row of rows) {
    const args = JSON.parse(String(row.arguments ?? "null")) as { message?: string; tag?: string } | null;
    const tag = args?.tag ?? args?.message;
    if (typeof tag === "string" && tag.startsWith(`${run}#`)) byTag.set(tag, [...(byTag.get(tag) ?? []), row]);
    else untagged.set(String(row.tool), (untagged.get(String(row.tool)) ?? 0) + 1);
  }
  expect([...byTag].filter(([, entries]) => entries.length > 1).map(([tag]) => tag)).toEqual([]);
  const problems: string[] = [];
  for (const c of ledger.filter((l) => l.tagged)) {
    const entry = byTag.get(c.tag)?.[0];
    byTag.delete(c.tag);
    if (c.outcome === "ok" || c.outcome === "error") {
      if (!entry) problems.push(`${c.tag} (${c.outcome} ${c.code ?? ""}) has no audit entry`);
      else if (entry.status !== c.outcome || (c.outcome === "error" && entry.error_code !== c.code))
        problems.push(`${c.tag} answered ${c.outcome} ${c.code ?? ""} but audited ${String(entry.status)} ${String(entry.error_code)}`);
    } else if (c.outcome === "refused" && entry) problems.push(`${c.tag} never reached the Worker but is audited`);
  }
  expect(problems).toEqual([]);
  // Entries no call explains: none tagged, and only the expected untagged ones.
  expect([...byTag.keys()]).toEqual([]);
  expect(Object.fromEntries(untagged)).toEqual(Object.fromEntries(extra.map((e) => [e.tool, e.count])));
}

function summary(calls: Call[]) {
  const counts: Record<string, number> = {};
  for (const c of calls) {
    const key = c.outcome === "error" ? `error ${c.code}` : c.outcome;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const untaggedCalls: { tool: string; count: number }[] = [];

/**
 * Runs `fault` under the background load (1 s of load before it, 1 s after it returns) and returns every call made
 * meanwhile (the load's, the fault's own and the recovery probes'); the load is stopped whatever happens, so a
 * failed case leaves nothing running into the next.
 */
async function underLoad(fault: () => Promise<void>): Promise<Call[]> {
  const from = ledger.length;
  const load = backgroundLoad();
  let failure: { error: unknown } | undefined;
  try {
    await sleep(1_000);
    await fault();
    await sleep(1_000);
  } catch (error) {
    failure = { error };
  }
  await load.stop();
  if (failure) throw failure.error;
  return ledger.slice(from);
}

/** The time of the connector's first log line with `event` (and `match`, when given) at or after `since`. */
function connectorEvent(event: string, since: number, match = ""): { at: number; line: Record<string, unknown> } | undefined {
  for (const text of stack.connector.output.split("\n")) {
    if (!text.includes(`"event":"${event}"`) || !text.includes(match)) continue;
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      continue; // the last line, still being written
    }
    const at = Date.parse(String(line.time));
    if (at >= since) return { at, line };
  }
  return undefined;
}

describe("faults under load", () => {
  it("(a) the stdio child SIGKILLed mid-call: that call fails as crashed (-32092), others as unavailable, back within 5 s", async () => {
    let killedAt = 0;
    let recoveredAt = 0;
    const calls = await underLoad(async () => {
      // A long call in flight when the child dies (untagged: server-everything's schema has no room for a tag). It
      // reports progress every second; the first progress notification proves the child is running it.
      let inFlight!: () => void;
      const running = new Promise<void>((resolve) => (inFlight = resolve));
      const long = call("everything__trigger-long-running-operation", () => ({ duration: 20, steps: 20 }), false, () => inFlight());
      untaggedCalls.push({ tool: "trigger-long-running-operation", count: 1 });
      const first = await Promise.race([running.then(() => "progress" as const), long]);
      expect(first, "the long call settled before any progress: it never ran in the child").toBe("progress");
      const [pid] = stack.connector.childPids("server-everything");
      expect(pid).toBeGreaterThan(0);
      process.kill(pid as number, "SIGKILL");
      killedAt = Date.now();
      expect(await long).toMatchObject({ outcome: "error", code: CRASHED });
      recoveredAt = await firstSuccess(echo);
    });
    console.log("(a)", summary(calls), `recovered ${recoveredAt - killedAt} ms after the kill`);
    expect(recoveredAt - killedAt).toBeLessThan(RECOVERY_MS);
    expectClearFailures(calls, false);
    // Once it served again, it kept serving.
    expect(calls.filter((c) => c.outcome !== "ok" && c.startedAt > recoveredAt)).toEqual([]);
    await checkAudit(untaggedCalls);
  }, 90_000);

  it("(b) a child crash-looping: its calls fail as unavailable, the other server never notices, back within 5 s of the connector's backoff", async () => {
    let lastCrash: { at: number; delayMs: number } | undefined;
    let recoveredAt = 0;
    const details = new Set<string>();
    const calls = await underLoad(async () => {
      // One kill, then CRASH_LOOP_CRASHES - 1 starts that crash 400 ms in: the connector's crash-loop threshold.
      writeFileSync(crashesFile, String(CRASH_LOOP_CRASHES - 1));
      const [pid] = stack.connector.childPids("CRASHES_FILE");
      expect(pid).toBeGreaterThan(0);
      const since = Date.now();
      process.kill(pid as number, "SIGKILL");
      // The fault ends with the last crash; the connector then waits out its backoff before starting the child again.
      const deadline = Date.now() + 60_000;
      while (!lastCrash && Date.now() < deadline) {
        const servers = (await (await adminFetch(stack, "/servers")).json()) as { servers: { id: string; status: string; detail: string | null }[] };
        const crashy = servers.servers.find((s) => s.id === "crashy");
        if (crashy) details.add(`${crashy.status}: ${crashy.detail ?? ""}`);
        const crash = connectorEvent("server_crashed", since, `"recentCrashes":${CRASH_LOOP_CRASHES}`);
        const scheduled = crash && connectorEvent("server_restart_scheduled", crash.at, '"server":"crashy"');
        if (crash && scheduled) lastCrash = { at: crash.at, delayMs: Number(scheduled.line.delayMs) };
        else await sleep(100);
      }
      expect(lastCrash, stack.connector.output.slice(-4000)).toBeDefined();
      // What the operator sees while the backoff runs (the agent sees only the status).
      for (let i = 0; i < 20 && ![...details].some((d) => d.startsWith("unhealthy: crashed 5 times")); i++) {
        const servers = (await (await adminFetch(stack, "/servers")).json()) as { servers: { id: string; status: string; detail: string | null }[] };
        const crashy = servers.servers.find((s) => s.id === "crashy");
        if (crashy) details.add(`${crashy.status}: ${crashy.detail ?? ""}`);
        await sleep(100);
      }
      recoveredAt = await firstSuccess(wait);
    });
    const backoffOver = lastCrash!.at + lastCrash!.delayMs;
    console.log("(b)", summary(calls), `backoff ${lastCrash!.delayMs} ms; recovered ${recoveredAt - backoffOver} ms after it`);
    expect(recoveredAt - backoffOver).toBeLessThan(RECOVERY_MS);
    expectClearFailures(calls, false);
    // server-everything never noticed.
    expect(calls.filter((c) => c.tool === "everything__echo" && c.outcome !== "ok")).toEqual([]);
    // The agent is told the server is restarting or unhealthy; the operator sees the crash loop.
    const crashyErrors = calls.filter((c) => c.tool === "crashy__wait" && c.outcome === "error");
    expect(crashyErrors.length).toBeGreaterThan(0);
    expect(crashyErrors.filter((c) => c.code === UNAVAILABLE && !/^Server "crashy" is not available right now \((starting|unhealthy)\); retry shortly$/.test(c.message ?? "") && !/crash/.test(c.message ?? ""))).toEqual([]);
    expect(crashyErrors.some((c) => /\(unhealthy\)/.test(c.message ?? ""))).toBe(true);
    expect([...details].some((d) => /^unhealthy: crashed 5 times within 60 s/.test(d)), [...details].join("\n")).toBe(true);
    await checkAudit(untaggedCalls);
  }, 120_000);

  it("(c) the connector SIGKILLed and started again: unavailable (-32091) meanwhile, back within 5 s of its start", async () => {
    let upAt = 0;
    let recoveredAt = 0;
    const calls = await underLoad(async () => {
      const connector = stack.connector.process!;
      const children = [...stack.connector.childPids("server-everything"), ...stack.connector.childPids("CRASHES_FILE")];
      const exited = new Promise((resolve) => connector.once("exit", resolve));
      connector.kill("SIGKILL");
      await exited;
      await sleep(500);
      // SIGKILL cannot be caught: the connector's detached children are left to the host (connector/main.ts says so).
      for (const pid of children) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      const startedAt = Date.now();
      stack.connector.start();
      recoveredAt = await firstSuccess(echo);
      // The fault ends when the connector process is running again (its first log line), not when Node has booted it.
      upAt = connectorEvent("connector_starting", startedAt - 1_000)?.at ?? startedAt;
      await firstSuccess(wait, RECOVERY_MS);
    });
    console.log("(c)", summary(calls), `recovered ${recoveredAt - upAt} ms after the connector was up`);
    expect(recoveredAt - upAt).toBeLessThan(RECOVERY_MS);
    // While it was away and while its servers started: -32091, never "unknown tool".
    expectClearFailures(calls, false);
    await checkAudit(untaggedCalls);
  }, 90_000);

  it("(d) the Worker restarted under load (every Durable Object evicted): no call hangs, back within 5 s, the chain goes on", async () => {
    let headBefore = 0;
    let workerUpAt = 0;
    let upAt = 0;
    let recoveredAt = 0;
    const calls = await underLoad(async () => {
      headBefore = (await verifyAudit(stack)).head.seq as number;
      await stack.stopWorker();
      await sleep(300);
      await stack.startWorker();
      workerUpAt = Date.now();
      recoveredAt = await firstSuccess(echo);
      // The connector cannot know the Worker is back before it dials: its redial backoff (not reset while the Worker
      // was down) may put its next dial seconds after the Worker's start. The fault ends at its first dial from then
      // on; if none came after it, the dial that reconnected it was already under way when the Worker came up.
      upAt = connectorEvent("link_connecting", workerUpAt)?.at ?? workerUpAt;
    });
    console.log("(d)", summary(calls), `recovered ${recoveredAt - upAt} ms after the connector's first dial to the Worker back (${upAt - workerUpAt} ms after it was back)`);
    expect(recoveredAt - upAt).toBeLessThan(RECOVERY_MS);
    // Calls sent while it was down are refused by the OS; those in flight when it went down are cut; no other failure.
    expectClearFailures(calls, true);
    await checkAudit(untaggedCalls);
    expect((await verifyAudit(stack)).head.seq).toBeGreaterThan(headBefore);
    await waitForTools(stack, (names) => names.includes("crashy__wait") && names.includes("everything__echo"), 10_000);
  }, 120_000);
});
