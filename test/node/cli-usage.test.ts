// `mcp-gateway usage …`: runCli in-process against a node:http stand-in for the usage endpoints (cli-fake-usage.ts):
// the usage table and its query (consumer, relative times, grouping), the chargeback as a table, CSV and JSON, to
// stdout or a file, Stripe meter events (summary, --out, exit codes), and refused arguments (exit 2).
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, type CliIo } from "../../connector/cli/main.ts";
import { CHARGEBACK_CSV, CHARGEBACK_JSON, FakeUsageApi, stripeBody, usageBody, USAGE_ADMIN_KEY } from "./cli-fake-usage.ts";

const NOW = Date.parse("2026-11-25T07:30:00.000Z");

type Run = { code: number; stdout: string; stderr: string };

async function cli(argv: string[], extra: Partial<CliIo> = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, env, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), cwd: dir, timeoutMs: 5_000, now: () => NOW, ...extra });
  return { code, stdout, stderr };
}

let api: FakeUsageApi;
let dir: string;
let env: Record<string, string>;
beforeEach(async () => {
  api = new FakeUsageApi();
  await api.start();
  dir = mkdtempSync(join(tmpdir(), "mcp-gateway-usage-"));
  env = { MCP_GATEWAY_URL: api.url, MCP_GATEWAY_ADMIN_KEY: USAGE_ADMIN_KEY };
});
afterEach(async () => {
  await api.close();
});

const lines = (text: string) => text.trimEnd().split("\n");
const cells = (line: string) => line.trim().split(/\s{2,}/);

describe("usage", () => {
  it("prints a table by consumer with percentiles, bytes, cost and a TOTAL row", async () => {
    const result = await cli(["usage"]);
    expect(result.code, result.stderr).toBe(0);
    expect(api.requests.map((r) => [r.method, r.path, [...r.query]])).toEqual([["GET", "/admin/v1/usage", [["by", "consumer"]]]]);
    const out = lines(result.stdout);
    expect(out[0]).toBe("usage of acme from 2026-11-01 00:00 UTC to 2026-11-25 08:00 UTC, cost in credits");
    expect(cells(out[1] as string)).toEqual(["CONSUMER", "CALLS", "OK", "ERRORS", "DENIED", "LIMITED", "P50", "P95", "P99", "BYTES", "COST"]);
    expect(cells(out[2] as string)).toEqual(["agent-1", "14", "11", "1", "1", "1", "50ms", "1s", "1s", "5.9 KB", "0.049"]);
    // Every call beyond the histogram's last bound: the percentile is ">30s", not a number.
    expect(cells(out[3] as string)).toEqual(["agent-2", "5", "5", "0", "0", "0", ">30s", ">30s", ">30s", "1000 B", "0.005"]);
    // No consumer (unauthenticated), no latency measured.
    expect(cells(out[4] as string)).toEqual(["-", "3", "0", "0", "0", "0", "-", "-", "-", "0 B", "0"]);
    expect(cells(out[5] as string)).toEqual(["TOTAL", "24", "17", "2", "1", "1", "50ms", ">30s", ">30s", "6.8 KB", "0.058"]);
    expect(out).toHaveLength(6);
  });

  it("sends CONSUMER, relative --from/--to as ISO times and --by; groups by (server, tool) and by hour", async () => {
    const tool = await cli(["usage", "agent-1", "--from", "7d", "--to", "1h", "--by", "tool"]);
    expect(tool.code, tool.stderr).toBe(0);
    expect([...(api.requests[0]?.query ?? [])]).toEqual([
      ["consumer", "agent-1"],
      ["from", "2026-11-18T07:30:00.000Z"],
      ["to", "2026-11-25T06:30:00.000Z"],
      ["by", "tool"],
    ]);
    const out = lines(tool.stdout);
    expect(out[0]).toContain("by consumer agent-1");
    expect(cells(out[1] as string).slice(0, 3)).toEqual(["SERVER", "TOOL", "CALLS"]);
    expect(cells(out[2] as string)).toEqual(["crm", "delete_customer", "4", "3", "0", "0", "1", "250ms", "250ms", "250ms", "2.0 MB", "0.031"]);
    expect(cells(out[3] as string)[0]).toBe("TOTAL");

    const hour = await cli(["usage", "--by", "hour", "--from", "2026-11-03T10:00:00Z", "--consumer", "chargeback"]);
    expect(hour.code, hour.stderr).toBe(0);
    expect(api.requests[1]?.query.get("consumer")).toBe("chargeback");
    expect(cells(lines(hour.stdout)[2] as string).slice(0, 2)).toEqual(["2026-11-03 10:00 UTC", "18"]);
    expect(cells(lines(hour.stdout)[2] as string).slice(6, 9)).toEqual(["5ms", "50ms", "5s"]);
  });

  it("--json prints the gateway's answer as it came; no usage says so", async () => {
    const result = await cli(["usage", "--by", "server", "--json"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(usageBody("server"));
    api.usage = () => ({ ...usageBody(), rows: [] });
    const empty = await cli(["usage"]);
    expect(lines(empty.stdout)[1]).toBe("no usage in this period");
  });

  it("prints the gateway's refusal and exits 1", async () => {
    api.raw = { status: 400, contentType: "application/json", body: JSON.stringify({ error: { code: "bad_request", message: "the period covers 9000 hours; at most 8784 (366 days)" } }) };
    const result = await cli(["usage", "--from", "2025-01-01"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the gateway refused: bad_request (HTTP 400): the period covers 9000 hours");
  });

  it.each([
    [["usage", "--by", "week"], "--by must be one of consumer, server, tool, hour"],
    [["usage", "a", "--consumer", "b"], "give the consumer once"],
    [["usage", "--from", "1d", "--to", "2d"], "must be before --to"],
    [["usage", "--from", "last week"], "--from"],
    [["usage", "a", "b"], 'unexpected argument "b"'],
    [["usage", "--period", "2026-11"], "--period is not an option"],
  ])("%j is a usage error (exit 2)", async (argv, message) => {
    const result = await cli(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(api.requests).toEqual([]);
  });
});

describe("usage chargeback", () => {
  it("prints a table for a month", async () => {
    const result = await cli(["usage", "chargeback", "--period", "2026-10"]);
    expect(result.code, result.stderr).toBe(0);
    expect(api.requests.map((r) => [r.path, [...r.query]])).toEqual([["/admin/v1/usage/chargeback", [["period", "2026-10"], ["format", "json"]]]]);
    const out = lines(result.stdout);
    expect(out[0]).toBe("chargeback of acme for 2026-10, cost in credits");
    expect(out.slice(1).map(cells)).toEqual([
      ["CONSUMER", "CALLS", "BILLABLE", "BYTES", "COST"],
      ["agent-1", "14", "12", "5.9 KB", "0.049"],
      ["agent-2", "5", "5", "1000 B", "0.005"],
      ["TOTAL", "19", "17", "6.8 KB", "0.054"],
    ]);
    api.chargeback = { ...CHARGEBACK_JSON, complete: false, consumers: [] };
    const running = await cli(["usage", "chargeback", "--from", "30d"]);
    expect([...(api.requests[1]?.query ?? [])]).toEqual([["from", "2026-10-26T07:30:00.000Z"], ["format", "json"]]);
    expect(lines(running.stdout)).toEqual([
      "chargeback of acme for 2026-10, cost in credits (the period has not ended: these numbers can still grow)",
      "no consumer used the gateway in this period",
    ]);
  });

  it("--format csv prints the gateway's CSV byte for byte; --format json (or --json) its JSON", async () => {
    const csv = await cli(["usage", "chargeback", "--period", "2026-10", "--format", "csv"]);
    expect(csv.code, csv.stderr).toBe(0);
    expect(api.requests[0]?.query.get("format")).toBe("csv");
    expect(api.requests[0]?.headers.accept).toBe("text/csv");
    expect(csv.stdout).toBe(CHARGEBACK_CSV);
    const json = await cli(["usage", "chargeback", "--period", "2026-10", "--format", "json"]);
    expect(JSON.parse(json.stdout)).toEqual(CHARGEBACK_JSON);
    const flag = await cli(["usage", "chargeback", "--period", "2026-10", "--json"]);
    expect(JSON.parse(flag.stdout)).toEqual(CHARGEBACK_JSON);
  });

  it("--out writes CSV (by default) or JSON to a file, whole, and says so on stderr", async () => {
    const csv = await cli(["usage", "chargeback", "--period", "2026-10", "--out", "chargeback.csv"]);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toBe("");
    expect(csv.stderr).toBe("wrote chargeback.csv (csv)\n");
    expect(readFileSync(join(dir, "chargeback.csv"), "utf8")).toBe(CHARGEBACK_CSV);
    const json = await cli(["usage", "chargeback", "--period", "2026-10", "--format", "json", "--out", "chargeback.json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "chargeback.json"), "utf8"))).toEqual(CHARGEBACK_JSON);
    expect(readdirSync(dir).sort()).toEqual(["chargeback.csv", "chargeback.json"]);
  });

  it("writes nothing when the gateway refuses or answers something else, and exits 1", async () => {
    api.raw = { status: 200, contentType: "text/html", body: "<html>proxy</html>" };
    const wrongType = await cli(["usage", "chargeback", "--period", "2026-10", "--out", "c.csv"]);
    expect(wrongType.code).toBe(1);
    expect(wrongType.stderr).toContain("expected text/csv, got text/html");
    expect(wrongType.stderr).toContain("c.csv was not written");
    api.raw = { status: 403, contentType: "application/json", body: JSON.stringify({ error: { code: "forbidden", message: "not an admin" } }) };
    const refused = await cli(["usage", "chargeback", "--period", "2026-10", "--format", "json", "--out", "c.json"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("forbidden (HTTP 403)");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("cannot write into a directory: exit 2", async () => {
    const result = await cli(["usage", "chargeback", "--period", "2026-10", "--out", "."]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("cannot write .: it is a directory");
  });

  it.each([
    [["usage", "chargeback", "--period", "2026-13"], "--period must be a calendar month YYYY-MM"],
    [["usage", "chargeback", "--period", "2026-10", "--from", "7d"], "not both"],
    [["usage", "chargeback", "--format", "xlsx"], "--format must be csv or json"],
    [["usage", "chargeback", "--by", "tool"], "--by is not an option"],
    [["usage", "chargeback", "--out", ""], "--out must not be empty"],
  ])("%j is a usage error (exit 2)", async (argv, message) => {
    const result = await cli(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(api.requests).toEqual([]);
  });
});

describe("usage stripe", () => {
  it("POSTs the month and prints what was sent, sent before and left out", async () => {
    const result = await cli(["usage", "stripe", "--period", "2026-10"]);
    expect(result.code, result.stderr).toBe(0);
    expect(api.requests.map((r) => [r.method, r.path, [...r.query]])).toEqual([["POST", "/admin/v1/usage/stripe", [["period", "2026-10"]]]]);
    expect(lines(result.stdout)).toEqual([
      "Stripe meter events of acme for 2026-10 (meter mcp_gateway_cost, value: cost in credits): 2 events",
      "  sent now    agent-1",
      "  sent before agent-2",
      "  not sent    none",
      "  no customer agent-3",
      "Consumers without a customer are not billed: add them to metering.stripe.customers in gateway.yaml.",
    ]);
    // The month may be given as PERIOD too.
    expect((await cli(["usage", "stripe", "2026-09"])).code).toBe(0);
    expect(api.requests[1]?.query.get("period")).toBe("2026-09");
  });

  it("--out writes the events in Stripe's shape as a JSON array", async () => {
    const result = await cli(["usage", "stripe", "--period", "2026-10", "--out", "events.json"]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("wrote 2 events to events.json\n");
    const written = JSON.parse(readFileSync(join(dir, "events.json"), "utf8"));
    expect(written).toEqual((stripeBody().events as { event: unknown }[]).map((e) => e.event));
    expect(Object.keys(written[0]).sort()).toEqual(["event_name", "identifier", "payload", "timestamp"]);
  });

  it("says what to do without a Stripe key, and exits 1 when an event failed", async () => {
    api.stripe = stripeBody({ sending: false, sent: [], alreadySent: [], unsent: ["agent-1", "agent-2"], unmapped: [] });
    const unsent = await cli(["usage", "stripe", "--period", "2026-10"]);
    expect(unsent.code).toBe(0);
    expect(unsent.stdout).toContain("  not sent    agent-1, agent-2");
    expect(unsent.stdout).toContain("no Stripe key (the Worker secret STRIPE_API_KEY)");

    api.stripe = stripeBody({ sent: [], alreadySent: [], unsent: ["agent-2"], unmapped: [], failed: [{ consumer: "agent-1", identifier: "mgw_agent-1", status: 500, message: "HTTP 500: boom" }] });
    const failed = await cli(["usage", "stripe", "--period", "2026-10", "--out", "events.json"]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("  FAILED      agent-1: HTTP 500: boom");
    expect(failed.stdout).toContain("Run this again to send what is left");
    // The events are still written: they are what the gateway recorded.
    expect(existsSync(join(dir, "events.json"))).toBe(true);

    const json = await cli(["usage", "stripe", "--period", "2026-10", "--json"]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual(api.stripe);
  });

  it.each([
    [["usage", "stripe"], "--period YYYY-MM is required"],
    [["usage", "stripe", "--period", "2026-1"], "--period must be a calendar month"],
    [["usage", "stripe", "2026-10", "--period", "2026-10"], "give the month once"],
    [["usage", "stripe", "--period", "2026-10", "--from", "1d"], "--from is not an option"],
  ])("%j is a usage error (exit 2)", async (argv, message) => {
    const result = await cli(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(api.requests).toEqual([]);
  });

  it("has help of its own, and the usage group lists it", async () => {
    const help = await cli(["help", "usage", "stripe"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: mcp-gateway usage stripe [PERIOD] [--period YYYY-MM] [--out FILE] [--json]");
    const chargeback = await cli(["usage", "chargeback", "--help"]);
    expect(chargeback.stdout).toContain("[--format csv|json]");
    const top = await cli(["--help"]);
    expect(top.stdout).toMatch(/^ {2}usage chargeback +each consumer's calls and cost/m);
  });
});
