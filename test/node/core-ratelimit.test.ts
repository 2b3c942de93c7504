/**
 * The rate limits' pure core: token bucket arithmetic (exact refill, burst cap, backwards time, retry-after to the
 * millisecond) as properties over seeded random runs, quota periods rolling over at UTC boundaries, the
 * `rateLimit:` schema, and which buckets and quotas a call pays for.
 */
import { describe, expect, it } from "vitest";
import { prng } from "../../bench/prng.ts";
import { parseGatewayConfig } from "../../src/config/schema.ts";
import {
  fullBucket,
  msUntilFull,
  periodEnd,
  periodKey,
  periodKeyEnd,
  refill,
  refillPerMs,
  rescale,
  take,
  takeQuota,
  type BucketSpec,
  type BucketState,
  type QuotaState,
} from "../../src/ratelimit/bucket.ts";
import { burstOf, describeLimit, limitPlan, retryAfterSeconds } from "../../src/ratelimit/limits.ts";
import { rateLimitSchema, type RateLimitConfig } from "../../src/ratelimit/schema.ts";

const T0 = Date.UTC(2026, 2, 5, 12, 0, 0);

/** A random bucket: capacity 1-50, refill 1-6000 a minute (some below a token a second, some far above). */
function randomSpec(random: () => number): BucketSpec {
  const perMinute = random() < 0.5 ? 1 + Math.floor(random() * 120) : 1 + Math.floor(random() * 6000);
  return { capacity: 1 + Math.floor(random() * 50), perMinute };
}

const int = (random: () => number, below: number) => Math.floor(random() * below);

describe("token bucket", () => {
  it("never admits more than capacity + refill × elapsed over any run, and exactly that for a greedy caller", () => {
    const random = prng(20260305);
    for (let run = 0; run < 300; run++) {
      // Greedy runs take until refused at every step, never go back in time and come back before the bucket
      // could overflow (at most capacity - 1 tokens of refill), so no refill is lost to the cap.
      const greedy = run % 2 === 0;
      const spec = randomSpec(random);
      if (greedy) spec.capacity = Math.max(2, spec.capacity);
      const greedyGap = Math.floor(((spec.capacity - 1) * 60_000) / spec.perMinute);
      let state: BucketState | undefined;
      let now = T0;
      let latest = T0;
      let admitted = 0;
      for (let step = 0; step < 200; step++) {
        const gap = step === 0 ? 0 : greedy ? int(random, greedyGap + 1) : int(random, random() < 0.2 ? 20_000 : 500);
        now = step > 0 && !greedy && random() < 0.15 ? now - int(random, 5_000) : now + gap;
        latest = Math.max(latest, now);
        const attempts = greedy ? Number.POSITIVE_INFINITY : 1 + int(random, 4);
        for (let a = 0; a < attempts; a++) {
          const result = take(spec, state, 1, now);
          state = result.state;
          if (!result.admitted) break;
          admitted++;
        }
        const bound = spec.capacity + Math.floor(((latest - T0) * spec.perMinute) / 60_000);
        expect(admitted).toBeLessThanOrEqual(bound);
        // A greedy caller gets exactly the bound.
        if (greedy) expect(admitted).toBe(bound);
      }
    }
  });

  it("refills perMinute/60000 tokens a millisecond, keeping fractions", () => {
    const spec = { capacity: 10, perMinute: 7 };
    expect(refillPerMs(spec)).toBeCloseTo(7 / 60_000, 15);
    let state: BucketState = fullBucket(spec, T0);
    for (let i = 0; i < 10; i++) {
      const r = take(spec, state, 1, T0);
      expect(r.admitted).toBe(true);
      state = r.state;
    }
    expect(state.tokens).toBe(0);
    // 1 ms at 7/min is 7/60000 of a token: kept, and 60000/7 ms later it has added up to exactly one token.
    expect(refill(spec, state, T0 + 1).tokens).toBe(7 / 60_000);
    expect(refill(spec, state, T0 + 8_571).tokens).toBeLessThan(1);
    expect(refill(spec, state, T0 + 8_572).tokens).toBeGreaterThanOrEqual(1);
    // Step by step or in one go: the same level.
    let stepped = state;
    for (let ms = 1; ms <= 30_000; ms += 997) stepped = refill(spec, stepped, T0 + ms);
    expect(refill(spec, stepped, T0 + 30_000).tokens).toBe(refill(spec, state, T0 + 30_000).tokens);
    expect(refill(spec, state, T0 + 30_000).tokens).toBe(3.5);
  });

  it("caps at the burst, however long the bucket was idle", () => {
    const spec = { capacity: 5, perMinute: 600 };
    let state = fullBucket(spec, T0);
    expect(refill(spec, state, T0 + 10 * 365 * 86_400_000).tokens).toBe(5);
    for (let i = 0; i < 5; i++) state = (take(spec, state, 1, T0) as { state: BucketState }).state;
    expect(take(spec, state, 1, T0).admitted).toBe(false);
    const later = refill(spec, state, T0 + 3_600_000);
    expect(later.tokens).toBe(5);
    expect(msUntilFull(spec, state)).toBe(500);
    expect(msUntilFull(spec, later)).toBe(0);
  });

  it("never mints tokens when time goes backwards", () => {
    const random = prng(7);
    for (let run = 0; run < 200; run++) {
      const spec = randomSpec(random);
      let state: BucketState = fullBucket(spec, T0);
      while (true) {
        const r = take(spec, state, 1, T0);
        state = r.state;
        if (!r.admitted) break;
      }
      const skew = 1 + int(random, 120_000);
      // Any number of calls from a clock behind: all refused, and the state does not move back.
      for (let i = 0; i < 5; i++) {
        const r = take(spec, state, 1, T0 - skew + i);
        expect(r.admitted).toBe(false);
        expect(r.state).toEqual(state);
      }
      expect(refill(spec, state, T0 - skew)).toEqual(state);
      // A clock that then runs forward again only gets the time after the latest update.
      expect(refill(spec, state, T0 + 1_000).tokens).toBe(Math.min(spec.capacity, (1_000 * spec.perMinute) / 60_000));
    }
  });

  it("retryAfterMs is exact: refused at retryAfter - 1 ms, admitted at retryAfter", () => {
    const random = prng(42);
    let checked = 0;
    for (let run = 0; run < 3_000; run++) {
      const spec = randomSpec(random);
      const cost = 1 + int(random, spec.capacity);
      // A state some fraction of the way back up, possibly updated in "the future" (a clock behind ours).
      const state: BucketState = refill(spec, { tokens: 0, updatedAt: T0 }, T0 + int(random, 30_000));
      const now = state.updatedAt + (random() < 0.2 ? -int(random, 10_000) : int(random, 2_000));
      const first = take(spec, state, cost, now);
      if (first.admitted) continue;
      checked++;
      expect(first.retryAfterMs).toBeGreaterThanOrEqual(1);
      expect(take(spec, state, cost, now + first.retryAfterMs - 1).admitted).toBe(false);
      expect(take(spec, state, cost, now + first.retryAfterMs).admitted).toBe(true);
    }
    expect(checked).toBeGreaterThan(500);
  });

  it("refuses a cost it could never admit (a bug, not a wait)", () => {
    const spec = { capacity: 3, perMinute: 60 };
    expect(() => take(spec, undefined, 4, T0)).toThrow(RangeError);
    expect(() => take(spec, undefined, 0, T0)).toThrow(RangeError);
    expect(() => take({ capacity: 0, perMinute: 60 }, undefined, 1, T0)).toThrow(RangeError);
    expect(() => take({ capacity: 1, perMinute: 0.5 }, undefined, 1, T0)).toThrow(RangeError);
  });

  it("rescales a bucket whose numbers changed in proportion, after refilling under the old ones", () => {
    const old = { capacity: 10, perMinute: 60 };
    const half: BucketState = { tokens: 5, updatedAt: T0 };
    // Capacity 10 → 100: half full stays half full.
    expect(rescale(old, half, { capacity: 100, perMinute: 60 }, T0)).toEqual({ tokens: 50, updatedAt: T0 });
    // Refilled under the old rate first: 2 s at 60/min is 2 tokens, 7 of 10, then 7 of 10 → 3.5 of 5.
    expect(rescale(old, half, { capacity: 5, perMinute: 600 }, T0 + 2_000)).toEqual({ tokens: 3.5, updatedAt: T0 + 2_000 });
    // Full stays full, empty stays empty; rounding never mints.
    expect(rescale(old, { tokens: 10, updatedAt: T0 }, { capacity: 3, perMinute: 1 }, T0).tokens).toBe(3);
    expect(rescale(old, { tokens: 0, updatedAt: T0 }, { capacity: 1000, perMinute: 1 }, T0).tokens).toBe(0);
    const odd = rescale({ capacity: 3, perMinute: 1 }, { tokens: 1, updatedAt: T0 }, { capacity: 7, perMinute: 1 }, T0);
    expect(odd.tokens).toBeLessThanOrEqual(7 / 3);
    expect(odd.tokens).toBeGreaterThan(7 / 3 - 1 / 60_000);
    // Same capacity: only the rate changes, from now on.
    expect(rescale(old, half, { capacity: 10, perMinute: 6 }, T0 + 1_000)).toEqual({ tokens: 6, updatedAt: T0 + 1_000 });
  });
});

describe("quota periods", () => {
  it("keys periods by UTC day and month", () => {
    expect(periodKey(Date.UTC(2026, 2, 5, 23, 59, 59, 999), "daily")).toBe("2026-03-05");
    expect(periodKey(Date.UTC(2026, 2, 6), "daily")).toBe("2026-03-06");
    expect(periodKey(Date.UTC(2026, 2, 31, 23, 59, 59, 999), "monthly")).toBe("2026-03");
    expect(periodKey(Date.UTC(2026, 3, 1), "monthly")).toBe("2026-04");
  });

  it.each([
    ["a day", Date.UTC(2026, 2, 5, 23, 59, 59, 999), "daily", "2026-03-05", "2026-03-06"],
    ["Dec 31 → Jan 1", Date.UTC(2026, 11, 31, 23, 59, 59, 999), "daily", "2026-12-31", "2027-01-01"],
    ["December → January", Date.UTC(2026, 11, 31, 23, 59, 59, 999), "monthly", "2026-12", "2027-01"],
    ["Feb 28 → 29 in a leap year", Date.UTC(2028, 1, 28, 23, 59, 59, 999), "daily", "2028-02-28", "2028-02-29"],
    ["Feb 29 → Mar 1 in a leap year", Date.UTC(2028, 1, 29, 23, 59, 59, 999), "daily", "2028-02-29", "2028-03-01"],
    ["Feb 28 → Mar 1 in a common year", Date.UTC(2026, 1, 28, 23, 59, 59, 999), "daily", "2026-02-28", "2026-03-01"],
    ["leap February → March", Date.UTC(2028, 1, 29, 23, 59, 59, 999), "monthly", "2028-02", "2028-03"],
  ] as const)("rolls over at the boundary: %s", (_name, lastMs, period, before, after) => {
    expect(periodKey(lastMs, period)).toBe(before);
    expect(periodKey(lastMs + 1, period)).toBe(after);
    expect(periodEnd(lastMs, period)).toBe(lastMs + 1);
    expect(periodKeyEnd(before)).toBe(lastMs + 1);
    // A quota used up in the last millisecond admits again in the first of the next period.
    let state: QuotaState | undefined;
    for (let i = 0; i < 3; i++) {
      const r = takeQuota(3, period, state, 1, lastMs - 1_000);
      expect(r.admitted).toBe(true);
      state = r.state;
    }
    const refused = takeQuota(3, period, state, 1, lastMs);
    expect(refused).toMatchObject({ admitted: false, retryAfterMs: 1 });
    const next = takeQuota(3, period, state, 1, lastMs + 1);
    expect(next).toEqual({ admitted: true, state: { period: after, used: 1 } });
  });

  it("tells a refused call to come back when the period ends, and a clock behind never reopens it", () => {
    const now = Date.UTC(2026, 2, 5, 18, 30);
    const used: QuotaState = { period: "2026-03-05", used: 10 };
    expect(takeQuota(10, "daily", used, 1, now)).toMatchObject({ admitted: false, retryAfterMs: 5.5 * 3_600_000 });
    expect(takeQuota(10, "monthly", { period: "2026-03", used: 10 }, 1, now)).toMatchObject({ admitted: false, retryAfterMs: Date.UTC(2026, 3, 1) - now });
    // Counted on the 6th by a clock ahead; a clock still on the 5th counts against the 6th, not a fresh 5th.
    const ahead: QuotaState = { period: "2026-03-06", used: 10 };
    expect(takeQuota(10, "daily", ahead, 1, now)).toMatchObject({ admitted: false, retryAfterMs: Date.UTC(2026, 2, 7) - now });
    expect(takeQuota(11, "daily", ahead, 1, now)).toEqual({ admitted: true, state: { period: "2026-03-06", used: 11 } });
    // A lower limit than the count refuses; the count is kept.
    expect(takeQuota(5, "daily", used, 1, now).state).toEqual(used);
  });
});

describe("the rateLimit schema", () => {
  const parse = (yaml: string) => parseGatewayConfig(yaml);
  const errors = (yaml: string) => {
    const result = parse(yaml);
    if (result.ok) throw new Error("expected the config to be refused");
    return result.errors;
  };

  it("accepts the seed's keys and keeps its shape", () => {
    const result = parse("rateLimit:\n  enabled: true\n  defaultPerMinute: 60\n");
    expect(result.ok && result.config.rateLimit).toEqual({ enabled: true, defaultPerMinute: 60 });
    const seed = parse("rateLimit:\n  defaultPerMinute: 120\n  burstMultiplier: 1.5\n");
    expect(seed.ok && seed.config.rateLimit).toEqual({ enabled: true, defaultPerMinute: 120, burstMultiplier: 1.5 });
    const off = parse("rateLimit:\n  enabled: false\n");
    expect(off.ok && off.config.rateLimit).toEqual({ enabled: false, defaultPerMinute: 60 });
  });

  it("accepts every key", () => {
    const yaml = `rateLimit:
  defaultPerMinute: 60
  burst: 100
  consumers: { ci-bot: { perMinute: 600, burst: 1000 }, slow: { burst: 2 } }
  keys: { key-7: { perMinute: 5 } }
  servers: { stripe: { perMinute: 30 }, crm: { perMinute: 10, burst: 20 } }
  tools:
    - { server: "*", tool: "delete_*", perMinute: 5 }
    - { tool: "{get,list}_*", perMinute: 100, burst: 10 }
  quotas:
    perConsumer: { daily: 10000, monthly: 200000 }
    consumers: { ci-bot: { daily: 50000 } }
    tenant: { monthly: 1000000 }
`;
    const result = parse(yaml);
    if (!result.ok) throw new Error(result.errors.join("; "));
    expect(result.config.rateLimit?.tools?.[1]).toEqual({ server: "*", tool: "{get,list}_*", perMinute: 100, burst: 10 });
    expect(result.config.rateLimit?.quotas?.tenant).toEqual({ monthly: 1_000_000 });
  });

  it.each([
    ["defaultPerMinute: 0", "rateLimit.defaultPerMinute: Too small: expected number to be >=1"],
    ["defaultPerMinute: 2.5", "rateLimit.defaultPerMinute: expected int, got a number"],
    ["defaultPerMinute: 1000001", "rateLimit.defaultPerMinute: Too big: expected number to be <=1000000"],
    ['defaultPerMinute: "60"', "rateLimit.defaultPerMinute: expected number, got a string"],
    ["enabled: yes please", "rateLimit.enabled: expected boolean, got a string"],
    ["burstMultiplier: 0", "rateLimit.burstMultiplier: Too small: expected number to be >0"],
    ["burstMultiplier: 1000", "rateLimit.burstMultiplier: Too big: expected number to be <=100"],
    ["burst: -1", "rateLimit.burst: Too small: expected number to be >=1"],
    ["perMinute: 5", 'rateLimit: unknown key "perMinute"'],
    ["consumers: { c1: {} }", "rateLimit.consumers.c1: give perMinute, burst or both"],
    ["consumers: { c1: { perMinut: 5 } }", 'rateLimit.consumers.c1: unknown key "perMinut"'],
    ['consumers: { "bad id!": { perMinute: 5 } }', 'rateLimit.consumers.bad id!: "bad id!" is not a consumer id: must be 1-128 characters of A-Z a-z 0-9 _ . : @ -'],
    ["keys: { k1: { burst: 0 } }", "rateLimit.keys.k1.burst: Too small: expected number to be >=1"],
    ["keys: [k1]", "rateLimit.keys: expected record, got a list"],
    ["servers: { crm: { burst: 5 } }", "rateLimit.servers.crm.perMinute: expected number, got nothing"],
    ["servers: { a__b: { perMinute: 5 } }", `rateLimit.servers.a__b: "a__b" is not a server id: must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit, without '__' and not ending in '_'`],
    ['tools: [{ server: "*", perMinute: 5 }]', "rateLimit.tools[0].tool: expected string, got nothing"],
    ['tools: [{ tool: "delete_[", perMinute: 5 }]', 'rateLimit.tools[0].tool: is not a valid glob: Missing closing: "]" - use "\\\\]" to match literal characters'],
    ['tools: [{ tool: "x", perMinute: 5, action: deny }]', 'rateLimit.tools[0]: unknown key "action"'],
    ["quotas: { daily: 5 }", 'rateLimit.quotas: unknown key "daily"'],
    ["quotas: { perConsumer: { weekly: 5 } }", 'rateLimit.quotas.perConsumer: unknown key "weekly"'],
    ["quotas: { tenant: {} }", "rateLimit.quotas.tenant: give daily, monthly or both"],
    ["quotas: { consumers: { c1: { daily: 0 } } }", "rateLimit.quotas.consumers.c1.daily: Too small: expected number to be >=1"],
  ])("refuses %s, naming the path", (line, message) => {
    expect(errors(`rateLimit:\n  ${line}\n`)).toEqual([message]);
  });

  it("reports every bad key of the section at once", () => {
    const list = errors("rateLimit:\n  defaultPerMinute: 0\n  consumers: { 'x y': { perMinute: 5 }, c2: { perMinute: 1.5 } }\n");
    expect(list).toHaveLength(3);
  });
});

describe("limitPlan", () => {
  const config = (section: Record<string, unknown>): RateLimitConfig => rateLimitSchema.parse(section);
  const who = { consumer: "agent-1", keyId: "key-1" };
  const crm = (tool: string | null) => ({ server: "crm", tool });
  const nothing = { server: null, tool: null };

  it("is null when limiting is disabled, and the defaults without a section", () => {
    expect(limitPlan(config({ enabled: false, consumers: { "agent-1": { perMinute: 1 } } }), who, crm("x"))).toBeNull();
    expect(limitPlan(undefined, who, nothing)).toEqual({
      consumer: "agent-1",
      buckets: [{ id: "consumer", perMinute: 60, capacity: 60 }],
      quotas: [],
      tenantQuotas: [],
    });
  });

  it("charges the consumer bucket for every call, including unknown and denied targets", () => {
    const c = config({ servers: { crm: { perMinute: 5 } }, tools: [{ tool: "*", perMinute: 3 }] });
    expect(limitPlan(c, who, nothing)?.buckets.map((b) => b.id)).toEqual(["consumer"]);
    expect(limitPlan(c, who, { server: "unknown", tool: null })?.buckets.map((b) => b.id)).toEqual(["consumer"]);
    expect(limitPlan(c, who, crm(null))?.buckets.map((b) => b.id)).toEqual(["consumer", "server:crm"]);
    expect(limitPlan(c, who, crm("get"))?.buckets.map((b) => b.id)).toEqual(["consumer", "server:crm", "tool:crm/0"]);
  });

  it("resolves the base bucket key > consumer > default, field by field", () => {
    const c = config({
      defaultPerMinute: 60,
      burst: 100,
      consumers: { "agent-1": { perMinute: 600 }, "agent-2": { burst: 7 } },
      keys: { "key-1": { burst: 3 }, "key-9": { perMinute: 1 } },
    });
    expect(limitPlan(c, who, nothing)?.buckets).toEqual([{ id: "key:key-1", perMinute: 600, capacity: 3 }]);
    expect(limitPlan(c, { consumer: "agent-1", keyId: "key-2" }, nothing)?.buckets).toEqual([{ id: "consumer", perMinute: 600, capacity: 100 }]);
    expect(limitPlan(c, { consumer: "agent-2", keyId: "key-9" }, nothing)?.buckets).toEqual([{ id: "key:key-9", perMinute: 1, capacity: 7 }]);
    expect(limitPlan(c, { consumer: "agent-3", keyId: "key-3" }, nothing)?.buckets).toEqual([{ id: "consumer", perMinute: 60, capacity: 100 }]);
    // Without any burst: ceil(perMinute × burstMultiplier).
    const m = config({ defaultPerMinute: 10, burstMultiplier: 2.5, consumers: { "agent-1": { perMinute: 3 } } });
    expect(limitPlan(m, who, nothing)?.buckets[0]).toEqual({ id: "consumer", perMinute: 3, capacity: 8 });
    expect(limitPlan(m, { consumer: "other", keyId: "k" }, nothing)?.buckets[0]).toEqual({ id: "consumer", perMinute: 10, capacity: 25 });
  });

  it("matches tool rules by server and tool glob, every matching rule a bucket of its own per server", () => {
    const c = config({
      burstMultiplier: 2,
      tools: [
        { server: "*", tool: "delete_*", perMinute: 5 },
        { server: "crm", tool: "{get,list}_*", perMinute: 100, burst: 10 },
        { tool: "*", perMinute: 1000 },
        { server: "db*", tool: "delete_all", perMinute: 1 },
      ],
    });
    const tools = (server: string, tool: string) => limitPlan(c, who, { server, tool })?.buckets.slice(1);
    expect(tools("crm", "delete_contact")).toEqual([
      { id: "tool:crm/0", perMinute: 5, capacity: 10 },
      { id: "tool:crm/2", perMinute: 1000, capacity: 2000 },
    ]);
    expect(tools("db1", "delete_all")?.map((b) => b.id)).toEqual(["tool:db1/0", "tool:db1/2", "tool:db1/3"]);
    expect(tools("crm", "get_contact")?.map((b) => b.id)).toEqual(["tool:crm/1", "tool:crm/2"]);
    expect(tools("erp", "get_contact")?.map((b) => b.id)).toEqual(["tool:erp/2"]);
    expect(tools("crm", "xdelete_contact")?.map((b) => b.id)).toEqual(["tool:crm/2"]);
    // A name the globs cannot tell apart pays for every rule (fail closed).
    expect(tools("crm", "get\uE000x")?.map((b) => b.id)).toEqual(["tool:crm/0", "tool:crm/1", "tool:crm/2", "tool:crm/3"]);
  });

  it("plans the consumer's quotas (own entry over perConsumer, per field) and the tenant's", () => {
    const c = config({
      quotas: { perConsumer: { daily: 100, monthly: 1000 }, consumers: { "agent-1": { daily: 5 } }, tenant: { daily: 10_000 } },
    });
    expect(limitPlan(c, who, nothing)).toMatchObject({
      quotas: [
        { id: "daily", period: "daily", limit: 5 },
        { id: "monthly", period: "monthly", limit: 1000 },
      ],
      tenantQuotas: [{ id: "tenant:daily", period: "daily", limit: 10_000 }],
    });
    expect(limitPlan(c, { consumer: "b", keyId: "k" }, nothing)?.quotas.map((q) => q.limit)).toEqual([100, 1000]);
  });

  it("never takes an override from Object.prototype", () => {
    const c = config({ defaultPerMinute: 7 });
    for (const id of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expect(limitPlan(c, { consumer: id, keyId: id }, { server: id, tool: id })?.buckets).toEqual([{ id: "consumer", perMinute: 7, capacity: 7 }]);
    }
  });

  it("words limits for messages, and rounds bursts and waits the way people read them", () => {
    expect(describeLimit("consumer")).toBe("the consumer's rate limit");
    expect(describeLimit("key:key-1")).toBe('the rate limit of API key "key-1"');
    expect(describeLimit("server:crm")).toBe('the rate limit for server "crm"');
    expect(describeLimit("tool:crm/3")).toBe('the rate limit rateLimit.tools[3] on server "crm"');
    expect(describeLimit("daily")).toBe("the consumer's daily quota");
    expect(describeLimit("tenant:monthly")).toBe("the tenant's monthly quota");
    expect(burstOf(60, 1.1)).toBe(66);
    expect(burstOf(1, 0.01)).toBe(1);
    expect(burstOf(7, 1.5)).toBe(11);
    expect(retryAfterSeconds(1)).toBe(1);
    expect(retryAfterSeconds(1000)).toBe(1);
    expect(retryAfterSeconds(1001)).toBe(2);
  });
});
