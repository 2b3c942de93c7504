/**
 * @module The admin API's usage endpoints (docs/admin-api.md): usage grouped by consumer, server, tool or hour with
 * cost; the chargeback of a period as JSON or CSV; and the Stripe meter events of a month, built, recorded and
 * (with the Worker secret STRIPE_API_KEY) sent exactly once. Thin over src/metering/.
 */
import { eq } from "drizzle-orm";
import { database } from "../db/client.ts";
import { tenants } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { log } from "../log.ts";
import { chargebackCsv, readChargeback, type Chargeback } from "../metering/chargeback.ts";
import { DEFAULT_METERING, meteringSchema, type MeteringConfig } from "../metering/schema.ts";
import { buildMeterEvents, recordMeterEvents, sendMeterEvents, type MeterEventFailure, type StripeMeterEvent } from "../metering/stripe.ts";
import { currentUsage, hourPeriod, MAX_USAGE_HOURS, monthPeriod, type UsageParams, type UsageReport } from "../metering/usage-store.ts";
export type { UsageParams };
import { AdminError } from "./errors.ts";
import { flushAuditLog } from "../audit/append.ts";

export const CSV = "text/csv; charset=utf-8";
/** A month's meter events are built at least this long after it ended (longer than any call's timeout). */
export const STRIPE_SETTLE_MS = 60 * 60 * 1000;


/** The tenant's `metering:` section as applied (read from D1, not the per-isolate cache: an apply shows at once). */
export async function tenantMetering(env: Env, tenant: string): Promise<MeteringConfig> {
  const row = await database(env.DB).select({ config: tenants.config }).from(tenants).where(eq(tenants.id, tenant)).get();
  const section = (row?.config as { metering?: unknown } | null | undefined)?.metering;
  if (section === undefined || section === null) return DEFAULT_METERING;
  // Stored as the schema's output when applied; parsed again so a config applied before a key existed gets its default.
  const parsed = meteringSchema.safeParse(section);
  return parsed.success ? parsed.data : DEFAULT_METERING;
}

function period(from: number | undefined, to: number | undefined, now: number, maxHours: number): { from: number; to: number } {
  const result = hourPeriod(from, to, now, maxHours);
  if (!result.ok) throw new AdminError("bad_request", result.error);
  return result;
}

/** GET /usage: the tenant's usage in whole UTC hours (default: this month so far), grouped, with cost. */
export async function usageOf(env: Env, tenant: string, params: UsageParams, now: number = Date.now()): Promise<UsageReport> {
  const usage = await currentUsage(env, tenant, params, await tenantMetering(env, tenant), now);
  if (!usage.ok) throw new AdminError("bad_request", usage.error);
  return usage.report;
}

export interface PeriodParams {
  period?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

/** `period=YYYY-MM`, or from/to as GET /usage reads them (the schema refuses both at once). */
function chargebackPeriod(params: PeriodParams, now: number): { from: number; to: number } {
  if (params.period !== undefined) {
    const month = monthPeriod(params.period);
    if (!month) throw new AdminError("bad_request", `period must be a calendar month YYYY-MM, not "${params.period}"`);
    return month;
  }
  return period(params.from, params.to, now, MAX_USAGE_HOURS);
}

/** GET /usage/chargeback: JSON, or CSV with a download name. */
export async function chargebackOf(env: Env, tenant: string, params: PeriodParams & { format: "json" | "csv" }, now: number = Date.now()): Promise<Chargeback | Response> {
  const chargeback = await readChargeback(env.DB, tenant, chargebackPeriod(params, now), await tenantMetering(env, tenant), now);
  if (params.format === "json") return chargeback;
  const label = chargeback.period.month ?? `${chargeback.period.from.slice(0, 13)}-${chargeback.period.to.slice(0, 13)}`;
  const name = `chargeback-${tenant}-${label}`.replace(/[^A-Za-z0-9_.-]/g, "_");
  return new Response(chargebackCsv(chargeback), {
    status: 200,
    headers: { "content-type": CSV, "content-disposition": `attachment; filename="${name}.csv"`, "cache-control": "no-store" },
  });
}

export interface StripeAnswer {
  tenant: string;
  period: Chargeback["period"];
  eventName: string;
  /** What `payload.value` is: the consumer's cost (the tenant has a price table) or its billable calls. */
  value: "cost" | "calls";
  currency: string;
  /** STRIPE_API_KEY is set: events not sent yet were sent now (or tried). */
  sending: boolean;
  events: { consumer: string; identifier: string; sentAt: string | null; event: StripeMeterEvent }[];
  sent: string[];
  alreadySent: string[];
  unmapped: string[];
  failed: MeterEventFailure[];
  unsent: string[];
}

/** POST /usage/stripe: the month's meter events, recorded once and sent when the secret is set. */
export async function stripeEventsOf(env: Env, tenant: string, month: string, now: number = Date.now(), options: { fetch?: typeof fetch } = {}): Promise<StripeAnswer> {
  const range = monthPeriod(month);
  if (!range) throw new AdminError("bad_request", `period must be a calendar month YYYY-MM, not "${month}"`);
  // Calls that started before the month's end may still be landing, and entries shipping: an event is sent once.
  if (range.to + STRIPE_SETTLE_MS > now) {
    throw new AdminError("bad_request", `${month} has not settled yet: its meter events would carry a partial value, and an event is sent once; ask again after ${new Date(range.to + STRIPE_SETTLE_MS).toISOString()}`);
  }
  await flushAuditLog(env, tenant);
  const metering = await tenantMetering(env, tenant);
  if (!metering.stripe) throw new AdminError("bad_request", "This tenant's gateway.yaml has no metering.stripe section (eventName and customers): there is no meter to send to");
  const priced = metering.prices.length > 0;
  const chargeback = await readChargeback(env.DB, tenant, range, metering, now);
  const built = await buildMeterEvents(chargeback, metering.stripe, priced);
  const recorded = await recordMeterEvents(env.DB, tenant, built.events);
  const apiKey = env.STRIPE_API_KEY || undefined;
  const report = await sendMeterEvents(env.DB, tenant, recorded, { apiKey, base: env.STRIPE_API_BASE, ...(options.fetch ? { fetch: options.fetch } : {}), now: () => Date.now() });
  log({
    event: "usage.stripe",
    tenant,
    period: month,
    events: report.events.length,
    sent: report.sent.length,
    alreadySent: report.alreadySent.length,
    failed: report.failed.length,
    unmapped: built.unmapped.length,
    sending: apiKey !== undefined,
  }, report.failed.length > 0 ? "warn" : "info");
  return {
    tenant,
    period: chargeback.period,
    eventName: metering.stripe.eventName,
    value: priced ? "cost" : "calls",
    currency: metering.currency,
    sending: apiKey !== undefined,
    events: report.events.map((e) => ({ consumer: e.consumer, identifier: e.event.identifier, sentAt: e.sentAt === null ? null : new Date(e.sentAt).toISOString(), event: e.event })),
    sent: report.sent,
    alreadySent: report.alreadySent,
    unmapped: built.unmapped,
    failed: report.failed,
    unsent: report.unsent,
  };
}
