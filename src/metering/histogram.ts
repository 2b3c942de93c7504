/**
 * @module The fixed latency histogram of usage (issue 6): bucket upper bounds in milliseconds, the same for every
 * tenant, server and tool, so hourly rows add up and Prometheus histograms can be built from them. Pure.
 */

/** Upper bounds (inclusive) of the latency buckets, in ms; a last, unbounded bucket follows them. */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000] as const;

/** Number of buckets including the last, unbounded one. */
export const LATENCY_BUCKET_COUNT = LATENCY_BUCKETS_MS.length + 1;

/** The bucket index a latency falls in: the first bound it does not exceed, else the unbounded last one. */
export function latencyBucket(latencyMs: number): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (latencyMs <= (LATENCY_BUCKETS_MS[i] as number)) return i;
  return LATENCY_BUCKETS_MS.length;
}
