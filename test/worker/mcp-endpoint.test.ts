/**
 * /mcp at the HTTP boundary, inside workerd with the real local D1: authentication, Origin, body limit, methods.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_BYTES } from "../../src/link/protocol.ts";
import { BASE, INITIALIZE, mcpPost, rpcMessages, seedTenant, upstreamToolNames } from "./fixtures.ts";

describe("authentication", () => {
  it("answers 401 with a Bearer challenge when no key is sent", async () => {
    await seedTenant();
    const response = await mcpPost(INITIALIZE, undefined);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="mcp-gateway"');
    const [message] = await rpcMessages(response);
    expect(message?.error.code).toBe(-32001);
  });

  it("refuses an unknown key with invalid_token", async () => {
    await seedTenant();
    const response = await mcpPost(INITIALIZE, "gw_not-a-real-key-000000000000");
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("refuses a disabled key and an expired key, each saying why", async () => {
    const { tenant } = await seedTenant({
      keys: [
        { id: "off", key: "gw_disabled_key_0123456789abcdef", enabled: false },
        { id: "old", key: "gw_expired_key_0123456789abcdef", expiresAt: "2020-01-01T00:00:00Z" },
      ],
    });
    expect(tenant).toBeTruthy();
    const disabled = await mcpPost(INITIALIZE, "gw_disabled_key_0123456789abcdef");
    expect(disabled.status).toBe(401);
    expect((await rpcMessages(disabled))[0]?.error.message).toMatch(/disabled/);
    const expired = await mcpPost(INITIALIZE, "gw_expired_key_0123456789abcdef");
    expect(expired.status).toBe(401);
    expect((await rpcMessages(expired))[0]?.error.message).toMatch(/expired/);
  });

  it("accepts a valid key and initializes a 2025-era client", async () => {
    const { apiKey } = await seedTenant();
    const response = await mcpPost(INITIALIZE, apiKey);
    expect(response.status).toBe(200);
    const [message] = await rpcMessages(response);
    expect(message?.result.serverInfo.name).toBe("mcp-gateway");
    expect(message?.result.protocolVersion).toBe("2025-11-25");
  });

  it("stores only digests: no key or token appears in any D1 row", async () => {
    const { apiKey, connectorToken } = await seedTenant();
    const dump = JSON.stringify([
      await env.DB.prepare("SELECT * FROM api_keys").all(),
      await env.DB.prepare("SELECT * FROM connectors").all(),
    ]);
    expect(dump).not.toContain(apiKey);
    expect(dump).not.toContain(connectorToken);
  });
});

describe("protocol eras", () => {
  it.each(["2025-11-25", "2025-06-18", "2025-03-26"])("initializes a %s client with that version", async (version) => {
    const { apiKey } = await seedTenant();
    const response = await mcpPost({ ...INITIALIZE, params: { ...INITIALIZE.params, protocolVersion: version } }, apiKey);
    expect((await rpcMessages(response))[0]?.result.protocolVersion).toBe(version);
  });

  it("serves a 2026-07-28 request statelessly: no initialize, no session", async () => {
    const { apiKey } = await seedTenant();
    const response = await mcpPost(
      {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/list",
        params: {
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
            "io.modelcontextprotocol/clientCapabilities": {},
          },
        },
      },
      apiKey,
      { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("mcp-session-id")).toBeNull();
    expect(upstreamToolNames((await rpcMessages(response))[0])).toEqual([]);
  });
});

describe("hostile input", () => {
  const hostile = [
    ["a batch array", [{ jsonrpc: "2.0", id: 1, method: "tools/list" }, { jsonrpc: "2.0", id: 2, method: "tools/list" }]],
    ["a JSON string", "\"tools/list\""],
    ["a request without a method", { jsonrpc: "2.0", id: 1 }],
    ["tools/call without params", { jsonrpc: "2.0", id: 1, method: "tools/call" }],
    ["tools/call with a numeric name", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: 42 } }],
    ["tools/call with a 100 KB name", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x".repeat(100_000), arguments: {} } }],
    ["resources/read without a uri", { jsonrpc: "2.0", id: 1, method: "resources/read", params: {} }],
    ["completion/complete with an unknown ref type", { jsonrpc: "2.0", id: 1, method: "completion/complete", params: { ref: { type: "ref/evil" }, argument: { name: "a", value: "b" } } }],
    ["an unknown method", { jsonrpc: "2.0", id: 1, method: "admin/dropTables", params: {} }],
    ["a prototype-polluting body", JSON.parse('{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"__proto__":{"polluted":true}}}')],
  ] as const;

  it.each(hostile)("answers %s with a JSON-RPC error or result, never a 5xx", async (_label, body) => {
    const { apiKey } = await seedTenant();
    const response = await mcpPost(body as unknown, apiKey);
    expect(response.status).toBeLessThan(500);
    const text = await response.clone().text();
    expect(text.length).toBeLessThan(10_000); // a hostile name is never echoed whole
    if (text) expect(text).toMatch(/"jsonrpc":"2.0"/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("invalid params", () => {
  const META_2026 = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
    "io.modelcontextprotocol/clientCapabilities": {},
  };
  const cases = [
    ["resources/read", { uri: 42 }, 'Invalid params for resources/read: "uri" must be a string'],
    ["resources/read", {}, 'Invalid params for resources/read: "uri" is required'],
    ["prompts/get", { name: 42 }, 'Invalid params for prompts/get: "name" must be a string'],
    ["prompts/get", { name: "crm__greet", arguments: ["x"] }, 'Invalid params for prompts/get: "arguments" must be an object'],
    ["prompts/get", { name: "crm__greet", arguments: { ["k".repeat(100_000)]: 5 } }, /^Invalid params for prompts\/get: "arguments\.k{100,199}…" must be a string$/],
    ["completion/complete", { argument: { name: "a", value: "b" } }, 'Invalid params for completion/complete: "ref" is required'],
    ["completion/complete", { ref: { type: "ref/evil" }, argument: { name: "a", value: "b" } }, 'Invalid params for completion/complete: "ref.type" must be "ref/prompt" or "ref/resource"'],
    ["completion/complete", { ref: { type: "ref/prompt", name: "p" }, argument: { name: "a", value: 5 } }, 'Invalid params for completion/complete: "argument.value" must be a string'],
  ] as const;

  it.each(cases)("%s %j is -32602 with a short message naming the field, and is not recorded", async (method, params, message) => {
    const { apiKey, tenant } = await seedTenant();
    const response = await mcpPost({ jsonrpc: "2.0", id: 1, method, params }, apiKey);
    expect(response.status).toBe(200);
    const [answer] = await rpcMessages(response);
    expect(answer?.error.code).toBe(-32602);
    if (typeof message === "string") expect(answer?.error.message).toBe(message);
    else expect(answer?.error.message).toMatch(message);
    // Refused before routing: nothing charged, nothing recorded.
    expect((await env.AUDIT_LOG.getByName(tenant).state()).head.seq).toBe(0);
  });

  it("holds for a 2026-07-28 request too, also when it has no params beyond the envelope", async () => {
    const { apiKey } = await seedTenant();
    const response = await mcpPost(
      { jsonrpc: "2.0", id: 1, method: "resources/read", params: { _meta: META_2026 } },
      apiKey,
      { "mcp-protocol-version": "2026-07-28", "mcp-method": "resources/read" },
    );
    const [answer] = await rpcMessages(response);
    expect(answer?.error).toMatchObject({ code: -32602, message: 'Invalid params for resources/read: "uri" is required' });
  });
});

describe("request guards", () => {
  it("answers 403 for a foreign browser Origin and serves the gateway's own origin", async () => {
    const { apiKey } = await seedTenant();
    const foreign = await mcpPost(INITIALIZE, apiKey, { origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    const own = await mcpPost(INITIALIZE, apiKey, { origin: BASE });
    expect(own.status).toBe(200);
  });

  it("answers 403 for a Host outside ALLOWED_HOSTS (DNS rebinding)", async () => {
    const { apiKey } = await seedTenant();
    const response = await exports.default.fetch(
      new Request("https://rebound.example/mcp", {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify(INITIALIZE),
      }),
    );
    expect(response.status).toBe(403);
  });

  it("refuses a body above the limit with 413 and a JSON-RPC error, before any handler runs", async () => {
    const { apiKey } = await seedTenant();
    const huge = JSON.stringify({ ...INITIALIZE, params: { ...INITIALIZE.params, padding: "x".repeat(MAX_MESSAGE_BYTES) } });
    const response = await mcpPost(huge, apiKey);
    expect(response.status).toBe(413);
    const [message] = await rpcMessages(response);
    expect(message?.error.message).toMatch(/exceeds the gateway's limit/);
  });

  it("answers malformed JSON with a parse error, not a 500", async () => {
    const { apiKey } = await seedTenant();
    const response = await mcpPost("{not json", apiKey);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    const [message] = await rpcMessages(response);
    expect(message?.error.code).toBe(-32700);
  });

  it("answers GET with 405: no standalone stream is served", async () => {
    const { apiKey } = await seedTenant();
    const response = await exports.default.fetch(
      new Request(`${BASE}/mcp`, { headers: { authorization: `Bearer ${apiKey}`, accept: "text/event-stream" } }),
    );
    expect(response.status).toBe(405);
  });
});
