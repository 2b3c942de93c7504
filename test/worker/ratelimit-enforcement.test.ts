/**
 * Rate limits and quotas on /mcp, inside workerd with the real RateLimiter and AuditLog Durable Objects: a call past
 * the consumer's burst is refused with -32029 and when to retry, audited as `limited`, and never reaches the
 * upstream; denied and unknown calls pay for their token; tool rules; `enabled: false`; the daily quota; and the
 * `usage` tool showing a consumer its own usage and an administrator the tenant's.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AuditEntry } from "../../src/audit/entry.ts";
import { readAuditEntries } from "../../src/audit/store.ts";
import { answerEveryRpc, echoServer, FakeConnector, mcpAnswer, mcpPost, rpcRequest, seedTenant } from "./fixtures.ts";

const call = (name: string, args: Record<string, unknown> = {}, id = 1) => rpcRequest("tools/call", { name, arguments: args }, id);

async function tenantWith(rateLimit: unknown, policies: unknown[] = [{ id: "p", roles: ["reader"], rules: [{ server: "crm", tool: "{echo,delete_row}", action: "allow" }] }]) {
  const admin = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
  const agent = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
  const seeded = await seedTenant({ policies, rateLimit, keys: [{ id: "agent", key: agent }, { id: "boss", key: admin, roles: ["admin"], consumerId: "ops" }] });
  const connector = await FakeConnector.connect(seeded.connectorToken);
  const crm = echoServer("crm");
  crm.catalog.tools.push({ name: "delete_row", inputSchema: { type: "object" } }, { name: "secret", inputSchema: { type: "object" } });
  await connector.hello([crm]);
  let relayed = 0;
  connector.socket.addEventListener("message", (event) => {
    if (JSON.parse(event.data as string).type === "rpc") relayed++;
  });
  answerEveryRpc(connector, { content: [{ type: "text", text: "ok" }] });
  return { ...seeded, apiKey: agent, admin, relayedCount: () => relayed };
}

async function entries(tenant: string): Promise<AuditEntry[]> {
  return (await readAuditEntries(env, tenant, {}, { limit: 500 })).entries.reverse();
}

describe("rate limits on /mcp", () => {
  it("refuses a call past the burst with -32029 and when to retry, audits it as limited, and never relays it", async () => {
    const t = await tenantWith({ defaultPerMinute: 2 });
    const agentKey = t.apiKey;
    expect((await mcpAnswer(call("crm__echo"), agentKey)).result).toBeDefined();
    expect((await mcpAnswer(call("crm__echo"), agentKey)).result).toBeDefined();
    const refused = await mcpAnswer(call("crm__echo"), agentKey);
    expect(refused.error).toMatchObject({ code: -32029, data: { limit: "consumer", kind: "rate" } });
    expect(refused.error.data.retryAfterMs).toBeGreaterThan(0);
    expect(refused.error.data.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(refused.error.message).toMatch(/retry in \d+ s/);
    expect(t.relayedCount()).toBe(2);
    expect((await entries(t.tenant)).map((e) => e.status)).toEqual(["ok", "ok", "limited"]);
  });

  it("charges denied and unknown calls too, so they cannot be sent for free", async () => {
    const t = await tenantWith({ defaultPerMinute: 2 });
    expect((await mcpAnswer(call("crm__secret"), t.apiKey)).error.code).toBe(-32003);
    expect((await mcpAnswer(call("crm__nothing"), t.apiKey)).error.code).toBe(-32602);
    expect((await mcpAnswer(call("crm__echo"), t.apiKey)).error.code).toBe(-32029);
    expect((await entries(t.tenant)).map((e) => e.status)).toEqual(["denied", "unknown", "limited"]);
  });

  it("records a revoked key's attempts only as fast as its consumer's limit allows", async () => {
    const t = await tenantWith({ defaultPerMinute: 2 });
    await env.DB.prepare("UPDATE api_keys SET revoked_at = 1 WHERE tenant_id = ? AND id = 'agent'").bind(t.tenant).run();
    for (let i = 0; i < 5; i++) expect((await mcpPost(call("crm__echo"), t.apiKey)).status).toBe(401);
    expect((await entries(t.tenant)).map((e) => [e.method, e.status])).toEqual([
      ["authenticate", "unauthenticated"],
      ["authenticate", "unauthenticated"],
    ]);
  });

  it("charges a `call` that fails before reaching a tool, and records a limited call against what it called", async () => {
    const t = await tenantWith({ defaultPerMinute: 3 });
    expect((await mcpAnswer(call("call", {}), t.apiKey)).error.code).toBe(-32602);
    expect((await mcpAnswer(call("call", { tool: "call" }), t.apiKey)).error.code).toBe(-32602);
    expect((await mcpAnswer(call("crm__echo"), t.apiKey)).result).toBeDefined();
    const limited = await mcpAnswer(call("crm__echo"), t.apiKey);
    expect(limited.error.code).toBe(-32029);
    expect((await entries(t.tenant)).map((e) => [e.status, e.server, e.tool])).toEqual([
      ["error", "gateway", "call"],
      ["error", "gateway", "call"],
      ["ok", "crm", "echo"],
      ["limited", "crm", "echo"],
    ]);
  });

  it("applies tool rules on top of the consumer's bucket, per tool glob", async () => {
    const t = await tenantWith({ defaultPerMinute: 100, tools: [{ server: "crm", tool: "delete_*", perMinute: 1 }] });
    expect((await mcpAnswer(call("crm__delete_row"), t.apiKey)).result).toBeDefined();
    expect((await mcpAnswer(call("crm__delete_row"), t.apiKey)).error).toMatchObject({ code: -32029, data: { limit: "tool:crm/0" } });
    // The rule names delete_*: echo is still within the consumer's 100.
    expect((await mcpAnswer(call("crm__echo"), t.apiKey)).result).toBeDefined();
  });

  it("enforces nothing with enabled: false", async () => {
    const t = await tenantWith({ enabled: false, defaultPerMinute: 1 });
    for (let i = 0; i < 5; i++) expect((await mcpAnswer(call("crm__echo", {}, i), t.apiKey)).result).toBeDefined();
  });

  it("refuses past the daily quota with the time until the next UTC day", async () => {
    const t = await tenantWith({ defaultPerMinute: 100, quotas: { perConsumer: { daily: 1 } } });
    expect((await mcpAnswer(call("crm__echo"), t.apiKey)).result).toBeDefined();
    const refused = await mcpAnswer(call("crm__echo"), t.apiKey);
    expect(refused.error).toMatchObject({ code: -32029, data: { kind: "daily" } });
    const now = Date.now();
    const nextDay = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate() + 1);
    expect(Math.abs(now + refused.error.data.retryAfterMs - nextDay)).toBeLessThan(5_000);
  });
});

describe("the usage tool", () => {
  it("shows a consumer its own usage and an administrator the tenant's, per consumer", async () => {
    const t = await tenantWith({ defaultPerMinute: 100 });
    for (let i = 0; i < 3; i++) await mcpAnswer(call("crm__echo", {}, i), t.apiKey);
    await mcpAnswer(call("crm__secret"), t.apiKey);
    const mine = (await mcpAnswer(call("usage"), t.apiKey)).result.structuredContent;
    const echo = mine.rows.find((r: { tool: string }) => r.tool === "echo");
    expect(echo).toMatchObject({ calls: 3, ok: 3 });
    // Another consumer's usage, or grouping by consumer, is for administrators.
    expect((await mcpAnswer(call("usage", { consumer: "someone-else" }), t.apiKey)).error.code).toBe(-32602);
    expect((await mcpAnswer(call("usage", { by: "consumer" }), t.apiKey)).error.code).toBe(-32602);
    const all = (await mcpAnswer(call("usage", { by: "consumer" }), t.admin)).result.structuredContent;
    // 3 echo, 1 denied, and the agent's 3 usage calls (one answered, two refused for their arguments).
    expect(all.rows.find((r: { consumer: string }) => r.consumer === "agent-1")).toMatchObject({ calls: 7, ok: 4, denied: 1, errors: 2 });
  });
});
