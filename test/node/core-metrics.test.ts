// The /metrics exposition's pure core (src/metrics/exposition.ts), read back by a real parser of the Prometheus
// text format (parse-prometheus-text-format, through test/metrics-parse.ts): families and types, label escaping
// round trips, histogram cumulation, the series cap and label clipping.
import { describe, expect, it } from "vitest";
import { LATENCY_BUCKET_COUNT, LATENCY_BUCKETS_MS } from "../../src/metering/histogram.ts";
import {
  CALL_STATUSES,
  clipLabelValue,
  escapeLabelValue,
  EXPOSITION_CONTENT_TYPE,
  MAX_LABEL_VALUE_LENGTH,
  MAX_SERIES_PER_TENANT,
  OTHER_TOOL,
  renderExposition,
  type UsageTotals,
} from "../../src/metrics/exposition.ts";
import { counterValues, families, histograms, samples } from "../metrics-parse.ts";

const CALLS = "mcp_gateway_calls_total";
const DURATION = "mcp_gateway_call_duration_milliseconds";
const REQUEST_BYTES = "mcp_gateway_request_bytes_total";
const RESPONSE_BYTES = "mcp_gateway_response_bytes_total";

/** Totals for one series; `seed` makes every number distinct so a mix-up shows. */
function totals(tenant: string, server: string, tool: string, seed = 1): UsageTotals {
  return {
    tenant,
    server,
    tool,
    calls: { ok: 10 * seed, error: seed + 1, denied: seed + 2, limited: seed + 3, unknown: 0, unauthenticated: seed + 4 },
    latencySumMs: 1000 * seed + 7,
    latencyBuckets: Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => (i * seed) % 5),
    requestBytes: 100 * seed + 1,
    responseBytes: 200 * seed + 3,
  };
}

const seriesLabels = (t: Pick<UsageTotals, "tenant" | "server" | "tool">) => ({ tenant: t.tenant, server: t.server, tool: t.tool });
const key = (labels: Record<string, string>) => JSON.stringify(labels);

describe("the exposition, read by a Prometheus text-format parser", () => {
  const rows = [totals("acme", "crm", "search", 1), totals("acme", "crm", "delete_contact", 2), totals("acme", "", "", 3), totals("globex", "files", "read", 4)];
  const text = renderExposition(rows);

  it("has the four families with HELP and TYPE, one line feed at the end, and the 0.0.4 content type", () => {
    const parsed = families(text);
    expect([...parsed.keys()]).toEqual([CALLS, DURATION, REQUEST_BYTES, RESPONSE_BYTES]);
    expect([...parsed.values()].map((f) => f.type)).toEqual(["COUNTER", "HISTOGRAM", "COUNTER", "COUNTER"]);
    for (const family of parsed.values()) expect(family.help.length).toBeGreaterThan(10);
    expect(text.endsWith("\n") && !text.endsWith("\n\n")).toBe(true);
    expect(text).toContain(`# TYPE ${CALLS} counter\n`);
    expect(text).toContain(`# TYPE ${DURATION} histogram\n`);
    expect(EXPOSITION_CONTENT_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
  });

  it("counts calls per tenant, server, tool and every status (zeros included), with no consumer label", () => {
    const counters = families(text).get(CALLS)?.metrics ?? [];
    expect(counters).toHaveLength(rows.length * CALL_STATUSES.length);
    for (const metric of counters) expect(Object.keys(metric.labels ?? {})).toEqual(["tenant", "server", "tool", "status"]);
    const values = counterValues(text, CALLS);
    for (const row of rows) {
      for (const status of CALL_STATUSES) expect(values.get(key({ ...seriesLabels(row), status }))).toBe(row.calls[status]);
    }
    expect(new Set(counters.map((m) => m.labels?.status))).toEqual(new Set(["ok", "error", "denied", "limited", "unknown", "unauthenticated"]));
  });

  it("exposes request and response bytes per tenant, server and tool", () => {
    const request = counterValues(text, REQUEST_BYTES);
    const response = counterValues(text, RESPONSE_BYTES);
    for (const row of rows) {
      expect(request.get(key(seriesLabels(row)))).toBe(row.requestBytes);
      expect(response.get(key(seriesLabels(row)))).toBe(row.responseBytes);
    }
    expect(request.size).toBe(rows.length);
  });

  it("builds cumulative histograms over the fixed buckets, ending in +Inf = _count, with _sum", () => {
    const parsed = histograms(text, DURATION);
    expect(parsed).toHaveLength(rows.length);
    for (const row of rows) {
      const histogram = parsed.find((h) => key(h.labels) === key(seriesLabels(row)));
      expect(histogram).toBeDefined();
      const { buckets, sum, count } = histogram!;
      expect(buckets.map(([le]) => le)).toEqual([...LATENCY_BUCKETS_MS.map(String), "+Inf"]);
      let running = 0;
      buckets.forEach(([, value], i) => {
        running += row.latencyBuckets[i] as number;
        expect(value).toBe(running);
        if (i > 0) expect(value).toBeGreaterThanOrEqual(buckets[i - 1]![1]);
      });
      expect(buckets.at(-1)![1]).toBe(count);
      expect(count).toBe(row.latencyBuckets.reduce((a, b) => a + b, 0));
      expect(sum).toBe(row.latencySumMs);
    }
  });

  it("is the same text whatever the order of the rows, and sums rows with the same labels", () => {
    expect(renderExposition([...rows].reverse())).toBe(text);
    const doubled = renderExposition([...rows, totals("acme", "crm", "search", 1)]);
    expect(counterValues(doubled, CALLS).get(key({ tenant: "acme", server: "crm", tool: "search", status: "ok" }))).toBe(20);
    expect(histograms(doubled, DURATION).find((h) => h.labels.tool === "search")?.sum).toBe(2 * 1007);
  });

  it("still declares every family when there is no usage", () => {
    const empty = renderExposition([]);
    expect([...families(empty).keys()]).toEqual([CALLS, DURATION, REQUEST_BYTES, RESPONSE_BYTES]);
    expect(samples(empty)).toEqual([]);
  });

  it("never writes NaN, Infinity or a negative count", () => {
    const broken = { ...totals("acme", "crm", "x"), latencySumMs: Number.NaN, requestBytes: -5, responseBytes: Number.POSITIVE_INFINITY };
    const parsed = samples(renderExposition([broken]));
    expect(parsed.every((s) => Number.isFinite(s.value) && s.value >= 0)).toBe(true);
  });
});

describe("label values", () => {
  const hostile = [
    'say "hi"',
    "back\\slash",
    "ends in a backslash\\",
    "\\",
    '\\"',
    "literal \\n, not a line feed",
    "two\nlines\n",
    "carriage\rreturn",
    "tab\there",
    "braces {le=\"+Inf\"} 1, commas, = signs",
    "# not a comment",
    "café ☕ 日本語 Ελληνικά עברית",
    "emoji 👩‍👩‍👧 and a combining e\u0301",
    "",
  ];

  it("escape backslash, double quote and line feed, and nothing else", () => {
    expect(escapeLabelValue('a\\b"c\nd\re')).toBe('a\\\\b\\"c\\nd\re');
    expect(escapeLabelValue("plain ☕")).toBe("plain ☕");
  });

  it("round-trip through the parser exactly: quotes, backslashes, line feeds, unicode", () => {
    const rows = hostile.map((tool, i) => totals(`tenant-${i % 2}`, `server "${i}" \\ \n`, tool, i + 1));
    const text = renderExposition(rows);
    expect([...families(text).values()].map((f) => f.type)).toEqual(["COUNTER", "HISTOGRAM", "COUNTER", "COUNTER"]);
    // Every sample stays on one line: no raw line feed inside a label value.
    const sampleLines = text.split("\n").filter((line) => line && !line.startsWith("#"));
    expect(sampleLines).toHaveLength(rows.length * (CALL_STATUSES.length + LATENCY_BUCKET_COUNT + 2 + 2));
    const values = counterValues(text, CALLS);
    for (const row of rows) expect(values.get(key({ ...seriesLabels(row), status: "ok" }))).toBe(row.calls.ok);
    const parsedTools = new Set(samples(text).map((s) => s.labels.tool));
    expect(parsedTools).toEqual(new Set(hostile));
    expect(new Set(histograms(text, DURATION).map((h) => h.labels.tool))).toEqual(new Set(hostile));
  });

  it("are clipped to the maximum length in code points, ending in …, never splitting a code point", () => {
    expect(MAX_LABEL_VALUE_LENGTH).toBe(128);
    const exact = "x".repeat(MAX_LABEL_VALUE_LENGTH);
    expect(clipLabelValue(exact)).toBe(exact);
    expect(clipLabelValue(`${exact}y`)).toBe(`${"x".repeat(MAX_LABEL_VALUE_LENGTH - 1)}…`);
    // 100 emoji are 200 UTF-16 units but only 100 code points: not clipped.
    expect(clipLabelValue("☕".repeat(100))).toBe("☕".repeat(100));
    const astral = "😀".repeat(200);
    const clipped = clipLabelValue(astral);
    expect(Array.from(clipped)).toHaveLength(MAX_LABEL_VALUE_LENGTH);
    expect(clipped).toBe(`${"😀".repeat(MAX_LABEL_VALUE_LENGTH - 1)}…`);
    expect(new TextDecoder().decode(new TextEncoder().encode(clipped))).toBe(clipped); // no half of a surrogate pair left
  });

  it("replace a lone surrogate by U+FFFD so the body is valid UTF-8", () => {
    expect(clipLabelValue("a\uD800b")).toBe("a\uFFFDb");
    expect(clipLabelValue("\uDC00")).toBe("\uFFFD");
    expect(clipLabelValue("ok 😀")).toBe("ok 😀");
  });

  it("are clipped in the exposition, and series that clipping makes equal are summed into one", () => {
    const long = "t".repeat(300);
    const rows = [totals("acme", "crm", `${long}-a`, 1), totals("acme", "crm", `${long}-b`, 2), totals("acme", "s".repeat(200), "short", 3)];
    const text = renderExposition(rows);
    const clippedTool = `${"t".repeat(MAX_LABEL_VALUE_LENGTH - 1)}…`;
    const values = counterValues(text, CALLS);
    expect(values.get(key({ tenant: "acme", server: "crm", tool: clippedTool, status: "ok" }))).toBe(10 + 20);
    expect(values.get(key({ tenant: "acme", server: `${"s".repeat(MAX_LABEL_VALUE_LENGTH - 1)}…`, tool: "short", status: "ok" }))).toBe(30);
    for (const s of samples(text)) for (const value of Object.values(s.labels)) expect(Array.from(value).length).toBeLessThanOrEqual(MAX_LABEL_VALUE_LENGTH);
    const merged = histograms(text, DURATION).find((h) => h.labels.tool === clippedTool);
    expect(merged?.count).toBe(rows[0]!.latencyBuckets.reduce((a, b) => a + b, 0) + rows[1]!.latencyBuckets.reduce((a, b) => a + b, 0));
  });
});

describe("the series cap per tenant", () => {
  const tool = (i: number) => `tool-${String(i).padStart(4, "0")}`;
  const over = 40;
  const many = Array.from({ length: MAX_SERIES_PER_TENANT + over }, (_, i) => totals("big", "crm", tool(i), 1));

  it("keeps the first series by (server, tool) and folds the rest into tool=\"(other)\", summed", () => {
    const text = renderExposition([...many, totals("small", "crm", "only", 2)]);
    const histogramSeries = histograms(text, DURATION);
    const big = histogramSeries.filter((h) => h.labels.tenant === "big");
    expect(big).toHaveLength(MAX_SERIES_PER_TENANT + 1);
    expect(big.map((h) => h.labels.tool)).toEqual([...Array.from({ length: MAX_SERIES_PER_TENANT }, (_, i) => tool(i)), OTHER_TOOL].sort());
    const values = counterValues(text, CALLS);
    expect(values.get(key({ tenant: "big", server: "crm", tool: OTHER_TOOL, status: "ok" }))).toBe(10 * over);
    expect(values.get(key({ tenant: "big", server: "crm", tool: tool(MAX_SERIES_PER_TENANT), status: "ok" }))).toBeUndefined();
    expect(big.find((h) => h.labels.tool === OTHER_TOOL)?.count).toBe(over * many[0]!.latencyBuckets.reduce((a, b) => a + b, 0));
    // Another tenant is not affected by the first one's overflow.
    expect(histogramSeries.filter((h) => h.labels.tenant === "small").map((h) => h.labels.tool)).toEqual(["only"]);
  });

  it("folds per server, so the (other) series say whose tools overflowed", () => {
    const rows = [...many.slice(0, MAX_SERIES_PER_TENANT), totals("big", "zeta", "a", 1), totals("big", "zeta", "b", 1), totals("big", "omega", "a", 1)];
    const values = counterValues(renderExposition(rows), CALLS);
    expect(values.get(key({ tenant: "big", server: "omega", tool: OTHER_TOOL, status: "ok" }))).toBe(10);
    expect(values.get(key({ tenant: "big", server: "zeta", tool: OTHER_TOOL, status: "ok" }))).toBe(20);
  });

  it("never lowers an exposed counter when usage grows, even when a new series pushes one into (other)", () => {
    const before = samples(renderExposition(many));
    // Usage only grows: every series one more call, and a new tool sorting first takes a kept place.
    const grown = [...many.map((row) => ({ ...row, calls: { ...row.calls, ok: row.calls.ok + 1 } })), totals("big", "aaa", "new", 1)];
    const after = new Map(samples(renderExposition(grown)).map((s) => [key({ name: s.name, ...s.labels }), s.value]));
    for (const sample of before) {
      const now = after.get(key({ name: sample.name, ...sample.labels }));
      if (now !== undefined) expect(now).toBeGreaterThanOrEqual(sample.value);
    }
    expect(after.get(key({ name: CALLS, tenant: "big", server: "crm", tool: OTHER_TOOL, status: "ok" }))).toBe(11 * (over + 1));
  });
});
