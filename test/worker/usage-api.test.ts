/**
 * The admin API's usage endpoints (docs/admin-api.md) inside workerd with local D1: usage grouped by consumer,
 * server, tool and hour with totals, cost under a price table applied with PUT /admin/v1/config, percentiles from
 * known histogram buckets, whole-hour periods, tenant isolation, refused parameters, the chargeback as JSON and CSV,
 * and Stripe meter events — sent exactly once to a real local fake of Stripe's API (test/worker/webhook-receiver.ts)
 * with Idempotency-Key, left unsent by a failure and sent by the next attempt, and only recorded without the secret.
 *
 * usage_hourly rows are seeded with SQL (the audit chain's folding is tested elsewhere); each test has its own tenant.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { sha256Hex } from "../../src/auth/secrets.ts";
import worker from "../../src/index.ts";
import { meterEventIdentifier } from "../../src/metering/stripe.ts";
import { adminCall, BASE, PLATFORM_TOKEN, seedUsageRows, type AdminAnswer, type UsageSeedRow } from "./fixtures.ts";
import { STRIPE_TEST_KEY, type AcceptedMeterEvent, type ReceivedStripeRequest } from "./webhook-receiver.ts";

const ADMIN = "/admin/v1";
const RECEIVER = inject("auditWebhookReceiver");
let counter = 0;

/** Two hours of a month long over (September 2026), and hours just outside it. */
const H0 = "2026-09-03T10:00:00.000Z";
const H1 = "2026-09-03T11:00:00.000Z";
const BEFORE = "2026-08-31T23:00:00.000Z";
const AFTER = "2026-10-01T00:00:00.000Z";

const PRICES = [
  { perCall: 0.001 },
  { server: "crm", perCall: 0.002 },
  { server: "crm", tool: "delete_*", perCall: 0.01, perKB: 0.0005 },
];
const STRIPE = { eventName: "mcp_gateway_cost", customers: { "agent-1": "cus_Agent1", "agent-2": "cus_Agent2" } };
const METERING = { currency: "credits", prices: PRICES, stripe: STRIPE };

/** A fresh tenant whose gateway.yaml (applied through the admin API) has an admin key and `metering`. */
async function tenantWith(metering?: unknown): Promise<{ tenant: string; adminKey: string }> {
  const tenant = `use-${++counter}-${crypto.randomUUID().slice(0, 8)}`;
  const adminKey = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
  const doc = {
    tenant,
    auth: { keys: [{ id: "admin", keyHash: await sha256Hex(adminKey), name: "admin", consumerId: "ops", roles: ["admin"] }] },
    ...(metering === undefined ? {} : { metering }),
  };
  const applied = await adminCall("PUT", `${ADMIN}/config`, PLATFORM_TOKEN, doc);
  expect(applied.status, applied.text).toBe(200);
  return { tenant, adminKey };
}

/** A usage row of the tenant under test, its hour as an ISO time. */
type SeedRow = Omit<UsageSeedRow, "tenant" | "hour"> & { hour: string };

const seedUsage = (tenant: string, rows: SeedRow[]): Promise<void> => seedUsageRows(rows.map((r) => ({ ...r, tenant, hour: Date.parse(r.hour) })));

/**
 * The standard month: agent-1 calls crm get_customer (8 ok, 1 error, 1 denied) and delete_customer (3 ok, 1
 * limited, 2000 bytes); agent-2 billing refund (5 ok, all over 30 s); agent-3 crm get_customer (1 ok, 1 error); 3
 * unauthenticated calls; plus rows just before and after September that must never count.
 *
 * Costs: agent-1 9 × 0.002 + 3 × 0.01 + 2000 B × 0.0005/KB = 0.049; agent-2 5 × 0.001 = 0.005; agent-3 2 × 0.002 =
 * 0.004; total 0.058.
 */
const MONTH: SeedRow[] = [
  { hour: H0, consumer: "agent-1", server: "crm", tool: "get_customer", ok: 8, errors: 1, denied: 1, latencySumMs: 700, requestBytes: 1000, responseBytes: 3000, buckets: { 0: 5, 3: 4, 7: 1 } },
  { hour: H1, consumer: "agent-1", server: "crm", tool: "delete_customer", ok: 3, limited: 1, latencySumMs: 800, requestBytes: 2000, buckets: { 5: 4 } },
  { hour: H0, consumer: "agent-2", server: "billing", tool: "refund", ok: 5, latencySumMs: 200_000, requestBytes: 500, responseBytes: 500, buckets: { 12: 5 } },
  { hour: H1, consumer: "agent-3", server: "crm", tool: "get_customer", ok: 1, errors: 1, latencySumMs: 14, buckets: { 1: 2 } },
  { hour: H0, unauthenticated: 3, buckets: { 0: 3 } },
  { hour: BEFORE, consumer: "agent-1", server: "crm", tool: "get_customer", ok: 100, buckets: { 0: 100 } },
  { hour: AFTER, consumer: "agent-1", server: "crm", tool: "get_customer", ok: 100, buckets: { 0: 100 } },
];

const SEPTEMBER = `from=2026-09-01T00:00:00Z&to=2026-10-01T00:00:00Z`;

async function usage(adminKey: string, query: string): Promise<AdminAnswer> {
  return adminCall("GET", `${ADMIN}/usage?${query}`, adminKey);
}

function expectError(answer: AdminAnswer, status: number, code: string): void {
  expect({ status: answer.status, code: answer.body?.error?.code }, answer.text).toEqual({ status, code });
  expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
}

const latency = (sum: number, count: number, p50: number | null, p95: number | null, p99: number | null) => ({ sum, count, p50, p95, p99 });

describe("GET /admin/v1/usage", () => {
  it("groups by consumer (the default) with counts, bytes, percentiles, cost and totals", async () => {
    const t = await tenantWith(METERING);
    await seedUsage(t.tenant, MONTH);
    const answer = await usage(t.adminKey, SEPTEMBER);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({ tenant: t.tenant, from: "2026-09-01T00:00:00.000Z", to: "2026-10-01T00:00:00.000Z", by: "consumer", consumer: null, currency: "credits" });
    // By cost, descending; the unauthenticated row (no consumer) costs nothing and comes last.
    expect(answer.body.rows).toEqual([
      {
        consumer: "agent-1",
        calls: 14,
        ok: 11,
        errors: 1,
        denied: 1,
        limited: 1,
        unknown: 0,
        unauthenticated: 0,
        billableCalls: 12,
        // buckets 0:5, 3:4, 5:4, 7:1 (n = 14): the 7th latency is in bucket 3 (≤ 50 ms), the 14th in bucket 7 (≤ 1 s).
        latencyMs: latency(1500, 14, 50, 1000, 1000),
        requestBytes: 3000,
        responseBytes: 3000,
        bytes: 6000,
        cost: 0.049,
      },
      {
        consumer: "agent-2",
        calls: 5,
        ok: 5,
        errors: 0,
        denied: 0,
        limited: 0,
        unknown: 0,
        unauthenticated: 0,
        billableCalls: 5,
        // Every call over 30 s: in the unbounded bucket, so no percentile can be bounded.
        latencyMs: latency(200_000, 5, null, null, null),
        requestBytes: 500,
        responseBytes: 500,
        bytes: 1000,
        cost: 0.005,
      },
      {
        consumer: "agent-3",
        calls: 2,
        ok: 1,
        errors: 1,
        denied: 0,
        limited: 0,
        unknown: 0,
        unauthenticated: 0,
        billableCalls: 2,
        latencyMs: latency(14, 2, 10, 10, 10),
        requestBytes: 0,
        responseBytes: 0,
        bytes: 0,
        cost: 0.004,
      },
      {
        consumer: null,
        calls: 3,
        ok: 0,
        errors: 0,
        denied: 0,
        limited: 0,
        unknown: 0,
        unauthenticated: 3,
        billableCalls: 0,
        latencyMs: latency(0, 3, 5, 5, 5),
        requestBytes: 0,
        responseBytes: 0,
        bytes: 0,
        cost: 0,
      },
    ]);
    // Totals from the summed histogram: 0:8, 1:2, 3:4, 5:4, 7:1, 12:5 (n = 24): 12th in bucket 3, 23rd and 24th in 12.
    expect(answer.body.totals).toEqual({
      calls: 24,
      ok: 17,
      errors: 2,
      denied: 1,
      limited: 1,
      unknown: 0,
      unauthenticated: 3,
      billableCalls: 19,
      latencyMs: latency(201_514, 24, 50, null, null),
      requestBytes: 3500,
      responseBytes: 3500,
      bytes: 7000,
      cost: 0.058,
    });
  });

  it("groups by server, by (server, tool) and by hour, and filters one consumer", async () => {
    const t = await tenantWith(METERING);
    await seedUsage(t.tenant, MONTH);
    const pick = (rows: any[], ...keys: string[]) => rows.map((r) => Object.fromEntries([...keys, "calls", "cost"].map((k) => [k, r[k]])));

    const byServer = await usage(t.adminKey, `${SEPTEMBER}&by=server`);
    expect(byServer.status).toBe(200);
    expect(pick(byServer.body.rows, "server")).toEqual([
      { server: "crm", calls: 16, cost: 0.053 },
      { server: "billing", calls: 5, cost: 0.005 },
      { server: null, calls: 3, cost: 0 },
    ]);
    expect(byServer.body.rows[0]).not.toHaveProperty("consumer");

    const byTool = await usage(t.adminKey, `${SEPTEMBER}&by=tool`);
    expect(pick(byTool.body.rows, "server", "tool")).toEqual([
      { server: "crm", tool: "delete_customer", calls: 4, cost: 0.031 },
      { server: "crm", tool: "get_customer", calls: 12, cost: 0.022 },
      { server: "billing", tool: "refund", calls: 5, cost: 0.005 },
      { server: null, tool: null, calls: 3, cost: 0 },
    ]);

    const byHour = await usage(t.adminKey, `${SEPTEMBER}&by=hour`);
    expect(pick(byHour.body.rows, "hour")).toEqual([
      { hour: H0, calls: 18, cost: 0.023 },
      { hour: H1, calls: 6, cost: 0.035 },
    ]);
    expect(byHour.body.totals.cost).toBe(0.058);

    const one = await usage(t.adminKey, `${SEPTEMBER}&by=tool&consumer=agent-1`);
    expect(one.body.consumer).toBe("agent-1");
    expect(pick(one.body.rows, "server", "tool")).toEqual([
      { server: "crm", tool: "delete_customer", calls: 4, cost: 0.031 },
      { server: "crm", tool: "get_customer", calls: 10, cost: 0.018 },
    ]);
    expect(one.body.totals).toMatchObject({ calls: 14, cost: 0.049 });
  });

  it("counts whole UTC hours: from rounds down, to rounds up, and the answer says which hours", async () => {
    const t = await tenantWith(METERING);
    await seedUsage(t.tenant, MONTH);
    const answer = await usage(t.adminKey, `from=2026-09-03T10:30:00Z&to=${Date.parse("2026-09-03T10:45:00Z")}&by=hour`);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ from: H0, to: H1 });
    expect(answer.body.rows.map((r: any) => r.hour)).toEqual([H0]);
    // An offset is honoured: 12:00+02:00 is 10:00Z.
    const offset = await usage(t.adminKey, `from=${encodeURIComponent("2026-09-03T12:00:00+02:00")}&to=${encodeURIComponent("2026-09-03T13:00:00+02:00")}`);
    expect(offset.body).toMatchObject({ from: H0, to: H1 });
  });

  it("without a price table everything is counted and nothing costs anything; the currency defaults to units", async () => {
    const t = await tenantWith();
    await seedUsage(t.tenant, MONTH);
    const answer = await usage(t.adminKey, SEPTEMBER);
    expect(answer.body.currency).toBe("units");
    expect(answer.body.totals).toMatchObject({ calls: 24, cost: 0 });
    expect(answer.body.rows.every((r: any) => r.cost === 0)).toBe(true);
  });

  it("defaults to this month so far, and an empty period is zero rows and zero totals", async () => {
    const t = await tenantWith(METERING);
    const now = Date.now();
    const hour = new Date(Math.floor(now / 3_600_000) * 3_600_000).toISOString();
    await seedUsage(t.tenant, [...MONTH, { hour, consumer: "agent-9", server: "crm", tool: "get_customer", ok: 2 }]);
    const answer = await usage(t.adminKey, "");
    expect(answer.status).toBe(200);
    const start = new Date(now);
    expect(answer.body.from).toBe(new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), 1)).toISOString());
    expect(Date.parse(answer.body.to)).toBe(Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000);
    expect(answer.body.rows).toEqual([expect.objectContaining({ consumer: "agent-9", calls: 2, cost: 0.004 })]);

    const empty = await usage(t.adminKey, "from=2020-01-01&to=2020-01-02");
    expect(empty.body.rows).toEqual([]);
    expect(empty.body.totals).toMatchObject({ calls: 0, cost: 0, latencyMs: latency(0, 0, null, null, null) });
  });

  it("shows a tenant only its own usage", async () => {
    const a = await tenantWith(METERING);
    const b = await tenantWith(METERING);
    await seedUsage(a.tenant, MONTH);
    await seedUsage(b.tenant, [{ hour: H0, consumer: "agent-1", server: "crm", tool: "get_customer", ok: 7 }]);
    expect((await usage(a.adminKey, SEPTEMBER)).body.totals.calls).toBe(24);
    const own = await usage(b.adminKey, SEPTEMBER);
    expect(own.body.rows).toEqual([expect.objectContaining({ consumer: "agent-1", calls: 7, cost: 0.014 })]);
    expect(own.body.totals.calls).toBe(7);
    // A's admin naming B is refused (as for every admin route), and the platform token sees each as asked.
    expectError(await usage(a.adminKey, `${SEPTEMBER}&tenant=${b.tenant}`), 403, "forbidden");
    expect((await usage(PLATFORM_TOKEN, `${SEPTEMBER}&tenant=${b.tenant}`)).body.totals.calls).toBe(7);
    expectError(await usage(PLATFORM_TOKEN, SEPTEMBER), 400, "bad_request");
    const chargeback = await adminCall("GET", `${ADMIN}/usage/chargeback?period=2026-09`, b.adminKey);
    expect(chargeback.body.consumers).toEqual([{ consumer: "agent-1", calls: 7, billableCalls: 7, bytes: 0, cost: 0.014 }]);
  });

  it.each([
    ["by=week", "by"],
    ["from=yesterday", "from"],
    ["to=2026-13-01", "to"],
    ["from=2026-09-02&to=2026-09-01", "before"],
    ["from=2026-09-01T10:00:00Z&to=2026-09-01T10:00:00Z", "before"],
    ["from=2025-01-01&to=2026-09-01", "366"],
    ["from=2026-07-01&to=2026-09-01&by=hour", "744"],
    ["consumer=", "consumer"],
    ["server=crm", "server"],
  ])("refuses %s with 400", async (query, mention) => {
    const t = await tenantWith(METERING);
    const answer = await usage(t.adminKey, query);
    expectError(answer, 400, "bad_request");
    expect(JSON.stringify(answer.body.error)).toContain(mention);
  });
});

describe("GET /admin/v1/usage/chargeback", () => {
  it("is each consumer's calls and cost for a month, as JSON", async () => {
    const t = await tenantWith(METERING);
    await seedUsage(t.tenant, MONTH);
    const answer = await adminCall("GET", `${ADMIN}/usage/chargeback?period=2026-09`, t.adminKey);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({
      tenant: t.tenant,
      period: { from: "2026-09-01T00:00:00.000Z", to: "2026-10-01T00:00:00.000Z", month: "2026-09" },
      complete: true,
      currency: "credits",
      consumers: [
        { consumer: "agent-1", calls: 14, billableCalls: 12, bytes: 6000, cost: 0.049 },
        { consumer: "agent-2", calls: 5, billableCalls: 5, bytes: 1000, cost: 0.005 },
        { consumer: "agent-3", calls: 2, billableCalls: 2, bytes: 0, cost: 0.004 },
      ],
      totals: { calls: 21, billableCalls: 19, bytes: 7000, cost: 0.058 },
    });
    // from/to give the same month, and say so.
    const ranged = await adminCall("GET", `${ADMIN}/usage/chargeback?${SEPTEMBER}`, t.adminKey);
    expect(ranged.body).toEqual(answer.body);
  });

  it("is CSV with a download name, and a period still running is marked incomplete", async () => {
    const t = await tenantWith(METERING);
    await seedUsage(t.tenant, MONTH);
    const answer = await adminCall("GET", `${ADMIN}/usage/chargeback?period=2026-09&format=csv`, t.adminKey);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(answer.headers.get("content-disposition")).toBe(`attachment; filename="chargeback-${t.tenant}-2026-09.csv"`);
    expect(answer.text).toBe(
      [
        "period_start,period_end,consumer,calls,billable_calls,bytes,cost,currency",
        "2026-09-01T00:00:00.000Z,2026-10-01T00:00:00.000Z,agent-1,14,12,6000,0.049,credits",
        "2026-09-01T00:00:00.000Z,2026-10-01T00:00:00.000Z,agent-2,5,5,1000,0.005,credits",
        "2026-09-01T00:00:00.000Z,2026-10-01T00:00:00.000Z,agent-3,2,2,0,0.004,credits",
        "",
      ].join("\r\n"),
    );
    const now = new Date();
    const month = now.toISOString().slice(0, 7);
    const running = await adminCall("GET", `${ADMIN}/usage/chargeback?period=${month}`, t.adminKey);
    expect(running.body).toMatchObject({ complete: false, period: { month }, consumers: [] });
  });

  it.each([
    ["period=2026-13", "period"],
    ["period=2026-9", "period"],
    ["period=2026-09&from=2026-09-01", "period"],
    ["period=2026-09&format=xlsx", "format"],
    ["period=2026-09&by=tool", "by"],
  ])("refuses %s with 400", async (query, mention) => {
    const t = await tenantWith(METERING);
    const answer = await adminCall("GET", `${ADMIN}/usage/chargeback?${query}`, t.adminKey);
    expectError(answer, 400, "bad_request");
    expect(JSON.stringify(answer.body.error)).toContain(mention);
  });
});

// ---- Stripe -------------------------------------------------------------------------------------------------

/** POST /usage/stripe through the Worker's own fetch handler with the Stripe secret and the fake's base URL bound. */
async function stripePost(adminKey: string, period: string, channel: string | undefined): Promise<AdminAnswer> {
  const bindings = channel === undefined ? env : { ...env, STRIPE_API_KEY: STRIPE_TEST_KEY, STRIPE_API_BASE: `${RECEIVER}/stripe/${channel}` };
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`${BASE}${ADMIN}/usage/stripe?period=${period}`, { method: "POST", headers: { authorization: `Bearer ${adminKey}` } }), bindings, ctx);
  await waitOnExecutionContext(ctx);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

async function fakeStripe(channel: string): Promise<{ requests: ReceivedStripeRequest[]; events: AcceptedMeterEvent[] }> {
  return (await fetch(`${RECEIVER}/control/${channel}/stripe`)).json();
}

async function failNext(channel: string, count: number, status = 500): Promise<void> {
  expect((await fetch(`${RECEIVER}/control/${channel}/fail`, { method: "POST", body: JSON.stringify({ count, status }) })).status).toBe(200);
}

async function storedEvents(tenant: string): Promise<{ identifier: string; event: string; sent_at: number | null }[]> {
  return (await env.DB.prepare("SELECT identifier, event, sent_at FROM stripe_meter_events WHERE tenant_id = ? ORDER BY identifier").bind(tenant).all<any>()).results;
}

/** The period's last second: 2026-10-01T00:00:00Z − 1 s. */
const SEPTEMBER_END = Date.parse("2026-10-01T00:00:00Z") / 1000 - 1;

describe("POST /admin/v1/usage/stripe", () => {
  it("without STRIPE_API_KEY builds and records the events, sends nothing, and reports unmapped consumers", async () => {
    const t = await tenantWith(METERING);
    await seedUsage(t.tenant, MONTH);
    const answer = await adminCall("POST", `${ADMIN}/usage/stripe?period=2026-09`, t.adminKey);
    expect(answer.status, answer.text).toBe(200);
    const period = { from: "2026-09-01T00:00:00.000Z", to: "2026-10-01T00:00:00.000Z" };
    const id1 = await meterEventIdentifier(t.tenant, "agent-1", period, STRIPE.eventName);
    const id2 = await meterEventIdentifier(t.tenant, "agent-2", period, STRIPE.eventName);
    expect(answer.body).toEqual({
      tenant: t.tenant,
      period: { ...period, month: "2026-09" },
      eventName: "mcp_gateway_cost",
      value: "cost",
      currency: "credits",
      sending: false,
      events: [
        {
          consumer: "agent-1",
          identifier: id1,
          sentAt: null,
          event: { event_name: "mcp_gateway_cost", payload: { stripe_customer_id: "cus_Agent1", value: "49000" }, timestamp: SEPTEMBER_END, identifier: id1 },
        },
        {
          consumer: "agent-2",
          identifier: id2,
          sentAt: null,
          event: { event_name: "mcp_gateway_cost", payload: { stripe_customer_id: "cus_Agent2", value: "5000" }, timestamp: SEPTEMBER_END, identifier: id2 },
        },
      ],
      sent: [],
      alreadySent: [],
      unmapped: ["agent-3"],
      failed: [],
      unsent: ["agent-1", "agent-2"],
    });
    expect(id1).toMatch(/^mgw_[0-9a-f]{64}$/);
    const stored = await storedEvents(t.tenant);
    expect(stored.map((r) => [r.identifier, r.sent_at])).toEqual([[id1, null], [id2, null]].sort());
    expect(stored.map((r) => JSON.parse(r.event))).toEqual(expect.arrayContaining(answer.body.events.map((e: any) => e.event)));
  });

  it("sends each event once to Stripe with Idempotency-Key = identifier; a second POST sends nothing new", async () => {
    const t = await tenantWith(METERING);
    const channel = `stripe-once-${crypto.randomUUID().slice(0, 8)}`;
    await seedUsage(t.tenant, MONTH);
    const first = await stripePost(t.adminKey, "2026-09", channel);
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({ sending: true, sent: ["agent-1", "agent-2"], alreadySent: [], failed: [], unsent: [], unmapped: ["agent-3"] });
    expect(first.body.events.every((e: any) => typeof e.sentAt === "string")).toBe(true);

    const fake = await fakeStripe(channel);
    expect(fake.requests).toHaveLength(2);
    for (const [i, request] of fake.requests.entries()) {
      const event = first.body.events[i].event;
      expect(request).toMatchObject({
        authorization: `Bearer ${STRIPE_TEST_KEY}`,
        idempotencyKey: event.identifier,
        contentType: "application/x-www-form-urlencoded",
        answered: 200,
        replayed: false,
        form: {
          event_name: "mcp_gateway_cost",
          "payload[stripe_customer_id]": event.payload.stripe_customer_id,
          "payload[value]": event.payload.value,
          timestamp: String(SEPTEMBER_END),
          identifier: event.identifier,
        },
      });
    }
    expect(fake.events.map((e) => e.payload)).toEqual([
      { stripe_customer_id: "cus_Agent1", value: "49000" },
      { stripe_customer_id: "cus_Agent2", value: "5000" },
    ]);
    expect((await storedEvents(t.tenant)).every((r) => typeof r.sent_at === "number")).toBe(true);

    const again = await stripePost(t.adminKey, "2026-09", channel);
    expect(again.body).toMatchObject({ sent: [], alreadySent: ["agent-1", "agent-2"], failed: [], unsent: [] });
    expect(again.body.events.map((e: any) => e.sentAt)).toEqual(first.body.events.map((e: any) => e.sentAt));
    expect((await fakeStripe(channel)).requests).toHaveLength(2);
  });

  it("a Stripe failure leaves the events unsent, and the next POST sends them", async () => {
    const t = await tenantWith(METERING);
    const channel = `stripe-fail-${crypto.randomUUID().slice(0, 8)}`;
    await seedUsage(t.tenant, MONTH);
    await failNext(channel, 1, 500);
    const failed = await stripePost(t.adminKey, "2026-09", channel);
    expect(failed.status, failed.text).toBe(200);
    // The first POST got a 500: Stripe is having trouble, so the second event waits for the next attempt too.
    expect(failed.body).toMatchObject({ sent: [], alreadySent: [], unsent: ["agent-2"] });
    expect(failed.body.failed).toEqual([{ consumer: "agent-1", identifier: failed.body.events[0].identifier, status: 500, message: "HTTP 500: told to fail" }]);
    expect((await storedEvents(t.tenant)).map((r) => r.sent_at)).toEqual([null, null]);
    expect((await fakeStripe(channel)).events).toEqual([]);

    const retried = await stripePost(t.adminKey, "2026-09", channel);
    expect(retried.body).toMatchObject({ sent: ["agent-1", "agent-2"], alreadySent: [], failed: [], unsent: [] });
    const fake = await fakeStripe(channel);
    // Three requests in all (the failed one, then one per event), each identifier accepted once, with the same key.
    expect(fake.requests.map((r) => [r.idempotencyKey, r.answered])).toEqual([
      [failed.body.events[0].identifier, 500],
      [failed.body.events[0].identifier, 200],
      [failed.body.events[1].identifier, 200],
    ]);
    expect(fake.events.map((e) => e.identifier)).toEqual(failed.body.events.map((e: any) => e.identifier));
    expect((await storedEvents(t.tenant)).every((r) => typeof r.sent_at === "number")).toBe(true);
  });

  it("an event Stripe refuses (4xx) does not hold back the others, and is built afresh by the next POST", async () => {
    const t = await tenantWith(METERING);
    const channel = `stripe-refused-${crypto.randomUUID().slice(0, 8)}`;
    await seedUsage(t.tenant, MONTH);
    await failNext(channel, 1, 400);
    const answer = await stripePost(t.adminKey, "2026-09", channel);
    expect(answer.body).toMatchObject({ sent: ["agent-2"], unsent: [], failed: [{ consumer: "agent-1", status: 400 }] });
    const [refused, accepted] = answer.body.events.map((e: any) => e.identifier);
    // Never billed, so forgotten: the next build takes the configuration as it is then (here, a new customer id).
    expect((await storedEvents(t.tenant)).map((r) => r.identifier)).toEqual([accepted]);
    const doc = {
      tenant: t.tenant,
      auth: { keys: [{ id: "admin", keyHash: await sha256Hex(t.adminKey), name: "admin", consumerId: "ops", roles: ["admin"] }] },
      metering: { ...METERING, stripe: { ...STRIPE, customers: { ...STRIPE.customers, "agent-1": "cus_Fixed" } } },
    };
    expect((await adminCall("PUT", `${ADMIN}/config`, t.adminKey, doc)).status).toBe(200);
    const next = await stripePost(t.adminKey, "2026-09", channel);
    expect(next.body).toMatchObject({ sent: ["agent-1"], alreadySent: ["agent-2"], failed: [] });
    expect(next.body.events[0]).toMatchObject({ identifier: refused, event: { payload: { stripe_customer_id: "cus_Fixed", value: "49000" } } });
    expect((await fakeStripe(channel)).events.map((e) => e.payload.stripe_customer_id)).toEqual(["cus_Agent2", "cus_Fixed"]);
  });

  it("a refused key (401) stops the attempt and keeps every event for the next", async () => {
    const t = await tenantWith(METERING);
    const channel = `stripe-key-${crypto.randomUUID().slice(0, 8)}`;
    await seedUsage(t.tenant, MONTH);
    await failNext(channel, 1, 401);
    const answer = await stripePost(t.adminKey, "2026-09", channel);
    expect(answer.body).toMatchObject({ sent: [], unsent: ["agent-2"], failed: [{ consumer: "agent-1", status: 401 }] });
    expect(await storedEvents(t.tenant)).toHaveLength(2);
  });

  it("the first build of a period wins: a later price change does not change its recorded events", async () => {
    const t = await tenantWith(METERING);
    await seedUsage(t.tenant, MONTH);
    const built = await adminCall("POST", `${ADMIN}/usage/stripe?period=2026-09`, t.adminKey);
    const doc = {
      tenant: t.tenant,
      auth: { keys: [{ id: "admin", keyHash: await sha256Hex(t.adminKey), name: "admin", consumerId: "ops", roles: ["admin"] }] },
      metering: { ...METERING, prices: [{ perCall: 1 }] },
    };
    expect((await adminCall("PUT", `${ADMIN}/config`, t.adminKey, doc)).status).toBe(200);
    // The usage shows the new prices at once…
    expect((await usage(t.adminKey, SEPTEMBER)).body.totals.cost).toBe(19);
    // …but the month's meter events stay those recorded first, and are sent as they were built.
    const channel = `stripe-first-${crypto.randomUUID().slice(0, 8)}`;
    const sent = await stripePost(t.adminKey, "2026-09", channel);
    expect(sent.body.events.map((e: any) => e.event)).toEqual(built.body.events.map((e: any) => e.event));
    expect((await fakeStripe(channel)).events.map((e) => e.payload.value)).toEqual(["49000", "5000"]);
  });

  it("without a price table the value is the consumer's billable calls", async () => {
    const t = await tenantWith({ stripe: STRIPE });
    await seedUsage(t.tenant, MONTH);
    const answer = await adminCall("POST", `${ADMIN}/usage/stripe?period=2026-09`, t.adminKey);
    expect(answer.body.value).toBe("calls");
    expect(answer.body.events.map((e: any) => [e.consumer, e.event.payload.value])).toEqual([
      ["agent-1", "12"],
      ["agent-2", "5"],
    ]);
  });

  it("refuses a month that has not ended, a malformed period, and a tenant without metering.stripe", async () => {
    const t = await tenantWith(METERING);
    const month = new Date().toISOString().slice(0, 7);
    const running = await adminCall("POST", `${ADMIN}/usage/stripe?period=${month}`, t.adminKey);
    expectError(running, 400, "bad_request");
    expect(running.body.error.message).toContain("has not settled");
    expectError(await adminCall("POST", `${ADMIN}/usage/stripe`, t.adminKey), 400, "bad_request");
    expectError(await adminCall("POST", `${ADMIN}/usage/stripe?period=2026-09-01`, t.adminKey), 400, "bad_request");
    const plain = await tenantWith({ prices: PRICES });
    const none = await adminCall("POST", `${ADMIN}/usage/stripe?period=2026-09`, plain.adminKey);
    expectError(none, 400, "bad_request");
    expect(none.body.error.message).toContain("metering.stripe");
    expect(await storedEvents(plain.tenant)).toEqual([]);
  });
});
