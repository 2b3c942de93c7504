/**
 * Pricing, chargeback and Stripe meter events (src/metering/): which price entry prices a call, exact micro-unit
 * arithmetic (no float drift), the metering schema, histogram percentiles and hour periods, the chargeback's JSON
 * and formula-safe CSV, and Stripe identifiers that are deterministic and distinct per tenant, consumer, period and
 * meter — with the POST itself checked against a node:http server.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../../src/config/schema.ts";
import { chargebackCsv, chargebackOf, CHARGEBACK_CSV_HEADER, monthLabel } from "../../src/metering/chargeback.ts";
import { LATENCY_BUCKET_COUNT } from "../../src/metering/histogram.ts";
import {
  compilePriceTable,
  costNanos,
  costNumber,
  costOfRows,
  costText,
  microsToDecimal,
  nanosToMicros,
  toMicros,
  type PricedUsageRow,
} from "../../src/metering/pricing.ts";
import { DEFAULT_METERING, meteringSchema } from "../../src/metering/schema.ts";
import { buildMeterEvents, meterEventForm, meterEventIdentifier, sendMeterEvent, type StripeMeterEvent } from "../../src/metering/stripe.ts";
import { histogramPercentile, hourPeriod, monthPeriod, type UsageReport, type UsageRow } from "../../src/metering/usage-store.ts";

const row = (server: string, tool: string, ok: number, extra: Partial<PricedUsageRow> = {}): PricedUsageRow => ({
  server,
  tool,
  ok,
  errors: 0,
  requestBytes: 0,
  responseBytes: 0,
  ...extra,
});

describe("which entry prices a call", () => {
  const table = compilePriceTable([
    { perCall: 1 }, // 0: catch-all
    { server: "crm", perCall: 2 }, // 1
    { tool: "delete_*", perCall: 3 }, // 2
    { server: "crm", tool: "delete_*", perCall: 4 }, // 3
    { server: "crm", tool: "delete_customer", perCall: 5 }, // 4: same rank as 3, listed later: never wins
    { server: "c*", perCall: 6 }, // 5: same rank as 1, listed later
    { server: "billing", tool: "{get,list}_invoice", perCall: 0 }, // 6: free
  ]);
  const index = (server: string, tool: string) => table.priceOf(server, tool)?.index;

  it("prefers server+tool over tool over server over the catch-all", () => {
    expect(index("crm", "delete_customer")).toBe(3);
    expect(index("billing", "delete_invoice")).toBe(2);
    expect(index("crm", "get_customer")).toBe(1);
    expect(index("cms", "get_page")).toBe(5);
    expect(index("billing", "refund")).toBe(0);
    expect(index("billing", "get_invoice")).toBe(6);
  });

  it("takes the first listed of the same rank, whatever the order of ranks in the file", () => {
    const reversed = compilePriceTable([
      { server: "crm", tool: "delete_customer", perCall: 5 },
      { server: "crm", perCall: 2 },
      { server: "crm", tool: "delete_*", perCall: 4 },
      { perCall: 1 },
    ]);
    expect(reversed.priceOf("crm", "delete_customer")?.index).toBe(0);
    expect(reversed.priceOf("crm", "delete_order")?.index).toBe(2);
    expect(reversed.priceOf("crm", "x")?.index).toBe(1);
    expect(reversed.priceOf("y", "x")?.index).toBe(3);
  });

  it("prices nothing without a match, and no row without a tool (the protocol's own methods)", () => {
    const narrow = compilePriceTable([{ server: "crm", perCall: 1 }]);
    expect(narrow.priceOf("billing", "refund")).toBeUndefined();
    expect(table.priceOf("", "")).toBeUndefined();
    expect(table.priceOf("crm", "")).toBeUndefined();
    expect(costOfRows(table, [row("", "", 1000)])).toBe(0n);
    expect(compilePriceTable([]).priceOf("crm", "x")).toBeUndefined();
  });

  it("matches globs over whole names, slashes and dots included (as policy globs do)", () => {
    const globs = compilePriceTable([{ tool: "files/*", perCall: 1 }, { tool: "*.read", perCall: 2 }]);
    expect(globs.priceOf("fs", "files/a/b")?.index).toBe(0);
    expect(globs.priceOf("fs", "x.read")?.index).toBe(1);
    expect(globs.priceOf("fs", "read")).toBeUndefined();
  });
});

describe("exact micro-unit arithmetic", () => {
  it("reads prices from their decimal text", () => {
    expect(toMicros(0)).toBe(0n);
    expect(toMicros(0.1)).toBe(100_000n);
    expect(toMicros(0.2)).toBe(200_000n);
    expect(toMicros(0.000001)).toBe(1n);
    expect(toMicros(1.000001)).toBe(1_000_001n);
    expect(toMicros(123456.789)).toBe(123_456_789_000n);
    expect(() => toMicros(0.0000001)).toThrow(/decimal places/);
    expect(() => toMicros(0.1234567)).toThrow(/decimal places/);
    expect(() => toMicros(-1)).toThrow(RangeError);
    expect(() => toMicros(Number.NaN)).toThrow(RangeError);
  });

  it("adds up with no float drift, however many rows", () => {
    const table = compilePriceTable([{ perCall: 0.1 }]);
    // 0.1 + 0.2 in floats is 0.30000000000000004; three calls here cost exactly 0.3.
    expect(costNumber(costOfRows(table, [row("a", "t", 1), row("a", "t", 2)]))).toBe(0.3);
    let float = 0;
    const rows: PricedUsageRow[] = [];
    for (let i = 0; i < 10_000; i++) {
      rows.push(row("a", "t", 1));
      float += 0.1;
    }
    expect(float).not.toBe(1000);
    expect(costNumber(costOfRows(table, rows))).toBe(1000);
    expect(costText(costOfRows(compilePriceTable([{ perCall: 0.000001 }]), [row("a", "t", 1_000_000)]))).toBe("1");
  });

  it("prices bytes per 1,000 exactly, rounding half-up to micro-units only at the end", () => {
    const table = compilePriceTable([{ perKB: 0.000001 }]);
    const bytes = (n: number) => costOfRows(table, [row("a", "t", 0, { requestBytes: n })]);
    expect(bytes(1)).toBe(1n); // one nano-unit
    expect(costText(bytes(499))).toBe("0");
    expect(costText(bytes(500))).toBe("0.000001");
    // 1,000 rows of 1 byte: 1,000 nano-units = exactly 0.000001 (rounding each row would give 0).
    expect(costText(costOfRows(table, Array.from({ length: 1000 }, () => row("a", "t", 0, { responseBytes: 1 }))))).toBe("0.000001");
    const mixed = compilePriceTable([{ perCall: 0.002, perKB: 0.0005 }]);
    expect(costText(costOfRows(mixed, [row("a", "t", 3, { errors: 1, requestBytes: 1500, responseBytes: 500 })]))).toBe("0.009");
  });

  it("prices calls that reached their server: ok and error, not denied, limited or unknown", () => {
    const price = compilePriceTable([{ perCall: 1 }]).priceOf("a", "t");
    expect(costNanos(price, { billableCalls: 2, bytes: 0 })).toBe(2_000_000_000n);
    expect(costOfRows(compilePriceTable([{ perCall: 1 }]), [row("a", "t", 2, { errors: 3 })])).toBe(5_000_000_000n);
  });

  it("writes decimals without trailing zeros, rounding half-up", () => {
    expect(microsToDecimal(0n)).toBe("0");
    expect(microsToDecimal(12_500_000n)).toBe("12.5");
    expect(microsToDecimal(3n)).toBe("0.000003");
    expect(microsToDecimal(1_000_000_000_000n)).toBe("1000000");
    expect(nanosToMicros(1_499n)).toBe(1n);
    expect(nanosToMicros(1_500n)).toBe(2n);
    expect(costNumber(58_000_000n)).toBe(0.058);
    expect(JSON.stringify(costNumber(300_000_000n))).toBe("0.3");
  });
});

describe("the metering schema", () => {
  it("keeps the seed's keys and defaults, and adds currency, prices and stripe", () => {
    expect(DEFAULT_METERING).toEqual({ enabled: true, dimensions: ["calls", "latency", "errors"], currency: "units", prices: [] });
    const parsed = parseGatewayConfig(`metering:
  enabled: true
  dimensions: [calls]
  currency: credits
  prices:
    - perCall: 0.001
    - server: crm
      tool: "{delete,update}_*"
      perCall: 0.01
      perKB: 0.0005
  stripe:
    eventName: mcp_gateway_cost
    customers:
      agent-1: cus_NciAYcXfLnqBoz
`);
    expect(parsed.ok && parsed.config.metering).toEqual({
      enabled: true,
      dimensions: ["calls"],
      currency: "credits",
      prices: [{ perCall: 0.001 }, { server: "crm", tool: "{delete,update}_*", perCall: 0.01, perKB: 0.0005 }],
      stripe: { eventName: "mcp_gateway_cost", customers: { "agent-1": "cus_NciAYcXfLnqBoz" } },
    });
  });

  it.each([
    ["prices: [{perCall: -1}]", "metering.prices[0].perCall"],
    ["prices: [{perCall: 0.0000001}]", "decimal places"],
    ["prices: [{perKB: 2000000}]", "metering.prices[0].perKB"],
    ['prices: [{tool: "get_[x"}]', "metering.prices[0].tool"],
    ['prices: [{server: ""}]', "metering.prices[0].server"],
    ["prices: [{perCall: 1, per: 2}]", "per"],
    ["currency: 'a,b'", "metering.currency"],
    ["stripe: {eventName: x, customers: {agent-1: acct_1}}", "cus_"],
    ["stripe: {customers: {}}", "metering.stripe.eventName"],
    ["stripe: {eventName: 'has space'}", "metering.stripe.eventName"],
  ])("refuses %s", (yaml, mention) => {
    const parsed = parseGatewayConfig(`metering:\n  ${yaml}\n`);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.errors.join("\n")).toContain(mention);
  });

  it("parses its own output again to the same value (published configs are re-read)", () => {
    const once = meteringSchema.parse({ prices: [{ perCall: 0.5 }], stripe: { eventName: "e" } });
    expect(meteringSchema.parse(once)).toEqual(once);
    expect(once.stripe?.customers).toEqual({});
  });
});

describe("percentiles and periods", () => {
  const buckets = (counts: Record<number, number>) => Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => counts[i] ?? 0);

  it("takes the upper bound of the bucket of the nearest rank; null when empty or unbounded", () => {
    expect(histogramPercentile(buckets({}), 0.5)).toBeNull();
    expect(histogramPercentile(buckets({ 0: 1 }), 0.99)).toBe(5);
    const mixed = buckets({ 0: 50, 4: 45, 8: 4, 12: 1 }); // n = 100
    expect(histogramPercentile(mixed, 0.5)).toBe(5);
    expect(histogramPercentile(mixed, 0.51)).toBe(100);
    expect(histogramPercentile(mixed, 0.95)).toBe(100);
    expect(histogramPercentile(mixed, 0.96)).toBe(2500);
    expect(histogramPercentile(mixed, 0.99)).toBe(2500);
    expect(histogramPercentile(mixed, 1)).toBeNull();
    expect(histogramPercentile(buckets({ 11: 1 }), 0.5)).toBe(30_000);
  });

  it("reads calendar months in UTC, December and leap years included", () => {
    expect(monthPeriod("2026-11")).toEqual({ from: Date.parse("2026-11-01T00:00:00Z"), to: Date.parse("2026-12-01T00:00:00Z") });
    expect(monthPeriod("2026-12")).toEqual({ from: Date.parse("2026-12-01T00:00:00Z"), to: Date.parse("2027-01-01T00:00:00Z") });
    const feb = monthPeriod("2028-02") as { from: number; to: number };
    expect((feb.to - feb.from) / 86_400_000).toBe(29);
    for (const bad of ["2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "1969-12", ""]) expect(monthPeriod(bad)).toBeUndefined();
    expect(monthLabel(Date.parse("2026-11-01T00:00:00Z"), Date.parse("2026-12-01T00:00:00Z"))).toBe("2026-11");
    expect(monthLabel(Date.parse("2026-11-01T00:00:00Z"), Date.parse("2026-11-30T00:00:00Z"))).toBeNull();
    expect(monthLabel(Date.parse("2026-11-02T00:00:00Z"), Date.parse("2026-12-02T00:00:00Z"))).toBeNull();
  });

  it("rounds a period out to whole hours; defaults to the month so far; refuses empty and too long ones", () => {
    const now = Date.parse("2026-11-25T07:19:00Z");
    expect(hourPeriod(Date.parse("2026-11-03T10:30:00Z"), Date.parse("2026-11-03T10:45:00Z"), now)).toEqual({
      ok: true,
      from: Date.parse("2026-11-03T10:00:00Z"),
      to: Date.parse("2026-11-03T11:00:00Z"),
    });
    expect(hourPeriod(undefined, undefined, now)).toEqual({ ok: true, from: Date.parse("2026-11-01T00:00:00Z"), to: Date.parse("2026-11-25T08:00:00Z") });
    // On the hour, the hour just begun is included.
    expect(hourPeriod(undefined, undefined, Date.parse("2026-11-01T00:00:00Z"))).toEqual({
      ok: true,
      from: Date.parse("2026-11-01T00:00:00Z"),
      to: Date.parse("2026-11-01T01:00:00Z"),
    });
    expect(hourPeriod(Date.parse("2026-11-03T10:00:00Z"), Date.parse("2026-11-03T10:00:00Z"), now)).toMatchObject({ ok: false });
    expect(hourPeriod(0, Date.parse("2026-01-01T00:00:00Z"), now)).toMatchObject({ ok: false, error: expect.stringContaining("8784") });
    expect(hourPeriod(Date.parse("2026-11-01T00:00:00Z"), Date.parse("2026-11-01T05:00:00Z"), now, 4)).toMatchObject({ ok: false });
  });
});

// ---- chargeback ---------------------------------------------------------------------------------------------

const zeroLatency = { sum: 0, count: 0, p50: null, p95: null, p99: null };
function usageRow(consumer: string | null, calls: number, billable: number, bytes: number, cost: number): UsageRow {
  return {
    consumer,
    calls,
    ok: billable,
    errors: 0,
    denied: calls - billable,
    limited: 0,
    unknown: 0,
    unauthenticated: 0,
    billableCalls: billable,
    latencyMs: zeroLatency,
    requestBytes: bytes,
    responseBytes: 0,
    bytes,
    cost,
  };
}

function report(rows: UsageRow[], currency = "credits"): UsageReport {
  return {
    tenant: "acme",
    from: "2026-10-01T00:00:00.000Z",
    to: "2026-11-01T00:00:00.000Z",
    by: "consumer",
    consumer: null,
    currency,
    rows,
    totals: { ...usageRow(null, 0, 0, 0, 0), consumer: undefined } as never,
  };
}

describe("the chargeback", () => {
  const NOW = Date.parse("2026-11-25T00:00:00Z");

  it("lists consumers with calls and cost; the total is the exact sum of the lines; no-consumer usage is left out", () => {
    const chargeback = chargebackOf(report([usageRow("agent-1", 10, 8, 100, 0.1), usageRow("agent-2", 20, 20, 0, 0.2), usageRow(null, 5, 0, 0, 0)]), NOW);
    expect(chargeback).toEqual({
      tenant: "acme",
      period: { from: "2026-10-01T00:00:00.000Z", to: "2026-11-01T00:00:00.000Z", month: "2026-10" },
      complete: true,
      currency: "credits",
      consumers: [
        { consumer: "agent-1", calls: 10, billableCalls: 8, bytes: 100, cost: 0.1 },
        { consumer: "agent-2", calls: 20, billableCalls: 20, bytes: 0, cost: 0.2 },
      ],
      totals: { calls: 30, billableCalls: 28, bytes: 100, cost: 0.3 },
    });
    expect(chargebackOf(report([]), Date.parse("2026-10-31T23:59:59Z")).complete).toBe(false);
    expect(() => chargebackOf({ ...report([]), by: "tool" }, NOW)).toThrow(/consumer/);
  });

  it("writes CSV with cells no spreadsheet evaluates", () => {
    const csv = chargebackCsv(chargebackOf(report([usageRow("=HYPERLINK(1)", 1, 1, 0, 0.5), usageRow('a,"b"', 2, 2, 0, 0.25)], "@SUM(A1)"), NOW));
    expect(csv).toBe(
      [
        CHARGEBACK_CSV_HEADER,
        "2026-10-01T00:00:00.000Z,2026-11-01T00:00:00.000Z,'=HYPERLINK(1),1,1,0,0.5,'@SUM(A1)",
        '2026-10-01T00:00:00.000Z,2026-11-01T00:00:00.000Z,"a,""b""",2,2,0,0.25,\'@SUM(A1)',
        "",
      ].join("\r\n"),
    );
    expect(CHARGEBACK_CSV_HEADER).toBe("period_start,period_end,consumer,calls,billable_calls,bytes,cost,currency");
    expect(chargebackCsv(chargebackOf(report([]), NOW))).toBe(`${CHARGEBACK_CSV_HEADER}\r\n`);
  });
});

// ---- Stripe -------------------------------------------------------------------------------------------------

describe("Stripe meter events", () => {
  const OCT = { from: "2026-10-01T00:00:00.000Z", to: "2026-11-01T00:00:00.000Z" };
  const NOV = { from: "2026-11-01T00:00:00.000Z", to: "2026-12-01T00:00:00.000Z" };

  it("have deterministic identifiers, distinct per tenant, consumer, period and event name", async () => {
    const id = await meterEventIdentifier("acme", "agent-1", OCT, "cost");
    expect(id).toMatch(/^mgw_[0-9a-f]{64}$/);
    expect(id.length).toBeLessThanOrEqual(100); // Stripe's limit
    expect(await meterEventIdentifier("acme", "agent-1", OCT, "cost")).toBe(id);
    const others = await Promise.all([
      meterEventIdentifier("acme", "agent-2", OCT, "cost"),
      meterEventIdentifier("acme", "agent-1", NOV, "cost"),
      meterEventIdentifier("acme", "agent-1", OCT, "calls"),
      meterEventIdentifier("acme2", "agent-1", OCT, "cost"),
      // Fields cannot run into each other: ("acme", "x-agent") is not ("acme-x", "agent").
      meterEventIdentifier("acme-x", "agent-1", OCT, "cost"),
      meterEventIdentifier("acme", "x-agent-1", OCT, "cost"),
    ]);
    expect(new Set([id, ...others]).size).toBe(7);
  });

  it("carry the cost in whole micro-units (Stripe meters take whole numbers), or the billable calls without a price table, the period's last second, and skip zero values", async () => {
    const chargeback = chargebackOf(report([usageRow("agent-1", 10, 8, 0, 0.049), usageRow("agent-2", 3, 3, 0, 0), usageRow("agent-3", 4, 4, 0, 1.5)]), Date.parse("2026-11-25T00:00:00Z"));
    const stripe = { eventName: "cost", customers: { "agent-1": "cus_A", "agent-2": "cus_B" } };
    const priced = await buildMeterEvents(chargeback, stripe, true);
    expect(priced.unmapped).toEqual(["agent-3"]);
    expect(priced.events).toEqual([
      {
        consumer: "agent-1",
        event: {
          event_name: "cost",
          payload: { stripe_customer_id: "cus_A", value: "49000" },
          timestamp: Date.parse("2026-11-01T00:00:00Z") / 1000 - 1,
          identifier: await meterEventIdentifier("acme", "agent-1", OCT, "cost"),
        },
      },
    ]);
    const counted = await buildMeterEvents(chargeback, stripe, false);
    expect(counted.events.map((e) => [e.consumer, e.event.payload.value])).toEqual([
      ["agent-1", "8"],
      ["agent-2", "3"],
    ]);
    // A consumer id that is an Object.prototype name is just a consumer without a customer.
    const proto = await buildMeterEvents(chargebackOf(report([usageRow("constructor", 1, 1, 0, 1)]), 0), stripe, true);
    expect(proto).toEqual({ events: [], unmapped: ["constructor"] });
  });

  it("are POSTed form-encoded with Idempotency-Key = identifier; failures are classified", async () => {
    const seen: { headers: IncomingMessage["headers"]; body: string; url: string }[] = [];
    const statuses: number[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (t: string) => (body += t));
      req.on("end", () => {
        seen.push({ headers: req.headers, body, url: req.url ?? "" });
        const status = statuses.shift() ?? 200;
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(status === 200 ? { object: "billing.meter_event" } : { error: { message: `nope ${status}` } }));
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const event: StripeMeterEvent = { event_name: "cost", payload: { stripe_customer_id: "cus_A", value: "0.049" }, timestamp: 1_793_491_199, identifier: "mgw_abc" };
      expect(meterEventForm(event)).toBe("event_name=cost&payload%5Bstripe_customer_id%5D=cus_A&payload%5Bvalue%5D=0.049&timestamp=1793491199&identifier=mgw_abc");
      expect(await sendMeterEvent(event, { apiKey: "sk_test_x", base })).toEqual({ ok: true });
      expect(seen[0]).toMatchObject({
        url: "/v1/billing/meter_events",
        body: meterEventForm(event),
        headers: { authorization: "Bearer sk_test_x", "idempotency-key": "mgw_abc", "content-type": "application/x-www-form-urlencoded" },
      });
      statuses.push(500, 429, 401, 400);
      expect(await sendMeterEvent(event, { apiKey: "k", base })).toEqual({ ok: false, status: 500, message: "HTTP 500: nope 500", stop: true });
      expect(await sendMeterEvent(event, { apiKey: "k", base })).toMatchObject({ status: 429, stop: true });
      expect(await sendMeterEvent(event, { apiKey: "k", base })).toMatchObject({ status: 401, stop: true });
      expect(await sendMeterEvent(event, { apiKey: "k", base })).toMatchObject({ status: 400, stop: false });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const unreachable = await sendMeterEvent({ event_name: "e", payload: { stripe_customer_id: "cus_A", value: "1" }, timestamp: 1, identifier: "mgw_x" }, { apiKey: "k", base });
    expect(unreachable).toMatchObject({ ok: false, status: null, stop: true, message: expect.stringContaining("could not be reached") });
  });
});
