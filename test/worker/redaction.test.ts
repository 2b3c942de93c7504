/**
 * Redaction inside workerd, with a connector played over a real WebSocket: what the upstream receives (the rpc
 * frame) and everything the agent receives besides the result — upstream errors, progress messages, log
 * notifications, structured content — are rewritten by the tenant's rules, and a tenant without rules is untouched.
 */
import { describe, expect, it } from "vitest";
import { ALLOW_ALL, echoServer, FakeConnector, mcpPost, rpcMessages, seedTenant } from "./fixtures.ts";

const SSN = "123-45-6789";
const EMAIL = "jane.doe@example.com";

async function connected(redaction?: unknown) {
  const seeded = await seedTenant({ policies: ALLOW_ALL, ...(redaction ? { redaction } : {}) });
  const connector = await FakeConnector.connect(seeded.connectorToken);
  await connector.hello([echoServer("crm")]);
  return { ...seeded, connector };
}

const call = (args: Record<string, unknown>) => ({
  jsonrpc: "2.0",
  id: 3,
  method: "tools/call",
  params: { name: "crm__echo", arguments: args, _meta: { progressToken: "p" } },
});

describe("redaction at the edge", () => {
  it("rewrites the arguments the upstream receives, after policy, never the tool's name", async () => {
    const { apiKey, connector } = await connected({ rules: [{ directions: ["request"], detectors: ["ssn"], fields: [{ path: "**.password", action: "drop" }] }] });
    const pending = mcpPost(call({ text: `ssn ${SSN}`, login: { user: "jane", password: "hunter2" } }), apiKey);
    const rpc = await connector.next("rpc");
    expect(rpc.request.params).toMatchObject({ name: "echo", arguments: { text: "ssn [REDACTED:ssn]", login: { user: "jane" } } });
    expect(JSON.stringify(rpc.request)).not.toContain("hunter2");
    connector.send({ type: "result", callId: rpc.callId, result: { content: [{ type: "text", text: `back: ${SSN}` }] } });
    // A request-only rule leaves the response alone.
    expect((await rpcMessages(await pending)).at(-1)?.result.content[0].text).toBe(`back: ${SSN}`);
  });

  it("rewrites progress messages, log notifications, structured content and the result before the agent sees them", async () => {
    const { apiKey, connector } = await connected({ rules: [{ directions: ["response"], detectors: ["ssn", "email"] }] });
    const pending = mcpPost(call({}), apiKey);
    const rpc = await connector.next("rpc");
    connector.send({ type: "notification", callId: rpc.callId, message: { method: "notifications/progress", params: { progress: 1, total: 2, message: `looking up ${SSN}` } } });
    connector.send({ type: "notification", callId: rpc.callId, message: { method: "notifications/message", params: { level: "info", data: { found: EMAIL } } } });
    connector.send({ type: "result", callId: rpc.callId, result: { content: [{ type: "text", text: EMAIL }], structuredContent: { patient: { ssn: SSN } } } });
    const messages = await rpcMessages(await pending);
    expect(JSON.stringify(messages)).not.toMatch(/123-45-6789|jane\.doe@example\.com/);
    expect(messages.find((m) => m.method === "notifications/progress")?.params.message).toBe("looking up [REDACTED:ssn]");
    expect(messages.find((m) => m.method === "notifications/message")?.params.data).toEqual({ found: "[REDACTED:email]" });
    expect(messages.at(-1)?.result).toEqual({ content: [{ type: "text", text: "[REDACTED:email]" }], structuredContent: { patient: { ssn: "[REDACTED:ssn]" } } });
  });

  it("rewrites an upstream error's message, keeping its code", async () => {
    const { apiKey, connector } = await connected({ rules: [{ directions: ["response"], detectors: ["ssn"] }] });
    const pending = mcpPost(call({}), apiKey);
    const rpc = await connector.next("rpc");
    connector.send({ type: "result", callId: rpc.callId, error: { code: -32000, message: `no patient with ssn ${SSN}` } });
    expect((await rpcMessages(await pending)).at(-1)?.error).toEqual({ code: -32000, message: "no patient with ssn [REDACTED:ssn]" });
  });

  it("leaves everything as it is for a tenant without rules, and for servers its rules do not name", async () => {
    for (const redaction of [undefined, { rules: [{ servers: ["ehr"], detectors: ["ssn"] }] }]) {
      const { apiKey, connector } = await connected(redaction);
      const pending = mcpPost(call({ text: SSN }), apiKey);
      const rpc = await connector.next("rpc");
      expect(rpc.request.params?.arguments).toEqual({ text: SSN });
      connector.send({ type: "result", callId: rpc.callId, result: { content: [{ type: "text", text: SSN }] } });
      expect((await rpcMessages(await pending)).at(-1)?.result.content[0].text).toBe(SSN);
    }
  });
});

describe("tools whose results may be redacted", () => {
  it("are listed without their outputSchema (a masked field would fail a client's validation), others keep it", async () => {
    const outputSchema = { type: "object", properties: { ssn: { type: "number" } }, required: ["ssn"] };
    const server = (id: string) => {
      const report = echoServer(id);
      report.catalog.tools = [{ name: "lookup", inputSchema: { type: "object" }, outputSchema }];
      return report;
    };
    const seeded = await seedTenant({ policies: ALLOW_ALL, redaction: { rules: [{ servers: ["ehr"], directions: ["response"], detectors: ["ssn"] }] } });
    const connector = await FakeConnector.connect(seeded.connectorToken);
    await connector.hello([server("ehr"), server("crm")]);
    const [list] = await rpcMessages(await mcpPost({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, seeded.apiKey));
    const byName = new Map<string, Record<string, unknown>>(list?.result.tools.map((t: { name: string }) => [t.name, t]));
    expect(byName.get("ehr__lookup")).not.toHaveProperty("outputSchema");
    expect(byName.get("crm__lookup")?.outputSchema).toEqual(outputSchema);
  });
});
