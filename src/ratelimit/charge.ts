/**
 * @module The Worker's side of rate limiting: charge one call's {@link LimitPlan} to the RateLimiter Durable
 * Objects and say whether it may proceed.
 *
 * Order: the consumer's object first (its buckets and quotas), then — only when the plan has tenant quotas and the
 * consumer's object admitted — the tenant's object. So a flooding consumer is stopped by its own object and never
 * reaches (or spends) the tenant's shared counters. The consequence: a call the tenant's quota refuses has already
 * spent the consumer's tokens and counted against the consumer's own quotas (the opposite order would let every
 * refused call spend the tenant's quota instead, which is worse: one consumer could use it up for all).
 *
 * Fail closed: when an object cannot be reached, throws, or does not answer within {@link CHARGE_TIMEOUT_MS}, the
 * verdict is a refusal of kind `unavailable` with the reason, never an admit. A retryable error (the runtime says
 * so, and not an overload) is tried once more; that retry may charge twice a call whose first charge did land,
 * which errs on the side of the limit.
 */
import type { Env } from "../env.ts";
import type { ChargeRequest, TakeVerdict } from "./durable-object.ts";
import type { LimitPlan } from "./limits.ts";

/** How long the Worker waits for a RateLimiter object before refusing the call. */
export const CHARGE_TIMEOUT_MS = 5_000;

export type LimitVerdict =
  | TakeVerdict
  /** The limiter could not be asked: refused (fail closed). `reason` is for logs; agents get a generic retry message. */
  | { admitted: false; kind: "unavailable"; reason: string };

/** The name of a consumer's RateLimiter object (its buckets and quotas). */
export function consumerLimiterName(tenant: string, consumer: string): string {
  return JSON.stringify([tenant, consumer]);
}

/** The name of a tenant's RateLimiter object (its tenant-wide quotas). */
export function tenantLimiterName(tenant: string): string {
  return JSON.stringify([tenant]);
}

/**
 * Charges a call: admitted when every limit of the plan admits (a null plan — limiting disabled — always does).
 * Never throws.
 */
export async function chargeCall(env: Pick<Env, "RATE_LIMITER">, tenant: string, plan: LimitPlan | null, now?: number): Promise<LimitVerdict> {
  if (plan === null) return { admitted: true };
  const consumer = await ask(env, consumerLimiterName(tenant, plan.consumer), { buckets: plan.buckets, quotas: plan.quotas }, now);
  if (!consumer.admitted || plan.tenantQuotas.length === 0) return consumer;
  return ask(env, tenantLimiterName(tenant), { buckets: [], quotas: plan.tenantQuotas }, now);
}

async function ask(env: Pick<Env, "RATE_LIMITER">, name: string, request: ChargeRequest, now: number | undefined): Promise<LimitVerdict> {
  for (let attempt = 1; ; attempt++) {
    try {
      // The RPC's result type is a union of promises; the value is a plain TakeVerdict.
      const verdict = env.RATE_LIMITER.getByName(name).take(request, now) as unknown as Promise<TakeVerdict>;
      return await withTimeout(verdict, CHARGE_TIMEOUT_MS);
    } catch (error) {
      const e = error as { message?: string; retryable?: boolean; overloaded?: boolean };
      if (attempt === 1 && e.retryable === true && e.overloaded !== true) continue;
      return { admitted: false, kind: "unavailable", reason: `rate limiter ${name} unavailable: ${e.message ?? String(error)}` };
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
