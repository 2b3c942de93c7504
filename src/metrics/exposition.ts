/**
 * @module The Prometheus text exposition format (version 0.0.4) of usage (issue 6): totals per tenant, server and
 * tool → the text `GET /metrics` answers. Pure: no I/O, the same rows always give the same bytes.
 *
 * Families, all cumulative since the first usage row (counters never go down; see README "Metrics"):
 *   mcp_gateway_calls_total{tenant,server,tool,status}          counter, status ∈ {@link CALL_STATUSES}
 *   mcp_gateway_call_duration_milliseconds{tenant,server,tool}  histogram over the fixed buckets of
 *                                                               metering/histogram.ts (_bucket{le}, +Inf, _sum, _count)
 *   mcp_gateway_request_bytes_total{tenant,server,tool}         counter
 *   mcp_gateway_response_bytes_total{tenant,server,tool}        counter
 * Consumers are never a label (a tenant may have any number of them).
 *
 * Labels are bounded: every value is clipped to {@link MAX_LABEL_VALUE_LENGTH} code points, and a tenant shows at
 * most {@link MAX_SERIES_PER_TENANT} (server, tool) series, the first ones in (server, tool) order; the tools after
 * them are summed per server under tool="(other)". The order is by name, not by traffic, so a series only ever moves
 * from its own name into "(other)", never back: every exposed counter stays monotonic.
 */
import { LATENCY_BUCKET_COUNT, LATENCY_BUCKETS_MS } from "../metering/histogram.ts";

/** The content type of the text format, version 0.0.4. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Longest label value, in Unicode code points; a longer one keeps its first 127 and ends in "…". */
export const MAX_LABEL_VALUE_LENGTH = 128;

/** Most (server, tool) series one tenant exposes before the rest are folded into tool="(other)". */
export const MAX_SERIES_PER_TENANT = 500;

/** The tool label of the series that sums a server's tools beyond {@link MAX_SERIES_PER_TENANT}. */
export const OTHER_TOOL = "(other)";

/** The `status` label values of mcp_gateway_calls_total, each from one usage column. */
export const CALL_STATUSES = ["ok", "error", "denied", "limited", "unknown", "unauthenticated"] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

/** All-time usage of one tenant, server and tool: the sums of its usage_hourly rows over every consumer and hour. */
export interface UsageTotals {
  tenant: string;
  /** "" for calls that named no known server (usage folds them there). */
  server: string;
  /** "" for calls that named no known tool. */
  tool: string;
  calls: Record<CallStatus, number>;
  latencySumMs: number;
  /** Calls per latency bucket, NOT cumulative: index i counts latencies in (bound[i-1], bound[i]]; the last is > 30 s. */
  latencyBuckets: readonly number[];
  requestBytes: number;
  responseBytes: number;
}

const CALLS = "mcp_gateway_calls_total";
const DURATION = "mcp_gateway_call_duration_milliseconds";
const REQUEST_BYTES = "mcp_gateway_request_bytes_total";
const RESPONSE_BYTES = "mcp_gateway_response_bytes_total";

/** A label value as the text format wants it between double quotes: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text escaping: backslash and line feed (a double quote stays as it is there). */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/**
 * A label value made safe to expose: a lone UTF-16 surrogate (not encodable as UTF-8) becomes U+FFFD, and a value
 * longer than {@link MAX_LABEL_VALUE_LENGTH} code points keeps its first 127 followed by "…". Never splits a code point.
 */
export function clipLabelValue(value: string): string {
  const wellFormed = value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
  if (wellFormed.length <= MAX_LABEL_VALUE_LENGTH) return wellFormed; // ≤ 128 UTF-16 units is ≤ 128 code points
  const codePoints = Array.from(wellFormed);
  return codePoints.length <= MAX_LABEL_VALUE_LENGTH ? wellFormed : `${codePoints.slice(0, MAX_LABEL_VALUE_LENGTH - 1).join("")}…`;
}

/** A count as the text format writes it: a finite, non-negative number (a corrupt NaN or negative reads as 0). */
function sampleValue(n: number): string {
  return Number.isFinite(n) && n > 0 ? String(n) : "0";
}

function emptyTotals(tenant: string, server: string, tool: string): UsageTotals {
  return {
    tenant,
    server,
    tool,
    calls: { ok: 0, error: 0, denied: 0, limited: 0, unknown: 0, unauthenticated: 0 },
    latencySumMs: 0,
    latencyBuckets: new Array<number>(LATENCY_BUCKET_COUNT).fill(0),
    requestBytes: 0,
    responseBytes: 0,
  };
}

function addInto(into: UsageTotals, row: UsageTotals): void {
  for (const status of CALL_STATUSES) into.calls[status] += row.calls[status] || 0;
  into.latencySumMs += row.latencySumMs || 0;
  const buckets = into.latencyBuckets as number[];
  for (let i = 0; i < LATENCY_BUCKET_COUNT; i++) buckets[i] = (buckets[i] as number) + (row.latencyBuckets[i] || 0);
  into.requestBytes += row.requestBytes || 0;
  into.responseBytes += row.responseBytes || 0;
}

/** Plain code-unit order: the same everywhere, unlike localeCompare. */
const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The series to expose: label values clipped (rows whose clipped labels coincide are summed into one series), then
 * per tenant the first {@link MAX_SERIES_PER_TENANT} (server, tool) pairs in (server, tool) order kept and the rest
 * summed per server under tool="(other)". Sorted by tenant, server, tool.
 */
export function boundedSeries(rows: readonly UsageTotals[]): UsageTotals[] {
  const key = (tenant: string, server: string, tool: string) => JSON.stringify([tenant, server, tool]);
  // 1. Clip, and merge what clipping made equal.
  const clipped = new Map<string, UsageTotals>();
  for (const row of rows) {
    const [tenant, server, tool] = [clipLabelValue(row.tenant), clipLabelValue(row.server), clipLabelValue(row.tool)];
    const k = key(tenant, server, tool);
    let into = clipped.get(k);
    if (!into) clipped.set(k, (into = emptyTotals(tenant, server, tool)));
    addInto(into, row);
  }
  // 2. Per tenant, keep the first pairs by name; fold the rest into (server, "(other)").
  const byTenant = new Map<string, UsageTotals[]>();
  for (const series of clipped.values()) {
    const list = byTenant.get(series.tenant);
    if (list) list.push(series);
    else byTenant.set(series.tenant, [series]);
  }
  const out: UsageTotals[] = [];
  for (const tenant of [...byTenant.keys()].sort(byString)) {
    const pairs = (byTenant.get(tenant) as UsageTotals[]).sort((a, b) => byString(a.server, b.server) || byString(a.tool, b.tool));
    const exposed = new Map<string, UsageTotals>();
    pairs.forEach((series, rank) => {
      const tool = rank < MAX_SERIES_PER_TENANT ? series.tool : OTHER_TOOL;
      const k = key(tenant, series.server, tool);
      let into = exposed.get(k);
      if (!into) exposed.set(k, (into = emptyTotals(tenant, series.server, tool)));
      addInto(into, series);
    });
    out.push(...[...exposed.values()].sort((a, b) => byString(a.server, b.server) || byString(a.tool, b.tool)));
  }
  return out;
}

function labels(series: UsageTotals, extra = ""): string {
  return `{tenant="${escapeLabelValue(series.tenant)}",server="${escapeLabelValue(series.server)}",tool="${escapeLabelValue(series.tool)}"${extra}}`;
}

function family(lines: string[], name: string, type: "counter" | "histogram", help: string): void {
  lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
}

/**
 * The exposition of the given totals (one row per tenant, server and tool; more rows for the same labels are
 * summed): every family's HELP and TYPE, then its samples, ending in a line feed. Families without samples keep
 * their HELP and TYPE lines, so a scrape of a tenant without usage still says what it would expose.
 */
export function renderExposition(rows: readonly UsageTotals[]): string {
  const series = boundedSeries(rows);
  const lines: string[] = [];

  family(lines, CALLS, "counter", "MCP calls through the gateway, by tenant, server, tool and outcome (server and tool are empty for calls routed to no known server).");
  for (const s of series) for (const status of CALL_STATUSES) lines.push(`${CALLS}${labels(s, `,status="${status}"`)} ${sampleValue(s.calls[status])}`);

  family(lines, DURATION, "histogram", "Latency of MCP calls as the gateway measured it, in milliseconds, by tenant, server and tool.");
  for (const s of series) {
    let cumulative = 0;
    LATENCY_BUCKETS_MS.forEach((bound, i) => {
      cumulative += Math.max(0, s.latencyBuckets[i] || 0);
      lines.push(`${DURATION}_bucket${labels(s, `,le="${bound}"`)} ${sampleValue(cumulative)}`);
    });
    cumulative += Math.max(0, s.latencyBuckets[LATENCY_BUCKETS_MS.length] || 0);
    lines.push(`${DURATION}_bucket${labels(s, `,le="+Inf"`)} ${sampleValue(cumulative)}`);
    lines.push(`${DURATION}_sum${labels(s)} ${sampleValue(s.latencySumMs)}`);
    lines.push(`${DURATION}_count${labels(s)} ${sampleValue(cumulative)}`);
  }

  family(lines, REQUEST_BYTES, "counter", "UTF-8 bytes of the JSON of MCP calls' params as agents sent them, by tenant, server and tool.");
  for (const s of series) lines.push(`${REQUEST_BYTES}${labels(s)} ${sampleValue(s.requestBytes)}`);

  family(lines, RESPONSE_BYTES, "counter", "UTF-8 bytes of the JSON of MCP calls' results or errors as agents received them, by tenant, server and tool.");
  for (const s of series) lines.push(`${RESPONSE_BYTES}${labels(s)} ${sampleValue(s.responseBytes)}`);

  return `${lines.join("\n")}\n`;
}
