/**
 * @module Stripe Billing meter events for a tenant's chargeback (gateway.yaml `metering.stripe`), each sent exactly
 * once across retries.
 *
 * **The event** (Stripe's Meter Events API shape): `{event_name, payload: {stripe_customer_id, value}, timestamp,
 * identifier}`, one per consumer with a Stripe customer and a value above zero:
 * - `value`: the consumer's cost for the period as a decimal string (six decimals at most; chargeback.ts) when the
 *   tenant has a price table, else its billable calls (ok + error) — a meter that sums counts calls;
 * - `timestamp`: the period's last second (end − 1 s, epoch seconds), so Stripe files the event under the billing
 *   period it is for, not the next one;
 * - `identifier`: `mgw_` + SHA-256 hex of (tenant, consumer, period, event name) — deterministic, so a retry or a
 *   re-build of the same period carries the same identifier, and distinct for any other consumer, period or meter.
 *
 * **Exactly once**: built events are recorded in D1 `stripe_meter_events` with INSERT OR IGNORE by identifier: the
 * first build wins, and building the same period again returns the recorded events (a later change of price or
 * customer mapping does not re-bill a period). Sending (only with the Worker secret STRIPE_API_KEY) POSTs each event
 * not yet sent to `<STRIPE_API_BASE>/v1/billing/meter_events`, form-encoded, with `Idempotency-Key: <identifier>`,
 * and sets `sent_at` once Stripe accepted it. An event already sent is never sent again. One that failed (Stripe
 * down or unreachable) stays recorded, unsent, for the next attempt; one Stripe refused for its own sake (a 4xx
 * such as an unknown customer) was never billed and is forgotten, so the next attempt builds it again from the
 * configuration as it is then (a corrected customer mapping). Two attempts racing may both POST an event: Stripe
 * keeps one (same Idempotency-Key and identifier).
 */
import { toMicros } from "./pricing.ts";
import { clip } from "../text.ts";
import type { Chargeback } from "./chargeback.ts";
import type { StripeMeteringConfig } from "./schema.ts";

export const STRIPE_API_BASE_DEFAULT = "https://api.stripe.com";
export const STRIPE_METER_EVENTS_PATH = "/v1/billing/meter_events";
/** How long one POST to Stripe may take. */
export const STRIPE_TIMEOUT_MS = 10_000;
/** The most events one attempt sends (a Worker request has a subrequest budget); the rest wait for the next. */
export const MAX_SENDS_PER_ATTEMPT = 200;

export interface StripeMeterEvent {
  event_name: string;
  payload: { stripe_customer_id: string; value: string };
  /** Epoch seconds. */
  timestamp: number;
  identifier: string;
}

export interface BuiltMeterEvent {
  consumer: string;
  event: StripeMeterEvent;
}

export interface BuiltMeterEvents {
  events: BuiltMeterEvent[];
  /** Consumers with a value but no Stripe customer in `metering.stripe.customers`: reported, never sent. */
  unmapped: string[];
}

const hex = (bytes: ArrayBuffer) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** The deterministic identifier of a consumer's event for a period and meter (see the module). */
export async function meterEventIdentifier(tenant: string, consumer: string, period: { from: string; to: string }, eventName: string): Promise<string> {
  const text = JSON.stringify(["mcp-gateway stripe meter event v1", tenant, consumer, period.from, period.to, eventName]);
  return `mgw_${hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)))}`;
}

/**
 * The meter events of a chargeback: value the cost when `priced` (the tenant has a price table), else the billable
 * calls; consumers whose value is zero get none.
 */
export async function buildMeterEvents(chargeback: Chargeback, stripe: StripeMeteringConfig, priced: boolean): Promise<BuiltMeterEvents> {
  const events: BuiltMeterEvent[] = [];
  const unmapped: string[] = [];
  const timestamp = Math.floor(Date.parse(chargeback.period.to) / 1000) - 1;
  for (const line of chargeback.consumers) {
    // Stripe meters take whole numbers: a cost goes in micro-units of the currency (set the meter's price per 10⁶).
    const value = priced ? toMicros(line.cost) : BigInt(line.billableCalls);
    if (value <= 0n) continue;
    const customer = Object.hasOwn(stripe.customers, line.consumer) ? stripe.customers[line.consumer] : undefined;
    if (customer === undefined) {
      unmapped.push(line.consumer);
      continue;
    }
    const identifier = await meterEventIdentifier(chargeback.tenant, line.consumer, chargeback.period, stripe.eventName);
    events.push({
      consumer: line.consumer,
      event: { event_name: stripe.eventName, payload: { stripe_customer_id: customer, value: String(value) }, timestamp, identifier },
    });
  }
  return { events, unmapped };
}

/** The form body of POST /v1/billing/meter_events. */
export function meterEventForm(event: StripeMeterEvent): string {
  const form = new URLSearchParams();
  form.set("event_name", event.event_name);
  form.set("payload[stripe_customer_id]", event.payload.stripe_customer_id);
  form.set("payload[value]", event.payload.value);
  form.set("timestamp", String(event.timestamp));
  form.set("identifier", event.identifier);
  return form.toString();
}

/**
 * A failure either stops the attempt (`stop`: Stripe is failing or unreachable, or refuses the key — 5xx, 429, 401,
 * 403, no answer — so every other event would fail alike) or concerns this event only (another 4xx).
 */
export type SendOutcome = { ok: true } | { ok: false; status: number | null; message: string; stop: boolean };

/** POSTs one event to Stripe. Never throws: a refusal or a network failure comes back as a value. */
export async function sendMeterEvent(event: StripeMeterEvent, options: { apiKey: string; base?: string | undefined; fetch?: typeof fetch }): Promise<SendOutcome> {
  const base = (options.base || STRIPE_API_BASE_DEFAULT).replace(/\/+$/, "");
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(`${base}${STRIPE_METER_EVENTS_PATH}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        "content-type": "application/x-www-form-urlencoded",
        "idempotency-key": event.identifier,
      },
      body: meterEventForm(event),
      signal: AbortSignal.timeout(STRIPE_TIMEOUT_MS),
    });
  } catch (error) {
    const reason = (error as Error).name === "TimeoutError" ? `no answer within ${STRIPE_TIMEOUT_MS / 1000} s` : clip((error as Error).message, 200);
    return { ok: false, status: null, message: `Stripe could not be reached: ${reason}`, stop: true };
  }
  const text = await response.text().catch(() => "");
  if (response.ok) return { ok: true };
  let message = `HTTP ${response.status}`;
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown; code?: unknown } };
    if (typeof body.error?.message === "string") message = `${message}: ${clip(body.error.message, 300)}`;
  } catch {
    // not Stripe's JSON error: the status says enough
  }
  return { ok: false, status: response.status, message, stop: response.status >= 500 || [401, 403, 429].includes(response.status) };
}

export interface MeterEventState extends BuiltMeterEvent {
  /** Epoch ms when Stripe accepted it, or null. */
  sentAt: number | null;
}

/**
 * Records built events (INSERT OR IGNORE: the first build of an identifier wins) and returns what D1 holds for
 * them, in the order given.
 */
export async function recordMeterEvents(d1: D1Database, tenant: string, built: readonly BuiltMeterEvent[]): Promise<MeterEventState[]> {
  if (built.length === 0) return [];
  await d1.batch(
    built.map(({ event }) =>
      d1.prepare("INSERT OR IGNORE INTO stripe_meter_events (identifier, tenant_id, event) VALUES (?, ?, ?)").bind(event.identifier, tenant, JSON.stringify(event)),
    ),
  );
  const { results } = await d1
    .prepare("SELECT identifier, event, sent_at FROM stripe_meter_events WHERE tenant_id = ? AND identifier IN (SELECT value FROM json_each(?))")
    .bind(tenant, JSON.stringify(built.map((b) => b.event.identifier)))
    .all<{ identifier: string; event: string; sent_at: number | null }>();
  const stored = new Map(results.map((r) => [r.identifier, r]));
  return built.map((b) => {
    const row = stored.get(b.event.identifier);
    if (!row) throw new Error(`stripe_meter_events lost ${b.event.identifier}`);
    return { consumer: b.consumer, event: JSON.parse(row.event) as StripeMeterEvent, sentAt: row.sent_at };
  });
}

/**
 * Forgets an unsent event Stripe refused (a 4xx about the event itself, e.g. a customer id it does not know): it was
 * never billed, so the next attempt builds it again from the configuration of that time (a fixed customer mapping).
 */
export async function forgetMeterEvent(d1: D1Database, tenant: string, identifier: string): Promise<void> {
  await d1.prepare("DELETE FROM stripe_meter_events WHERE tenant_id = ? AND identifier = ? AND sent_at IS NULL").bind(tenant, identifier).run();
}

/** Marks an event sent (once: a concurrent attempt that marked it first keeps its time). */
export async function markMeterEventSent(d1: D1Database, tenant: string, identifier: string, now: number): Promise<void> {
  await d1.prepare("UPDATE stripe_meter_events SET sent_at = ? WHERE tenant_id = ? AND identifier = ? AND sent_at IS NULL").bind(now, tenant, identifier).run();
}

export interface MeterEventFailure {
  consumer: string;
  identifier: string;
  status: number | null;
  message: string;
}

export interface SendReport {
  events: MeterEventState[];
  /** Consumers whose event was sent by this attempt. */
  sent: string[];
  /** Consumers whose event an earlier attempt sent (not sent again). */
  alreadySent: string[];
  failed: MeterEventFailure[];
  /** Consumers whose event was not attempted: no STRIPE_API_KEY, the per-attempt cap, or Stripe failing (5xx, 429, unreachable) earlier in this attempt. */
  unsent: string[];
}

/**
 * Sends the recorded events not yet sent (all of them unsent when `apiKey` is undefined). After a failure that
 * stops the attempt (see {@link SendOutcome}) the rest wait for the next attempt; an event Stripe refused (another
 * 4xx) does not stop the others, and is forgotten ({@link forgetMeterEvent}) to be built afresh next time.
 */
export async function sendMeterEvents(
  d1: D1Database,
  tenant: string,
  events: readonly MeterEventState[],
  options: { apiKey: string | undefined; base?: string | undefined; fetch?: typeof fetch; now?: () => number },
): Promise<SendReport> {
  const report: SendReport = { events: [], sent: [], alreadySent: [], failed: [], unsent: [] };
  let attempts = 0;
  let stopped = options.apiKey === undefined || options.apiKey === "";
  for (const state of events) {
    if (state.sentAt !== null) {
      report.alreadySent.push(state.consumer);
      report.events.push(state);
      continue;
    }
    if (stopped || attempts >= MAX_SENDS_PER_ATTEMPT) {
      report.unsent.push(state.consumer);
      report.events.push(state);
      continue;
    }
    attempts++;
    const outcome = await sendMeterEvent(state.event, { apiKey: options.apiKey as string, base: options.base, ...(options.fetch ? { fetch: options.fetch } : {}) });
    if (outcome.ok) {
      const now = (options.now ?? Date.now)();
      await markMeterEventSent(d1, tenant, state.event.identifier, now);
      report.sent.push(state.consumer);
      report.events.push({ ...state, sentAt: now });
      continue;
    }
    report.failed.push({ consumer: state.consumer, identifier: state.event.identifier, status: outcome.status, message: outcome.message });
    report.events.push(state);
    if (outcome.stop) stopped = true;
    else await forgetMeterEvent(d1, tenant, state.event.identifier);
  }
  return report;
}
