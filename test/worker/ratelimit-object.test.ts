/**
 * The RateLimiter Durable Object inside workerd: exactly C of ≥ 200 concurrent calls admitted by a bucket of
 * capacity C, all-or-nothing charging of a plan's buckets and quotas, a daily quota rolling over at UTC midnight,
 * a tenant quota shared by two consumers (and what a refusal there has already spent), state kept across eviction,
 * a changed config rescaling a bucket, and chargeCall failing closed.
 */
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { chargeCall, consumerLimiterName, tenantLimiterName, type LimitVerdict } from "../../src/ratelimit/charge.ts";
import type { ChargeRequest, RateLimiterDurableObject, TakeVerdict } from "../../src/ratelimit/durable-object.ts";
import { limitPlan, type LimitPlan } from "../../src/ratelimit/limits.ts";
import { rateLimitSchema } from "../../src/ratelimit/schema.ts";
import type { Env } from "../../src/env.ts";

let counter = 0;
/** A fresh tenant per test: its objects start empty. */
const freshTenant = () => `rl-${Date.now()}-${++counter}`;
const limiter = (tenant: string, consumer: string) => env.RATE_LIMITER.getByName(consumerLimiterName(tenant, consumer));
const T0 = Date.UTC(2026, 2, 5, 12, 0, 0);

const bucket = (id: string, capacity: number, perMinute: number) => ({ id, capacity, perMinute });
const request = (buckets: ChargeRequest["buckets"], quotas: ChargeRequest["quotas"] = []): ChargeRequest => ({ buckets, quotas });
const take = (tenant: string, consumer: string, req: ChargeRequest, now?: number) =>
  limiter(tenant, consumer).take(req, now) as unknown as Promise<TakeVerdict>;
const tokens = async (tenant: string, consumer: string, now: number) =>
  Object.fromEntries((await limiter(tenant, consumer).usage(now)).buckets.map((b) => [b.id, b.tokens]));

describe("RateLimiter object", () => {
  it("admits exactly C of 250 concurrent calls with capacity C and a slow refill, and tells the rest when to retry", async () => {
    const tenant = freshTenant();
    const C = 37;
    // One token a minute: the whole burst is over long before a second token could be minted.
    const req = request([bucket("consumer", C, 1)]);
    const verdicts = await Promise.all(Array.from({ length: 250 }, () => take(tenant, "agent", req)));
    const admitted = verdicts.filter((v) => v.admitted);
    const refused = verdicts.filter((v): v is Extract<TakeVerdict, { admitted: false }> => !v.admitted);
    expect(admitted).toHaveLength(C);
    expect(refused).toHaveLength(250 - C);
    for (const r of refused) {
      expect(r).toMatchObject({ limit: "consumer", kind: "rate" });
      expect(r.retryAfterMs).toBeGreaterThan(0);
      expect(r.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    const usage = await limiter(tenant, "agent").usage();
    expect(usage.buckets).toHaveLength(1);
    expect(usage.buckets[0]!.tokens).toBeLessThan(1);
  });

  it("admits the same exactly through chargeCall and limitPlan from 200 concurrent Worker calls", async () => {
    const tenant = freshTenant();
    const config = rateLimitSchema.parse({ defaultPerMinute: 1, burst: 23, tools: [{ tool: "delete_*", perMinute: 1, burst: 9 }] });
    const plan = (tool: string) => limitPlan(config, { consumer: "agent", keyId: "k1" }, { server: "crm", tool });
    // Half the calls are deletions: 9 of them pass their tool bucket; all 23 consumer tokens go to the first 23
    // calls that pass every bucket.
    const verdicts = await Promise.all(Array.from({ length: 200 }, (_, i) => chargeCall(env, tenant, plan(i % 2 === 0 ? "delete_x" : "get_x"))));
    expect(verdicts.filter((v) => v.admitted)).toHaveLength(23);
    const usage = await limiter(tenant, "agent").usage();
    const byId = Object.fromEntries(usage.buckets.map((b) => [b.id, b]));
    expect(byId.consumer!.tokens).toBeLessThan(1);
    const deletes = verdicts.filter((v, i) => i % 2 === 0 && v.admitted).length;
    expect(deletes).toBeLessThanOrEqual(9);
    expect(9 - byId["tool:crm/0"]!.tokens).toBeCloseTo(deletes, 0);
  });

  it("admits a call needing two buckets only when both admit, and then charges both; a refusal charges neither", async () => {
    const tenant = freshTenant();
    const both = request([bucket("consumer", 10, 1), bucket("tool:crm/0", 2, 1)]);
    const consumerOnly = request([bucket("consumer", 10, 1)]);
    expect(await take(tenant, "a", both, T0)).toEqual({ admitted: true });
    expect(await take(tenant, "a", both, T0)).toEqual({ admitted: true });
    expect(await tokens(tenant, "a", T0)).toEqual({ consumer: 8, "tool:crm/0": 0 });
    // The tool bucket is empty: refused, and the consumer bucket keeps its 8.
    expect(await take(tenant, "a", both, T0)).toEqual({ admitted: false, limit: "tool:crm/0", kind: "rate", retryAfterMs: 60_000 });
    expect(await tokens(tenant, "a", T0)).toEqual({ consumer: 8, "tool:crm/0": 0 });
    // Another tool still has the consumer's tokens.
    for (let i = 0; i < 8; i++) expect(await take(tenant, "a", consumerOnly, T0)).toEqual({ admitted: true });
    // Both empty since T0 and half refilled at T0 + 30 s: each needs 30 s more; the verdict names the longest wait
    // (here a tie, so the first bucket of the plan).
    expect(await take(tenant, "a", both, T0 + 30_000)).toEqual({ admitted: false, limit: "consumer", kind: "rate", retryAfterMs: 30_000 });
    expect(await tokens(tenant, "a", T0 + 30_000)).toEqual({ consumer: 0.5, "tool:crm/0": 0.5 });
    // At the retry time both have a token: admitted, and both charged.
    expect(await take(tenant, "a", both, T0 + 60_000)).toEqual({ admitted: true });
    expect(await tokens(tenant, "a", T0 + 60_000)).toEqual({ consumer: 0, "tool:crm/0": 0 });
  });

  it("exhausts a daily quota and admits again in the next UTC day", async () => {
    const tenant = freshTenant();
    const req = request([bucket("consumer", 1000, 1000)], [{ id: "daily", period: "daily", limit: 3 }, { id: "monthly", period: "monthly", limit: 100 }]);
    const lateEvening = Date.UTC(2026, 11, 31, 23, 0, 0);
    for (let i = 0; i < 3; i++) expect(await take(tenant, "a", req, lateEvening + i)).toEqual({ admitted: true });
    expect(await take(tenant, "a", req, lateEvening + 10)).toEqual({ admitted: false, limit: "daily", kind: "daily", retryAfterMs: 3_600_000 - 10 });
    // The refusal charged nothing: 3 calls counted, 3 tokens gone.
    const usage = await limiter(tenant, "a").usage(lateEvening + 10);
    expect(usage.quotas).toEqual([
      { id: "daily", period: "daily", key: "2026-12-31", used: 3, limit: 3 },
      { id: "monthly", period: "monthly", key: "2026-12", used: 3, limit: 100 },
    ]);
    expect(usage.buckets[0]!.tokens).toBeCloseTo(997, 0);
    // New Year: a new day and a new month.
    const midnight = Date.UTC(2027, 0, 1);
    expect(await take(tenant, "a", req, midnight - 1)).toMatchObject({ admitted: false, retryAfterMs: 1 });
    expect(await take(tenant, "a", req, midnight)).toEqual({ admitted: true });
    expect((await limiter(tenant, "a").usage(midnight)).quotas).toEqual([
      { id: "daily", period: "daily", key: "2027-01-01", used: 1, limit: 3 },
      { id: "monthly", period: "monthly", key: "2027-01", used: 1, limit: 100 },
    ]);
  });

  it("shares a tenant quota across two consumers; a call it refuses has already spent its consumer's token", async () => {
    const tenant = freshTenant();
    const config = rateLimitSchema.parse({ defaultPerMinute: 1, burst: 10, quotas: { tenant: { daily: 5 } } });
    const plan = (consumer: string) => limitPlan(config, { consumer, keyId: `${consumer}-key` }, { server: null, tool: null });
    const verdicts: LimitVerdict[] = [];
    for (let i = 0; i < 3; i++) verdicts.push(await chargeCall(env, tenant, plan("alice"), T0 + i));
    for (let i = 0; i < 3; i++) verdicts.push(await chargeCall(env, tenant, plan("bob"), T0 + 10 + i));
    expect(verdicts.map((v) => v.admitted)).toEqual([true, true, true, true, true, false]);
    expect(verdicts[5]).toEqual({ admitted: false, limit: "tenant:daily", kind: "daily", retryAfterMs: 12 * 3_600_000 - 12 });
    // Bob paid three tokens for two calls: his own object admitted the third before the tenant's refused it.
    expect((await tokens(tenant, "bob", T0 + 12))["consumer"]).toBeCloseTo(7, 2);
    const tenantUsage = await env.RATE_LIMITER.getByName(tenantLimiterName(tenant)).usage(T0 + 12);
    expect(tenantUsage).toEqual({ buckets: [], quotas: [{ id: "tenant:daily", period: "daily", key: "2026-03-05", used: 5, limit: 5 }] });
    // A consumer refused by its own bucket never reaches the tenant's object.
    const slow = rateLimitSchema.parse({ defaultPerMinute: 1, burst: 1, quotas: { tenant: { daily: 1000 } } });
    const tenant2 = freshTenant();
    const p = limitPlan(slow, { consumer: "carol", keyId: "c" }, { server: null, tool: null });
    expect(await chargeCall(env, tenant2, p, T0)).toEqual({ admitted: true });
    expect(await chargeCall(env, tenant2, p, T0)).toMatchObject({ admitted: false, limit: "consumer" });
    expect((await env.RATE_LIMITER.getByName(tenantLimiterName(tenant2)).usage(T0)).quotas[0]?.used).toBe(1);
  });

  it("keeps its state across eviction", async () => {
    const tenant = freshTenant();
    const req = request([bucket("consumer", 5, 1)], [{ id: "daily", period: "daily", limit: 100 }]);
    for (let i = 0; i < 4; i++) expect(await take(tenant, "a", req, T0)).toEqual({ admitted: true });
    const stub = limiter(tenant, "a");
    await runInDurableObject(stub, (instance: RateLimiterDurableObject) => {
      (instance as unknown as { marker: number }).marker = 1;
    });
    await evictDurableObject(stub);
    expect(await runInDurableObject(limiter(tenant, "a"), (instance: RateLimiterDurableObject) => (instance as unknown as { marker?: number }).marker)).toBeUndefined();
    const usage = await limiter(tenant, "a").usage(T0);
    expect(usage.buckets[0]).toMatchObject({ id: "consumer", tokens: 1 });
    expect(usage.quotas[0]).toMatchObject({ used: 4 });
    expect(await take(tenant, "a", req, T0)).toEqual({ admitted: true });
    expect(await take(tenant, "a", req, T0)).toMatchObject({ admitted: false, retryAfterMs: 60_000 });
  });

  it("rescales a bucket whose config changed, and never lets a clock behind mint tokens", async () => {
    const tenant = freshTenant();
    for (let i = 0; i < 5; i++) await take(tenant, "a", request([bucket("consumer", 10, 60)]), T0);
    // Half full at capacity 10 → half full at capacity 20, refilling at the new rate.
    expect(await take(tenant, "a", request([bucket("consumer", 20, 600)]), T0)).toEqual({ admitted: true });
    expect(await limiter(tenant, "a").usage(T0)).toMatchObject({ buckets: [{ id: "consumer", capacity: 20, perMinute: 600, tokens: 9 }] });
    expect((await limiter(tenant, "a").usage(T0 + 1_000)).buckets[0]!.tokens).toBe(19);
    // An isolate whose clock is a minute behind: no refill for it, and the time is not counted twice later.
    const drain = request([bucket("consumer", 20, 600)]);
    let n = 0;
    while ((await take(tenant, "a", drain, T0 - 60_000)).admitted) n++;
    expect(n).toBe(9);
    expect((await limiter(tenant, "a").usage(T0 + 100)).buckets[0]!.tokens).toBe(1);
  });

  it("sweeps rows equivalent to missing ones, so an idle consumer costs no storage", async () => {
    const tenant = freshTenant();
    await take(tenant, "a", request([bucket("server:crm", 5, 60)], [{ id: "daily", period: "daily", limit: 9 }]), T0);
    expect((await limiter(tenant, "a").usage(T0)).buckets).toHaveLength(1);
    // Two days later the bucket has long been full and the day is over: the next call's sweep drops both rows.
    await take(tenant, "a", request([bucket("consumer", 5, 60)]), T0 + 2 * 86_400_000);
    const usage = await limiter(tenant, "a").usage(T0 + 2 * 86_400_000);
    expect(usage.buckets.map((b) => b.id)).toEqual(["consumer"]);
    expect(usage.quotas).toEqual([]);
  });
});

describe("chargeCall", () => {
  it("admits without asking anything when limiting is disabled", async () => {
    const unreachable = { RATE_LIMITER: { getByName: () => { throw new Error("must not be called"); } } } as unknown as Env;
    expect(await chargeCall(unreachable, "t", null)).toEqual({ admitted: true });
  });

  it("fails closed when the object cannot be reached, throws or refuses the request", async () => {
    const broken = (take: () => Promise<unknown>) => ({ RATE_LIMITER: { getByName: () => ({ take }) } }) as unknown as Env;
    const plan = limitPlan(undefined, { consumer: "a", keyId: "k" }, { server: null, tool: null });
    const down = await chargeCall(broken(() => Promise.reject(new Error("Durable Object reset because its code was updated."))), "t", plan);
    expect(down).toEqual({ admitted: false, kind: "unavailable", reason: `rate limiter ${consumerLimiterName("t", "a")} unavailable: Durable Object reset because its code was updated.` });
    // A retryable error is tried once more, then refused.
    let calls = 0;
    const flaky = await chargeCall(broken(() => { calls++; return Promise.reject(Object.assign(new Error("network"), { retryable: true })); }), "t", plan);
    expect(flaky).toMatchObject({ admitted: false, kind: "unavailable" });
    expect(calls).toBe(2);
    // A malformed plan is refused by the real object: still a refusal, never an admit.
    const bad = { consumer: "a", buckets: [{ id: "consumer", capacity: 0, perMinute: 1 }], quotas: [], tenantQuotas: [] } as LimitPlan;
    expect(await chargeCall(env, freshTenant(), bad)).toMatchObject({ admitted: false, kind: "unavailable", reason: expect.stringContaining("capacity 0") });
  });
});
