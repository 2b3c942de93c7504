/**
 * The admin API (/admin/v1, docs/admin-api.md) inside workerd with the real local D1 and Connector Durable
 * Objects: who may call it, how it refuses bad requests (always `{error: {code, message}}`, never a 5xx), the
 * key and connector lifecycles as agents and connectors feel them, the servers view, what D1 keeps (digests
 * only), and the OpenAPI document.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { connectorObjectName } from "../../src/connectors/connector-api.ts";
import { CONNECTOR_IDENTITY_HEADERS } from "../../src/connectors/durable-object.ts";
import {
  adminCall,
  answerNextRpc,
  echoServer,
  FakeConnector,
  mcpAnswer,
  mcpPost,
  PLATFORM_TOKEN,
  rpcRequest,
  seedTenant,
  seedTenantWithAdmin,
  socketClosed,
  type AdminAnswer,
} from "./fixtures.ts";

const ADMIN = "/admin/v1";

/** Every secret this file issues or seeds, so the last test can check D1 holds none of them. */
const issued: string[] = [];

const secret = () => {
  const value = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
  issued.push(value);
  return value;
};

/** A tenant with a consumer key (role reader) and an admin key. */
async function tenant(options: { servers?: unknown[] } = {}) {
  const seeded = await seedTenantWithAdmin(options);
  issued.push(seeded.consumerKey, seeded.adminKey, seeded.connectorToken);
  return seeded;
}

/** The status /mcp answers a tools/list with this key: 200 when it authenticates, 401 when not. */
async function mcpStatus(apiKey: string): Promise<number> {
  const response = await mcpPost(rpcRequest("tools/list"), apiKey);
  await response.body?.cancel();
  return response.status;
}

/** An admin error: the status, the one documented shape, and its code. */
function expectError(answer: AdminAnswer, status: number, code: string): void {
  expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({ status, code });
  expect(Object.keys(answer.body)).toEqual(["error"]);
  expect(typeof answer.body.error.message).toBe("string");
  expect(answer.body.error.message.length).toBeGreaterThan(0);
  expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
}

const VALID_FILE = (tenantId: string) => `tenant: ${tenantId}\npolicies:\n  - id: readers\n    roles: [reader]\n    rules:\n      - action: allow\n`;

/** Every endpoint of docs/admin-api.md, with a body that is valid for it. */
const endpoints: { label: string; method: string; path: string; body?: (tenant: string) => unknown }[] = [
  { label: "GET whoami", method: "GET", path: "/whoami" },
  { label: "POST config/validate", method: "POST", path: "/config/validate", body: VALID_FILE },
  { label: "PUT config", method: "PUT", path: "/config", body: VALID_FILE },
  { label: "GET config", method: "GET", path: "/config" },
  { label: "GET keys", method: "GET", path: "/keys" },
  { label: "POST keys", method: "POST", path: "/keys", body: () => ({ name: "new", consumerId: "agent-1", roles: ["reader"] }) },
  { label: "DELETE keys/{id}", method: "DELETE", path: "/keys/consumer" },
  { label: "POST keys/{id}/rotate", method: "POST", path: "/keys/consumer/rotate" },
  { label: "GET servers", method: "GET", path: "/servers" },
  { label: "GET connectors", method: "GET", path: "/connectors" },
  { label: "POST connectors", method: "POST", path: "/connectors", body: () => ({ id: "edge-2" }) },
  { label: "DELETE connectors/{id}", method: "DELETE", path: "/connectors/local" },
];

describe("who may call it", () => {
  it.each(endpoints)("$label without a credential is 401 with a Bearer challenge", async ({ method, path, body }) => {
    const t = await tenant();
    const answer = await adminCall(method, `${ADMIN}${path}`, undefined, body?.(t.tenant));
    expectError(answer, 401, "unauthenticated");
    expect(answer.headers.get("www-authenticate")).toBe('Bearer realm="mcp-gateway-admin"');
  });

  it.each(endpoints)("$label with a consumer key (no admin role) is 403 and changes nothing", async ({ method, path, body }) => {
    const t = await tenant();
    const answer = await adminCall(method, `${ADMIN}${path}`, t.consumerKey, body?.(t.tenant));
    expectError(answer, 403, "forbidden");
    expect(answer.headers.get("www-authenticate")).toBeNull();
    expect(await mcpStatus(t.consumerKey)).toBe(200);
    expect(await env.DB.prepare("SELECT config_version FROM tenants WHERE id = ?").bind(t.tenant).first("config_version")).toBe(1);
  });

  it.each([
    { label: "a disabled admin key", key: { enabled: false } },
    { label: "an expired admin key", key: { expiresAt: "2020-01-01T00:00:00Z" } },
    { label: "an unknown key", key: undefined },
  ])("$label is 401", async ({ key }) => {
    const adminKey = secret();
    await seedTenant({ keys: [{ id: "admin", key: key ? adminKey : secret(), roles: ["admin"], ...key }] });
    for (const path of ["/whoami", "/keys"]) {
      const answer = await adminCall("GET", `${ADMIN}${path}`, adminKey);
      expectError(answer, 401, "unauthenticated");
      expect(answer.headers.get("www-authenticate")).toBe('Bearer realm="mcp-gateway-admin"');
    }
  });

  it("a wrong platform token is 401", async () => {
    const t = await tenant();
    expectError(await adminCall("GET", `${ADMIN}/keys?tenant=${t.tenant}`, `${PLATFORM_TOKEN}x`), 401, "unauthenticated");
  });

  it("an admin key administers its own tenant: whoami names it", async () => {
    const t = await tenant();
    const answer = await adminCall("GET", `${ADMIN}/whoami`, t.adminKey);
    expect(answer).toMatchObject({ status: 200, body: { tenant: t.tenant, consumer: "agent-1", keyId: "admin", roles: ["admin"], platformAdmin: false } });
  });

  it("the platform token administers the tenant ?tenant= names", async () => {
    const t = await tenant();
    expect((await adminCall("GET", `${ADMIN}/whoami`, PLATFORM_TOKEN)).body).toEqual({ tenant: null, consumer: null, keyId: null, roles: [], platformAdmin: true });
    expect((await adminCall("GET", `${ADMIN}/whoami?tenant=${t.tenant}`, PLATFORM_TOKEN)).body).toEqual({
      tenant: t.tenant,
      consumer: null,
      keyId: null,
      roles: [],
      platformAdmin: true,
    });
    const keys = await adminCall("GET", `${ADMIN}/keys?tenant=${t.tenant}`, PLATFORM_TOKEN);
    expect(keys.status).toBe(200);
    expect(keys.body.keys.map((k: { id: string }) => k.id)).toEqual(["admin", "consumer"]);
    const created = await adminCall("POST", `${ADMIN}/keys?tenant=${t.tenant}`, PLATFORM_TOKEN, { name: "by platform", consumerId: "agent-1", roles: ["reader"] });
    expect(created.status).toBe(201);
    issued.push(created.body.key);
    expect(await mcpStatus(created.body.key)).toBe(200);
  });

  it.each(endpoints.filter((e) => !e.path.startsWith("/config") && e.path !== "/whoami"))(
    "$label with the platform token and no ?tenant= is 400",
    async ({ method, path, body }) => {
      const t = await tenant();
      const answer = await adminCall(method, `${ADMIN}${path}`, PLATFORM_TOKEN, body?.(t.tenant));
      expectError(answer, 400, "bad_request");
      expect(answer.body.error.message).toMatch(/\?tenant=/);
    },
  );

  it("the platform token applies a file for the tenant it names, and refuses one whose tenant: disagrees with ?tenant=", async () => {
    const t = await tenant();
    const other = `other-${crypto.randomUUID().slice(0, 8)}`;
    const mismatch = await adminCall("PUT", `${ADMIN}/config?tenant=${t.tenant}`, PLATFORM_TOKEN, VALID_FILE(other));
    expectError(mismatch, 400, "bad_request");
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM tenants WHERE id = ?").bind(other).first("n")).toBe(0);
    const applied = await adminCall("PUT", `${ADMIN}/config?tenant=${t.tenant}`, PLATFORM_TOKEN, VALID_FILE(t.tenant));
    expect(applied).toMatchObject({ status: 200, body: { tenant: t.tenant, version: 2 } });
  });

  it("GET config with the platform token and no ?tenant= is 400", async () => {
    expectError(await adminCall("GET", `${ADMIN}/config`, PLATFORM_TOKEN), 400, "bad_request");
  });

  it("a malformed ?tenant= is 400", async () => {
    const t = await tenant();
    expectError(await adminCall("GET", `${ADMIN}/keys?tenant=${encodeURIComponent("../etc")}`, t.adminKey), 400, "bad_request");
  });
});

describe("bad requests: one error shape, never a 5xx", () => {
  const malformed: { label: string; method: string; path: string; body: string; type: string }[] = [
    { label: "malformed JSON to POST keys", method: "POST", path: "/keys", body: "{not json", type: "application/json" },
    { label: "malformed JSON to POST connectors", method: "POST", path: "/connectors", body: '{"id": ', type: "application/json" },
    { label: "malformed JSON to PUT config", method: "PUT", path: "/config", body: "{not json", type: "application/json" },
    // docs/admin-api.md: 400 bad_request for a "malformed JSON/YAML body"; 422 is for a file that parses but is invalid.
    { label: "malformed YAML to PUT config", method: "PUT", path: "/config", body: "tenant: [unclosed\n  - : :", type: "application/yaml" },
    { label: "malformed YAML to POST config/validate", method: "POST", path: "/config/validate", body: "tenant: [unclosed\n  - : :", type: "application/yaml" },
  ];

  it.each(malformed)("$label is 400 and changes nothing", async ({ method, path, body, type }) => {
    const t = await tenant();
    expectError(await adminCall(method, `${ADMIN}${path}`, t.adminKey, body, { "content-type": type }), 400, "bad_request");
    expect(await env.DB.prepare("SELECT config_version FROM tenants WHERE id = ?").bind(t.tenant).first("config_version")).toBe(1);
    expect((await adminCall("GET", `${ADMIN}/keys`, t.adminKey)).body.keys).toHaveLength(2);
  });

  it("wrong types are 400 with details naming each field", async () => {
    const t = await tenant();
    const answer = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { name: 5, consumerId: "agent-1", roles: "reader" });
    expectError(answer, 400, "bad_request");
    expect(answer.body.error.details).toEqual([expect.stringMatching(/^name: /), expect.stringMatching(/^roles: /)]);
    const connector = await adminCall("POST", `${ADMIN}/connectors`, t.adminKey, { id: 42 });
    expectError(connector, 400, "bad_request");
    expect(connector.body.error.details).toEqual([expect.stringMatching(/^id: /)]);
  });

  it("unknown fields are 400 and name the field", async () => {
    const t = await tenant();
    const key = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { name: "k", consumerId: "agent-1", roles: [], tenant: "other" });
    expectError(key, 400, "bad_request");
    expect(key.body.error.details.join("\n")).toMatch(/tenant/);
    const connector = await adminCall("POST", `${ADMIN}/connectors`, t.adminKey, { id: "edge", token: "gwc_chosen_by_me" });
    expectError(connector, 400, "bad_request");
    expect(connector.body.error.details.join("\n")).toMatch(/token/);
    expect((await adminCall("GET", `${ADMIN}/connectors`, t.adminKey)).body.connectors.map((c: { id: string }) => c.id)).toEqual(["local"]);
  });

  it("a body above 1 MiB is 413", async () => {
    const t = await tenant();
    const big = `${VALID_FILE(t.tenant)}# ${"x".repeat(1024 * 1024)}\n`;
    expectError(await adminCall("PUT", `${ADMIN}/config`, t.adminKey, big), 413, "too_large");
    expectError(await adminCall("POST", `${ADMIN}/config/validate`, t.adminKey, big), 413, "too_large");
    expectError(await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { name: "x".repeat(1024 * 1024), consumerId: "agent-1" }), 413, "too_large");
    expect(await env.DB.prepare("SELECT config_version FROM tenants WHERE id = ?").bind(t.tenant).first("config_version")).toBe(1);
  });

  const wrongTypes: { label: string; method: string; path: string; body: (tenant: string) => string; type: string }[] = [
    { label: "PUT config as text/html", method: "PUT", path: "/config", body: VALID_FILE, type: "text/html" },
    { label: "POST config/validate as image/png", method: "POST", path: "/config/validate", body: VALID_FILE, type: "image/png" },
    { label: "POST keys as text/plain", method: "POST", path: "/keys", body: () => JSON.stringify({ name: "k", consumerId: "agent-1" }), type: "text/plain" },
    { label: "POST connectors as application/x-www-form-urlencoded", method: "POST", path: "/connectors", body: () => "id=edge-9", type: "application/x-www-form-urlencoded" },
  ];

  it.each(wrongTypes)("$label is 400 and changes nothing", async ({ method, path, body, type }) => {
    const t = await tenant();
    expectError(await adminCall(method, `${ADMIN}${path}`, t.adminKey, body(t.tenant), { "content-type": type }), 400, "bad_request");
    expect(await env.DB.prepare("SELECT config_version FROM tenants WHERE id = ?").bind(t.tenant).first("config_version")).toBe(1);
    expect((await adminCall("GET", `${ADMIN}/keys`, t.adminKey)).body.keys).toHaveLength(2);
    expect((await adminCall("GET", `${ADMIN}/connectors`, t.adminKey)).body.connectors).toHaveLength(1);
  });

  it("an unknown route under /admin/v1 is 404 in the same shape", async () => {
    const t = await tenant();
    expectError(await adminCall("GET", `${ADMIN}/tenants`, t.adminKey), 404, "not_found");
  });
});

describe("API keys", () => {
  it("create returns the key once; it works on /mcp at once; the list never shows a key or a digest", async () => {
    const t = await tenant();
    const created = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { id: "ci-bot", name: "CI bot", consumerId: "ci", roles: ["reader"] });
    expect(created.status).toBe(201);
    issued.push(created.body.key);
    expect(created.body).toEqual({
      key: expect.stringMatching(/^gw_[A-Za-z0-9_-]{43}$/),
      id: "ci-bot",
      name: "CI bot",
      consumerId: "ci",
      roles: ["reader"],
      enabled: true,
      expiresAt: null,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      source: "api",
      revokedAt: null,
      status: "active",
      lastUsedAt: null,
      previousExpiresAt: null,
    });
    expect(await mcpStatus(created.body.key)).toBe(200);
    const listed = await adminCall("GET", `${ADMIN}/keys`, t.adminKey);
    expect(listed.status).toBe(200);
    // lastUsedAt: the use above is written after its answer (test/worker/key-lifecycle.test.ts checks it).
    const { lastUsedAt: _lastUsed, ...listedKey } = listed.body.keys.find((k: { id: string }) => k.id === "ci-bot");
    expect(listedKey).toEqual({ ...created.body, key: undefined, lastUsedAt: undefined });
    expect(listed.body.keys.map((k: { id: string; source: string }) => [k.id, k.source])).toEqual([
      ["admin", "config"],
      ["ci-bot", "api"],
      ["consumer", "config"],
    ]);
    for (const key of listed.body.keys) expect(Object.keys(key).sort()).toEqual(["consumerId", "createdAt", "enabled", "expiresAt", "id", "lastUsedAt", "name", "previousExpiresAt", "revokedAt", "roles", "source", "status"]);
    expect(listed.text).not.toMatch(/[0-9a-f]{64}/);
    expect(listed.text).not.toContain(created.body.key);
    expect(listed.text).not.toContain("gw_");
  });

  it("create with an id in use is 409; with an expiry in the past is 400", async () => {
    const t = await tenant();
    expectError(await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { id: "consumer", name: "dup", consumerId: "agent-1", roles: [] }), 409, "conflict");
    expect(await mcpStatus(t.consumerKey)).toBe(200);
    expectError(
      await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { name: "old", consumerId: "agent-1", roles: [], expiresAt: "2001-01-01T00:00:00Z" }),
      400,
      "bad_request",
    );
  });

  it("create with a role no policy grants is 400 and creates nothing; the admin role needs no policy", async () => {
    const t = await tenant();
    const refused = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { id: "typo", name: "typo", consumerId: "agent-1", roles: ["raeder"] });
    expectError(refused, 400, "bad_request");
    expect(refused.body.error.message).toContain('"raeder"');
    expect((await adminCall("GET", `${ADMIN}/keys`, t.adminKey)).body.keys.map((k: { id: string }) => k.id)).toEqual(["admin", "consumer"]);
    const admin = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { name: "second admin", consumerId: "ops", roles: ["admin"] });
    expect(admin.status).toBe(201);
    issued.push(admin.body.key);
    expect((await adminCall("GET", `${ADMIN}/whoami`, admin.body.key)).body.roles).toEqual(["admin"]);
  });

  it("revoke: the key gets 401 on /mcp on the very next request", async () => {
    const t = await tenant();
    const created = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { id: "temp", name: "temp", consumerId: "agent-1", roles: ["reader"] });
    issued.push(created.body.key);
    expect(await mcpStatus(created.body.key)).toBe(200);
    const revoked = await adminCall("DELETE", `${ADMIN}/keys/temp`, t.adminKey);
    expect(revoked).toMatchObject({ status: 200, body: { id: "temp", enabled: false } });
    const response = await mcpPost(rpcRequest("tools/list"), created.body.key);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/invalid_token/);
    expect((await adminCall("GET", `${ADMIN}/keys`, t.adminKey)).body.keys.find((k: { id: string }) => k.id === "temp").enabled).toBe(false);
    expectError(await adminCall("DELETE", `${ADMIN}/keys/nope`, t.adminKey), 404, "not_found");
  });

  it("revoking a config-sourced key works at once too", async () => {
    const t = await tenant();
    expect((await adminCall("DELETE", `${ADMIN}/keys/consumer`, t.adminKey)).status).toBe(200);
    expect(await mcpStatus(t.consumerKey)).toBe(401);
  });

  it("rotate: the old key gets 401 at once, the new one works, the id stays", async () => {
    const t = await tenant();
    const created = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { id: "rotating", name: "r", consumerId: "agent-1", roles: ["reader"] });
    issued.push(created.body.key);
    const rotated = await adminCall("POST", `${ADMIN}/keys/rotating/rotate`, t.adminKey);
    expect(rotated.status).toBe(200);
    issued.push(rotated.body.key);
    expect(rotated.body).toMatchObject({ id: "rotating", name: "r", consumerId: "agent-1", roles: ["reader"], enabled: true, source: "api" });
    expect(rotated.body.key).not.toBe(created.body.key);
    expect(await mcpStatus(created.body.key)).toBe(401);
    expect(await mcpStatus(rotated.body.key)).toBe(200);
    expectError(await adminCall("POST", `${ADMIN}/keys/nope/rotate`, t.adminKey), 404, "not_found");
  });

  it("rotating a config-sourced key is 409 and the key keeps working", async () => {
    const t = await tenant();
    const answer = await adminCall("POST", `${ADMIN}/keys/consumer/rotate`, t.adminKey);
    expectError(answer, 409, "conflict");
    expect(answer.body.error.message).toMatch(/gateway\.yaml/);
    expect(answer.text).not.toMatch(/"key"/);
    expect(await mcpStatus(t.consumerKey)).toBe(200);
  });
});

describe("connectors", () => {
  it("create returns a token once that works on /connect; the list never shows it", async () => {
    const t = await tenant();
    const created = await adminCall("POST", `${ADMIN}/connectors`, t.adminKey, { id: "edge-2", name: "second host" });
    expect(created.status).toBe(201);
    issued.push(created.body.token);
    expect(created.body).toEqual({ id: "edge-2", name: "second host", enabled: true, createdAt: expect.any(String), token: expect.stringMatching(/^gwc_/) });
    const connector = await FakeConnector.connect(created.body.token);
    await connector.hello([echoServer("docs")]);
    const call = mcpAnswer(rpcRequest("tools/call", { name: "docs__echo", arguments: {} }), t.consumerKey);
    const rpc = await answerNextRpc(connector, { content: [{ type: "text", text: "via edge-2" }] });
    expect(rpc.serverId).toBe("docs");
    expect((await call).result.content[0].text).toBe("via edge-2");
    const listed = await adminCall("GET", `${ADMIN}/connectors`, t.adminKey);
    expect(listed.body.connectors.map((c: Record<string, unknown>) => Object.keys(c).sort())).toEqual([
      ["createdAt", "enabled", "id", "name"],
      ["createdAt", "enabled", "id", "name"],
    ]);
    expect(listed.text).not.toContain(created.body.token);
    expect(listed.text).not.toMatch(/[0-9a-f]{64}/);
    expectError(await adminCall("POST", `${ADMIN}/connectors`, t.adminKey, { id: "edge-2" }), 409, "conflict");
  });

  it("revoke closes the live link, fails its servers' calls and refuses a reconnect with 401", async () => {
    const t = await tenant();
    const connector = await FakeConnector.connect(t.connectorToken);
    const closed = socketClosed(connector);
    await connector.hello([echoServer("crm")]);
    const revoked = await adminCall("DELETE", `${ADMIN}/connectors/local`, t.adminKey);
    expect(revoked).toMatchObject({ status: 200, body: { id: "local", enabled: false } });
    await closed;
    expect(connector.frames.find((f) => f.type === "error")).toMatchObject({ type: "error", code: "revoked" });
    await expect(FakeConnector.connect(t.connectorToken)).rejects.toThrow(/401/);
    const call = await mcpAnswer(rpcRequest("tools/call", { name: "crm__echo", arguments: {} }), t.consumerKey);
    expect(call.error.code).toBe(-32091);
    expect((await adminCall("GET", `${ADMIN}/connectors`, t.adminKey)).body.connectors).toEqual([
      { id: "local", name: "local", enabled: false, createdAt: expect.any(String) },
    ]);
    expectError(await adminCall("DELETE", `${ADMIN}/connectors/nope`, t.adminKey), 404, "not_found");
  });
});

describe("servers", () => {
  it("merges what connectors report with what gateway.yaml declares, with the health detail", async () => {
    const t = await tenant({
      servers: [
        { id: "crm", command: "node", args: ["crm.js"] },
        { id: "waiting", command: "node", args: ["waiting.js"], prefix: "w" },
        { id: "off", command: "node", enabled: false },
      ],
    });
    const connector = await FakeConnector.connect(t.connectorToken);
    await connector.hello([echoServer("crm", { health: "unhealthy", detail: "crash loop: exited with code 1 three times" }), echoServer("extra")]);
    const answer = await adminCall("GET", `${ADMIN}/servers`, t.adminKey);
    expect(answer.status).toBe(200);
    const byId = Object.fromEntries(answer.body.servers.map((s: { id: string }) => [s.id, s]));
    expect(Object.keys(byId)).toEqual(["crm", "extra", "off", "waiting"]);
    expect(byId.crm).toEqual({
      id: "crm",
      name: "crm server",
      connectorId: "local",
      prefix: null,
      enabled: true,
      declared: true,
      status: "unhealthy",
      detail: "crash loop: exited with code 1 three times",
      tools: 1,
      prompts: 1,
      resources: 2,
      conflicts: null,
      updatedAt: expect.any(String),
    });
    expect(byId.extra).toMatchObject({ declared: false, status: "healthy", connectorId: "local", detail: null });
    expect(byId.waiting).toEqual({
      id: "waiting",
      name: "waiting",
      connectorId: null,
      prefix: "w",
      enabled: true,
      declared: true,
      status: "not connected",
      detail: "declared in gateway.yaml; no connector has reported it yet",
      tools: 0,
      prompts: 0,
      resources: 0,
      conflicts: null,
      updatedAt: null,
    });
    expect(byId.off).toMatchObject({ enabled: false, status: "not connected" });
    expect(answer.text).not.toMatch(/crm\.js|waiting\.js|"command"/);
  });
});

describe("the OpenAPI document", () => {
  // The endpoint table of docs/admin-api.md.
  const documented = [
    ["get", "/admin/v1/whoami"],
    ["post", "/admin/v1/config/validate"],
    ["put", "/admin/v1/config"],
    ["get", "/admin/v1/config"],
    ["get", "/admin/v1/keys"],
    ["post", "/admin/v1/keys"],
    ["delete", "/admin/v1/keys/{id}"],
    ["post", "/admin/v1/keys/{id}/rotate"],
    ["get", "/admin/v1/servers"],
    ["get", "/admin/v1/connectors"],
    ["post", "/admin/v1/connectors"],
    ["delete", "/admin/v1/connectors/{id}"],
    ["get", "/admin/v1/audit/entries"],
    ["get", "/admin/v1/audit/stats"],
    ["get", "/admin/v1/audit/head"],
    ["post", "/admin/v1/audit/verify"],
    ["get", "/admin/v1/audit/export"],
    ["get", "/admin/v1/usage"],
    ["get", "/admin/v1/usage/chargeback"],
    ["post", "/admin/v1/usage/stripe"],
  ] as const;

  it("is OpenAPI 3.1, needs no credential, and lists every documented operation with the bearer scheme", async () => {
    const answer = await adminCall("GET", "/openapi.json", undefined);
    expect(answer.status).toBe(200);
    const doc = answer.body;
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => ["get", "put", "post", "delete", "patch"].includes(m))
        .map((m) => `${m} ${path}`),
    );
    expect(operations.sort()).toEqual(documented.map(([m, p]) => `${m} ${p}`).sort());
    for (const [method, path] of documented) {
      const operation = doc.paths[path][method];
      expect(operation.security, `${method} ${path}`).toEqual([{ bearer: [] }]);
      expect(Object.keys(operation.responses), `${method} ${path}`).toEqual(expect.arrayContaining(["401", "403"]));
    }
    expect(doc.paths["/admin/v1/keys/{id}"].delete.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: "id", in: "path" })]));
  });
});

describe("what D1 keeps", () => {
  // Runs last, so every key and token the tests above issued or seeded (`issued`) is checked too.
  it("holds no key or token in plaintext, only digests", async () => {
    const t = await tenant();
    const created = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { name: "n", consumerId: "agent-1", roles: ["reader"] });
    const rotated = await adminCall("POST", `${ADMIN}/keys/${created.body.id}/rotate`, t.adminKey);
    const connector = await adminCall("POST", `${ADMIN}/connectors`, t.adminKey, { id: "scan" });
    issued.push(created.body.key, rotated.body.key, connector.body.token, PLATFORM_TOKEN);
    const dump = JSON.stringify([
      await env.DB.prepare("SELECT * FROM api_keys").all(),
      await env.DB.prepare("SELECT * FROM connectors").all(),
      await env.DB.prepare("SELECT * FROM tenants").all(),
      await env.DB.prepare("SELECT * FROM consumers").all(),
    ]);
    for (const value of issued) expect(dump.includes(value), value.slice(0, 6)).toBe(false);
    const digest = await env.DB.prepare("SELECT key_hash FROM api_keys WHERE tenant_id = ? AND id = ?").bind(t.tenant, created.body.id).first("key_hash");
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("a revoked connector's Durable Object", () => {
  it("refuses every later socket, even one the Worker authenticated just before the revocation", async () => {
    const { tenant } = await seedTenant();
    const stub = env.CONNECTOR.getByName(connectorObjectName(tenant, "local"));
    const attach = () =>
      stub.fetch(
        new Request("https://gateway.test/connect", {
          headers: { upgrade: "websocket", [CONNECTOR_IDENTITY_HEADERS.tenant]: tenant, [CONNECTOR_IDENTITY_HEADERS.connector]: "local" },
        }),
      );
    const before = await attach();
    expect(before.status).toBe(101);
    before.webSocket?.accept();
    expect(await stub.revoke()).toBe(1);
    expect((await attach()).status).toBe(401);
  });
});
