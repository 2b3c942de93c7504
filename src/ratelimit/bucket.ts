/**
 * @module Token bucket and quota arithmetic: pure, no platform API (the RateLimiter Durable Object is a thin shell
 * around it, and the property tests drive it directly).
 *
 * **Buckets.** A bucket holds at most `capacity` tokens (the burst) and gains `perMinute / 60000` tokens per
 * millisecond. A call of cost `c` is admitted when the bucket holds at least `c` tokens, which it then spends.
 *
 * Exactness: levels are integers in units of 1/60000 token ({@link UNITS_PER_TOKEN}), so a bucket gains exactly
 * `perMinute` units per millisecond and every sum is an exact integer (far below 2^53 for the schema's bounds).
 * Fractions of a token are kept, never rounded away, and `retryAfterMs` is exact: a take of the same cost fails at
 * `retryAfterMs - 1` and succeeds at `retryAfterMs` (when nothing else takes meanwhile). The state's `tokens` is
 * the level in tokens (`units / 60000`); it converts back to the same integer level exactly.
 *
 * Time going backwards (clock skew between isolates or machines, a restored object) never mints tokens: the bucket
 * refills only for time after its `updatedAt`, and `updatedAt` never moves back, so the same interval is never
 * counted twice.
 *
 * **Quotas.** A counter per UTC day (`2026-03-05`) or UTC month (`2026-03`), see {@link periodKey}; it starts again
 * at 0 at UTC midnight / on the first of the month. A refused call is told to retry when the period ends. A `now`
 * in an earlier period than the counter's (the clock went back across a boundary) counts against the counter's
 * period: a skewed clock never reopens a quota either.
 */

/** Levels are kept in units of 1/60000 token: a bucket of `perMinute` then gains exactly `perMinute` units a ms. */
export const UNITS_PER_TOKEN = 60_000;
const MS_PER_MINUTE = 60_000;

/** A bucket's configuration: burst capacity in tokens, refill in tokens per minute (both positive integers). */
export interface BucketSpec {
  capacity: number;
  perMinute: number;
}

/** A bucket's state: its level (in tokens, multiples of 1/60000) as of `updatedAt` (epoch ms). */
export interface BucketState {
  tokens: number;
  updatedAt: number;
}

export type TakeResult =
  | { admitted: true; state: BucketState }
  /** `state` is the bucket refilled to `now`, nothing taken (storing it is optional: refill is a function of time). */
  | { admitted: false; state: BucketState; retryAfterMs: number };

/** Tokens per millisecond: `perMinute / 60000` (informative; the arithmetic itself is in integer units). */
export function refillPerMs(spec: BucketSpec): number {
  return spec.perMinute / MS_PER_MINUTE;
}

/** A bucket as it starts (and as it is once long unused): full. */
export function fullBucket(spec: BucketSpec, now: number): BucketState {
  checkSpec(spec);
  return { tokens: spec.capacity, updatedAt: Math.floor(now) };
}

/** The bucket's state at `now`: refilled for the time since `updatedAt` (none if `now` is earlier), capped. */
export function refill(spec: BucketSpec, state: BucketState, now: number): BucketState {
  checkSpec(spec);
  const { units, updatedAt } = refilledUnits(spec, state, now);
  return { tokens: units / UNITS_PER_TOKEN, updatedAt };
}

/**
 * Takes `cost` tokens (a positive integer, at most the capacity) at `now` if there are that many after refilling;
 * otherwise says in how many milliseconds there will be (exact, at least 1). Pure: returns the new state.
 */
export function take(spec: BucketSpec, state: BucketState | undefined, cost: number, now: number): TakeResult {
  checkSpec(spec);
  if (!Number.isSafeInteger(cost) || cost < 1 || cost > spec.capacity) {
    throw new RangeError(`cost must be a positive integer of at most the capacity (${spec.capacity}), got ${cost}`);
  }
  const current = refilledUnits(spec, state ?? fullBucket(spec, now), now);
  const need = cost * UNITS_PER_TOKEN;
  if (current.units >= need) {
    return { admitted: true, state: { tokens: (current.units - need) / UNITS_PER_TOKEN, updatedAt: current.updatedAt } };
  }
  // The level grows by perMinute units a ms from updatedAt (which may be after `now` when the clock went back).
  const waitFromUpdate = Math.ceil((need - current.units) / spec.perMinute);
  const retryAfterMs = current.updatedAt + waitFromUpdate - Math.floor(now);
  return { admitted: false, state: { tokens: current.units / UNITS_PER_TOKEN, updatedAt: current.updatedAt }, retryAfterMs };
}

/**
 * The state of a bucket whose configuration changed from `from` to `to`, at `now`: first refilled under the old
 * configuration up to `now`, then scaled to the new capacity in proportion (a full bucket stays full, an empty one
 * empty, one half full stays half full), rounded down so a change never mints a fraction. From then on it refills
 * at the new rate. With the same capacity only the rate changes, from `now` on.
 */
export function rescale(from: BucketSpec, state: BucketState, to: BucketSpec, now: number): BucketState {
  checkSpec(from);
  checkSpec(to);
  const current = refilledUnits(from, state, now);
  if (from.capacity === to.capacity) return { tokens: current.units / UNITS_PER_TOKEN, updatedAt: current.updatedAt };
  // units × capacity can pass 2^53: BigInt for this rare path.
  const units = Number((BigInt(current.units) * BigInt(to.capacity)) / BigInt(from.capacity));
  return { tokens: units / UNITS_PER_TOKEN, updatedAt: current.updatedAt };
}

/** The milliseconds after which a bucket untouched since `state` is full again (0 when it is full). */
export function msUntilFull(spec: BucketSpec, state: BucketState): number {
  checkSpec(spec);
  const missing = spec.capacity * UNITS_PER_TOKEN - toUnits(state.tokens);
  return missing <= 0 ? 0 : Math.ceil(missing / spec.perMinute);
}

function refilledUnits(spec: BucketSpec, state: BucketState, now: number): { units: number; updatedAt: number } {
  const capacity = spec.capacity * UNITS_PER_TOKEN;
  // A level above the capacity (the capacity was lowered elsewhere) never grows, and is never more than it.
  const units = Math.min(capacity, Math.max(0, toUnits(state.tokens)));
  const at = Math.floor(now);
  if (!(at > state.updatedAt)) return { units, updatedAt: state.updatedAt }; // backwards (or no) time: nothing minted
  const elapsed = at - state.updatedAt;
  // Compare before multiplying: a bucket idle for years would otherwise multiply past 2^53.
  const missing = capacity - units;
  const filled = elapsed >= Math.ceil(missing / spec.perMinute) ? capacity : units + elapsed * spec.perMinute;
  return { units: filled, updatedAt: at };
}

/** Tokens (a multiple of 1/60000 produced by this module) back to the exact integer level. */
function toUnits(tokens: number): number {
  return Math.round(tokens * UNITS_PER_TOKEN);
}

function checkSpec(spec: BucketSpec): void {
  if (!Number.isSafeInteger(spec.capacity) || spec.capacity < 1 || !Number.isSafeInteger(spec.perMinute) || spec.perMinute < 1) {
    throw new RangeError(`a bucket needs a positive integer capacity and perMinute, got ${JSON.stringify(spec)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Quotas

export type QuotaPeriod = "daily" | "monthly";

/** A quota counter: calls counted in `period` (a {@link periodKey}). */
export interface QuotaState {
  period: string;
  used: number;
}

export type QuotaResult =
  | { admitted: true; state: QuotaState }
  /** `retryAfterMs`: until the counter's period ends (UTC midnight, or the first of the next month). */
  | { admitted: false; state: QuotaState; retryAfterMs: number };

/** The UTC period `now` falls in: `YYYY-MM-DD` (daily) or `YYYY-MM` (monthly). Keys of one kind sort by time. */
export function periodKey(now: number, period: QuotaPeriod): string {
  const iso = new Date(Math.floor(now)).toISOString(); // 2026-03-05T…Z (years 0000-9999)
  return period === "daily" ? iso.slice(0, 10) : iso.slice(0, 7);
}

/** Epoch ms at which the period `now` falls in ends (the next one starts): next UTC midnight / first of next month. */
export function periodEnd(now: number, period: QuotaPeriod): number {
  const date = new Date(Math.floor(now));
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  return period === "daily" ? Date.UTC(y, m, date.getUTCDate() + 1) : Date.UTC(y, m + 1, 1);
}

/** Epoch ms at which the period of a key ends. */
export function periodKeyEnd(key: string): number {
  const [y, m, d] = key.split("-").map(Number) as [number, number, number | undefined];
  return d === undefined ? Date.UTC(y, m, 1) : Date.UTC(y, m - 1, d + 1);
}

/** Counts `cost` calls against a quota of `limit` per period at `now`, if that stays within the limit. Pure. */
export function takeQuota(limit: number, period: QuotaPeriod, state: QuotaState | undefined, cost: number, now: number): QuotaResult {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`a quota needs a positive integer limit, got ${limit}`);
  if (!Number.isSafeInteger(cost) || cost < 1) throw new RangeError(`cost must be a positive integer, got ${cost}`);
  const current = currentQuota(period, state, now);
  if (current.used + cost <= limit) return { admitted: true, state: { period: current.period, used: current.used + cost } };
  return { admitted: false, state: current, retryAfterMs: Math.max(1, periodKeyEnd(current.period) - Math.floor(now)) };
}

/** The counter as of `now`: a new period starts at 0; an earlier `now` than the counter's period keeps the counter. */
export function currentQuota(period: QuotaPeriod, state: QuotaState | undefined, now: number): QuotaState {
  const key = periodKey(now, period);
  if (state === undefined || state.period < key || state.period.length !== key.length) return { period: key, used: 0 };
  return state;
}
