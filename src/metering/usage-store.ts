/**
 * @module Reads of a tenant's usage (D1 `usage_hourly`, filled from the audit chain) for a period, grouped by
 * consumer, server, tool or hour, with cost under the tenant's price table (src/metering/pricing.ts).
 *
 * **Periods** are `[from, to)` in whole UTC hours (usage is kept per hour): `from` is rounded down to its hour and
 * `to` up to the next hour boundary, so every hour that holds an instant of the asked range is counted; the answer
 * says which hours it covers. A calendar month `2026-11` is `[2026-11-01T00:00Z, 2026-12-01T00:00Z)`.
 *
 * **Latency percentiles** are estimated from the fixed histogram (src/metering/histogram.ts): a percentile is
 * the upper bound of the bucket its rank falls in (nearest rank: the ⌈p·n⌉-th smallest latency), so the true value
 * is at most the estimate and above the previous bound. A percentile in the last, unbounded bucket (over 30 s) is
 * null, as it is when no call was measured.
 *
 * **Cost** is exact (integer nano-units, summed as BigInt) and rounded to six decimals once per row and once for the
 * totals. One query: the distinct (server, tool) pairs of the period are priced here, handed to D1 as one JSON
 * parameter, and the sums come back per group and price entry, so the number of rows read is at most
 * groups × price entries however many tools there are.
 */
import { LATENCY_BUCKET_COUNT, LATENCY_BUCKETS_MS } from "./histogram.ts";
import { billableCalls, compilePriceTable, costNanos, costNumber, type PriceTable } from "./pricing.ts";
import { DEFAULT_METERING, type MeteringConfig } from "./schema.ts";
import type { UsageCounts } from "./fold.ts";
import { flushAuditLog } from "../audit/append.ts";
import type { Env } from "../env.ts";

export const USAGE_GROUPS = ["consumer", "server", "tool", "hour"] as const;
export type UsageGroupBy = (typeof USAGE_GROUPS)[number];

export const HOUR_MS = 3_600_000;
/** The longest period one read may cover. */
export const MAX_USAGE_HOURS = 366 * 24;
/** The longest period grouped by hour (one row per hour). */
export const MAX_HOURLY_HOURS = 31 * 24;

/** The start of the UTC hour of `ms`. */
export const hourFloor = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS;
/** The first hour boundary at or after `ms`. */
export const hourCeil = (ms: number): number => Math.ceil(ms / HOUR_MS) * HOUR_MS;

export const MONTH_PATTERN = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** A calendar month `YYYY-MM` as `[from, to)` epoch ms (UTC), or undefined when it is not one. */
export function monthPeriod(text: string): { from: number; to: number } | undefined {
  const match = MONTH_PATTERN.exec(text);
  if (!match) return undefined;
  const year = Number(match[1]);
  const month = Number(match[2]) - 1;
  if (year < 1970) return undefined;
  return { from: Date.UTC(year, month, 1), to: Date.UTC(year, month + 1, 1) };
}

/** The start of the UTC month of `ms`. */
export const monthStart = (ms: number): number => {
  const date = new Date(ms);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
};

export type PeriodResult = { ok: true; from: number; to: number } | { ok: false; error: string };

/**
 * A period in whole hours: `from` rounded down, `to` up. Defaults: `to` the end of the current hour, `from` the start
 * of `to`'s month (month to date). Refused: `from` not before `to`, longer than `maxHours`.
 */
export function hourPeriod(from: number | undefined, to: number | undefined, now: number, maxHours = MAX_USAGE_HOURS): PeriodResult {
  const end = hourCeil(to ?? now + 1);
  const start = hourFloor(from ?? monthStart(end - 1));
  if (start >= end) return { ok: false, error: "from must be before to" };
  if ((end - start) / HOUR_MS > maxHours) return { ok: false, error: `the period covers ${(end - start) / HOUR_MS} hours; at most ${maxHours} (${maxHours / 24} days)` };
  return { ok: true, from: start, to: end };
}

/** A latency percentile from histogram counts: the upper bound of the bucket of the ⌈p·n⌉-th latency (see module). */
export function histogramPercentile(buckets: readonly number[], p: number): number | null {
  const n = buckets.reduce((a, b) => a + b, 0);
  if (n <= 0) return null;
  const rank = Math.max(1, Math.ceil(p * n));
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] as number;
    if (seen >= rank) return i < LATENCY_BUCKETS_MS.length ? (LATENCY_BUCKETS_MS[i] as number) : null;
  }
  return null;
}

export interface LatencySummary {
  /** Sum of the calls' latencies, ms. */
  sum: number;
  /** Calls in the histogram. */
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** The counts of a group (or of the totals): the usage row's counters, with latency summarised and cost added. */
export interface UsageSummary extends Omit<UsageCounts, "latencySumMs" | "latencyBuckets"> {
  /** Calls that reached their server (ok + errors): what `perCall` prices. */
  billableCalls: number;
  latencyMs: LatencySummary;
  /** requestBytes + responseBytes: what `perKB` prices. */
  bytes: number;
  /** In `currency`, six decimals at most. */
  cost: number;
}

/** A row: its group's key fields (by consumer: consumer; server: server; tool: server and tool; hour: hour), then the counts. */
export type UsageRow = { consumer?: string | null; server?: string | null; tool?: string | null; hour?: string } & UsageSummary;

export interface UsageQuery {
  /** Epoch ms, an hour boundary (inclusive). */
  from: number;
  /** Epoch ms, an hour boundary (exclusive). */
  to: number;
  by: UsageGroupBy;
  /** Only this consumer's usage. */
  consumer?: string | undefined;
}

export interface UsageReport {
  tenant: string;
  from: string;
  to: string;
  by: UsageGroupBy;
  consumer: string | null;
  currency: string;
  rows: UsageRow[];
  totals: UsageSummary;
}

const COUNT_COLUMNS = [
  ["calls", "calls"],
  ["ok", "ok"],
  ["errors", "errors"],
  ["denied", "denied"],
  ["limited", "limited"],
  ["unknown", "unknown"],
  ["unauthenticated", "unauthenticated"],
  ["latencySum", "latency_sum_ms"],
  ["requestBytes", "request_bytes"],
  ["responseBytes", "response_bytes"],
] as const;

const BUCKET_ALIASES = Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => `b${i}`);

const KEY_COLUMNS: Record<UsageGroupBy, readonly string[]> = {
  consumer: ["consumer"],
  server: ["server"],
  tool: ["server", "tool"],
  hour: ["hour"],
};

/** Sums of one group (before pricing), added up across price entries. */
interface Accumulator {
  key: Record<string, string | number>;
  sums: Record<(typeof COUNT_COLUMNS)[number][0], number>;
  buckets: number[];
  nanos: bigint;
}

const emptyAccumulator = (key: Record<string, string | number>): Accumulator => ({
  key,
  sums: Object.fromEntries(COUNT_COLUMNS.map(([name]) => [name, 0])) as Accumulator["sums"],
  buckets: new Array<number>(LATENCY_BUCKET_COUNT).fill(0),
  nanos: 0n,
});

function countsOf(acc: Accumulator): UsageSummary {
  const s = acc.sums;
  return {
    calls: s.calls,
    ok: s.ok,
    errors: s.errors,
    denied: s.denied,
    limited: s.limited,
    unknown: s.unknown,
    unauthenticated: s.unauthenticated,
    billableCalls: billableCalls(s),
    latencyMs: {
      sum: s.latencySum,
      count: acc.buckets.reduce((a, b) => a + b, 0),
      p50: histogramPercentile(acc.buckets, 0.5),
      p95: histogramPercentile(acc.buckets, 0.95),
      p99: histogramPercentile(acc.buckets, 0.99),
    },
    requestBytes: s.requestBytes,
    responseBytes: s.responseBytes,
    bytes: s.requestBytes + s.responseBytes,
    cost: costNumber(acc.nanos),
  };
}

/** "" (how usage_hourly stores an absent consumer, server or tool) as null. */
const nullable = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);

function keyFields(by: UsageGroupBy, key: Record<string, string | number>): Pick<UsageRow, "consumer" | "server" | "tool" | "hour"> {
  switch (by) {
    case "consumer":
      return { consumer: nullable(key.consumer) };
    case "server":
      return { server: nullable(key.server) };
    case "tool":
      return { server: nullable(key.server), tool: nullable(key.tool) };
    case "hour":
      return { hour: new Date(Number(key.hour)).toISOString() };
  }
}

/**
 * The tenant's usage in `[query.from, query.to)` grouped by `query.by`, priced under `metering` (the tenant's
 * `metering:` section; without one, nothing costs anything).
 */
export async function readUsage(d1: D1Database, tenant: string, query: UsageQuery, metering: MeteringConfig = DEFAULT_METERING): Promise<UsageReport> {
  const table = compilePriceTable(metering.prices);
  const where = `u.tenant_id = ?1 AND u.hour >= ?2 AND u.hour < ?3${query.consumer !== undefined ? " AND u.consumer = ?4" : ""}`;
  const params: unknown[] = [tenant, query.from, query.to, ...(query.consumer !== undefined ? [query.consumer] : [])];
  const classes = await priceClasses(d1, table, where, params);
  const keys = KEY_COLUMNS[query.by];
  const classParam = `?${params.length + 1}`;
  const sql = `WITH classes AS (SELECT json_extract(value, '$[0]') AS server, json_extract(value, '$[1]') AS tool, json_extract(value, '$[2]') AS k FROM json_each(${classParam}))
SELECT ${keys.map((k) => `u.${k} AS ${k}`).join(", ")}, c.k AS class,
  ${COUNT_COLUMNS.map(([alias, column]) => `SUM(u.${column}) AS ${alias}`).join(", ")},
  ${BUCKET_ALIASES.map((alias, i) => `SUM(u.latency_bucket_${i}) AS ${alias}`).join(", ")}
FROM usage_hourly u LEFT JOIN classes c ON c.server = u.server AND c.tool = u.tool
WHERE ${where}
GROUP BY ${keys.map((k) => `u.${k}`).join(", ")}, c.k`;
  const { results } = await d1
    .prepare(sql)
    .bind(...params, JSON.stringify(classes.pairs))
    .all<Record<string, string | number | null>>();

  const groups = new Map<string, Accumulator>();
  const total = emptyAccumulator({});
  for (const row of results) {
    const key = Object.fromEntries(keys.map((k) => [k, row[k] ?? ""])) as Record<string, string | number>;
    const id = JSON.stringify(keys.map((k) => key[k]));
    let acc = groups.get(id);
    if (!acc) groups.set(id, (acc = emptyAccumulator(key)));
    const price = row.class === null || row.class === undefined ? undefined : table.prices[Number(row.class)];
    for (const target of [acc, total]) {
      for (const [alias] of COUNT_COLUMNS) target.sums[alias] += Number(row[alias] ?? 0);
      BUCKET_ALIASES.forEach((alias, i) => (target.buckets[i] = (target.buckets[i] as number) + Number(row[alias] ?? 0)));
    }
    const nanos = costNanos(price, {
      billableCalls: Number(row.ok ?? 0) + Number(row.errors ?? 0),
      bytes: Number(row.requestBytes ?? 0) + Number(row.responseBytes ?? 0),
    });
    acc.nanos += nanos;
    total.nanos += nanos;
  }

  const ordered = [...groups.values()];
  if (query.by === "hour") ordered.sort((a, b) => Number(a.key.hour) - Number(b.key.hour));
  else {
    ordered.sort((a, b) => {
      if (a.nanos !== b.nanos) return a.nanos > b.nanos ? -1 : 1;
      if (a.sums.calls !== b.sums.calls) return b.sums.calls - a.sums.calls;
      const ka = JSON.stringify(keys.map((k) => a.key[k]));
      const kb = JSON.stringify(keys.map((k) => b.key[k]));
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  }
  return {
    tenant,
    from: new Date(query.from).toISOString(),
    to: new Date(query.to).toISOString(),
    by: query.by,
    consumer: query.consumer ?? null,
    currency: metering.currency,
    rows: ordered.map((acc) => ({ ...keyFields(query.by, acc.key), ...countsOf(acc) })),
    totals: countsOf(total),
  };
}

/**
 * The (server, tool) pairs of the period that some entry prices, each with that entry's index: D1 joins usage rows
 * on them, so it sums per price entry (a pair no entry prices is left out and costs nothing).
 */
async function priceClasses(d1: D1Database, table: PriceTable, where: string, params: unknown[]): Promise<{ pairs: [string, string, number][] }> {
  if (table.prices.length === 0) return { pairs: [] };
  const { results } = await d1
    .prepare(`SELECT DISTINCT u.server AS server, u.tool AS tool FROM usage_hourly u WHERE ${where}`)
    .bind(...params)
    .all<{ server: string; tool: string }>();
  const pairs: [string, string, number][] = [];
  for (const { server, tool } of results) {
    const price = table.priceOf(server, tool);
    if (price !== undefined && (price.perCallMicros > 0n || price.perKBMicros > 0n)) pairs.push([server, tool, price.index]);
  }
  return { pairs };
}

export interface UsageParams {
  consumer?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
  by: UsageGroupBy;
}

/**
 * The tenant's usage for whole UTC hours (default: this month so far), grouped, with cost — after shipping what the
 * tenant's AuditLog object holds, so the caller's own latest calls are counted. A period that is not one is an error
 * the caller words (the admin API as 400, the `usage` tool as an input error).
 */
export async function currentUsage(
  env: Env,
  tenant: string,
  params: UsageParams,
  metering: MeteringConfig,
  now: number = Date.now(),
): Promise<{ ok: true; report: UsageReport } | { ok: false; error: string }> {
  const range = hourPeriod(params.from, params.to, now, params.by === "hour" ? MAX_HOURLY_HOURS : MAX_USAGE_HOURS);
  if (!range.ok) return range;
  await flushAuditLog(env, tenant);
  return { ok: true, report: await readUsage(env.DB, tenant, { from: range.from, to: range.to, by: params.by, consumer: params.consumer }, metering) };
}
