/**
 * @module The `rateLimit:` section of gateway.yaml: token buckets (per minute, with a burst) and daily/monthly
 * quotas. Validated with zod so the config loader names the path of every bad key (`rateLimit.tools[1].perMinute:
 * …`); unknown keys are errors, so a typo never silently removes a limit.
 *
 * ```yaml
 * rateLimit:
 *   enabled: true            # false: no limit and no quota at all
 *   defaultPerMinute: 60     # every consumer's bucket refills this many calls a minute…
 *   burstMultiplier: 1       # …and holds ceil(perMinute × burstMultiplier) (the seed's key)…
 *   burst: 100               # …or exactly this many (overrides the multiplier)
 *   consumers: { ci-bot: { perMinute: 600, burst: 1000 } }
 *   keys: { key-7: { perMinute: 5 } }          # a key with its own limit has its own bucket
 *   servers: { stripe: { perMinute: 30 } }     # per consumer, for calls to that server
 *   tools: [{ server: "*", tool: "delete_*", perMinute: 5 }]   # per consumer, per server, per rule
 *   quotas:
 *     perConsumer: { daily: 10000, monthly: 200000 }
 *     consumers: { ci-bot: { daily: 50000 } }
 *     tenant: { monthly: 1000000 }
 * ```
 *
 * What the keys mean when a call is charged is src/ratelimit/limits.ts.
 */
import { z } from "zod";
import { ID_PATTERN, ID_RULE } from "../ids.ts";
import { SERVER_ID_PATTERN } from "../link/protocol.ts";
import { globError } from "../policy/glob.ts";

/** Upper bounds: large enough for any real limit, small enough that the bucket arithmetic stays exact. */
export const MAX_PER_MINUTE = 1_000_000;
export const MAX_BURST = 1_000_000;
export const MAX_BURST_MULTIPLIER = 100;
export const MAX_QUOTA = 1_000_000_000_000;
/** Entries per map (consumers, keys, servers) and tool rules: a config, not a database. */
export const MAX_OVERRIDES = 10_000;
export const MAX_TOOL_RULES = 256;

const perMinuteSchema = z.number().int().min(1).max(MAX_PER_MINUTE);
const burstSchema = z.number().int().min(1).max(MAX_BURST);
const quotaSchema = z.number().int().min(1).max(MAX_QUOTA);

const globSchema = z.string().superRefine((value, ctx) => {
  const problem = globError(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/**
 * A map keyed by ids: each bad key reported with a message that names it (zod's own says only "Invalid key in
 * record"), at most {@link MAX_OVERRIDES} entries.
 */
function idMap<T extends z.ZodType>(value: T, pattern: RegExp, rule: string, what: string) {
  const key = z.string().regex(pattern);
  return z
    .record(key, value, {
      error: (issue) => (issue.code === "invalid_key" ? `"${String(issue.input).slice(0, 64)}" is not a ${what} id: ${rule}` : undefined),
    })
    .refine((map) => Object.keys(map).length <= MAX_OVERRIDES, `at most ${MAX_OVERRIDES} entries`);
}

/** Runs a refinement only on an entry with no other error (a misspelt key is one error, not two). */
const clean = (payload: { issues: readonly unknown[] }) => payload.issues.length === 0;

/** A consumer's or a key's own bucket: either or both of its refill and its burst (the rest comes from above). */
const overrideSchema = z
  .strictObject({ perMinute: perMinuteSchema.optional(), burst: burstSchema.optional() })
  .refine((o) => o.perMinute !== undefined || o.burst !== undefined, { message: "give perMinute, burst or both", when: clean });

const serverLimitSchema = z.strictObject({ perMinute: perMinuteSchema, burst: burstSchema.optional() });

const toolRuleSchema = z.strictObject({
  /** Server ids the rule covers (a glob, default every server). */
  server: globSchema.default("*"),
  /** Upstream tool names the rule covers (a glob, as in policies: `delete_*`, not `crm__delete_*`). */
  tool: globSchema,
  perMinute: perMinuteSchema,
  burst: burstSchema.optional(),
});

const quotaLimitsSchema = z
  .strictObject({ daily: quotaSchema.optional(), monthly: quotaSchema.optional() })
  .refine((q) => q.daily !== undefined || q.monthly !== undefined, { message: "give daily, monthly or both", when: clean });

export const rateLimitSchema = z.strictObject({
  /** false: nothing is limited or counted (the seed accepted it and ignored it). */
  enabled: z.boolean().default(true),
  /** Every consumer's bucket refill, in calls per minute, unless overridden. */
  defaultPerMinute: perMinuteSchema.default(60),
  /** The seed's: a bucket holds ceil(perMinute × burstMultiplier) (at least 1) unless a `burst` says otherwise. Default 1. */
  burstMultiplier: z.number().positive().max(MAX_BURST_MULTIPLIER).optional(),
  /** The default bucket's capacity, overriding burstMultiplier. */
  burst: burstSchema.optional(),
  /** Per consumer id: its own refill and/or burst. */
  consumers: idMap(overrideSchema, ID_PATTERN, ID_RULE, "consumer").optional(),
  /** Per API key id: a key listed here has a bucket of its own (instead of its consumer's); unset fields come from its consumer. */
  keys: idMap(overrideSchema, ID_PATTERN, ID_RULE, "key").optional(),
  /** Per server id: a bucket per consumer for calls to that server, on top of the consumer's. */
  servers: idMap(serverLimitSchema, SERVER_ID_PATTERN, "must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit, without '__' and not ending in '_'", "server").optional(),
  /** Buckets per consumer for the tools rules match (every matching rule applies), on top of the others. */
  tools: z.array(toolRuleSchema).max(MAX_TOOL_RULES).optional(),
  quotas: z
    .strictObject({
      /** Every consumer's daily/monthly call quota, unless `consumers` says otherwise. */
      perConsumer: quotaLimitsSchema.optional(),
      /** Per consumer id: its own daily and/or monthly quota (an unset one comes from perConsumer). */
      consumers: idMap(quotaLimitsSchema, ID_PATTERN, ID_RULE, "consumer").optional(),
      /** The whole tenant's daily/monthly call quota, over all its consumers. */
      tenant: quotaLimitsSchema.optional(),
    })
    .optional(),
});

/** The `rateLimit` section as parsed (defaults filled in). */
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;
