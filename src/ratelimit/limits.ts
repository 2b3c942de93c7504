/**
 * @module Which limits one call pays for: the tenant's `rateLimit` section (src/ratelimit/schema.ts) applied to a
 * caller and a target, as a {@link LimitPlan} the RateLimiter Durable Object charges in one transaction. Pure.
 *
 * Every limit is **per consumer**: `servers.crm: {perMinute: 30}` gives each consumer its own 30 calls a minute to
 * crm, not 30 shared by the tenant (only `quotas.tenant` is shared). The buckets a call pays for:
 *
 * - **its base bucket**, always, whatever the call (so denied and unknown-tool calls cost a token too): the
 *   consumer's bucket `consumer`, or, when the caller's key is listed under `keys`, that key's own bucket
 *   `key:<keyId>` instead. Its refill is the first of `keys.<key>.perMinute`, `consumers.<consumer>.perMinute`,
 *   `defaultPerMinute` that is set; its capacity the first of `keys.<key>.burst`, `consumers.<consumer>.burst`,
 *   `burst` that is set, else `ceil(refill × burstMultiplier)` (multiplier default 1).
 * - **`server:<id>`** when the target's server has an entry under `servers`.
 * - **`tool:<server>/<i>`** for every rule `tools[i]` whose `server` and `tool` globs match the target (all of
 *   them, so the strictest one decides): one bucket per rule and server, shared by the tools the rule matches on
 *   that server (`delete_*` at 5/min is 5 deletions a minute in all). Globs match upstream names, as in policies;
 *   a name the globs cannot match exactly (it holds U+E000) matches every rule: more limits, never fewer.
 *
 * A server or tool bucket's capacity is its own `burst`, else `ceil(perMinute × burstMultiplier)`. Quotas:
 * `daily`/`monthly` for the consumer (its entry under `quotas.consumers`, else `quotas.perConsumer`, per field),
 * and `tenant:daily`/`tenant:monthly` from `quotas.tenant`. Every call the plan is charged for counts once against
 * each of them.
 *
 * A bucket id names a rule's position (`tools[i]`): reordering the rules hands a rule's bucket state to another
 * rule, which the object then rescales to the new rule's numbers (durable-object.ts) — at worst one minute's
 * imprecision after a config change.
 */
import { isAmbiguousName, compileGlob, type GlobMatcher } from "../policy/glob.ts";
import type { BucketSpec, QuotaPeriod } from "./bucket.ts";
import type { RateLimitConfig } from "./schema.ts";

/** The section as it stands when gateway.yaml has none: limits on, 60 calls a minute per consumer, burst 60. */
export const DEFAULT_RATE_LIMIT: RateLimitConfig = { enabled: true, defaultPerMinute: 60 };

/** One bucket a call pays one token from. */
export interface PlannedBucket extends BucketSpec {
  /** Stable within the consumer's object: `consumer`, `key:<keyId>`, `server:<serverId>`, `tool:<serverId>/<rule index>`. */
  id: string;
}

/** One quota a call counts against. */
export interface PlannedQuota {
  /** `daily`, `monthly` (the consumer's, in its object), `tenant:daily`, `tenant:monthly` (in the tenant's object). */
  id: string;
  period: QuotaPeriod;
  limit: number;
}

/** Everything one call pays for. */
export interface LimitPlan {
  /** The consumer whose object holds the buckets and its quotas. */
  consumer: string;
  /** The buckets, base bucket first; never empty. */
  buckets: PlannedBucket[];
  /** The consumer's quotas (in its object). */
  quotas: PlannedQuota[];
  /** The tenant's quotas (in the tenant's object); empty = the tenant's object is not involved. */
  tenantQuotas: PlannedQuota[];
}

export interface Caller {
  consumer: string;
  keyId: string;
}

/** What the call is for; null where it names nothing known (an unknown tool, a listing, a denied call before lookup). */
export interface LimitTarget {
  server: string | null;
  tool: string | null;
}

/**
 * The limits a call from `who` to `target` pays for, or null when limiting is off (`enabled: false`). An absent
 * section (undefined) means {@link DEFAULT_RATE_LIMIT}, as an empty one does.
 */
export function limitPlan(config: RateLimitConfig | undefined, who: Caller, target: LimitTarget): LimitPlan | null {
  const c = config ?? DEFAULT_RATE_LIMIT;
  if (c.enabled === false) return null;
  const multiplier = c.burstMultiplier ?? 1;
  const keyOverride = own(c.keys, who.keyId);
  const consumerOverride = own(c.consumers, who.consumer);
  const perMinute = keyOverride?.perMinute ?? consumerOverride?.perMinute ?? c.defaultPerMinute ?? DEFAULT_RATE_LIMIT.defaultPerMinute;
  const buckets: PlannedBucket[] = [
    {
      id: keyOverride ? `key:${who.keyId}` : "consumer",
      perMinute,
      capacity: keyOverride?.burst ?? consumerOverride?.burst ?? c.burst ?? burstOf(perMinute, multiplier),
    },
  ];
  if (target.server !== null) {
    const server = own(c.servers, target.server);
    if (server) buckets.push({ id: `server:${target.server}`, perMinute: server.perMinute, capacity: server.burst ?? burstOf(server.perMinute, multiplier) });
    if (target.tool !== null && c.tools && c.tools.length > 0) {
      const ambiguous = isAmbiguousName(target.server) || isAmbiguousName(target.tool);
      compiledRules(c.tools).forEach((rule, i) => {
        if (!ambiguous && !(rule.server.test(target.server as string) && rule.tool.test(target.tool as string))) return;
        buckets.push({ id: `tool:${target.server}/${i}`, perMinute: rule.perMinute, capacity: rule.burst ?? burstOf(rule.perMinute, multiplier) });
      });
    }
  }
  const consumerQuotas = own(c.quotas?.consumers, who.consumer);
  const perConsumer = c.quotas?.perConsumer;
  const quotas = quotaList("", consumerQuotas?.daily ?? perConsumer?.daily, consumerQuotas?.monthly ?? perConsumer?.monthly);
  const tenantQuotas = quotaList("tenant:", c.quotas?.tenant?.daily, c.quotas?.tenant?.monthly);
  return { consumer: who.consumer, buckets, quotas, tenantQuotas };
}

/** A limit's id as an agent or operator reads it, for error messages: `the rate limit for server "crm"`. */
export function describeLimit(id: string): string {
  if (id === "consumer") return "the consumer's rate limit";
  if (id === "daily" || id === "monthly") return `the consumer's ${id} quota`;
  if (id === "tenant:daily" || id === "tenant:monthly") return `the tenant's ${id.slice("tenant:".length)} quota`;
  if (id.startsWith("key:")) return `the rate limit of API key "${id.slice(4)}"`;
  if (id.startsWith("server:")) return `the rate limit for server "${id.slice(7)}"`;
  const tool = /^tool:(.*)\/(\d+)$/.exec(id);
  if (tool) return `the rate limit rateLimit.tools[${tool[2]}] on server "${tool[1]}"`;
  return `the limit ${id}`;
}

/** Whole seconds to wait, for a Retry-After header or a message (at least 1). */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/** ceil(perMinute × multiplier), at least 1; products such as 60 × 1.1 (66.00000000000001) count as the decimal says. */
export function burstOf(perMinute: number, multiplier: number): number {
  return Math.max(1, Math.ceil(Math.round(perMinute * multiplier * 1e6) / 1e6));
}

function quotaList(prefix: string, daily: number | undefined, monthly: number | undefined): PlannedQuota[] {
  const list: PlannedQuota[] = [];
  if (daily !== undefined) list.push({ id: `${prefix}daily`, period: "daily", limit: daily });
  if (monthly !== undefined) list.push({ id: `${prefix}monthly`, period: "monthly", limit: monthly });
  return list;
}

/** A map's own entry (never one inherited from Object.prototype, whatever the id: `constructor`, `__proto__`). */
function own<T>(map: Record<string, T> | undefined, id: string): T | undefined {
  return map !== undefined && Object.hasOwn(map, id) ? map[id] : undefined;
}

type ToolRule = NonNullable<RateLimitConfig["tools"]>[number];
interface CompiledRule {
  server: GlobMatcher;
  tool: GlobMatcher;
  perMinute: number;
  burst: number | undefined;
}

/** Compiled once per rules array (the Worker keeps a tenant's config object while its version stands). */
const compiled = new WeakMap<readonly ToolRule[], CompiledRule[]>();

function compiledRules(rules: readonly ToolRule[]): CompiledRule[] {
  let list = compiled.get(rules);
  if (!list) {
    list = rules.map((r) => ({ server: compileGlob(r.server ?? "*"), tool: compileGlob(r.tool), perMinute: r.perMinute, burst: r.burst }));
    compiled.set(rules, list);
  }
  return list;
}
