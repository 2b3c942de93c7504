/**
 * A node:http stand-in for the admin API's usage endpoints (docs/admin-api.md), for the `mcp-gateway usage …` tests:
 * it records every request and answers with what the test put in {@link FakeUsageApi.usage},
 * {@link FakeUsageApi.chargeback} (JSON, or CSV for format=csv) and {@link FakeUsageApi.stripe}.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { closeServer, listenOnLoopback } from "./loopback-server.ts";

export const USAGE_ADMIN_KEY = "gw_usage_admin_key_for_tests";

export type Recorded = { method: string; path: string; query: URLSearchParams; headers: IncomingMessage["headers"] };

const latency = (sum: number, count: number, p50: number | null, p95: number | null, p99: number | null) => ({ sum, count, p50, p95, p99 });

const counts = (calls: number, ok: number, errors: number, denied: number, limited: number, bytes: number, cost: number, lat = latency(0, 0, null, null, null)) => ({
  calls,
  ok,
  errors,
  denied,
  limited,
  unknown: 0,
  unauthenticated: calls - ok - errors - denied - limited,
  billableCalls: ok + errors,
  latencyMs: lat,
  requestBytes: bytes,
  responseBytes: 0,
  bytes,
  cost,
});

/** A usage answer like the gateway's, grouped by `by`. */
export function usageBody(by: "consumer" | "server" | "tool" | "hour" = "consumer", consumer: string | null = null) {
  const rows = {
    consumer: [
      { consumer: "agent-1", ...counts(14, 11, 1, 1, 1, 6000, 0.049, latency(1500, 14, 50, 1000, 1000)) },
      { consumer: "agent-2", ...counts(5, 5, 0, 0, 0, 1000, 0.005, latency(200_000, 5, null, null, null)) },
      { consumer: null, ...counts(3, 0, 0, 0, 0, 0, 0) },
    ],
    server: [{ server: "crm", ...counts(16, 12, 2, 1, 1, 6000, 0.053, latency(10, 16, 5, 25, 2500)) }],
    tool: [{ server: "crm", tool: "delete_customer", ...counts(4, 3, 0, 0, 1, 2_097_152, 0.031, latency(800, 4, 250, 250, 250)) }],
    hour: [
      { hour: "2026-11-03T10:00:00.000Z", ...counts(18, 13, 1, 1, 0, 5000, 0.023, latency(0, 18, 5, 50, 5000)) },
      { hour: "2026-11-03T11:00:00.000Z", ...counts(6, 4, 1, 0, 1, 2000, 0.035, latency(0, 6, 10, 250, 250)) },
    ],
  }[by];
  return {
    tenant: "acme",
    from: "2026-11-01T00:00:00.000Z",
    to: "2026-11-25T08:00:00.000Z",
    by,
    consumer,
    currency: "credits",
    rows,
    totals: counts(24, 17, 2, 1, 1, 7000, 0.058, latency(201_514, 24, 50, null, null)),
  };
}

export const CHARGEBACK_JSON = {
  tenant: "acme",
  period: { from: "2026-10-01T00:00:00.000Z", to: "2026-11-01T00:00:00.000Z", month: "2026-10" },
  complete: true,
  currency: "credits",
  consumers: [
    { consumer: "agent-1", calls: 14, billableCalls: 12, bytes: 6000, cost: 0.049 },
    { consumer: "agent-2", calls: 5, billableCalls: 5, bytes: 1000, cost: 0.005 },
  ],
  totals: { calls: 19, billableCalls: 17, bytes: 7000, cost: 0.054 },
};

export const CHARGEBACK_CSV =
  "period_start,period_end,consumer,calls,billable_calls,bytes,cost,currency\r\n" +
  "2026-10-01T00:00:00.000Z,2026-11-01T00:00:00.000Z,agent-1,14,12,6000,0.049,credits\r\n" +
  "2026-10-01T00:00:00.000Z,2026-11-01T00:00:00.000Z,agent-2,5,5,1000,0.005,credits\r\n";

const event = (consumer: string, customer: string, value: string) => ({
  consumer,
  identifier: `mgw_${consumer}`,
  sentAt: "2026-11-02T09:00:00.000Z",
  event: { event_name: "mcp_gateway_cost", payload: { stripe_customer_id: customer, value }, timestamp: 1_793_491_199, identifier: `mgw_${consumer}` },
});

export function stripeBody(overrides: Record<string, unknown> = {}) {
  return {
    tenant: "acme",
    period: { from: "2026-10-01T00:00:00.000Z", to: "2026-11-01T00:00:00.000Z", month: "2026-10" },
    eventName: "mcp_gateway_cost",
    value: "cost",
    currency: "credits",
    sending: true,
    events: [event("agent-1", "cus_A1", "0.049"), event("agent-2", "cus_A2", "0.005")],
    sent: ["agent-1"],
    alreadySent: ["agent-2"],
    unmapped: ["agent-3"],
    failed: [],
    unsent: [],
    ...overrides,
  };
}

export class FakeUsageApi {
  readonly requests: Recorded[] = [];
  usage: (query: URLSearchParams) => unknown = (q) => usageBody((q.get("by") as "consumer") ?? "consumer", q.get("consumer"));
  chargeback: unknown = CHARGEBACK_JSON;
  chargebackCsv = CHARGEBACK_CSV;
  stripe: unknown = stripeBody();
  /** Overrides every answer (a refusal, a proxy's page). */
  raw: { status: number; contentType: string; body: string } | undefined;
  url = "";
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://x");
        this.requests.push({ method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers });
        const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
        if (this.raw) return void res.writeHead(this.raw.status, { "content-type": this.raw.contentType }).end(this.raw.body);
        if (req.headers.authorization !== `Bearer ${USAGE_ADMIN_KEY}`) return json(401, { error: { code: "unauthenticated", message: "no or refused credential" } });
        switch (`${req.method} ${url.pathname}`) {
          case "GET /admin/v1/usage":
            return json(200, this.usage(url.searchParams));
          case "GET /admin/v1/usage/chargeback":
            if (url.searchParams.get("format") === "csv") return void res.writeHead(200, { "content-type": "text/csv; charset=utf-8" }).end(this.chargebackCsv);
            return json(200, this.chargeback);
          case "POST /admin/v1/usage/stripe":
            return json(200, this.stripe);
          default:
            return json(404, { error: { code: "not_found", message: `no route ${req.method} ${url.pathname}` } });
        }
      });
    });
  }

  async start(): Promise<void> {
    this.url = await listenOnLoopback(this.server);
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }
}
