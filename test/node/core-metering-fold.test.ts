/** The usage fold (src/metering/fold.ts): audit entries → per-(hour, consumer, server, tool) counter deltas. */
import { ProtocolError } from "@modelcontextprotocol/server";
import { describe, expect, it } from "vitest";
import { AUDIT_STATUSES, type AuditStatus } from "../../src/audit/entry.ts";
import { foldUsage, HOUR_MS, hourOf, usageKeyOf, type FoldedEntry, type UsageDelta } from "../../src/metering/fold.ts";
import { LATENCY_BUCKET_COUNT, LATENCY_BUCKETS_MS } from "../../src/metering/histogram.ts";
import { jsonBytes, responseBytes, utf8Length } from "../../src/mcp/call-audit.ts";
import { fields } from "./core-audit-fixtures.ts";

/** 2026-01-01T00:00:00Z */
const T0 = 1_767_225_600_000;

function entry(overrides: Partial<FoldedEntry> = {}): FoldedEntry {
  return { timestamp: T0 + 1_000, consumer: "agent-1", server: "crm", method: "tools/call", tool: "get_customer", status: "ok", latencyMs: 12, requestBytes: 100, responseBytes: 200, ...overrides };
}

const buckets = (...pairs: [index: number, count: number][]) => {
  const out = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  for (const [index, count] of pairs) out[index] = count;
  return out;
};

describe("usage rows hold no caller-chosen name", () => {
  it("counts prompts apart from tools, and resources and completions under their method, not their URI", () => {
    const keys = [
      entry({ method: "tools/call", tool: "summarize" }),
      entry({ method: "prompts/get", tool: "summarize" }),
      entry({ method: "resources/read", tool: "file:///any/path/the/caller/chose" }),
      entry({ method: "completion/complete", tool: "crm://customers/{id}" }),
    ].map((e) => usageKeyOf(e).tool);
    expect(keys).toEqual(["summarize", "prompt:summarize", "resources/read", "completion/complete"]);
  });
});

describe("foldUsage", () => {
  it("folds nothing into nothing", () => {
    expect(foldUsage([])).toEqual([]);
  });

  it("counts every entry as a call and each status in its own counter", () => {
    const statuses: AuditStatus[] = ["ok", "ok", "ok", "error", "error", "denied", "limited", "limited", "unknown", "unauthenticated"];
    const [row, ...rest] = foldUsage(statuses.map((status) => entry({ status, server: "crm", tool: "get_customer" })));
    expect(rest).toEqual([]);
    expect(row).toMatchObject({ calls: 10, ok: 3, errors: 2, denied: 1, limited: 2, unknown: 1, unauthenticated: 1 });
    // Every status has a counter, and the counters add up to the calls.
    expect(row!.ok + row!.errors + row!.denied + row!.limited + row!.unknown + row!.unauthenticated).toBe(row!.calls);
    expect(AUDIT_STATUSES.every((status) => foldUsage([entry({ status })])[0]!.calls === 1)).toBe(true);
  });

  it("sums latency and bytes, and counts latency in the fixed buckets (upper bounds inclusive, not cumulative)", () => {
    const latencies = [0, 5, 6, 10, 11, 30_000, 30_001, 3_600_000];
    const [row] = foldUsage(latencies.map((latencyMs, i) => entry({ latencyMs, requestBytes: i, responseBytes: 1_000 * i })));
    expect(row!.latencySumMs).toBe(latencies.reduce((a, b) => a + b, 0));
    expect(row!.requestBytes).toBe(0 + 1 + 2 + 3 + 4 + 5 + 6 + 7);
    expect(row!.responseBytes).toBe(28_000);
    expect(row!.latencyBuckets).toEqual(buckets([0, 2], [1, 2], [2, 1], [11, 1], [12, 2]));
    expect(row!.latencyBuckets).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
  });

  it("puts each bound in its own bucket and one past it in the next", () => {
    LATENCY_BUCKETS_MS.forEach((bound, i) => {
      expect(foldUsage([entry({ latencyMs: bound })])[0]!.latencyBuckets).toEqual(buckets([i, 1]));
      expect(foldUsage([entry({ latencyMs: bound + 1 })])[0]!.latencyBuckets).toEqual(buckets([i + 1, 1]));
    });
  });

  it("splits at UTC hour boundaries: the last millisecond of an hour and the first of the next", () => {
    const rows = foldUsage([
      entry({ timestamp: T0 }),
      entry({ timestamp: T0 + HOUR_MS - 1 }),
      entry({ timestamp: T0 + HOUR_MS }),
      entry({ timestamp: T0 + 2 * HOUR_MS + 59_999 }),
      entry({ timestamp: T0 + 30 * 60_000 }),
    ]);
    expect(rows.map((r) => [r.hour, r.calls])).toEqual([
      [T0, 3],
      [T0 + HOUR_MS, 1],
      [T0 + 2 * HOUR_MS, 1],
    ]);
    expect(hourOf(0)).toBe(0);
    expect(hourOf(HOUR_MS - 1)).toBe(0);
    expect(new Date(hourOf(Date.parse("2026-03-29T01:59:59.999Z"))).toISOString()).toBe("2026-03-29T01:00:00.000Z");
  });

  it("keeps consumer, server and tool apart", () => {
    const rows = foldUsage([
      entry({ consumer: "agent-1", tool: "a" }),
      entry({ consumer: "agent-2", tool: "a" }),
      entry({ consumer: "agent-1", tool: "b" }),
      entry({ consumer: "agent-1", server: "billing", tool: "a" }),
      entry({ consumer: "agent-1", tool: "a" }),
    ]);
    expect(rows.map((r) => [r.consumer, r.server, r.tool, r.calls])).toEqual([
      ["agent-1", "crm", "a", 2],
      ["agent-2", "crm", "a", 1],
      ["agent-1", "crm", "b", 1],
      ["agent-1", "billing", "a", 1],
    ]);
  });

  it("never carries a caller-chosen name: an unrouted call (server null) counts under server and tool ''", () => {
    const rows = foldUsage([
      entry({ server: null, tool: "crm__nothing_here", status: "unknown" }),
      entry({ server: null, tool: "x".repeat(10_000), status: "unknown" }),
      entry({ server: null, tool: null, status: "unauthenticated", consumer: null }),
      entry({ server: null, tool: null, status: "error" }),
    ]);
    expect(rows.map((r) => [r.consumer, r.server, r.tool, r.calls, r.unknown, r.unauthenticated, r.errors])).toEqual([
      ["agent-1", "", "", 3, 2, 0, 1],
      ["", "", "", 1, 0, 1, 0],
    ]);
  });

  it("counts a routed call without a name under tool '' and keeps the gateway's own tools", () => {
    expect(usageKeyOf(entry({ server: "crm", tool: null }))).toEqual({ hour: T0, consumer: "agent-1", server: "crm", tool: "" });
    expect(usageKeyOf(entry({ server: "gateway", tool: "list_servers", consumer: null }))).toEqual({ hour: T0, consumer: "", server: "gateway", tool: "list_servers" });
  });

  it("does not confuse keys whose parts would join to the same text", () => {
    const rows = foldUsage([entry({ consumer: "a|b", server: "c", tool: "d" }), entry({ consumer: "a", server: "b|c", tool: "d" }), entry({ consumer: 'a","b', server: "c", tool: "d" })]);
    expect(rows).toHaveLength(3);
  });

  it("adds up to the entries' own totals on a varied chain, whatever the grouping", () => {
    const entries = Array.from({ length: 2_000 }, (_, i) => {
      const f = fields(i, { timestamp: T0 + i * 7_919, latencyMs: (i * 7_919) % 40_000, requestBytes: (i * 31) % 5_000, responseBytes: (i * 17) % 70_000 });
      return f.status === "error" && i % 5 === 0 ? { ...f, status: "unauthenticated" as const, consumer: null, server: null } : f;
    });
    const rows = foldUsage(entries);
    const sum = (pick: (r: UsageDelta) => number) => rows.reduce((total, r) => total + pick(r), 0);
    expect(sum((r) => r.calls)).toBe(entries.length);
    for (const status of AUDIT_STATUSES) {
      const counter = status === "error" ? "errors" : status;
      expect(sum((r) => r[counter]), status).toBe(entries.filter((e) => e.status === status).length);
    }
    expect(sum((r) => r.latencySumMs)).toBe(entries.reduce((t, e) => t + e.latencyMs, 0));
    expect(sum((r) => r.requestBytes)).toBe(entries.reduce((t, e) => t + e.requestBytes, 0));
    expect(sum((r) => r.responseBytes)).toBe(entries.reduce((t, e) => t + e.responseBytes, 0));
    expect(sum((r) => r.latencyBuckets.reduce((a, b) => a + b, 0))).toBe(entries.length);
    for (const r of rows) expect(r.latencyBuckets.reduce((a, b) => a + b, 0)).toBe(r.calls);
    // One row per distinct key, each key once.
    const keys = new Set(entries.map((e) => JSON.stringify(usageKeyOf(e))));
    expect(rows).toHaveLength(keys.size);
    // Folding in two halves and adding gives the same rows as folding at once.
    const id = (r: UsageDelta) => JSON.stringify([r.hour, r.consumer, r.server, r.tool]);
    const merged = new Map<string, number>();
    for (const r of [...foldUsage(entries.slice(0, 777)), ...foldUsage(entries.slice(777))]) merged.set(id(r), (merged.get(id(r)) ?? 0) + r.calls);
    expect(Object.fromEntries(merged)).toEqual(Object.fromEntries(rows.map((r) => [id(r), r.calls])));
  });
});

describe("the sizes an entry records (src/mcp/call-audit.ts)", () => {
  it("utf8Length counts as UTF-8 encodes, lone surrogates as U+FFFD", () => {
    const samples = ["", "abc", "café €", "😀🏳️‍🌈", "\ud800", "a\udc00b", "\ud83d", "\u07ff\u0800\uffff", "x".repeat(10_000)];
    for (let i = 0; i < 500; i++) samples.push(String.fromCharCode(...Array.from({ length: 20 }, (_, j) => (i * 7_919 + j * 104_729) % 0x10000)));
    for (const text of samples) expect(utf8Length(text), JSON.stringify(text)).toBe(new TextEncoder().encode(text).length);
  });

  it("jsonBytes is the UTF-8 length of JSON.stringify; nothing weighs 0", () => {
    const params = { name: "crm__get_customer", arguments: { id: "c-42", note: "café €" } };
    expect(jsonBytes(params)).toBe(73);
    expect(jsonBytes(params)).toBe(Buffer.byteLength(JSON.stringify(params)));
    expect(jsonBytes(undefined)).toBe(0);
    expect(jsonBytes(null)).toBe(4);
    expect(jsonBytes({ big: 10n })).toBe(Buffer.byteLength('{"big":"10"}'));
  });

  it("responseBytes measures the result, or the error object the SDK sends", () => {
    const result = { content: [{ type: "text", text: "ok" }] };
    expect(responseBytes({ ok: true, result })).toBe(41);
    const denied = new ProtocolError(-32003, "denied ✋", { ruleId: "p.rules[0]", policyId: "p" });
    expect(responseBytes({ ok: false, error: denied })).toBe(Buffer.byteLength(JSON.stringify({ code: -32003, message: "denied ✋", data: { ruleId: "p.rules[0]", policyId: "p" } })));
    expect(responseBytes({ ok: false, error: new ProtocolError(-32602, "Unknown tool") })).toBe(Buffer.byteLength('{"code":-32602,"message":"Unknown tool"}'));
    expect(responseBytes({ ok: false, error: new Error("boom") })).toBe(Buffer.byteLength('{"code":-32603,"message":"boom"}'));
  });
});
