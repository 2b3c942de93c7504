/**
 * @module Retry arithmetic shared by the supervisor (restarting a child) and the link client (redialling the
 * gateway): exponential backoff with optional jitter, and crash-loop detection. Pure.
 */

export type BackoffPolicy = {
  initialMs: number;
  maxMs: number;
  /**
   * 0 = exact delays; 0.5 = a random delay in [50 %, 100 %] of the exponential one. Many connectors redialling after
   * one gateway deploy would otherwise arrive in lockstep.
   */
  jitter: number;
};

/** The delay before retry number `attempt` (0-based): initialMs · 2^attempt, capped at maxMs, then jittered. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exact = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 52));
  return Math.round(exact * (1 - policy.jitter * random()));
}

export type CrashLoopPolicy = {
  /** This many crashes within `windowMs` is a crash loop. */
  crashes: number;
  windowMs: number;
};

/** Adds a crash at `now` to the recent history (older ones fall out of the window) and says whether it is a loop. */
export function recordCrash(history: readonly number[], now: number, policy: CrashLoopPolicy): { history: number[]; crashLoop: boolean } {
  const recent = [...history.filter((t) => now - t < policy.windowMs), now];
  return { history: recent, crashLoop: recent.length >= policy.crashes };
}
