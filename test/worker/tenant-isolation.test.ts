/**
 * Two tenants on one gateway, each with its own connector, keys and servers — one server id ("crm") in both, and
 * servers only one of them has. Tenant A's credentials never see, call, change or learn the existence of anything
 * of tenant B: through every /mcp method, every gateway tool, every admin endpoint and the connector link. "Learn
 * the existence" is tested by comparison: A's answer about B's item equals its answer about an item that exists
 * nowhere, once the name itself is replaced by a placeholder.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { LINK_PROTOCOL_VERSION, type ServerReport } from "../../src/link/protocol.ts";
import {
  adminCall,
  answerNextRpc,
  BASE,
  echoServer,
  FakeConnector,
  mcpAnswer,
  mcpPost,
  PLATFORM_TOKEN,
  rpcRequest,
  seedTenant,
} from "./fixtures.ts";

const META_TOOLS = ["call", "list_servers", "list_tools", "server_status", "usage"];
const ADMIN = "/admin/v1";

const secret = () => `gw_${crypto.randomUUID().replace(/-/g, "")}`;

/** B's "crm": the same id as A's, but with a different name and items A must never see. */
function tenantBCrm(): ServerReport {
  const crm = echoServer("crm", { name: "crm of the other tenant" });
  crm.catalog.tools = [
    { name: "echo", description: "the other tenant's echo", inputSchema: { type: "object" } },
    { name: "secret_b", description: "only the other tenant has this", inputSchema: { type: "object" } },
  ];
  crm.catalog.prompts.push({ name: "secret_prompt" });
  crm.catalog.resources.push({ uri: "crm://b-secret", name: "b-secret" });
  crm.catalog.resourceTemplates.push({ uriTemplate: "crm://b-secret/{x}", name: "b-secret-item" });
  return crm;
}

async function tenantWith(servers: ServerReport[], extraKeys: { id: string; key: string; roles?: string[] }[] = []) {
  const consumerKey = secret();
  const adminKey = secret();
  const seeded = await seedTenant({
    keys: [{ id: "consumer", key: consumerKey }, { id: "admin", key: adminKey, roles: ["admin"] }, ...extraKeys],
  });
  const connector = await FakeConnector.connect(seeded.connectorToken);
  await connector.hello(servers);
  return { tenant: seeded.tenant, connectorToken: seeded.connectorToken, consumerKey, adminKey, connector };
}

/** Tenant A (crm, alpha) and tenant B (its own crm, beta; a key id "b-only" and a second connector "b-edge"). */
async function twoTenants() {
  const a = await tenantWith([echoServer("crm"), echoServer("alpha")]);
  const bOnlyKey = secret();
  const b = await tenantWith([tenantBCrm(), echoServer("beta")], [{ id: "b-only", key: bOnlyKey }]);
  await env.DB.prepare("INSERT INTO connectors (tenant_id, id, name, token_hash) VALUES (?, 'b-edge', 'b-edge', ?)").bind(b.tenant, await sha256Hex(secret())).run();
  return { a, b: { ...b, bOnlyKey } };
}

const tool = (name: string, args: Record<string, unknown> = {}) => rpcRequest("tools/call", { name, arguments: args });

/** An answer with one name replaced by a placeholder, so two answers about different names can be compared. */
const normalised = (answer: unknown, name: string) => JSON.stringify(answer).replaceAll(name, "<name>");

const rpcFrames = (connector: FakeConnector) => connector.frames.filter((f) => f.type === "rpc");

describe("/mcp: A sees only its own catalog", () => {
  const listings = [
    { method: "tools/list", key: "tools", field: "name", expected: [...META_TOOLS, "alpha__echo", "crm__echo"] },
    { method: "prompts/list", key: "prompts", field: "name", expected: ["alpha__greet", "crm__greet"] },
    { method: "resources/list", key: "resources", field: "uri", expected: ["alpha://readme", "crm://readme"] },
    { method: "resources/templates/list", key: "resourceTemplates", field: "uriTemplate", expected: ["alpha://items/{item}", "crm://items/{item}"] },
  ];

  it.each(listings)("$method lists exactly A's items, none of B's", async ({ method, key, field, expected }) => {
    const { a, b } = await twoTenants();
    const answer = await mcpAnswer(rpcRequest(method), a.consumerKey);
    expect(answer.result[key].map((item: Record<string, string>) => item[field]).sort()).toEqual(expected.sort());
    expect(JSON.stringify(answer)).not.toMatch(/beta|secret|other tenant/);
    // And B, asked the same, sees its own (the listing is per tenant, not empty for everyone).
    const mine = await mcpAnswer(rpcRequest(method), b.consumerKey);
    expect(JSON.stringify(mine)).toMatch(/beta/);
  });
});

describe("/mcp: A's requests for B's items are answered as for items that exist nowhere", () => {
  // `request(x)` names the item with a token: B's token, then one no tenant has. The answers must be equal once
  // the token is replaced by a placeholder.
  const probes: { label: string; request: (x: string) => unknown; b: string; nowhere: string }[] = [
    { label: "tools/call of a tool of B's own server", request: (x) => tool(`${x}__echo`), b: "beta", nowhere: "zeta" },
    { label: "tools/call of B's tool on the server id both have", request: (x) => tool(`crm__${x}`), b: "secret_b", nowhere: "nowhere" },
    { label: "prompts/get of a prompt of B's own server", request: (x) => rpcRequest("prompts/get", { name: `${x}__greet`, arguments: {} }), b: "beta", nowhere: "zeta" },
    { label: "prompts/get of B's prompt on the shared server id", request: (x) => rpcRequest("prompts/get", { name: `crm__${x}` }), b: "secret_prompt", nowhere: "nowhere" },
    { label: "resources/read of B's resource URI", request: (x) => rpcRequest("resources/read", { uri: `${x}://readme` }), b: "beta", nowhere: "zeta" },
    { label: "resources/read of a URI only B's template matches", request: (x) => rpcRequest("resources/read", { uri: `${x}://items/42` }), b: "beta", nowhere: "zeta" },
    { label: "resources/read of B's URI on the shared server id", request: (x) => rpcRequest("resources/read", { uri: `crm://${x}` }), b: "b-secret", nowhere: "nowhere" },
    {
      label: "completion/complete of B's prompt",
      request: (x) => rpcRequest("completion/complete", { ref: { type: "ref/prompt", name: `${x}__greet` }, argument: { name: "who", value: "a" } }),
      b: "beta",
      nowhere: "zeta",
    },
    {
      label: "completion/complete of B's resource template",
      request: (x) => rpcRequest("completion/complete", { ref: { type: "ref/resource", uri: `${x}://items/{item}` }, argument: { name: "item", value: "4" } }),
      b: "beta",
      nowhere: "zeta",
    },
    {
      label: "completion/complete of B's template on the shared server id",
      request: (x) => rpcRequest("completion/complete", { ref: { type: "ref/resource", uri: `crm://${x}/{x}` }, argument: { name: "x", value: "4" } }),
      b: "b-secret",
      nowhere: "nowhere",
    },
    { label: "gateway tool server_status naming B's server", request: (x) => tool("server_status", { server: x }), b: "beta", nowhere: "zeta" },
    { label: "gateway tool call of B's tool", request: (x) => tool("call", { tool: `${x}__echo`, arguments: {} }), b: "beta", nowhere: "zeta" },
    { label: "gateway tool call of B's tool on the shared server id", request: (x) => tool("call", { tool: `crm__${x}` }), b: "secret_b", nowhere: "nowhere" },
  ];

  it.each(probes)("$label", async ({ request, b: bToken, nowhere }) => {
    const { a, b } = await twoTenants();
    const forB = await mcpAnswer(request(bToken), a.consumerKey);
    const forNothing = await mcpAnswer(request(nowhere), a.consumerKey);
    expect(forB.error?.code).toBe(-32602);
    expect(normalised(forB, bToken)).toBe(normalised(forNothing, nowhere));
    expect(JSON.stringify(forB)).not.toMatch(/other tenant/);
    expect(rpcFrames(b.connector)).toEqual([]);
    expect(rpcFrames(a.connector)).toEqual([]);
  });

  it("gateway tool list_tools filtered to B's server lists nothing, as for a server that exists nowhere", async () => {
    const { a } = await twoTenants();
    const forB = await mcpAnswer(tool("list_tools", { server: "beta" }), a.consumerKey);
    const forNothing = await mcpAnswer(tool("list_tools", { server: "zeta" }), a.consumerKey);
    expect(forB.result.structuredContent).toEqual({ tools: [] });
    expect(normalised(forB, "beta")).toBe(normalised(forNothing, "zeta"));
  });

  it("gateway tool list_tools lists exactly A's tools, with A's descriptions", async () => {
    const { a } = await twoTenants();
    const answer = await mcpAnswer(tool("list_tools"), a.consumerKey);
    const tools = answer.result.structuredContent.tools as { name: string }[];
    expect(tools.sort((x, y) => x.name.localeCompare(y.name))).toEqual([
      { name: "alpha__echo", server: "alpha", description: "Echoes its input" },
      { name: "crm__echo", server: "crm", description: "Echoes its input" },
    ]);
  });

  it("gateway tool list_servers lists exactly A's servers, and server_status of the shared id describes A's", async () => {
    const { a } = await twoTenants();
    const servers = await mcpAnswer(tool("list_servers"), a.consumerKey);
    expect(servers.result.structuredContent.servers.map((s: { id: string }) => s.id).sort()).toEqual(["alpha", "crm"]);
    expect(JSON.stringify(servers)).not.toMatch(/beta|other tenant/);
    const status = await mcpAnswer(tool("server_status", { server: "crm" }), a.consumerKey);
    expect(status.result.structuredContent).toMatchObject({ id: "crm", name: "crm server", tools: 1, prompts: 1, resources: 2 });
  });

  it("A's call of the shared server id's tool goes to A's connector, B's to B's", async () => {
    const { a, b } = await twoTenants();
    const fromA = mcpAnswer(tool("crm__echo", { text: "a" }), a.consumerKey);
    const rpcA = await answerNextRpc(a.connector, { content: [{ type: "text", text: "from A's crm" }] });
    expect(rpcA).toMatchObject({ serverId: "crm", request: { params: { name: "echo", arguments: { text: "a" } } } });
    expect((await fromA).result.content[0].text).toBe("from A's crm");

    const fromB = mcpAnswer(tool("crm__echo", { text: "b" }), b.consumerKey);
    const rpcB = await answerNextRpc(b.connector, { content: [{ type: "text", text: "from B's crm" }] });
    expect(rpcB.request.params?.arguments).toEqual({ text: "b" });
    expect((await fromB).result.content[0].text).toBe("from B's crm");
    expect(rpcFrames(a.connector)).toEqual([]);
    expect(rpcFrames(b.connector)).toEqual([]);
  });
});

describe("admin API: A's admin key cannot read or change B", () => {
  const fileFor = (tenant: string) => `tenant: ${tenant}\nauth:\n  keys: []\npolicies: []\n`;
  const endpoints: { label: string; method: string; path: string; body?: (tenant: string) => unknown }[] = [
    { label: "GET whoami", method: "GET", path: "/whoami" },
    { label: "GET config", method: "GET", path: "/config" },
    { label: "PUT config", method: "PUT", path: "/config", body: fileFor },
    { label: "POST config/validate", method: "POST", path: "/config/validate", body: fileFor },
    { label: "GET keys", method: "GET", path: "/keys" },
    { label: "POST keys", method: "POST", path: "/keys", body: () => ({ name: "intruder", consumerId: "intruder", roles: [] }) },
    { label: "DELETE keys/{id}", method: "DELETE", path: "/keys/b-only" },
    { label: "POST keys/{id}/rotate", method: "POST", path: "/keys/b-only/rotate" },
    { label: "GET servers", method: "GET", path: "/servers" },
    { label: "GET connectors", method: "GET", path: "/connectors" },
    { label: "POST connectors", method: "POST", path: "/connectors", body: () => ({ id: "intruder" }) },
    { label: "DELETE connectors/{id}", method: "DELETE", path: "/connectors/b-edge" },
  ];

  /** What B looks like to its platform admin: keys, connectors, config version. */
  async function stateOf(tenant: string) {
    const keys = await adminCall("GET", `${ADMIN}/keys?tenant=${tenant}`, PLATFORM_TOKEN);
    const connectors = await adminCall("GET", `${ADMIN}/connectors?tenant=${tenant}`, PLATFORM_TOKEN);
    const config = await adminCall("GET", `${ADMIN}/config?tenant=${tenant}`, PLATFORM_TOKEN);
    expect([keys.status, connectors.status, config.status]).toEqual([200, 200, 200]);
    return { keys: keys.body, connectors: connectors.body, config: config.body };
  }

  it.each(endpoints)("$label with ?tenant=B is the same 403 as with ?tenant=<nonexistent>, and B is unchanged", async ({ method, path, body }) => {
    const { a, b } = await twoTenants();
    const before = await stateOf(b.tenant);
    const forB = await adminCall(method, `${ADMIN}${path}?tenant=${b.tenant}`, a.adminKey, body?.(b.tenant));
    const forNothing = await adminCall(method, `${ADMIN}${path}?tenant=nonexistent-tenant`, a.adminKey, body?.("nonexistent-tenant"));
    expect(forB.status).toBe(403);
    expect(forB.body.error.code).toBe("forbidden");
    expect(forNothing.status).toBe(403);
    expect(forB.text).toBe(forNothing.text);
    expect(forB.text).not.toContain(b.tenant);
    expect(await stateOf(b.tenant)).toEqual(before);
    // B's keys and connector still work.
    expect((await mcpAnswer(rpcRequest("tools/list"), b.bOnlyKey)).result.tools.map((t: { name: string }) => t.name)).toContain("beta__echo");
    const call = mcpAnswer(tool("beta__echo"), b.consumerKey);
    await answerNextRpc(b.connector);
    expect((await call).result).toEqual({ content: [] });
    // The positive control: the same key administers its own tenant.
    expect((await adminCall("GET", `${ADMIN}/whoami?tenant=${a.tenant}`, a.adminKey)).body).toEqual({
      tenant: a.tenant,
      consumer: "agent-1",
      keyId: "admin",
      roles: ["admin"],
      platformAdmin: false,
    });
  });

  it.each([
    { label: "PUT config", method: "PUT", path: "/config" },
    { label: "POST config/validate", method: "POST", path: "/config/validate" },
  ])("$label of a file with tenant: B is the same 403 as for a tenant that does not exist, and B is unchanged", async ({ method, path }) => {
    const { a, b } = await twoTenants();
    const before = await stateOf(b.tenant);
    const forB = await adminCall(method, `${ADMIN}${path}`, a.adminKey, fileFor(b.tenant));
    const forNothing = await adminCall(method, `${ADMIN}${path}`, a.adminKey, fileFor("nonexistent-tenant"));
    expect(forB.status).toBe(403);
    expect(forB.body.error.code).toBe("forbidden");
    expect(forB.text).toBe(forNothing.text);
    expect(await stateOf(b.tenant)).toEqual(before);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM tenants WHERE id = 'nonexistent-tenant'").first("n")) as number).toBe(0);
  });

  it.each([
    { label: "DELETE a key id only B has", method: "DELETE", path: (id: string) => `/keys/${id}`, b: "b-only", nowhere: "no-such-key" },
    { label: "rotate a key id only B has", method: "POST", path: (id: string) => `/keys/${id}/rotate`, b: "b-only", nowhere: "no-such-key" },
    { label: "DELETE a connector id only B has", method: "DELETE", path: (id: string) => `/connectors/${id}`, b: "b-edge", nowhere: "no-such-edge" },
  ])("$label is the same 404 as for an id that exists nowhere, and B's key still works", async ({ method, path, b: bId, nowhere }) => {
    const { a, b } = await twoTenants();
    const forB = await adminCall(method, `${ADMIN}${path(bId)}`, a.adminKey);
    const forNothing = await adminCall(method, `${ADMIN}${path(nowhere)}`, a.adminKey);
    expect(forB.status).toBe(404);
    expect(forB.body.error.code).toBe("not_found");
    expect(normalised(forB.body, bId)).toBe(normalised(forNothing.body, nowhere));
    expect(await keyStatus(b.bOnlyKey)).toBe(200);
    const connectors = await adminCall("GET", `${ADMIN}/connectors?tenant=${b.tenant}`, PLATFORM_TOKEN);
    expect(connectors.body.connectors.map((c: { id: string; enabled: boolean }) => [c.id, c.enabled])).toEqual([
      ["b-edge", true],
      ["local", true],
    ]);
  });

  it("revoking the key id both tenants have revokes only A's", async () => {
    const { a, b } = await twoTenants();
    const revoked = await adminCall("DELETE", `${ADMIN}/keys/consumer`, a.adminKey);
    expect(revoked).toMatchObject({ status: 200, body: { id: "consumer", enabled: false } });
    expect(await keyStatus(a.consumerKey)).toBe(401);
    expect(await keyStatus(b.consumerKey)).toBe(200);
  });

  it("revoking the connector id both tenants have closes only A's link", async () => {
    const { a, b } = await twoTenants();
    expect((await adminCall("DELETE", `${ADMIN}/connectors/local`, a.adminKey)).status).toBe(200);
    await expect(FakeConnector.connect(a.connectorToken)).rejects.toThrow(/401/);
    const call = mcpAnswer(tool("beta__echo"), b.consumerKey);
    await answerNextRpc(b.connector, { content: [{ type: "text", text: "B still served" }] });
    expect((await call).result.content[0].text).toBe("B still served");
  });

  it("lists show only A's keys, servers and connectors; GET config is A's", async () => {
    const { a } = await twoTenants();
    const keys = await adminCall("GET", `${ADMIN}/keys`, a.adminKey);
    expect(keys.body.keys.map((k: { id: string }) => k.id)).toEqual(["admin", "consumer"]);
    const servers = await adminCall("GET", `${ADMIN}/servers`, a.adminKey);
    expect(servers.body.servers.map((s: { id: string; name: string; tools: number }) => [s.id, s.name, s.tools])).toEqual([
      ["alpha", "alpha server", 1],
      ["crm", "crm server", 1],
    ]);
    const connectors = await adminCall("GET", `${ADMIN}/connectors`, a.adminKey);
    expect(connectors.body.connectors.map((c: { id: string }) => c.id)).toEqual(["local"]);
    const config = await adminCall("GET", `${ADMIN}/config`, a.adminKey);
    expect(config.body.tenant).toBe(a.tenant);
    expect(config.body.config.tenant).toBe(a.tenant);
  });

  it("creating a key or connector with an id only B uses succeeds in A (no existence oracle) and touches nothing of B", async () => {
    const { a, b } = await twoTenants();
    const key = await adminCall("POST", `${ADMIN}/keys`, a.adminKey, { id: "b-only", name: "mine", consumerId: "agent-1", roles: ["reader"] });
    expect(key.status).toBe(201);
    const connector = await adminCall("POST", `${ADMIN}/connectors`, a.adminKey, { id: "b-edge" });
    expect(connector.status).toBe(201);
    expect(await keyStatus(b.bOnlyKey)).toBe(200);
    // A's new key is A's: it sees A's catalog.
    const tools = await mcpAnswer(rpcRequest("tools/list"), key.body.key);
    expect(tools.result.tools.map((t: { name: string }) => t.name)).toContain("alpha__echo");
    expect(JSON.stringify(tools)).not.toMatch(/beta/);
    const owners = await env.DB.prepare("SELECT tenant_id FROM connectors WHERE id = 'b-edge' AND tenant_id IN (?, ?)").bind(a.tenant, b.tenant).all();
    expect(owners.results.map((r) => r.tenant_id).sort()).toEqual([a.tenant, b.tenant].sort());
  });
});

describe("connector link: A's connector token cannot attach to B", () => {
  it("a forged identity header is replaced: A's token with B's tenant header attaches to A", async () => {
    const { a, b } = await twoTenants();
    const response = await exports.default.fetch(
      new Request(`${BASE}/connect`, {
        headers: { upgrade: "websocket", authorization: `Bearer ${a.connectorToken}`, "x-gateway-tenant": b.tenant, "x-gateway-connector": "b-edge" },
      }),
    );
    expect(response.status).toBe(101);
    const socket = response.webSocket as WebSocket;
    socket.accept();
    const welcomed = new Promise<void>((resolve) => socket.addEventListener("message", (e) => (JSON.parse(e.data as string).type === "welcome" ? resolve() : undefined)));
    socket.send(JSON.stringify({ type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "test", replicaId: "forger", servers: [echoServer("gamma")] }));
    await welcomed;
    const rows = await env.DB.prepare("SELECT tenant_id, connector_id FROM servers WHERE id = 'gamma'").all();
    expect(rows.results).toEqual([{ tenant_id: a.tenant, connector_id: "local" }]);
    const bTools = await mcpAnswer(rpcRequest("tools/list"), b.consumerKey);
    expect(JSON.stringify(bTools)).not.toMatch(/gamma/);
    socket.close(1000, "done");
  });

  it("A's connector reporting B's server ids serves A only; B's calls still reach B's connector", async () => {
    const { a, b } = await twoTenants();
    const second = await FakeConnector.connect(a.connectorToken);
    await second.hello([echoServer("crm"), echoServer("alpha"), echoServer("beta")], "replica-2");
    const rows = await env.DB.prepare("SELECT tenant_id FROM servers WHERE id = 'beta' AND tenant_id IN (?, ?)").bind(a.tenant, b.tenant).all();
    expect(rows.results.map((r) => r.tenant_id).sort()).toEqual([a.tenant, b.tenant].sort());

    for (const name of ["beta__echo", "crm__echo"]) {
      const fromB = mcpAnswer(tool(name, { text: "for B" }), b.consumerKey);
      const rpc = await answerNextRpc(b.connector, { content: [{ type: "text", text: `B's ${name}` }] });
      expect(rpc.request.params?.arguments).toEqual({ text: "for B" });
      expect((await fromB).result.content[0].text).toBe(`B's ${name}`);
    }
    expect(rpcFrames(a.connector)).toEqual([]);
    expect(rpcFrames(second)).toEqual([]);
    // B's listing is B's own, unchanged by A's connector.
    const bTools = await mcpAnswer(tool("list_tools"), b.consumerKey);
    const listed = bTools.result.structuredContent.tools.map((t: { name: string; description: string }) => [t.name, t.description]);
    expect(listed.sort()).toEqual([
      ["beta__echo", "Echoes its input"],
      ["crm__echo", "the other tenant's echo"],
      ["crm__secret_b", "only the other tenant has this"],
    ]);
  });
});

/** The HTTP status of a tools/list with the key: 200 when it authenticates, 401 when not. */
async function keyStatus(apiKey: string): Promise<number> {
  const response = await mcpPost(rpcRequest("tools/list"), apiKey);
  await response.body?.cancel();
  return response.status;
}
