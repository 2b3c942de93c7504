/**
 * @module Usage as a projection of the audit chain (issue 6, DESIGN.md): {@link foldUsage} turns audit entries into
 * per-(UTC hour, consumer, server, tool) deltas of the `usage_hourly` counters, which src/metering/usage-write.ts
 * adds up in D1 in the same batch that ships the entries. Pure: no I/O, runs in workerd and Node.
 *
 * Usage never carries a name the caller chose: an entry whose call was not routed to a server (`server` null: an
 * unknown tool, a refused key, a failure before routing) is counted under server "" and tool "" — its name is in
 * the audit log, not in usage rows or metrics labels. Routed resource reads and completions are counted under their
 * method, not their URI (see {@link usageToolOf}). A null consumer (unauthenticated) is counted under "".
 */
import type { AuditEntry, AuditStatus } from "../audit/entry.ts";
import { LATENCY_BUCKET_COUNT, latencyBucket } from "./histogram.ts";

export const HOUR_MS = 3_600_000;

/** What the fold reads of an entry. */
export type FoldedEntry = Pick<AuditEntry, "timestamp" | "consumer" | "server" | "method" | "tool" | "status" | "latencyMs" | "requestBytes" | "responseBytes">;

/** Where a delta is added: one `usage_hourly` row of a tenant. */
export interface UsageKey {
  /** Epoch milliseconds of the start of the entry's UTC hour. */
  hour: number;
  consumer: string;
  server: string;
  tool: string;
}

/** The counters of one `usage_hourly` row. */
export interface UsageCounts {
  /** Every entry counts as a call, whatever its status. */
  calls: number;
  ok: number;
  /** Status `error`: an upstream error, a tool error (`isError`), or a failure of the gateway. */
  errors: number;
  denied: number;
  limited: number;
  unknown: number;
  unauthenticated: number;
  latencySumMs: number;
  requestBytes: number;
  responseBytes: number;
  /** Calls per latency bucket of src/metering/histogram.ts ({@link LATENCY_BUCKET_COUNT} of them, not cumulative). */
  latencyBuckets: number[];
}

export type UsageDelta = UsageKey & UsageCounts;

/** The counter each status adds to, besides `calls`. */
export const STATUS_COUNTER = {
  ok: "ok",
  error: "errors",
  denied: "denied",
  limited: "limited",
  unknown: "unknown",
  unauthenticated: "unauthenticated",
} as const satisfies Record<AuditStatus, keyof UsageCounts>;

/** The start of the UTC hour holding `timestamp` (epoch ms). */
export function hourOf(timestamp: number): number {
  return timestamp - (((timestamp % HOUR_MS) + HOUR_MS) % HOUR_MS);
}

/**
 * The `tool` a routed entry is counted under: a tool's name for tools/call (the catalog bounds it), `prompt:<name>`
 * for prompts/get (a prompt and a tool may share a name), and the method alone for resources and completions,
 * whose entries carry a URI the caller chose (a template matches unboundedly many).
 */
export function usageToolOf(entry: Pick<FoldedEntry, "method" | "tool">): string {
  if (entry.method === "tools/call") return entry.tool ?? "";
  if (entry.method === "prompts/get") return `prompt:${entry.tool ?? ""}`;
  return entry.method;
}

/** The usage row an entry counts in. */
export function usageKeyOf(entry: Pick<FoldedEntry, "timestamp" | "consumer" | "server" | "tool" | "method">): UsageKey {
  const server = entry.server;
  return { hour: hourOf(entry.timestamp), consumer: entry.consumer ?? "", server: server ?? "", tool: server === null ? "" : usageToolOf(entry) };
}

export function emptyCounts(): UsageCounts {
  return {
    calls: 0,
    ok: 0,
    errors: 0,
    denied: 0,
    limited: 0,
    unknown: 0,
    unauthenticated: 0,
    latencySumMs: 0,
    requestBytes: 0,
    responseBytes: 0,
    latencyBuckets: new Array<number>(LATENCY_BUCKET_COUNT).fill(0),
  };
}

/** Adds one entry to `counts`, in place. */
export function addEntry(counts: UsageCounts, entry: Pick<FoldedEntry, "status" | "latencyMs" | "requestBytes" | "responseBytes">): void {
  counts.calls += 1;
  counts[STATUS_COUNTER[entry.status]] += 1;
  counts.latencySumMs += entry.latencyMs;
  counts.requestBytes += entry.requestBytes;
  counts.responseBytes += entry.responseBytes;
  const bucket = latencyBucket(entry.latencyMs);
  counts.latencyBuckets[bucket] = (counts.latencyBuckets[bucket] ?? 0) + 1;
}

/**
 * The usage deltas of `entries`: one per (hour, consumer, server, tool) they touch, in the order each key first
 * appears. Summing every entry's counters row by row gives the same totals as counting the entries.
 */
export function foldUsage(entries: Iterable<FoldedEntry>): UsageDelta[] {
  const rows = new Map<string, UsageDelta>();
  for (const entry of entries) {
    const key = usageKeyOf(entry);
    // JSON of a fixed-shape array: no separator a name could contain can make two keys collide.
    const id = JSON.stringify([key.hour, key.consumer, key.server, key.tool]);
    let row = rows.get(id);
    if (!row) {
      row = { ...key, ...emptyCounts() };
      rows.set(id, row);
    }
    addEntry(row, entry);
  }
  return [...rows.values()];
}
