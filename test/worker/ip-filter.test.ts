/**
 * IP allow and deny lists on /mcp inside workerd, per tenant and per key: checked on CF-Connecting-IP only (a
 * spoofed X-Forwarded-For changes nothing either way), 403 with a JSON-RPC Forbidden error that never echoes the
 * lists, fail closed without a CF-Connecting-IP or with a stored list that does not compile, each refusal in the
 * tenant's audit chain, a key's own lists written by a config apply (and updated by a re-apply), and a malformed
 * CIDR refused by PUT /admin/v1/config with 422 and its path.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { adminCall, keyEntry, mcpPost, rpcRequest, seedTenant, seedTenantWithAdmin } from "./fixtures.ts";

const secret = () => `gw_${crypto.randomUUID().replace(/-/g, "")}`;
const ALLOW_READERS = [{ id: "readers", roles: ["reader"], rules: [{ id: "readers-all", action: "allow" }] }];

/** Status and JSON body of a tools/list on /mcp from `ip` (no CF-Connecting-IP when null). */
async function call(apiKey: string, ip: string | null, headers: Record<string, string> = {}) {
  const response = await mcpPost(rpcRequest("tools/list"), apiKey, { ...(ip === null ? {} : { "cf-connecting-ip": ip }), ...headers });
  const text = await response.text();
  return { status: response.status, text, body: response.headers.get("content-type")?.includes("application/json") ? JSON.parse(text) : null };
}

/** The tenant's audit chain as shipped to D1. */
async function auditRows(tenant: string) {
  await env.AUDIT_LOG.getByName(tenant).flush();
  const { results } = await env.DB.prepare(
    "SELECT seq, method, status, error_code AS errorCode, key_id AS keyId, consumer, client_ip AS clientIp, error_message AS errorMessage, prev_hash AS prevHash, hash FROM audit_entries WHERE tenant_id = ? ORDER BY seq",
  )
    .bind(tenant)
    .all<Record<string, any>>();
  return results;
}

describe("a tenant's lists on CF-Connecting-IP", () => {
  const lists = { allow: ["192.0.2.0/24", "2001:db8::/32"], deny: ["192.0.2.66"] };

  it("an allowed address passes, v4 and v6", async () => {
    const { apiKey } = await seedTenant({ ipFilter: lists });
    expect((await call(apiKey, "192.0.2.10")).status).toBe(200);
    expect((await call(apiKey, "2001:db8:1::5")).status).toBe(200);
  });

  it("an address outside the allow list or in the deny list gets 403 with a JSON-RPC Forbidden error", async () => {
    const { apiKey } = await seedTenant({ ipFilter: lists });
    for (const ip of ["198.51.100.1", "192.0.2.66", "2001:db9::1"]) {
      const answer = await call(apiKey, ip);
      expect(answer.status, ip).toBe(403);
      expect(answer.body).toEqual({
        jsonrpc: "2.0",
        id: null,
        error: { code: -32000, message: "The client address is not allowed for this tenant" },
      });
      // Neither the lists nor the address are echoed.
      expect(answer.text).not.toMatch(/192\.0\.2\.0|2001:db8|192\.0\.2\.66|198\.51/);
    }
  });

  it("a spoofed X-Forwarded-For naming an allowed address does not let a denied CF-Connecting-IP in", async () => {
    const { apiKey } = await seedTenant({ ipFilter: lists });
    const answer = await call(apiKey, "198.51.100.1", { "x-forwarded-for": "192.0.2.10", "x-real-ip": "192.0.2.10", "true-client-ip": "192.0.2.10" });
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe(-32000);
  });

  it("an allowed CF-Connecting-IP with a hostile X-Forwarded-For still passes", async () => {
    const { apiKey } = await seedTenant({ ipFilter: lists });
    expect((await call(apiKey, "192.0.2.10", { "x-forwarded-for": "192.0.2.66, garbage, 198.51.100.1" })).status).toBe(200);
  });

  it("no CF-Connecting-IP with a list configured is refused (fail closed), even with X-Forwarded-For", async () => {
    const { apiKey } = await seedTenant({ ipFilter: { deny: ["203.0.113.0/24"] } });
    expect((await call(apiKey, null)).status).toBe(403);
    expect((await call(apiKey, null, { "x-forwarded-for": "192.0.2.10" })).status).toBe(403);
    expect((await call(apiKey, "not-an-address")).status).toBe(403);
    expect((await call(apiKey, "192.0.2.10")).status).toBe(200);
  });

  it("no lists: any address, or none, passes", async () => {
    const { apiKey } = await seedTenant();
    expect((await call(apiKey, null)).status).toBe(200);
    expect((await call(apiKey, "203.0.113.1")).status).toBe(200);
  });

  it("an IPv4-mapped IPv6 CF-Connecting-IP is compared as IPv4", async () => {
    const { apiKey } = await seedTenant({ ipFilter: { allow: ["192.0.2.0/24"] } });
    expect((await call(apiKey, "::ffff:192.0.2.10")).status).toBe(200);
    expect((await call(apiKey, "::ffff:198.51.100.1")).status).toBe(403);
  });

  it("a bad credential is still a 401 before any IP check", async () => {
    await seedTenant({ ipFilter: lists });
    expect((await call(secret(), "198.51.100.1")).status).toBe(401);
  });

  it("a stored list that does not compile fails closed with 503", async () => {
    const { tenant, apiKey } = await seedTenant();
    // A config stored before entries were validated: written straight to D1, before the first request reads it.
    const row = await env.DB.prepare("SELECT config FROM tenants WHERE id = ?").bind(tenant).first<{ config: string }>();
    const config = { ...JSON.parse(row!.config), ipFilter: { allow: ["10.0.0.0/99"], deny: [] } };
    await env.DB.prepare("UPDATE tenants SET config = ?, config_version = config_version + 1 WHERE id = ?").bind(JSON.stringify(config), tenant).run();
    const answer = await call(apiKey, "10.0.0.1");
    expect(answer.status).toBe(503);
    expect(answer.body.error.code).toBe(-32091);
    expect(answer.text).not.toContain("10.0.0.0/99");
  });
});

describe("a key's own lists", () => {
  it("narrow the tenant's: each key is checked against both", async () => {
    const wide = secret();
    const narrow = secret();
    const { tenant } = await seedTenant({
      ipFilter: { allow: ["10.0.0.0/8"] },
      keys: [
        { id: "wide", key: wide },
        { id: "narrow", key: narrow, ipFilter: { allow: ["10.1.0.0/16"], deny: ["10.1.2.3"] } },
      ],
    });
    expect((await call(wide, "10.9.9.9")).status).toBe(200);
    expect((await call(narrow, "10.1.5.5")).status).toBe(200);
    const outside = await call(narrow, "10.9.9.9");
    expect(outside.status).toBe(403);
    expect(outside.body.error).toEqual({ code: -32000, message: "The client address is not allowed for this API key" });
    expect((await call(narrow, "10.1.2.3")).status).toBe(403);
    // The tenant's list still applies to a key whose own list would allow the address.
    expect((await call(narrow, "192.0.2.1")).body.error.message).toBe("The client address is not allowed for this tenant");
    const rows = await env.DB.prepare("SELECT id, ip_filter FROM api_keys WHERE tenant_id = ? ORDER BY id").bind(tenant).all();
    expect(rows.results).toEqual([
      { id: "narrow", ip_filter: JSON.stringify({ allow: ["10.1.0.0/16"], deny: ["10.1.2.3"] }) },
      { id: "wide", ip_filter: null },
    ]);
  });
});

describe("refusals in the tenant's audit chain", () => {
  it("each refused address is an authenticate entry naming the key, the address and why", async () => {
    const apiKey = secret();
    const { tenant } = await seedTenant({
      ipFilter: { deny: ["198.51.100.0/24"] },
      keys: [{ id: "k1", key: apiKey, consumerId: "agent-7", ipFilter: { allow: ["192.0.2.0/24", "198.51.100.0/24"] } }],
    });
    expect((await call(apiKey, "192.0.2.1")).status).toBe(200);
    expect((await call(apiKey, "198.51.100.9", { "x-forwarded-for": "192.0.2.1" })).status).toBe(403);
    expect((await call(apiKey, "203.0.113.5")).status).toBe(403);
    const rows = await auditRows(tenant);
    const refusals = rows.filter((r) => r.method === "authenticate");
    expect(refusals).toEqual([
      expect.objectContaining({
        status: "unauthenticated",
        // The code the agent got (403, Forbidden), not the 401's.
        errorCode: -32000,
        keyId: "k1",
        consumer: "agent-7",
        clientIp: "198.51.100.9",
        errorMessage: "The client address is not allowed for this tenant: the client address is in the deny list (IP filter)",
      }),
      expect.objectContaining({
        status: "unauthenticated",
        keyId: "k1",
        clientIp: "203.0.113.5",
        errorMessage: "The client address is not allowed for this API key: the client address is not in the allow list (IP filter)",
      }),
    ]);
    // Chained like every other entry.
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
  });
});

describe("gateway.yaml through the admin API", () => {
  async function tenantWithAdmin() {
    const seeded = await seedTenantWithAdmin({ policies: ALLOW_READERS });
    const { consumerKey, adminKey } = seeded;
    const keys = async (consumerFilter?: unknown) => [
      await keyEntry("admin", adminKey, ["admin"]),
      await keyEntry("consumer", consumerKey, ["reader"], consumerFilter ? { ipFilter: consumerFilter } : {}),
    ];
    const file = async (parts: { ipFilter?: unknown; consumerFilter?: unknown } = {}) =>
      stringify({ tenant: seeded.tenant, auth: { keys: await keys(parts.consumerFilter) }, policies: ALLOW_READERS, ...(parts.ipFilter ? { ipFilter: parts.ipFilter } : {}) });
    return { ...seeded, file };
  }

  it("a malformed CIDR is refused with 422 naming its path, and nothing changes", async () => {
    const t = await tenantWithAdmin();
    const before = await adminCall("GET", "/admin/v1/config", t.adminKey);
    const tenantLevel = await adminCall("PUT", "/admin/v1/config", t.adminKey, await t.file({ ipFilter: { allow: ["10.0.0.0/8", "10.0.0.0/33"] } }));
    expect(tenantLevel.status).toBe(422);
    expect(tenantLevel.body.error.code).toBe("invalid_config");
    expect(tenantLevel.body.error.details).toContainEqual(expect.stringMatching(/^ipFilter\.allow\[1\]: "10\.0\.0\.0\/33" has an invalid prefix length/));
    const keyLevel = await adminCall("PUT", "/admin/v1/config", t.adminKey, await t.file({ consumerFilter: { deny: ["2001:db8::zz"] } }));
    expect(keyLevel.status).toBe(422);
    expect(keyLevel.body.error.details).toContainEqual(expect.stringMatching(/^auth\.keys\[1\]\.ipFilter\.deny\[0\]: "2001:db8::zz" is not an IPv6 address/));
    expect((await adminCall("GET", "/admin/v1/config", t.adminKey)).body).toEqual(before.body);
    expect((await call(t.consumerKey, "203.0.113.1")).status).toBe(200);
  });

  it("POST /admin/v1/keys accepts a key's own lists and refuses a malformed one with 400 and its path", async () => {
    const t = await tenantWithAdmin();
    const created = await adminCall("POST", "/admin/v1/keys", t.adminKey, { name: "office", consumerId: "agent-1", roles: ["reader"], id: "office", ipFilter: { allow: ["192.0.2.0/24"] } });
    expect(created.status).toBe(201);
    const row = await env.DB.prepare("SELECT ip_filter FROM api_keys WHERE tenant_id = ? AND id = 'office'").bind(t.tenant).first<{ ip_filter: string }>();
    expect(JSON.parse(row!.ip_filter)).toEqual({ allow: ["192.0.2.0/24"], deny: [] });
    expect((await call(created.body.key, "192.0.2.1")).status).toBe(200);
    expect((await call(created.body.key, "203.0.113.1")).status).toBe(403);
    const plain = await adminCall("POST", "/admin/v1/keys", t.adminKey, { name: "plain", consumerId: "agent-1", roles: ["reader"], id: "plain" });
    expect(plain.status).toBe(201);
    expect((await env.DB.prepare("SELECT ip_filter FROM api_keys WHERE tenant_id = ? AND id = 'plain'").bind(t.tenant).first())!.ip_filter).toBeNull();
    const bad = await adminCall("POST", "/admin/v1/keys", t.adminKey, { name: "bad", consumerId: "agent-1", roles: ["reader"], ipFilter: { deny: ["::/0", "10.0.0.1/8"] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual([expect.stringMatching(/^ipFilter\.deny\.1: "10\.0\.0\.1\/8" has bits set after its \/8 prefix/)]);
  });

  it("an apply writes a key's lists and a re-apply updates or clears them", async () => {
    const t = await tenantWithAdmin();
    const ipFilterOf = async () =>
      (await env.DB.prepare("SELECT ip_filter FROM api_keys WHERE tenant_id = ? AND id = 'consumer'").bind(t.tenant).first<{ ip_filter: string | null }>())!.ip_filter;
    expect((await adminCall("PUT", "/admin/v1/config", t.adminKey, await t.file({ consumerFilter: { allow: ["192.0.2.0/24"] } }))).status).toBe(200);
    expect(await ipFilterOf()).toBe(JSON.stringify({ allow: ["192.0.2.0/24"], deny: [] }));
    expect((await call(t.consumerKey, "203.0.113.1")).status).toBe(403);
    expect((await call(t.consumerKey, "192.0.2.1")).status).toBe(200);
    // The admin key has no lists of its own and the tenant none: it is unaffected.
    expect((await call(t.adminKey, "203.0.113.1")).status).toBe(200);

    expect((await adminCall("PUT", "/admin/v1/config", t.adminKey, await t.file({ consumerFilter: { allow: ["203.0.113.0/24"] } }))).status).toBe(200);
    expect(await ipFilterOf()).toBe(JSON.stringify({ allow: ["203.0.113.0/24"], deny: [] }));
    expect((await call(t.consumerKey, "203.0.113.1")).status).toBe(200);
    expect((await call(t.consumerKey, "192.0.2.1")).status).toBe(403);

    expect((await adminCall("PUT", "/admin/v1/config", t.adminKey, await t.file())).status).toBe(200);
    expect(await ipFilterOf()).toBeNull();
    expect((await call(t.consumerKey, "192.0.2.1")).status).toBe(200);
  });
});

describe("the admin API", () => {
  it("holds an admin key to its tenant's and its own IP lists, as /mcp does", async () => {
    const admin = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
    await seedTenant({
      ipFilter: { allow: ["192.0.2.0/24", "198.51.100.0/24"] },
      keys: [{ id: "ops", key: admin, roles: ["admin"], ipFilter: { allow: ["192.0.2.0/24"] } }],
    });
    const whoami = (ip: string, headers: Record<string, string> = {}) => adminCall("GET", "/admin/v1/whoami", admin, undefined, { "cf-connecting-ip": ip, ...headers });
    expect((await whoami("192.0.2.10")).status).toBe(200);
    // Inside the tenant's list, outside the key's own.
    const byKey = await whoami("198.51.100.7");
    expect(byKey.status).toBe(403);
    expect(byKey.body.error).toMatchObject({ code: "forbidden", message: "The client address is not allowed for this API key" });
    expect((await whoami("203.0.113.5", { "x-forwarded-for": "192.0.2.10" })).status).toBe(403);
    expect((await adminCall("GET", "/admin/v1/keys", admin, undefined, { "cf-connecting-ip": "203.0.113.5" })).status).toBe(403);
  });
});
