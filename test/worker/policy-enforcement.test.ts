/**
 * Policies enforced on /mcp inside workerd, with real tenants' policies and a connector played over a real
 * WebSocket: listings show exactly what the caller may use, every use is authorized (tools, prompts, resources,
 * completions, the gateway's own tools), denials are JSON-RPC -32003 naming the deciding rule, conditions test
 * arguments without coercion, and the gateway tools' argument errors follow the caller's protocol revision.
 */
import { describe, expect, it } from "vitest";
import { LINK_PROTOCOL_VERSION, type ServerReport } from "../../src/link/protocol.ts";
import { answerNextRpc, echoServer, FakeConnector, mcpAnswer, rpcRequest, seedTenant } from "./fixtures.ts";

const META_TOOLS = ["call", "list_servers", "list_tools", "server_status", "usage"];

/** The policy test server: four tools with distinct name shapes, two prompts, two resources and a template. */
function crmServer(): ServerReport {
  const crm = echoServer("crm");
  crm.catalog = {
    tools: ["get_a", "search_b", "delete_c", "admin_x"].map((name) => ({ name, description: `${name} tool`, inputSchema: { type: "object" } })),
    prompts: [{ name: "greet" }, { name: "secret_prompt" }],
    resources: [
      { uri: "crm://readme", name: "readme" },
      { uri: "crm://secret", name: "secret" },
    ],
    resourceTemplates: [{ uriTemplate: "crm://items/{item}", name: "item" }],
  };
  return crm;
}

/** A tenant whose reader key (consumer "agent-1") is governed by `policies`, with crm (and docs) connected. */
async function governed(policies: unknown[]) {
  const seeded = await seedTenant({ policies });
  const connector = await FakeConnector.connect(seeded.connectorToken);
  await connector.hello([crmServer(), echoServer("docs")]);
  return { ...seeded, connector };
}

type Governed = Awaited<ReturnType<typeof governed>>;

const tool = (name: string, args: Record<string, unknown> = {}) => rpcRequest("tools/call", { name, arguments: args });

async function listed(t: Governed, method: string, key: string, field = "name"): Promise<string[]> {
  const answer = await mcpAnswer(rpcRequest(method), t.apiKey);
  return answer.result[key].map((item: Record<string, string>) => item[field]).sort();
}

const rpcFrames = (connector: FakeConnector) => connector.frames.filter((f) => f.type === "rpc");

/** A call the connector answers (if it reaches it) with a result naming the upstream tool. */
async function relayedCall(t: Governed, request: unknown) {
  const pending = mcpAnswer(request, t.apiKey);
  const rpc = t.connector.next("rpc").then((frame) => {
    t.connector.send({ type: "result", callId: frame.callId, result: { content: [{ type: "text", text: `ran ${String(frame.request.params?.name)}` }] } });
    return frame;
  });
  const answer = await pending;
  return { answer, rpc: answer.result ? await rpc : undefined };
}

describe("tools/list shows exactly the tools policy allows", () => {
  const globs: { label: string; rules: unknown[]; expected: string[] }[] = [
    { label: "get_*", rules: [{ server: "crm", tool: "get_*", action: "allow" }], expected: ["crm__get_a"] },
    { label: "{get,search}_*", rules: [{ server: "crm", tool: "{get,search}_*", action: "allow" }], expected: ["crm__get_a", "crm__search_b"] },
    { label: "*_[bc]", rules: [{ server: "crm", tool: "*_[bc]", action: "allow" }], expected: ["crm__delete_c", "crm__search_b"] },
    {
      label: "every tool but a denied one",
      rules: [
        { server: "crm", action: "allow" },
        { server: "crm", tool: "admin_*", action: "deny" },
      ],
      expected: ["crm__delete_c", "crm__get_a", "crm__search_b"],
    },
    { label: "a server glob", rules: [{ server: "d*", tool: "*", action: "allow" }], expected: ["docs__echo"] },
    { label: "no policy rule at all", rules: [], expected: [] },
  ];

  it.each(globs)("$label", async ({ rules, expected }) => {
    const t = await governed([{ id: "readers", roles: ["reader"], rules }]);
    expect(await listed(t, "tools/list", "tools")).toEqual([...META_TOOLS, ...expected].sort());
  });

  it("a tool allowed only under a condition is listed", async () => {
    const t = await governed([
      {
        id: "own-customers",
        roles: ["reader"],
        rules: [{ id: "own-search", server: "crm", tool: "search_b", action: "allow", conditions: [{ param: "customer.id", operator: "eq", value: "${principal.consumerId}" }] }],
      },
    ]);
    expect(await listed(t, "tools/list", "tools")).toEqual([...META_TOOLS, "crm__search_b"].sort());
  });

  it("a tool under a conditional deny stays listed; an unconditional deny hides it", async () => {
    const t = await governed([
      {
        id: "readers",
        roles: ["reader"],
        rules: [
          { server: "crm", action: "allow" },
          { server: "crm", tool: "delete_c", action: "deny", conditions: [{ param: "force", operator: "eq", value: true }] },
          { server: "crm", tool: "admin_x", action: "deny" },
        ],
      },
    ]);
    expect(await listed(t, "tools/list", "tools")).toEqual([...META_TOOLS, "crm__delete_c", "crm__get_a", "crm__search_b"].sort());
  });

  it("a key whose roles no policy names sees only the gateway's tools", async () => {
    const t = await governed([{ id: "writers", roles: ["writer"], rules: [{ action: "allow" }] }]);
    expect(await listed(t, "tools/list", "tools")).toEqual(META_TOOLS);
    expect(await listed(t, "prompts/list", "prompts")).toEqual([]);
    expect(await listed(t, "resources/list", "resources", "uri")).toEqual([]);
  });
});

describe("denied calls are -32003 naming the deciding rule", () => {
  it("an explicit deny names its rule and policy in the message and in data, and reaches no server", async () => {
    const t = await governed([
      {
        id: "crm-users",
        roles: ["reader"],
        rules: [
          { id: "crm-all", server: "crm", action: "allow" },
          { id: "no-delete", server: "crm", tool: "delete_*", action: "deny" },
        ],
      },
    ]);
    const answer = await mcpAnswer(tool("crm__delete_c", { id: 7 }), t.apiKey);
    expect(answer.error).toEqual({
      code: -32003,
      message: 'tool "delete_c" of server "crm" is not allowed: denied by rule "no-delete" of policy "crm-users"',
      data: { ruleId: "no-delete", policyId: "crm-users" },
    });
    expect(rpcFrames(t.connector)).toEqual([]);
  });

  it("a rule without an id is named by its position", async () => {
    const t = await governed([{ id: "crm-users", roles: ["reader"], rules: [{ server: "crm", action: "allow" }, { server: "crm", tool: "admin_x", action: "deny" }] }]);
    const answer = await mcpAnswer(tool("crm__admin_x"), t.apiKey);
    expect(answer.error.data).toEqual({ ruleId: "crm-users.rules[1]", policyId: "crm-users" });
    expect(answer.error.message).toContain('"crm-users.rules[1]"');
  });

  it("default deny: no allow rule matches, data.ruleId and policyId are null", async () => {
    const t = await governed([{ id: "getters", roles: ["reader"], rules: [{ id: "get-any", server: "crm", tool: "get_*", action: "allow" }] }]);
    const answer = await mcpAnswer(tool("crm__admin_x"), t.apiKey);
    expect(answer.error).toEqual({
      code: -32003,
      message: 'tool "admin_x" of server "crm" is not allowed: no policy allows this caller\'s roles (reader) to use tool "admin_x" on server "crm"',
      data: { ruleId: null, policyId: null },
    });
    expect(rpcFrames(t.connector)).toEqual([]);
  });

  it("a tenant with no policies denies every upstream call by default", async () => {
    const t = await governed([]);
    const answer = await mcpAnswer(tool("crm__get_a"), t.apiKey);
    expect(answer.error).toMatchObject({ code: -32003, data: { ruleId: null, policyId: null } });
  });

  it.each([
    { order: "deny policy first", first: "deny" },
    { order: "allow policy first", first: "allow" },
  ])("a deny in one policy beats another policy's allow ($order)", async ({ first }) => {
    const allow = { id: "crm-users", roles: ["reader"], rules: [{ id: "crm-all", server: "crm", action: "allow" }] };
    const deny = { id: "safety", roles: ["*"], rules: [{ id: "never-delete", server: "crm", tool: "delete_c", action: "deny" }] };
    const t = await governed(first === "deny" ? [deny, allow] : [allow, deny]);
    const answer = await mcpAnswer(tool("crm__delete_c"), t.apiKey);
    expect(answer.error).toMatchObject({ code: -32003, data: { ruleId: "never-delete", policyId: "safety" } });
    expect(await listed(t, "tools/list", "tools")).not.toContain("crm__delete_c");
    const { answer: allowed, rpc } = await relayedCall(t, tool("crm__get_a"));
    expect(allowed.result.content[0].text).toBe("ran get_a");
    expect(rpc?.serverId).toBe("crm");
  });

  it("a server-wide deny beats a specific allow", async () => {
    const t = await governed([
      { id: "getters", roles: ["reader"], rules: [{ server: "crm", tool: "get_a", action: "allow" }] },
      { id: "freeze", roles: ["reader"], rules: [{ id: "crm-frozen", server: "crm", action: "deny" }] },
    ]);
    expect((await mcpAnswer(tool("crm__get_a"), t.apiKey)).error.data).toEqual({ ruleId: "crm-frozen", policyId: "freeze" });
    expect(await listed(t, "tools/list", "tools")).toEqual(META_TOOLS);
  });
});

describe("conditions on arguments", () => {
  const ownCustomer = [
    {
      id: "own-customers",
      roles: ["reader"],
      rules: [{ id: "own-search", server: "crm", tool: "search_b", action: "allow", conditions: [{ param: "customer.id", operator: "eq", value: "${principal.consumerId}" }] }],
    },
  ];

  it("customer.id equal to the caller's consumer id is allowed and relayed as sent", async () => {
    const t = await governed(ownCustomer);
    const { answer, rpc } = await relayedCall(t, tool("crm__search_b", { customer: { id: "agent-1" }, q: "x" }));
    expect(answer.result.content[0].text).toBe("ran search_b");
    expect(rpc?.request).toEqual({ method: "tools/call", params: { name: "search_b", arguments: { customer: { id: "agent-1" }, q: "x" } } });
  });

  it.each([
    { label: "another customer's id", args: { customer: { id: "agent-2" } }, why: "does not hold" },
    { label: "the own id inside a list (no coercion)", args: { customer: { id: ["agent-1"] } }, why: "cannot be evaluated" },
    { label: "the own id as an object", args: { customer: { id: { value: "agent-1" } } }, why: "cannot be evaluated" },
    { label: "a missing customer.id", args: { customer: {} }, why: "cannot be evaluated" },
    { label: "no arguments at all", args: {}, why: "cannot be evaluated" },
  ])("$label is denied by default, the message naming the unmet rule but no value", async ({ args, why }) => {
    const t = await governed(ownCustomer);
    const answer = await mcpAnswer(tool("crm__search_b", args), t.apiKey);
    expect(answer.error.code).toBe(-32003);
    expect(answer.error.data).toEqual({ ruleId: null, policyId: null });
    expect(answer.error.message).toContain(`rule "own-search" of policy "own-customers" would allow it, but its condition on customer.id (eq) ${why}`);
    expect(answer.error.message).not.toContain("agent-2");
    expect(rpcFrames(t.connector)).toEqual([]);
  });

  it("a numeric id is not its string form", async () => {
    const t = await governed([
      { id: "p", roles: ["reader"], rules: [{ id: "only-42", server: "crm", tool: "get_a", action: "allow", conditions: [{ param: "id", operator: "eq", value: 42 }] }] },
    ]);
    expect((await mcpAnswer(tool("crm__get_a", { id: "42" }), t.apiKey)).error?.code).toBe(-32003);
    const { answer } = await relayedCall(t, tool("crm__get_a", { id: 42 }));
    expect(answer.result.content[0].text).toBe("ran get_a");
  });

  it("a conditional deny refuses only the matching calls, naming its rule", async () => {
    const t = await governed([
      {
        id: "readers",
        roles: ["reader"],
        rules: [
          { server: "crm", action: "allow" },
          { id: "no-forced-delete", server: "crm", tool: "delete_c", action: "deny", conditions: [{ param: "force", operator: "eq", value: true }] },
        ],
      },
    ]);
    expect((await mcpAnswer(tool("crm__delete_c", { force: true }), t.apiKey)).error.data).toEqual({ ruleId: "no-forced-delete", policyId: "readers" });
    const { answer } = await relayedCall(t, tool("crm__delete_c", { force: false }));
    expect(answer.result.content[0].text).toBe("ran delete_c");
  });
});

describe("prompts, resources and completions", () => {
  const narrow = [
    {
      id: "narrow",
      roles: ["reader"],
      rules: [
        { id: "greet-only", server: "crm", prompt: "greet", action: "allow" },
        { id: "readme-only", server: "crm", resource: "crm://readme", action: "allow" },
        { id: "items", server: "crm", resource: "crm://items/*", action: "allow" },
      ],
    },
  ];

  it("listings show only the allowed prompts, resources and templates", async () => {
    const t = await governed(narrow);
    expect(await listed(t, "prompts/list", "prompts")).toEqual(["crm__greet"]);
    expect(await listed(t, "resources/list", "resources", "uri")).toEqual(["crm://readme"]);
    expect(await listed(t, "resources/templates/list", "resourceTemplates", "uriTemplate")).toEqual(["crm://items/{item}"]);
    expect(await listed(t, "tools/list", "tools")).toEqual(META_TOOLS);
  });

  it.each([
    { label: "prompts/get of another prompt", request: rpcRequest("prompts/get", { name: "crm__secret_prompt" }), subject: 'prompt "secret_prompt" of server "crm"' },
    { label: "prompts/get of another server's prompt", request: rpcRequest("prompts/get", { name: "docs__greet" }), subject: 'prompt "greet" of server "docs"' },
    { label: "resources/read of another resource", request: rpcRequest("resources/read", { uri: "crm://secret" }), subject: 'resource "crm://secret" of server "crm"' },
    { label: "resources/read of another server's resource", request: rpcRequest("resources/read", { uri: "docs://readme" }), subject: 'resource "docs://readme" of server "docs"' },
    {
      label: "completion/complete of a refused prompt",
      request: rpcRequest("completion/complete", { ref: { type: "ref/prompt", name: "crm__secret_prompt" }, argument: { name: "a", value: "b" } }),
      subject: 'prompt "secret_prompt" of server "crm"',
    },
    {
      label: "completion/complete of a refused template",
      request: rpcRequest("completion/complete", { ref: { type: "ref/resource", uri: "docs://items/{item}" }, argument: { name: "item", value: "1" } }),
      subject: 'resource "docs://items/{item}" of server "docs"',
    },
    { label: "tools/call of a tool no rule covers", request: tool("crm__get_a"), subject: 'tool "get_a" of server "crm"' },
  ])("$label is refused with -32003", async ({ request, subject }) => {
    const t = await governed(narrow);
    const answer = await mcpAnswer(request, t.apiKey);
    expect(answer.error).toEqual({
      code: -32003,
      message: expect.stringMatching(new RegExp(`^${subject.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is not allowed: `)),
      data: { ruleId: null, policyId: null },
    });
    expect(rpcFrames(t.connector)).toEqual([]);
  });

  it("the allowed prompt, resource, template read and completion are relayed", async () => {
    const t = await governed(narrow);
    const prompt = mcpAnswer(rpcRequest("prompts/get", { name: "crm__greet" }), t.apiKey);
    expect((await answerNextRpc(t.connector, { messages: [] })).request).toMatchObject({ method: "prompts/get", params: { name: "greet" } });
    expect((await prompt).result).toEqual({ messages: [] });

    const readme = mcpAnswer(rpcRequest("resources/read", { uri: "crm://readme" }), t.apiKey);
    await answerNextRpc(t.connector, { contents: [{ uri: "crm://readme", text: "hello" }] });
    expect((await readme).result.contents[0].text).toBe("hello");

    const item = mcpAnswer(rpcRequest("resources/read", { uri: "crm://items/7" }), t.apiKey);
    expect((await answerNextRpc(t.connector, { contents: [{ uri: "crm://items/7", text: "7" }] })).request.params).toEqual({ uri: "crm://items/7" });
    expect((await item).result.contents[0].text).toBe("7");

    const completion = mcpAnswer(rpcRequest("completion/complete", { ref: { type: "ref/prompt", name: "crm__greet" }, argument: { name: "who", value: "a" } }), t.apiKey);
    await answerNextRpc(t.connector, { completion: { values: ["alice"] } });
    expect((await completion).result.completion.values).toEqual(["alice"]);
  });

  it("a deny on a resource URI glob refuses the read and hides it", async () => {
    const t = await governed([
      {
        id: "readers",
        roles: ["reader"],
        rules: [
          { server: "crm", action: "allow" },
          { id: "no-secrets", server: "crm", resource: "crm://secret*", action: "deny" },
        ],
      },
    ]);
    expect(await listed(t, "resources/list", "resources", "uri")).toEqual(["crm://readme"]);
    expect((await mcpAnswer(rpcRequest("resources/read", { uri: "crm://secret" }), t.apiKey)).error).toMatchObject({
      code: -32003,
      data: { ruleId: "no-secrets", policyId: "readers" },
    });
  });
});

describe("the gateway's own tools under policy", () => {
  const getters = [
    {
      id: "getters",
      roles: ["reader"],
      rules: [
        { id: "get-any", server: "crm", tool: "get_*", action: "allow" },
        { id: "no-delete", server: "crm", tool: "delete_c", action: "deny" },
      ],
    },
  ];

  it("list_tools lists only the allowed tools; list_servers only servers the caller may use", async () => {
    const t = await governed(getters);
    const tools = await mcpAnswer(tool("list_tools"), t.apiKey);
    expect(tools.result.structuredContent).toEqual({ tools: [{ name: "crm__get_a", server: "crm", description: "get_a tool" }] });
    expect(tools.result.isError).toBeUndefined();
    const servers = await mcpAnswer(tool("list_servers"), t.apiKey);
    expect(servers.result.structuredContent.servers).toEqual([{ id: "crm", name: "crm server", status: "healthy", available: true, tools: 1, prompts: 0, resources: 0 }]);
    // docs offers this caller nothing: it does not exist for it.
    const docs = await mcpAnswer(tool("server_status", { server: "docs" }), t.apiKey);
    const ghost = await mcpAnswer(tool("server_status", { server: "ghost" }), t.apiKey);
    expect(docs.error.code).toBe(-32602);
    expect(docs.error.message.replace("docs", "X")).toBe(ghost.error.message.replace("ghost", "X"));
  });

  it("call relays an allowed tool exactly as a direct call would", async () => {
    const t = await governed(getters);
    const { answer, rpc } = await relayedCall(t, tool("call", { tool: "crm__get_a", arguments: { id: 1 } }));
    expect(answer.result).toEqual({ content: [{ type: "text", text: "ran get_a" }] });
    expect(rpc?.serverId).toBe("crm");
    expect(rpc?.request).toEqual({ method: "tools/call", params: { name: "get_a", arguments: { id: 1 } } });
  });

  it.each([
    { label: "an explicitly denied tool", name: "crm__delete_c" },
    { label: "a tool no rule allows", name: "crm__admin_x" },
  ])("call of $label fails with the same -32003 as the direct call", async ({ name }) => {
    const t = await governed(getters);
    const direct = await mcpAnswer(tool(name, { id: 1 }), t.apiKey);
    const viaCall = await mcpAnswer(tool("call", { tool: name, arguments: { id: 1 } }), t.apiKey);
    expect(direct.error.code).toBe(-32003);
    expect(viaCall.error).toEqual(direct.error);
    expect(rpcFrames(t.connector)).toEqual([]);
  });

  it("call checks the target's conditions against the arguments it carries", async () => {
    const t = await governed([
      {
        id: "own-customers",
        roles: ["reader"],
        rules: [{ id: "own-search", server: "crm", tool: "search_b", action: "allow", conditions: [{ param: "customer.id", operator: "eq", value: "${principal.consumerId}" }] }],
      },
    ]);
    expect((await mcpAnswer(tool("call", { tool: "crm__search_b", arguments: { customer: { id: "agent-2" } } }), t.apiKey)).error.code).toBe(-32003);
    const { answer } = await relayedCall(t, tool("call", { tool: "crm__search_b", arguments: { customer: { id: "agent-1" } } }));
    expect(answer.result.content[0].text).toBe("ran search_b");
  });

  it("a tenant deny rule on gateway/call removes call from tools/list and refuses it, naming the rule", async () => {
    const t = await governed([
      {
        id: "readers",
        roles: ["reader"],
        rules: [
          { server: "crm", action: "allow" },
          { id: "no-meta-call", server: "gateway", tool: "call", action: "deny" },
        ],
      },
    ]);
    const names = await listed(t, "tools/list", "tools");
    expect(names).toEqual(["crm__admin_x", "crm__delete_c", "crm__get_a", "crm__search_b", "list_servers", "list_tools", "server_status", "usage"]);
    const refused = await mcpAnswer(tool("call", { tool: "crm__get_a" }), t.apiKey);
    expect(refused.error).toEqual({
      code: -32003,
      message: 'the gateway\'s tool "call" is not allowed: denied by rule "no-meta-call" of policy "readers"',
      data: { ruleId: "no-meta-call", policyId: "readers" },
    });
    expect(rpcFrames(t.connector)).toEqual([]);
    // The other gateway tools still work.
    expect((await mcpAnswer(tool("list_tools"), t.apiKey)).result.structuredContent.tools).toHaveLength(4);
  });

  it("a tenant deny on the whole gateway server removes every gateway tool", async () => {
    const t = await governed([
      {
        id: "readers",
        roles: ["reader"],
        rules: [
          { server: "crm", tool: "get_a", action: "allow" },
          { id: "no-gateway-tools", server: "gateway", action: "deny" },
        ],
      },
    ]);
    expect(await listed(t, "tools/list", "tools")).toEqual(["crm__get_a"]);
    for (const name of META_TOOLS) {
      expect((await mcpAnswer(tool(name, {}), t.apiKey)).error.data, name).toEqual({ ruleId: "no-gateway-tools", policyId: "readers" });
    }
  });
});

describe("gateway tool argument errors follow the caller's protocol revision", () => {
  const modern = (name: string, args: unknown) => ({
    body: {
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: {
        name,
        arguments: args,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    },
    headers: { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": name },
  });
  const legacy = (version: string | undefined) => (name: string, args: unknown) => ({
    body: { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args } },
    headers: version ? { "mcp-protocol-version": version } : ({} as Record<string, string>),
  });

  const eras = [
    { era: "2026-07-28", request: modern, asResult: true },
    { era: "2025-11-25", request: legacy("2025-11-25"), asResult: true },
    { era: "2025-06-18", request: legacy("2025-06-18"), asResult: false },
    { era: "2025-03-26", request: legacy("2025-03-26"), asResult: false },
  ];
  const mistakes = [
    { tool: "server_status", args: {}, message: /^Invalid arguments for server_status: server: / },
    { tool: "list_tools", args: { server: 5 }, message: /^Invalid arguments for list_tools: server: / },
    { tool: "list_servers", args: { verbose: true }, message: /^Invalid arguments for list_servers: / },
    { tool: "call", args: { arguments: {} }, message: /^Invalid arguments for call: tool: / },
    { tool: "call", args: { tool: "call" }, message: /^call cannot call itself/ },
  ];
  const cases = eras.flatMap((era) => mistakes.map((mistake) => ({ ...era, ...mistake, args: mistake.args as unknown })));

  it.each(cases)("$era: $tool with $args", async ({ request, asResult, tool: name, args, message }) => {
    const t = await governed([{ id: "readers", roles: ["reader"], rules: [{ action: "allow" }] }]);
    const { body, headers } = request(name, args);
    const answer = await mcpAnswer(body, t.apiKey, headers);
    if (asResult) {
      expect(answer.error).toBeUndefined();
      // (a 2026-07-28 result also carries the envelope: _meta, resultType)
      const { content, isError } = answer.result;
      expect({ content, isError }).toEqual({ content: [{ type: "text", text: expect.stringMatching(message) }], isError: true });
    } else {
      expect(answer.result).toBeUndefined();
      expect(answer.error).toEqual({ code: -32602, message: expect.stringMatching(message) });
    }
    expect(rpcFrames(t.connector)).toEqual([]);
  });

  it("a denied gateway tool is refused as -32003 in every revision, before its arguments are looked at", async () => {
    const t = await governed([{ id: "readers", roles: ["reader"], rules: [{ id: "no-status", server: "gateway", tool: "server_status", action: "deny" }] }]);
    for (const { request } of eras) {
      const { body, headers } = request("server_status", {});
      expect((await mcpAnswer(body, t.apiKey, headers)).error).toMatchObject({ code: -32003, data: { ruleId: "no-status", policyId: "readers" } });
    }
  });
});

describe("what a caller learns about what it may not use", () => {
  it("a deny written on a template also covers reads of the URIs it matches", async () => {
    const t = await governed([
      { id: "readers", roles: ["reader"], rules: [{ server: "crm", action: "allow" }] },
      { id: "no-items", roles: ["reader"], rules: [{ server: "crm", resource: "crm://items/{item}", action: "deny" }] },
    ]);
    const answer = await mcpAnswer(rpcRequest("resources/read", { uri: "crm://items/42" }), t.apiKey);
    expect(answer.error).toMatchObject({ code: -32003, data: { ruleId: "no-items.rules[0]" } });
    expect(rpcFrames(t.connector)).toEqual([]);
  });

  it("a denied tool of a server that is down is refused by policy, without the server's health", async () => {
    const t = await governed([{ id: "readers", roles: ["reader"], rules: [{ server: "docs", action: "allow" }] }]);
    t.connector.send({ type: "status", server: { ...crmServer(), health: "unhealthy", detail: "crash loop" } });
    await expect
      .poll(async () => (await mcpAnswer(tool("crm__get_a"), t.apiKey)).error?.message as string)
      .toMatch(/not allowed/);
    const answer = await mcpAnswer(tool("crm__get_a"), t.apiKey);
    expect(answer.error.code).toBe(-32003);
    expect(answer.error.message).not.toMatch(/unhealthy|available/);
  });

  it("an unknown tool's hint never names a server the caller may use nothing of", async () => {
    const t = await governed([{ id: "readers", roles: ["reader"], rules: [{ server: "docs", action: "allow" }] }]);
    const hidden = await mcpAnswer(tool("crm__no_such_tool"), t.apiKey);
    const nowhere = await mcpAnswer(tool("zzz__no_such_tool"), t.apiKey);
    expect(hidden.error.code).toBe(-32602);
    expect(hidden.error.message.replaceAll("crm", "zzz")).toBe(nowhere.error.message);
  });

  it("completion of a prompt argument must satisfy the prompt's conditions with the arguments known so far", async () => {
    const t = await governed([
      {
        id: "own-customer",
        roles: ["reader"],
        rules: [{ server: "crm", prompt: "greet", action: "allow", conditions: [{ param: "customer", operator: "eq", value: "${principal.consumerId}" }] }],
      },
    ]);
    const complete = (value: string) => rpcRequest("completion/complete", { ref: { type: "ref/prompt", name: "crm__greet" }, argument: { name: "customer", value } });
    const denied = await mcpAnswer(complete("agent-"), t.apiKey);
    expect(denied.error).toMatchObject({ code: -32003 });
    expect(rpcFrames(t.connector)).toEqual([]);
    const { answer, rpc } = await relayedCall(t, complete("agent-1"));
    expect(answer.error).toBeUndefined();
    expect(rpc?.request.method).toBe("completion/complete");
  });

  it("a resource URI too long to match against policy is refused, not slowly matched", async () => {
    const t = await governed([{ id: "readers", roles: ["reader"], rules: [{ server: "crm", action: "allow" }] }]);
    const answer = await mcpAnswer(rpcRequest("resources/read", { uri: `crm://items/${"*a".repeat(100_000)}` }), t.apiKey);
    expect(answer.error).toMatchObject({ code: -32003 });
    expect(answer.error.message).toMatch(/too long/);
  });
});

describe("the reserved server id", () => {
  it("a connector cannot report a server named gateway, whose tools the built-in rule would allow to everyone", async () => {
    const seeded = await seedTenant({ policies: [] });
    const connector = await FakeConnector.connect(seeded.connectorToken);
    connector.send({ type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "old", replicaId: "r", servers: [echoServer("gateway")] });
    const refused = await connector.next("error");
    expect(refused.message).toMatch(/reserved/);
    const names = (await mcpAnswer(rpcRequest("tools/list"), seeded.apiKey)).result.tools.map((t: { name: string }) => t.name);
    expect(names.filter((n: string) => n.startsWith("gateway__"))).toEqual([]);
  });
});
