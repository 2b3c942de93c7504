/**
 * The link inside workerd: a connector played over a real WebSocket into the real Connector Durable Object,
 * with the aggregated catalog, relaying, progress streaming, socket loss, eviction and bad frames.
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authenticateApiKey } from "../../src/auth/authenticate.ts";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { tenantServersStamp } from "../../src/connectors/server-registry.ts";
import { database } from "../../src/db/client.ts";
import { HEARTBEAT_PING, LINK_PROTOCOL_VERSION, MAX_FRAME_BYTES } from "../../src/link/protocol.ts";
import { connectorObjectName } from "../../src/connectors/connector-api.ts";
import { echoServer, FakeConnector, mcpPost, rpcMessages, seedTenant, upstreamToolNames } from "./fixtures.ts";

const list = (method: string) => ({ jsonrpc: "2.0", id: 1, method, params: {} });
const callTool = (name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) => ({
  jsonrpc: "2.0",
  id: 7,
  method: "tools/call",
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

async function connected(servers = [echoServer("crm")]) {
  const seeded = await seedTenant();
  const connector = await FakeConnector.connect(seeded.connectorToken);
  await connector.hello(servers);
  return { ...seeded, connector };
}

describe("connector authentication", () => {
  it("refuses /connect without a valid connector token", async () => {
    const { apiKey } = await seedTenant();
    await expect(FakeConnector.connect("gwc_wrong")).rejects.toThrow(/401/);
    // An agent's API key is not a connector token.
    await expect(FakeConnector.connect(apiKey)).rejects.toThrow(/401/);
  });
});

describe("aggregation", () => {
  it("reads the servers stamp along with the API key exactly as the registry reads it, through every change", async () => {
    // The catalog cache compares stamps from both reads (an API key brings one, a JWT caller's request reads its own):
    // they must agree, or a catalog would be rebuilt on every call, or worse, a changed one kept.
    const db = database(env.DB);
    const { apiKey, tenant, connector } = await connected([]);
    const stamps: string[] = [];
    const agree = async () => {
      const auth = await authenticateApiKey(db, `Bearer ${apiKey}`, Date.now());
      if (!auth.ok) throw new Error(`key refused: ${auth.refusal}`);
      expect(auth.serversStamp).toBe(await tenantServersStamp(db, tenant));
      stamps.push(auth.serversStamp);
    };
    await agree(); // no servers yet
    await connector.send({ type: "status", server: echoServer("crm") });
    await expect.poll(async () => await env.DB.prepare("SELECT count(*) AS n FROM servers WHERE tenant_id = ?").bind(tenant).first("n")).toBe(1);
    await agree();
    await env.DB.prepare("UPDATE servers SET version = version + 1 WHERE tenant_id = ?").bind(tenant).run();
    await agree();
    await env.DB.prepare("UPDATE servers SET enabled = 0 WHERE tenant_id = ?").bind(tenant).run();
    await agree();
    expect(new Set(stamps).size).toBe(3);
    expect(stamps[0]).toBe("0:0:0");
    expect(stamps[3]).toBe(stamps[0]); // a disabled server is no server
  });

  it("lists the connector's tools, prompts, resources and templates, namespaced by server", async () => {
    const { apiKey } = await connected([echoServer("crm"), echoServer("docs", { prefix: "kb" })]);
    const [tools] = await rpcMessages(await mcpPost(list("tools/list"), apiKey));
    expect(upstreamToolNames(tools).sort()).toEqual(["crm__echo", "kb__echo"]);
    const [prompts] = await rpcMessages(await mcpPost(list("prompts/list"), apiKey));
    expect(prompts?.result.prompts.map((p: { name: string }) => p.name).sort()).toEqual(["crm__greet", "kb__greet"]);
    const [resources] = await rpcMessages(await mcpPost(list("resources/list"), apiKey));
    expect(resources?.result.resources.map((r: { uri: string }) => r.uri).sort()).toEqual(["crm://readme", "docs://readme"]);
    const [templates] = await rpcMessages(await mcpPost(list("resources/templates/list"), apiKey));
    expect(templates?.result.resourceTemplates).toHaveLength(2);
  });

  it("withholds the newer server's clashing bare name and records why", async () => {
    const { apiKey, tenant, connector } = await connected([echoServer("first", { prefix: "" })]);
    await connector.send({ type: "status", server: echoServer("second", { prefix: "" }) });
    await expect.poll(async () => (await env.DB.prepare("SELECT conflicts FROM servers WHERE tenant_id = ? AND id = 'second'").bind(tenant).first("conflicts")) as string | null).toMatch(
      /tool "echo" \(kept by server "first"\)/,
    );
    const [tools] = await rpcMessages(await mcpPost(list("tools/list"), apiKey));
    expect(upstreamToolNames(tools)).toEqual(["echo"]);
  });

  it("paginates long lists with an opaque cursor and refuses a forged one", async () => {
    const many = echoServer("big");
    many.catalog.tools = Array.from({ length: 250 }, (_, i) => ({ name: `tool_${i}`, inputSchema: { type: "object" } }));
    const { apiKey } = await connected([many]);
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const [page] = await rpcMessages(await mcpPost({ ...list("tools/list"), params: cursor ? { cursor } : {} }, apiKey));
      names.push(...upstreamToolNames(page));
      cursor = page?.result.nextCursor;
    } while (cursor);
    expect(names).toHaveLength(250);
    expect(new Set(names).size).toBe(250);
    const [forged] = await rpcMessages(await mcpPost({ ...list("tools/list"), params: { cursor: "not-a-cursor" } }, apiKey));
    expect(forged?.error.code).toBe(-32602);
  });

  it("holds catalogs far larger than a WebSocket attachment's 16 KiB, across eviction", async () => {
    const big = echoServer("big");
    big.catalog.tools = Array.from({ length: 400 }, (_, i) => ({ name: `tool_${i}`, description: "d".repeat(250), inputSchema: { type: "object" } }));
    expect(JSON.stringify(big).length).toBeGreaterThan(100_000);
    const { apiKey, tenant, connector } = await connected([big]);
    await evictDurableObject(env.CONNECTOR.getByName(connectorObjectName(tenant, "local")));
    const pending = mcpPost(callTool("big__tool_399"), apiKey);
    const rpc = await connector.next("rpc");
    expect(rpc.request.params?.name).toBe("tool_399");
    connector.send({ type: "result", callId: rpc.callId, result: { content: [] } });
    expect((await rpcMessages(await pending))[0]?.result).toEqual({ content: [] });
  });

  it("shows a catalog change on the very next request (the per-isolate cache follows the servers table)", async () => {
    const { apiKey, connector, tenant } = await connected();
    const names = async () => upstreamToolNames((await rpcMessages(await mcpPost(list("tools/list"), apiKey)))[0]);
    expect(await names()).toEqual(["crm__echo"]);
    expect(await names()).toEqual(["crm__echo"]);
    const grown = echoServer("crm");
    grown.catalog.tools.push({ name: "search", inputSchema: { type: "object" } });
    connector.send({ type: "status", server: grown });
    await expect.poll(async () => JSON.stringify(await env.DB.prepare("SELECT catalog FROM servers WHERE tenant_id = ?").bind(tenant).first("catalog"))).toContain("search");
    expect(await names()).toEqual(["crm__echo", "crm__search"]);
    connector.send({ type: "status", server: echoServer("crm", { health: "unhealthy" }) });
    await expect.poll(async () => env.DB.prepare("SELECT status FROM servers WHERE tenant_id = ?").bind(tenant).first("status")).toBe("unhealthy");
    expect(await names()).toEqual([]);
  });

  it("tenants never see each other's servers", async () => {
    await connected([echoServer("secret")]);
    const other = await seedTenant();
    const [tools] = await rpcMessages(await mcpPost(list("tools/list"), other.apiKey));
    expect(upstreamToolNames(tools)).toEqual([]);
  });
});

describe("relaying", () => {
  it("forwards a tools/call with the upstream name and returns the upstream's result", async () => {
    const { apiKey, connector } = await connected();
    const pending = mcpPost(callTool("crm__echo", { text: "hi" }), apiKey);
    const rpc = await connector.next("rpc");
    expect(rpc.serverId).toBe("crm");
    expect(rpc.request).toEqual({ method: "tools/call", params: { name: "echo", arguments: { text: "hi" } } });
    connector.send({ type: "result", callId: rpc.callId, result: { content: [{ type: "text", text: "hi" }] } });
    const [message] = await rpcMessages(await pending);
    expect(message?.result.content[0].text).toBe("hi");
  });

  it("streams progress to the agent's own progress token as SSE before the result", async () => {
    const { apiKey, connector } = await connected();
    const pending = mcpPost(callTool("crm__echo", {}, { progressToken: "agent-token" }), apiKey);
    const rpc = await connector.next("rpc");
    expect(JSON.stringify(rpc.request)).not.toContain("agent-token");
    for (const progress of [1, 2, 3]) {
      connector.send({ type: "notification", callId: rpc.callId, message: { method: "notifications/progress", params: { progress, total: 3 } } });
    }
    connector.send({ type: "notification", callId: rpc.callId, message: { method: "notifications/message", params: { level: "info", data: "working" } } });
    connector.send({ type: "result", callId: rpc.callId, result: { content: [] } });
    const response = await pending;
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const messages = await rpcMessages(response);
    const progress = messages.filter((m) => m.method === "notifications/progress");
    expect(progress.map((m) => m.params.progress)).toEqual([1, 2, 3]);
    expect(progress.every((m) => m.params.progressToken === "agent-token")).toBe(true);
    expect(messages.some((m) => m.method === "notifications/message")).toBe(true);
    expect(messages.at(-1)?.result).toEqual({ content: [] });
  });

  it("passes an upstream JSON-RPC error through with its code", async () => {
    const { apiKey, connector } = await connected();
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await connector.next("rpc");
    connector.send({ type: "result", callId: rpc.callId, error: { code: -32092, message: 'server "crm" crashed during the call' } });
    const [message] = await rpcMessages(await pending);
    expect(message?.error).toMatchObject({ code: -32092, message: expect.stringMatching(/crashed/) });
  });

  it("cancels the upstream request when the agent disconnects", async () => {
    const { apiKey, connector } = await connected();
    const agent = new AbortController();
    const pending = mcpPost(callTool("crm__echo"), apiKey, {}, agent.signal).catch(() => undefined);
    const rpc = await connector.next("rpc");
    agent.abort();
    const cancel = await connector.next("cancel", (f) => f.callId === rpc.callId);
    expect(cancel.reason).toMatch(/agent disconnected/);
    await pending;
  });

  it("names an unknown tool and an unknown server prefix in the error", async () => {
    const { apiKey } = await connected();
    const [tool] = await rpcMessages(await mcpPost(callTool("crm__nope"), apiKey));
    expect(tool?.error.code).toBe(-32602);
    expect(tool?.error.message).toContain('Unknown tool "crm__nope"');
    const [server] = await rpcMessages(await mcpPost(callTool("ghost__echo"), apiKey));
    expect(server?.error.code).toBe(-32602);
    expect(server?.error.message).toMatch(/prefix "ghost"/);
  });

  it("routes resources/read by URI, prompts/get and completion by exposed name", async () => {
    const { apiKey, connector } = await connected([echoServer("crm"), echoServer("docs")]);
    const read = mcpPost({ jsonrpc: "2.0", id: 3, method: "resources/read", params: { uri: "docs://items/42" } }, apiKey);
    const readRpc = await connector.next("rpc");
    expect(readRpc.serverId).toBe("docs");
    connector.send({ type: "result", callId: readRpc.callId, result: { contents: [{ uri: "docs://items/42", text: "42" }] } });
    expect((await rpcMessages(await read))[0]?.result.contents[0].text).toBe("42");

    const prompt = mcpPost({ jsonrpc: "2.0", id: 4, method: "prompts/get", params: { name: "crm__greet", arguments: { who: "x" } } }, apiKey);
    const promptRpc = await connector.next("rpc");
    expect(promptRpc).toMatchObject({ serverId: "crm", request: { method: "prompts/get", params: { name: "greet" } } });
    connector.send({ type: "result", callId: promptRpc.callId, result: { messages: [] } });
    expect((await rpcMessages(await prompt))[0]?.result.messages).toEqual([]);

    const complete = mcpPost(
      { jsonrpc: "2.0", id: 5, method: "completion/complete", params: { ref: { type: "ref/prompt", name: "docs__greet" }, argument: { name: "who", value: "a" } } },
      apiKey,
    );
    const completeRpc = await connector.next("rpc");
    expect(completeRpc).toMatchObject({ serverId: "docs", request: { params: { ref: { name: "greet" } } } });
    connector.send({ type: "result", callId: completeRpc.callId, result: { completion: { values: ["alice"] } } });
    expect((await rpcMessages(await complete))[0]?.result.completion.values).toEqual(["alice"]);
  });
});

describe("failure", () => {
  it("fails a pending call at once when the connector's socket closes", async () => {
    const { apiKey, connector } = await connected();
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    await connector.next("rpc");
    connector.socket.close(1001, "going away");
    const [message] = await rpcMessages(await pending);
    expect(message?.error.code).toBe(-32091);
    expect(message?.error.message).toMatch(/disconnected during the call/);
  });

  it("marks the servers disconnected when the last replica leaves, and fails calls fast", async () => {
    const { apiKey, connector, tenant } = await connected();
    connector.socket.close(1000, "bye");
    await expect.poll(async () => env.DB.prepare("SELECT status FROM servers WHERE tenant_id = ?").bind(tenant).first("status")).toBe("disconnected");
    const [tools] = await rpcMessages(await mcpPost(list("tools/list"), apiKey));
    expect(upstreamToolNames(tools)).toEqual([]);
    const [call] = await rpcMessages(await mcpPost(callTool("crm__echo"), apiKey));
    expect(call?.error.code).toBe(-32091);
    expect(call?.error.message).toBe('Server "crm" is not available right now (disconnected); retry shortly');
  });

  it("a restarted connector reporting its server as starting (empty catalog) keeps the server's names: calls are -32091, not unknown", async () => {
    const { apiKey, connector, connectorToken, tenant } = await connected();
    connector.socket.close(1000, "restart");
    await expect.poll(async () => env.DB.prepare("SELECT status FROM servers WHERE tenant_id = ?").bind(tenant).first("status")).toBe("disconnected");
    const restarted = await FakeConnector.connect(connectorToken);
    const starting = { ...echoServer("crm", { health: "starting" }), catalog: { tools: [], resources: [], resourceTemplates: [], prompts: [] } };
    await restarted.hello([starting], "replica-2");
    const [call] = await rpcMessages(await mcpPost(callTool("crm__echo"), apiKey));
    expect(call?.error.code).toBe(-32091);
    expect(call?.error.message).toMatch(/^Server "crm" is not available right now/);
    // Once it is up, its real catalog replaces the kept one (here: a different tool set).
    restarted.send({ type: "status", server: { ...echoServer("crm"), catalog: { ...echoServer("crm").catalog, tools: [{ name: "lookup", inputSchema: { type: "object" } }] } } });
    await expect.poll(async () => upstreamToolNames((await rpcMessages(await mcpPost(list("tools/list"), apiKey)))[0])).toEqual(["crm__lookup"]);
    restarted.socket.close();
  });

  it("an empty catalog reported healthy, or by a stopped (disabled) server, replaces the stored one: its names go", async () => {
    const empty = { tools: [], resources: [], resourceTemplates: [], prompts: [] };
    for (const health of ["healthy", "stopped"] as const) {
      const { apiKey, connector, tenant } = await connected();
      connector.send({ type: "status", server: { ...echoServer("crm", { health }), catalog: empty } });
      // Polled on the table, not by calling: a call made before the status lands would be relayed and never answered.
      const stored = async () => env.DB.prepare("SELECT status, catalog FROM servers WHERE tenant_id = ?").bind(tenant).first<{ status: string; catalog: string }>();
      await expect.poll(async () => { const row = await stored(); return [row?.status, JSON.parse(row?.catalog ?? "{}").tools]; }, { message: health }).toEqual([health, []]);
      const [call] = await rpcMessages(await mcpPost(callTool("crm__echo"), apiKey));
      expect(call?.error.code, health).toBe(-32602);
      connector.socket.close();
    }
  });

  it("sends calls to a replica that has the server healthy", async () => {
    const { apiKey, connector, connectorToken } = await connected([echoServer("crm", { health: "unhealthy", detail: "crash loop" })]);
    const healthy = await FakeConnector.connect(connectorToken);
    await healthy.hello([echoServer("crm")], "replica-2");
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await healthy.next("rpc");
    healthy.send({ type: "result", callId: rpc.callId, result: { content: [] } });
    expect((await rpcMessages(await pending))[0]?.result).toEqual({ content: [] });
    expect(connector.frames.filter((f) => f.type === "rpc")).toEqual([]);
  });

  it("keeps serving after the Durable Object is evicted: hibernated sockets survive", async () => {
    const { apiKey, connector, tenant } = await connected();
    await evictDurableObject(env.CONNECTOR.getByName(connectorObjectName(tenant, "local")));
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await connector.next("rpc");
    connector.send({ type: "result", callId: rpc.callId, result: { content: [{ type: "text", text: "after eviction" }] } });
    expect((await rpcMessages(await pending))[0]?.result.content[0].text).toBe("after eviction");
  });

  it("answers invalid and oversized frames with an error frame and keeps the socket", async () => {
    const { apiKey, connector } = await connected();
    connector.send("{not json");
    expect((await connector.next("error")).code).toBe("invalid_frame");
    connector.send({ type: "result", callId: "x" });
    expect((await connector.next("error")).message).toMatch(/invalid frame/);
    connector.send(JSON.stringify({ type: "ping", pad: "x".repeat(MAX_FRAME_BYTES) }));
    expect((await connector.next("error")).code).toBe("frame_too_large");
    // Still attached and serving.
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await connector.next("rpc");
    connector.send({ type: "result", callId: rpc.callId, result: { content: [] } });
    expect((await rpcMessages(await pending))[0]?.result).toEqual({ content: [] });
  });

  it("fails a call whose reply frame is invalid instead of leaving it hanging", async () => {
    const { apiKey, connector } = await connected();
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await connector.next("rpc");
    connector.send({ type: "result", callId: rpc.callId, result: "not an object" });
    const [message] = await rpcMessages(await pending);
    expect(message?.error.message).toMatch(/invalid reply/);
  });

  it("refuses a hello with another link protocol version", async () => {
    const { connectorToken } = await seedTenant();
    const connector = await FakeConnector.connect(connectorToken);
    connector.send({ type: "hello", protocol: LINK_PROTOCOL_VERSION + 1, connectorVersion: "x", replicaId: "r", servers: [] });
    expect((await connector.next("error")).code).toBe("unsupported_protocol");
  });
});

describe("ownership and name conflicts", () => {
  async function secondConnector(tenant: string): Promise<FakeConnector> {
    const token = `gwc_${crypto.randomUUID().replace(/-/g, "")}`;
    await env.DB.prepare("INSERT INTO connectors (tenant_id, id, name, token_hash) VALUES (?, 'other', 'other', ?)")
      .bind(tenant, await sha256Hex(token))
      .run();
    return FakeConnector.connect(token);
  }

  it("refuses a server id that another connector of the tenant owns, even while the owner is away", async () => {
    const { apiKey, tenant, connector, connectorToken } = await connected([echoServer("crm")]);
    connector.socket.close(1000, "deploy");
    await expect.poll(async () => env.DB.prepare("SELECT status FROM servers WHERE tenant_id = ?").bind(tenant).first("status")).toBe("disconnected");

    const intruder = await secondConnector(tenant);
    await intruder.hello([echoServer("crm")], "intruder");
    expect((await intruder.next("error", (f) => f.code === "server_conflict")).message).toMatch(/belongs to connector "local"/);
    expect(await env.DB.prepare("SELECT connector_id FROM servers WHERE tenant_id = ? AND id = 'crm'").bind(tenant).first("connector_id")).toBe("local");
    const [refused] = await rpcMessages(await mcpPost(callTool("crm__echo"), apiKey));
    expect(refused?.error.code).toBe(-32091);
    expect(intruder.frames.filter((f) => f.type === "rpc")).toEqual([]);

    const owner = await FakeConnector.connect(connectorToken);
    await owner.hello([echoServer("crm")]);
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await owner.next("rpc");
    owner.send({ type: "result", callId: rpc.callId, result: { content: [] } });
    expect((await rpcMessages(await pending))[0]?.result).toEqual({ content: [] });
  });

  it("tells the newer server's connector which of its names are withheld", async () => {
    const { connector } = await connected([echoServer("first", { prefix: "" }), echoServer("second", { prefix: "" })]);
    const notice = await connector.next("error", (f) => f.code === "name_conflict");
    expect(notice.message).toMatch(/server "second": .*tool "echo" \(kept by server "first"\)/);
  });

  it("never hands an older server's name to the newer one while the older is down", async () => {
    const { apiKey, tenant, connectorToken } = await seedTenant();
    const a = await FakeConnector.connect(connectorToken);
    await a.hello([echoServer("a", { prefix: "" })], "replica-a");
    const b = await secondConnector(tenant);
    await b.hello([echoServer("b", { prefix: "" })], "replica-b");
    a.socket.close(1000, "down");
    await expect.poll(async () => env.DB.prepare("SELECT status FROM servers WHERE tenant_id = ? AND id = 'a'").bind(tenant).first("status")).toBe("disconnected");

    const [call] = await rpcMessages(await mcpPost(callTool("echo"), apiKey));
    expect(call?.error).toMatchObject({ code: -32091, message: 'Server "a" is not available right now (disconnected); retry shortly' });
    expect(b.frames.filter((f) => f.type === "rpc")).toEqual([]);
    const [tools] = await rpcMessages(await mcpPost(list("tools/list"), apiKey));
    expect(upstreamToolNames(tools)).toEqual([]);
  });
});

describe("hostile or broken connectors", () => {
  it("ignores a result for a call that was sent to another replica", async () => {
    const { apiKey, connector, connectorToken } = await connected();
    const other = await FakeConnector.connect(connectorToken);
    await other.hello([echoServer("crm", { health: "unhealthy" })], "replica-2");
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await connector.next("rpc");
    other.send({ type: "result", callId: rpc.callId, result: { content: [{ type: "text", text: "forged" }] } });
    other.send({ type: "notification", callId: rpc.callId, message: { method: "notifications/message", params: { level: "info", data: "forged" } } });
    connector.send({ type: "result", callId: rpc.callId, result: { content: [{ type: "text", text: "genuine" }] } });
    const messages = await rpcMessages(await pending);
    expect(JSON.stringify(messages)).not.toContain("forged");
    expect(messages.at(-1)?.result.content[0].text).toBe("genuine");
  });

  it("absorbs a flood of status frames and ends with the last state", async () => {
    const { tenant, connector } = await connected();
    for (let i = 0; i < 60; i++) {
      connector.send({ type: "status", server: echoServer("crm", { health: i % 2 === 0 ? "unhealthy" : "healthy", detail: `round ${i}` }) });
    }
    connector.send({ type: "status", server: echoServer("crm", { health: "unhealthy", detail: "final" }) });
    await expect
      .poll(async () => env.DB.prepare("SELECT status, status_detail FROM servers WHERE tenant_id = ? AND id = 'crm'").bind(tenant).first(), { timeout: 10_000 })
      .toEqual({ status: "unhealthy", status_detail: "final" });
  });

  it("stops sending calls to a replica that misses its heartbeats, and resumes when it pings", async () => {
    const { apiKey, connector } = await connected([]);
    // Silent past 3 × 500 ms; generous enough that a loaded machine cannot make the resumed call look silent.
    connector.send({ type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "t", replicaId: "slow", heartbeatMs: 500, servers: [echoServer("crm")] });
    await connector.next("welcome");
    await new Promise((resolve) => setTimeout(resolve, 1_800));
    const [silent] = await rpcMessages(await mcpPost(callTool("crm__echo"), apiKey));
    expect(silent?.error.message).toMatch(/stopped answering heartbeats/);

    connector.send(HEARTBEAT_PING);
    await connector.next("pong" as never).catch(() => undefined);
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await connector.next("rpc");
    connector.send({ type: "result", callId: rpc.callId, result: { content: [] } });
    expect((await rpcMessages(await pending))[0]?.result).toEqual({ content: [] });
  });

  it("fails a call itself shortly after the server's own timeout when the connector never answers", async () => {
    const { apiKey, connector } = await connected([echoServer("crm", { timeoutMs: 100 })]);
    const startedAt = Date.now();
    const pending = mcpPost(callTool("crm__echo"), apiKey);
    const rpc = await connector.next("rpc");
    const [message] = await rpcMessages(await pending);
    expect(message?.error.code).toBe(-32093);
    expect(Date.now() - startedAt).toBeLessThan(9_000);
    expect((await connector.next("cancel", (f) => f.callId === rpc.callId)).reason).toMatch(/deadline/);
  }, 15_000);
});
