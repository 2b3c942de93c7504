/**
 * @module The RateLimiter Durable Object (decision D3): token buckets and quota counters, exact under concurrency
 * and consistent worldwide without any other store.
 *
 * Objects and their names (src/ratelimit/charge.ts makes them):
 * - one per consumer, named `JSON.stringify([tenant, consumer])`: the consumer's buckets (`consumer`, `key:<id>`,
 *   `server:<id>`, `tool:<server>/<i>`) and its quotas (`daily`, `monthly`);
 * - one per tenant, named `JSON.stringify([tenant])`: the tenant's quotas (`tenant:daily`, `tenant:monthly`).
 * The JSON arrays cannot collide with each other whatever the ids contain, nor with the other classes' names.
 *
 * {@link RateLimiterDurableObject.take} checks every bucket and quota of a plan and, only if all admit, charges all
 * of them, in ONE `transactionSync` with no await: the runtime runs the object's requests one at a time, so N
 * concurrent calls admit exactly what the arithmetic (src/ratelimit/bucket.ts) says, and a refused call charges
 * nothing. The RPC resolves once the charge is durable (the output gate).
 *
 * Storage: SQLite `buckets (id, capacity, per_minute, tokens, updated_at)` and `quotas (id, period, used, lim)`.
 * A missing row is a full bucket / an unused quota, so rows that are equivalent to missing (a bucket full for an
 * hour, a counter of a period that ended an hour ago) are swept now and then, and an idle consumer costs nothing.
 * When a plan's bucket has another capacity or refill than its row (the config changed), the bucket is refilled
 * under the old numbers up to now and then scaled to the new capacity in proportion (full stays full, empty stays
 * empty, rounded down: see `rescale` in bucket.ts); it refills at the new rate from then on. A quota whose limit
 * changed keeps its count: a lower limit than the count refuses until the period ends.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { currentQuota, msUntilFull, periodKeyEnd, refill, rescale, take, takeQuota, type BucketSpec, type BucketState, type QuotaPeriod, type QuotaState } from "./bucket.ts";
import type { PlannedBucket, PlannedQuota } from "./limits.ts";
import { MAX_BURST, MAX_BURST_MULTIPLIER, MAX_PER_MINUTE, MAX_QUOTA } from "./schema.ts";

/** What one object charges: a {@link LimitPlan} (its `consumer` and `tenantQuotas` are not read) or a tenant's quotas. */
export interface ChargeRequest {
  buckets: PlannedBucket[];
  quotas: PlannedQuota[];
}

export type TakeVerdict =
  | { admitted: true }
  | {
      admitted: false;
      /** Milliseconds until every limit of the plan would admit the call again (the largest wait; at least 1). */
      retryAfterMs: number;
      /** The bucket or quota id that needs that long (describeLimit in limits.ts words it). */
      limit: string;
      kind: "rate" | "daily" | "monthly";
    };

export interface BucketUsage {
  id: string;
  capacity: number;
  perMinute: number;
  /** Tokens at the time asked (refilled, fractions kept). */
  tokens: number;
  /** When a call last changed it (epoch ms). */
  updatedAt: number;
}

export interface QuotaUsage {
  id: string;
  period: QuotaPeriod;
  /** The period counted (`YYYY-MM-DD` or `YYYY-MM`, UTC) and the calls counted in it. */
  key: string;
  used: number;
  limit: number;
}

export interface LimiterUsage {
  buckets: BucketUsage[];
  quotas: QuotaUsage[];
}

/** How often (at most) rows equivalent to missing ones are deleted, and how long they must have been so. */
const SWEEP_INTERVAL_MS = 10 * 60_000;
const SWEEP_MARGIN_MS = 60 * 60_000;
/** Bounds of a request (the schema's, plus room for burstMultiplier): a malformed plan is a bug, refused. */
const MAX_CAPACITY = Math.max(MAX_BURST, MAX_PER_MINUTE * MAX_BURST_MULTIPLIER);
const MAX_ITEMS = 300;

interface BucketRow {
  id: string;
  capacity: number;
  per_minute: number;
  tokens: number;
  updated_at: number;
  [column: string]: SqlStorageValue;
}

interface QuotaRow {
  id: string;
  period: string;
  used: number;
  lim: number;
  [column: string]: SqlStorageValue;
}

export class RateLimiterDurableObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** When rows were last swept (in memory: after a restart the first call sweeps, which is cheap). */
  private sweptAt = Number.NEGATIVE_INFINITY;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS buckets (
        id TEXT PRIMARY KEY,
        capacity INTEGER NOT NULL,
        per_minute INTEGER NOT NULL,
        tokens REAL NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS quotas (
        id TEXT PRIMARY KEY,
        period TEXT NOT NULL,
        used INTEGER NOT NULL,
        lim INTEGER NOT NULL
      );
    `);
  }

  /**
   * Charges one call: admitted only if every bucket has a token and every quota room for one more call, and then
   * all of them are charged; otherwise nothing is. `now` (epoch ms) defaults to the clock; tests pass their own.
   * Throws a TypeError for a malformed request (a bug: the caller fails closed).
   */
  async take(request: ChargeRequest, now?: number): Promise<TakeVerdict> {
    checkRequest(request);
    const at = Math.floor(now ?? Date.now());
    if (!Number.isSafeInteger(at)) throw new TypeError(`now must be epoch milliseconds, got ${now}`);
    return this.ctx.storage.transactionSync((): TakeVerdict => {
      const buckets: { planned: PlannedBucket; state: BucketState }[] = [];
      const quotas: { planned: PlannedQuota; state: QuotaState }[] = [];
      let refusal: Extract<TakeVerdict, { admitted: false }> | undefined;
      const refuse = (retryAfterMs: number, limit: string, kind: "rate" | "daily" | "monthly") => {
        if (!refusal || retryAfterMs > refusal.retryAfterMs) refusal = { admitted: false, retryAfterMs, limit, kind };
      };
      for (const planned of request.buckets) {
        const result = take(planned, this.bucketState(planned, at), 1, at);
        if (result.admitted) buckets.push({ planned, state: result.state });
        else refuse(result.retryAfterMs, planned.id, "rate");
      }
      for (const planned of request.quotas) {
        const row = this.sql.exec<QuotaRow>("SELECT id, period, used, lim FROM quotas WHERE id = ?", planned.id).toArray()[0];
        const result = takeQuota(planned.limit, planned.period, row ? { period: row.period, used: row.used } : undefined, 1, at);
        if (result.admitted) quotas.push({ planned, state: result.state });
        else refuse(result.retryAfterMs, planned.id, planned.period);
      }
      if (refusal) return refusal;
      for (const { planned, state } of buckets) {
        this.sql.exec(
          "INSERT OR REPLACE INTO buckets (id, capacity, per_minute, tokens, updated_at) VALUES (?, ?, ?, ?, ?)",
          planned.id,
          planned.capacity,
          planned.perMinute,
          state.tokens,
          state.updatedAt,
        );
      }
      for (const { planned, state } of quotas) {
        this.sql.exec("INSERT OR REPLACE INTO quotas (id, period, used, lim) VALUES (?, ?, ?, ?)", planned.id, state.period, state.used, planned.limit);
      }
      this.sweep(at, new Set(request.buckets.map((b) => b.id)));
      return { admitted: true };
    });
  }

  /** Every stored bucket (refilled to `now`, not written) and quota counter (0 once its period is over), for tests and ops. */
  async usage(now?: number): Promise<LimiterUsage> {
    const at = Math.floor(now ?? Date.now());
    const buckets = this.sql
      .exec<BucketRow>("SELECT id, capacity, per_minute, tokens, updated_at FROM buckets ORDER BY id")
      .toArray()
      .map((row) => {
        const spec = { capacity: row.capacity, perMinute: row.per_minute };
        const state = refill(spec, { tokens: row.tokens, updatedAt: row.updated_at }, at);
        return { id: row.id, ...spec, tokens: state.tokens, updatedAt: row.updated_at };
      });
    const quotas = this.sql
      .exec<QuotaRow>("SELECT id, period, used, lim FROM quotas ORDER BY id")
      .toArray()
      .map((row) => {
        const period: QuotaPeriod = row.period.length === 10 ? "daily" : "monthly";
        const state = currentQuota(period, { period: row.period, used: row.used }, at);
        return { id: row.id, period, key: state.period, used: state.used, limit: row.lim };
      });
    return { buckets, quotas };
  }

  /** The stored state of a planned bucket, rescaled when its numbers changed; undefined = none stored (full). */
  private bucketState(planned: PlannedBucket, at: number): BucketState | undefined {
    const row = this.sql.exec<BucketRow>("SELECT id, capacity, per_minute, tokens, updated_at FROM buckets WHERE id = ?", planned.id).toArray()[0];
    if (!row) return undefined;
    const state = { tokens: row.tokens, updatedAt: row.updated_at };
    if (row.capacity === planned.capacity && row.per_minute === planned.perMinute) return state;
    return rescale({ capacity: row.capacity, perMinute: row.per_minute }, state, planned, at);
  }

  /** Deletes rows equivalent to missing ones (inside the caller's transaction), at most every SWEEP_INTERVAL_MS. */
  private sweep(at: number, keep: Set<string>): void {
    if (at - this.sweptAt < SWEEP_INTERVAL_MS) return;
    this.sweptAt = at;
    for (const row of this.sql.exec<BucketRow>("SELECT id, capacity, per_minute, tokens, updated_at FROM buckets").toArray()) {
      if (keep.has(row.id)) continue;
      const spec: BucketSpec = { capacity: row.capacity, perMinute: row.per_minute };
      if (row.updated_at + msUntilFull(spec, { tokens: row.tokens, updatedAt: row.updated_at }) + SWEEP_MARGIN_MS <= at) {
        this.sql.exec("DELETE FROM buckets WHERE id = ?", row.id);
      }
    }
    for (const row of this.sql.exec<QuotaRow>("SELECT id, period, used, lim FROM quotas").toArray()) {
      if (periodKeyEnd(row.period) + SWEEP_MARGIN_MS <= at) this.sql.exec("DELETE FROM quotas WHERE id = ?", row.id);
    }
  }
}

/** A request as limits.ts makes them; anything else is a bug and is refused before anything is read. */
function checkRequest(request: ChargeRequest): void {
  const fail = (what: string): never => {
    throw new TypeError(`malformed rate-limit request: ${what}`);
  };
  if (typeof request !== "object" || request === null || !Array.isArray(request.buckets) || !Array.isArray(request.quotas)) fail("expected {buckets, quotas}");
  if (request.buckets.length + request.quotas.length > MAX_ITEMS) fail(`more than ${MAX_ITEMS} limits`);
  const ids = new Set<string>();
  const id = (value: unknown) => {
    if (typeof value !== "string" || value.length === 0 || value.length > 512) fail(`bad id ${JSON.stringify(value)}`);
    if (ids.has(value as string)) fail(`id ${JSON.stringify(value)} twice`);
    ids.add(value as string);
  };
  const int = (value: unknown, max: number, what: string) => {
    if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) fail(`${what} ${JSON.stringify(value)} is not an integer in 1..${max}`);
  };
  for (const b of request.buckets) {
    id(b?.id);
    int(b.capacity, MAX_CAPACITY, "capacity");
    int(b.perMinute, MAX_PER_MINUTE, "perMinute");
  }
  for (const q of request.quotas) {
    id(q?.id);
    if (q.period !== "daily" && q.period !== "monthly") fail(`period ${JSON.stringify(q.period)}`);
    int(q.limit, MAX_QUOTA, "limit");
  }
}
