/**
 * Load through the real stack: 2,000 tools/call to server-everything's `echo` at concurrency 32 (raw JSON-RPC POSTs
 * with unique ids and unique payloads, plus a few SDK clients alongside), with rate limiting on (generous limits, so
 * every call pays the RateLimiter object and none is refused). Afterwards the books must balance exactly: every
 * call answered with its own payload (no cross-talk), one audit entry per call, the chain verified up to the head the
 * AuditLog object reports, and usage_hourly's counters equal to the audit counts.
 *
 * No timing assertion: only correctness under concurrency.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, type AgentClient } from "./clients.ts";
import { adminFetch, EVERYTHING_SERVER, rawPost, startStack, verifyAudit, type Stack } from "./stack.ts";

const RAW_CALLS = 2_000;
const CONCURRENCY = 32;
const SDK_CLIENTS = 4;
const SDK_CALLS_EACH = 25;
const TOTAL = RAW_CALLS + SDK_CLIENTS * SDK_CALLS_EACH;

let stack: Stack;
const startedAt = Date.now();

beforeAll(async () => {
  stack = await startStack(() => [EVERYTHING_SERVER], {
    rateLimit: { enabled: true, defaultPerMinute: 1_000_000, burst: 1_000_000 },
  });
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
});

const admin = (path: string) => adminFetch(stack, path);

describe("2,000+ concurrent calls through the real stack", () => {
  const run = `${process.pid}-${Date.now()}`;
  const answers = new Map<number, unknown>();
  const sdkAnswers: string[] = [];

  it(`answers ${RAW_CALLS} raw calls at concurrency ${CONCURRENCY} and ${SDK_CLIENTS * SDK_CALLS_EACH} SDK calls, each with its own payload`, async () => {
    const message = (i: number) => `load ${run} #${i}`;
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= RAW_CALLS) return;
        const id = 1_000_000 + i; // unique JSON-RPC id per call
        const body = JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "everything__echo", arguments: { message: message(i) } } });
        const { status, messages } = await rawPost(stack, body);
        const answer = messages.find((m) => m.id !== undefined);
        answers.set(i, { status, id: answer?.id, text: answer?.result?.content?.[0]?.text, error: answer?.error });
      }
    };
    const sdk = async (c: number) => {
      const client: AgentClient = await connectClient(c % 2 === 0 ? "v2-2025" : "v1", stack.mcpUrl, stack.apiKey);
      try {
        for (let i = 0; i < SDK_CALLS_EACH; i++) {
          const result = await client.callTool("everything__echo", { message: `sdk ${run} ${c}/${i}` });
          sdkAnswers.push(result.content[0].text);
        }
      } finally {
        await client.close();
      }
    };
    await Promise.all([...Array.from({ length: CONCURRENCY }, worker), ...Array.from({ length: SDK_CLIENTS }, (_, c) => sdk(c))]);

    expect(answers.size).toBe(RAW_CALLS);
    const wrong = [...answers].filter(([i, a]) => {
      const { status, id, text } = a as { status: number; id: number; text: string };
      return status !== 200 || id !== 1_000_000 + i || text !== `Echo: ${message(i)}`;
    });
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(sdkAnswers.sort()).toEqual(
      Array.from({ length: SDK_CLIENTS }, (_, c) => Array.from({ length: SDK_CALLS_EACH }, (_, i) => `Echo: sdk ${run} ${c}/${i}`)).flat().sort(),
    );
  }, 300_000);

  it("has exactly one audit entry per call, and the chain verifies up to the AuditLog object's head", async () => {
    const verified = await verifyAudit(stack);
    // Only tools/call is audited here (tools/list, initialize and the admin API are not): the chain is these calls.
    expect(verified).toMatchObject({ type: "result", ok: true, entries: TOTAL, firstSeq: 1, head: { seq: TOTAL } });
    const head = (await (await admin("/audit/head")).json()) as { head: { seq: number }; shippedSeq: number };
    expect(head.head.seq).toBe(TOTAL);
    expect(head.shippedSeq).toBe(TOTAL);

    const stats = (await (await admin("/audit/stats?consumer=e2e-agent&server=everything&tool=echo")).json()) as Record<string, any>;
    expect(stats).toMatchObject({ total: TOTAL, byStatus: { ok: TOTAL, error: 0, denied: 0, limited: 0 } });

    // The D1 copy: seq 1…TOTAL, contiguous, one row per seq, every row an ok echo of the agent.
    const [row] = await stack.query(
      "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS seqs, MIN(seq) AS lo, MAX(seq) AS hi, SUM(status = 'ok') AS ok, COUNT(DISTINCT request_id) AS requests FROM audit_entries WHERE tenant_id = 'e2e'",
    );
    expect(row).toEqual({ n: TOTAL, seqs: TOTAL, lo: 1, hi: TOTAL, ok: TOTAL, requests: TOTAL });
    // Each raw call's own payload is in the chain exactly once.
    const [payloads] = await stack.query(`SELECT COUNT(DISTINCT arguments) AS n FROM audit_entries WHERE tenant_id = 'e2e' AND arguments LIKE '%load ${run} #%'`);
    expect(payloads?.n).toBe(RAW_CALLS);
  }, 120_000);

  it("folds exactly the audited calls into usage (usage_hourly = audit, through the usage API and in SQL)", async () => {
    const from = Math.floor(startedAt / 3_600_000) * 3_600_000 - 3_600_000;
    const usage = (await (await admin(`/usage?by=tool&from=${from}`)).json()) as { rows: Record<string, any>[]; totals: Record<string, any> };
    expect(usage.rows).toHaveLength(1);
    expect(usage.rows[0]).toMatchObject({ server: "everything", tool: "echo", calls: TOTAL, ok: TOTAL, errors: 0, denied: 0, limited: 0 });
    expect(usage.rows[0]?.latencyMs.count).toBe(TOTAL);
    expect(usage.totals.calls).toBe(TOTAL);

    const [fold] = await stack.query(
      "SELECT SUM(calls) AS calls, SUM(ok) AS ok, SUM(request_bytes) AS rq, SUM(response_bytes) AS rs, SUM(latency_sum_ms) AS lat FROM usage_hourly WHERE tenant_id = 'e2e' AND consumer = 'e2e-agent' AND server = 'everything' AND tool = 'echo'",
    );
    const [audit] = await stack.query(
      "SELECT COUNT(*) AS calls, SUM(status = 'ok') AS ok, SUM(request_bytes) AS rq, SUM(response_bytes) AS rs, SUM(latency_ms) AS lat FROM audit_entries WHERE tenant_id = 'e2e' AND consumer = 'e2e-agent' AND server = 'everything' AND tool = 'echo'",
    );
    expect(fold).toEqual(audit);
    const [cursor] = await stack.query("SELECT seq FROM usage_cursor WHERE tenant_id = 'e2e'");
    expect(cursor?.seq).toBe(TOTAL);
  }, 120_000);
});
