/**
 * GET /metrics inside workerd with the real local D1: who may scrape what (the admin API's credentials), and the
 * exposition's values against usage_hourly rows seeded by SQL, read back by the same Prometheus text-format parser
 * as the node tests (test/metrics-parse.ts).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { LATENCY_BUCKET_COUNT, LATENCY_BUCKETS_MS } from "../../src/metering/histogram.ts";
import { counterValues, families, histograms, samples } from "../metrics-parse.ts";
import { adminCall, PLATFORM_TOKEN, seedTenantWithAdmin, seedUsageRows, type UsageSeedRow } from "./fixtures.ts";

const CALLS = "mcp_gateway_calls_total";
const DURATION = "mcp_gateway_call_duration_milliseconds";
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

type UsageRow = UsageSeedRow & { consumer: string; server: string; tool: string };

/** One usage_hourly row, written by SQL as the metering code would have left it. */
const insertUsage = (row: UsageRow): Promise<void> => seedUsageRows([row]);

/** A tenant with a consumer key (role reader) and an admin key. */
const tenant = () => seedTenantWithAdmin();

const scrape = (credential: string | undefined, query = "") => adminCall("GET", `/metrics${query}`, credential);
const tenantsIn = (text: string) => new Set(samples(text).map((s) => s.labels.tenant));
const bucketsOf = (...pairs: [number, number][]) => {
  const buckets = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  for (const [i, n] of pairs) buckets[i] = n;
  return buckets;
};

describe("GET /metrics", () => {
  let a: Awaited<ReturnType<typeof tenant>>;
  let b: Awaited<ReturnType<typeof tenant>>;

  beforeAll(async () => {
    a = await tenant();
    b = await tenant();
    // Tenant A: crm/search over two hours and two consumers (summed into one series), and an unknown call folded
    // under server "" and tool "". Tenant B: one series.
    await insertUsage({ tenant: a.tenant, hour: T0, consumer: "agent-1", server: "crm", tool: "search", ok: 3, errors: 1, latencySumMs: 40, requestBytes: 300, responseBytes: 900, buckets: bucketsOf([0, 2], [2, 2]) });
    await insertUsage({ tenant: a.tenant, hour: T0 + HOUR, consumer: "agent-1", server: "crm", tool: "search", ok: 2, limited: 4, latencySumMs: 70_006, requestBytes: 200, responseBytes: 50, buckets: bucketsOf([1, 5], [12, 1]) });
    await insertUsage({ tenant: a.tenant, hour: T0, consumer: "agent-2", server: "crm", tool: "search", denied: 2, latencySumMs: 2, requestBytes: 10, buckets: bucketsOf([0, 2]) });
    await insertUsage({ tenant: a.tenant, hour: T0, consumer: "", server: "", tool: "", unknown: 5, unauthenticated: 1, latencySumMs: 6, buckets: bucketsOf([0, 6]) });
    await insertUsage({ tenant: b.tenant, hour: T0, consumer: "agent-9", server: "files", tool: "read", ok: 7, latencySumMs: 700, requestBytes: 70, responseBytes: 7_000, buckets: bucketsOf([6, 7]) });
  });

  describe("who may scrape", () => {
    it("answers 401 with a WWW-Authenticate challenge without a credential or with a wrong one", async () => {
      for (const credential of [undefined, "gw_not-a-key", `${PLATFORM_TOKEN}x`]) {
        const answer = await scrape(credential);
        expect(answer.status).toBe(401);
        expect(answer.headers.get("www-authenticate")).toMatch(/^Bearer /);
        expect(answer.text).not.toContain("mcp_gateway_");
      }
    });

    it("answers 403 to a consumer key, whatever tenant it names", async () => {
      for (const query of ["", `?tenant=${a.tenant}`, `?tenant=${b.tenant}`]) {
        const answer = await scrape(a.consumerKey, query);
        expect(answer.status).toBe(403);
        expect(answer.body?.error?.code).toBe("forbidden");
      }
    });

    it("shows a tenant admin its own tenant's series only, and refuses another tenant with 403", async () => {
      for (const query of ["", `?tenant=${a.tenant}`]) {
        const answer = await scrape(a.adminKey, query);
        expect(answer.status).toBe(200);
        expect(tenantsIn(answer.text)).toEqual(new Set([a.tenant]));
      }
      const other = await scrape(a.adminKey, `?tenant=${b.tenant}`);
      expect(other.status).toBe(403);
      expect(other.text).not.toContain(b.tenant);
      expect(tenantsIn((await scrape(b.adminKey)).text)).toEqual(new Set([b.tenant]));
    });

    it("shows the platform token every tenant, or the one ?tenant= names", async () => {
      const all = await scrape(PLATFORM_TOKEN);
      expect(all.status).toBe(200);
      expect(tenantsIn(all.text)).toEqual(new Set([a.tenant, b.tenant]));
      const one = await scrape(PLATFORM_TOKEN, `?tenant=${b.tenant}`);
      expect(tenantsIn(one.text)).toEqual(new Set([b.tenant]));
      const none = await scrape(PLATFORM_TOKEN, "?tenant=no-such-tenant");
      expect(none.status).toBe(200);
      expect(samples(none.text)).toEqual([]);
      expect(families(none.text).size).toBe(4);
    });

    it("answers bad input with a 4xx, never a 5xx", async () => {
      const cases: [string, number][] = [
        ["?tenant=", 400],
        ["?tenant=bad%20id", 400],
        [`?tenant=${"x".repeat(10_000)}`, 400],
        ["?tenant=%22%7D%0A", 400],
        ["?tenant=a&tenant=b", 200],
        ["?unknown=1&format=openmetrics", 200],
      ];
      for (const [query, status] of cases) expect({ query, status: (await scrape(PLATFORM_TOKEN, query)).status }).toEqual({ query, status });
      const post = await adminCall("POST", "/metrics", PLATFORM_TOKEN, {});
      expect(post.status).toBe(404);
      const openMetrics = await adminCall("GET", "/metrics", a.adminKey, undefined, { accept: "application/openmetrics-text; version=1.0.0" });
      expect(openMetrics.status).toBe(200);
      expect(openMetrics.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    });
  });

  describe("what it shows", () => {
    it("is the 0.0.4 text format, not cached, and parses", async () => {
      const answer = await scrape(a.adminKey);
      expect(answer.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      expect(answer.headers.get("cache-control")).toBe("no-store");
      const parsed = families(answer.text);
      expect([...parsed.entries()].map(([name, f]) => [name, f.type])).toEqual([
        [CALLS, "COUNTER"],
        [DURATION, "HISTOGRAM"],
        ["mcp_gateway_request_bytes_total", "COUNTER"],
        ["mcp_gateway_response_bytes_total", "COUNTER"],
      ]);
    });

    it("equals the seeded usage rows summed over hours and consumers, with no consumer label", async () => {
      const text = (await scrape(a.adminKey)).text;
      const calls = counterValues(text, CALLS);
      const search = { tenant: a.tenant, server: "crm", tool: "search" };
      const unknown = { tenant: a.tenant, server: "", tool: "" };
      const expected: Record<string, number> = { ok: 5, error: 1, denied: 2, limited: 4, unknown: 0, unauthenticated: 0 };
      for (const [status, value] of Object.entries(expected)) expect(calls.get(JSON.stringify({ ...search, status }))).toBe(value);
      expect(calls.get(JSON.stringify({ ...unknown, status: "unknown" }))).toBe(5);
      expect(calls.get(JSON.stringify({ ...unknown, status: "unauthenticated" }))).toBe(1);
      expect(calls.size).toBe(2 * 6);
      for (const s of samples(text)) expect(Object.keys(s.labels)).not.toContain("consumer");

      expect(counterValues(text, "mcp_gateway_request_bytes_total").get(JSON.stringify(search))).toBe(510);
      expect(counterValues(text, "mcp_gateway_response_bytes_total").get(JSON.stringify(search))).toBe(950);

      const histogram = histograms(text, DURATION).find((h) => JSON.stringify(h.labels) === JSON.stringify(search));
      // Buckets 0: 2+2, 1: 5, 2: 2, 12 (> 30 s): 1 → cumulative.
      const cumulative = [4, 9, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 12];
      expect(histogram?.buckets).toEqual([...LATENCY_BUCKETS_MS.map(String), "+Inf"].map((le, i) => [le, cumulative[i]]));
      expect(histogram?.count).toBe(12);
      expect(histogram?.sum).toBe(40 + 70_006 + 2);
    });

    it("grows as usage grows: a scrape after more usage never shows a lower counter", async () => {
      const before = samples((await scrape(PLATFORM_TOKEN, `?tenant=${b.tenant}`)).text);
      await insertUsage({ tenant: b.tenant, hour: T0 + 5 * HOUR, consumer: "agent-9", server: "files", tool: "read", ok: 1, latencySumMs: 3, requestBytes: 1, responseBytes: 1, buckets: bucketsOf([0, 1]) });
      await insertUsage({ tenant: b.tenant, hour: T0 + 5 * HOUR, consumer: "agent-9", server: "files", tool: "write", errors: 2, buckets: bucketsOf([3, 2]) });
      const after = new Map(samples((await scrape(PLATFORM_TOKEN, `?tenant=${b.tenant}`)).text).map((s) => [JSON.stringify([s.name, s.labels]), s.value]));
      for (const sample of before) expect(after.get(JSON.stringify([sample.name, sample.labels]))).toBeGreaterThanOrEqual(sample.value);
      expect(after.get(JSON.stringify([CALLS, { tenant: b.tenant, server: "files", tool: "read", status: "ok" }]))).toBe(8);
      expect(after.get(JSON.stringify([CALLS, { tenant: b.tenant, server: "files", tool: "write", status: "error" }]))).toBe(2);
    });
  });
});
