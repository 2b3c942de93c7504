/**
 * @module gateway.yaml's `metering:` section: whether usage is metered, the seed's `dimensions`, the price table
 * that turns usage into cost, and the Stripe meter the chargeback is reported to. Platform-free (zod only).
 *
 * ```yaml
 * metering:
 *   currency: credits            # a label for cost; nothing converts it
 *   prices:
 *     - perCall: 0.001           # the catch-all: any server, any tool
 *     - server: crm              # every crm tool…
 *       perCall: 0.002
 *     - server: crm              # …but these two
 *       tool: "{delete,update}_*"
 *       perCall: 0.01
 *       perKB: 0.0005            # per 1,000 bytes of request + response
 *   stripe:
 *     eventName: mcp_gateway_cost
 *     customers: { agent-1: cus_NciAYcXfLnqBoz }
 * ```
 *
 * Which entry prices a call (src/metering/pricing.ts): the most specific one that matches its server and tool —
 * an entry with `server` and `tool` over one with `tool` only, over one with `server` only, over the catch-all
 * (neither). Among entries of the same rank, the first listed wins, so list narrower globs first. A call no entry
 * matches costs nothing. `server` and `tool` are globs (src/policy/glob.ts, as in policy rules).
 *
 * Prices are decimal numbers with at most {@link PRICE_DECIMALS} decimal places (micro-units): they are converted
 * to integers before any arithmetic, so costs are exact (no float drift).
 */
import { z } from "zod";
import { idSchema } from "../ids.ts";
import { globError } from "../policy/glob.ts";

/** Prices carry at most this many decimal places: costs are computed in integer micro-units (1e-6). */
export const PRICE_DECIMALS = 6;
/** The largest price of one call or one KB (a typo guard; costs stay far inside exact integer arithmetic). */
export const MAX_PRICE = 1_000_000;

/** The dimensions the seed listed; accepted, and all three are always metered. */
export const METERING_DIMENSIONS = ["calls", "latency", "errors"] as const;

/** A price: a number ≥ 0 with at most six decimal places. */
export const priceSchema = z
  .number()
  .min(0)
  .max(MAX_PRICE)
  .refine((value) => Number(value.toFixed(PRICE_DECIMALS)) === value, `must have at most ${PRICE_DECIMALS} decimal places (prices are exact micro-units)`);

const globSchema = z.string().superRefine((value, ctx) => {
  const problem = globError(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** One entry of the price table. */
export const priceEntrySchema = z.strictObject({
  /** Glob over server ids; absent = any server. */
  server: globSchema.optional(),
  /** Glob over tool names; absent = any tool. */
  tool: globSchema.optional(),
  /** Cost of one call that reached its server (status ok or error). */
  perCall: priceSchema.optional(),
  /** Cost of 1,000 bytes of request and response (the JSON the agent sent and received). */
  perKB: priceSchema.optional(),
});
export type PriceEntry = z.infer<typeof priceEntrySchema>;

/** A Stripe customer id. */
export const STRIPE_CUSTOMER_PATTERN = /^cus_[A-Za-z0-9]{1,250}$/;

export const stripeMeteringSchema = z.strictObject({
  /** The `event_name` of the Stripe Billing meter the events are for (at most 100 characters, as Stripe allows). */
  eventName: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces"),
  /** Consumer id → Stripe customer id. Consumers without one are reported, never sent. */
  customers: z.record(idSchema, z.string().regex(STRIPE_CUSTOMER_PATTERN, "must be a Stripe customer id (cus_…)")).default({}),
});
export type StripeMeteringConfig = z.infer<typeof stripeMeteringSchema>;

export const meteringSchema = z.strictObject({
  enabled: z.boolean().default(true),
  dimensions: z.array(z.enum(METERING_DIMENSIONS)).default([...METERING_DIMENSIONS]),
  /** The label of cost amounts ("credits", "USD"); nothing converts between currencies. */
  currency: z
    .string()
    .min(1)
    .max(32)
    .regex(/^[^\u0000-\u001f\u007f,"]+$/, "must not contain control characters, commas or quotes")
    .default("units"),
  /** The price table; empty = usage is counted but costs nothing. */
  prices: z.array(priceEntrySchema).max(1000).default([]),
  stripe: stripeMeteringSchema.optional(),
});
export type MeteringConfig = z.infer<typeof meteringSchema>;

/** What a tenant without a `metering:` section gets. */
export const DEFAULT_METERING: MeteringConfig = meteringSchema.parse({});
