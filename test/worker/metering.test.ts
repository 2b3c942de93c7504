/**
 * Usage as a projection of the audit chain, inside workerd with the real AuditLog Durable Object and local D1: after
 * a mixed load, `usage_hourly` says exactly what `audit_entries` says (counted here independently, in SQL), however
 * often a batch is shipped and whatever fails in the middle of one; and the byte sizes an entry records are those
 * of the JSON the agent sent and received.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AuditEntry, AuditFields } from "../../src/audit/entry.ts";
import type { AuditLogDurableObject } from "../../src/audit/durable-object.ts";
import { rowToEntry, type AuditEntryRow } from "../../src/audit/rows.ts";
import { answerEveryRpc, auditFields, echoServer, FakeConnector, mcpAnswer, mcpPost, rpcRequest, seedTenant } from "./fixtures.ts";

const auditLog = (tenant: string) => env.AUDIT_LOG.getByName(tenant);
const HOUR_MS = 3_600_000;
/** The latency buckets' upper bounds, written out here rather than imported: the check must not share the code. */
const BOUNDS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000];

const bytes = (text: string) => new TextEncoder().encode(text).length;

/** Usage as the audit log says it, counted in SQL from audit_entries alone. */
async function countedFromAudit(tenant: string) {
  const bucket = (i: number) =>
    i === 0 ? `SUM(latency_ms <= ${BOUNDS[0]})` : i === BOUNDS.length ? `SUM(latency_ms > ${BOUNDS[i - 1]})` : `SUM(latency_ms > ${BOUNDS[i - 1]} AND latency_ms <= ${BOUNDS[i]})`;
  const { results } = await env.DB.prepare(
    `SELECT timestamp - (timestamp % ${HOUR_MS}) AS hour, COALESCE(consumer, '') AS consumer, COALESCE(server, '') AS server,
       CASE WHEN server IS NULL THEN '' WHEN method = 'tools/call' THEN COALESCE(tool, '') WHEN method = 'prompts/get' THEN 'prompt:' || COALESCE(tool, '') ELSE method END AS tool,
       COUNT(*) AS calls, SUM(status = 'ok') AS ok, SUM(status = 'error') AS errors, SUM(status = 'denied') AS denied,
       SUM(status = 'limited') AS limited, SUM(status = 'unknown') AS unknown, SUM(status = 'unauthenticated') AS unauthenticated,
       SUM(latency_ms) AS latencySumMs, SUM(request_bytes) AS requestBytes, SUM(response_bytes) AS responseBytes,
       ${Array.from({ length: BOUNDS.length + 1 }, (_, i) => `${bucket(i)} AS b${i}`).join(", ")}
     FROM audit_entries WHERE tenant_id = ? GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
  )
    .bind(tenant)
    .all();
  return results;
}

/** What usage_hourly holds, in the same shape. */
async function usageRows(tenant: string) {
  const { results } = await env.DB.prepare(
    `SELECT hour, consumer, server, tool, SUM(calls) AS calls, SUM(ok) AS ok, SUM(errors) AS errors, SUM(denied) AS denied,
       SUM(limited) AS limited, SUM(unknown) AS unknown, SUM(unauthenticated) AS unauthenticated,
       SUM(latency_sum_ms) AS latencySumMs, SUM(request_bytes) AS requestBytes, SUM(response_bytes) AS responseBytes,
       ${Array.from({ length: BOUNDS.length + 1 }, (_, i) => `SUM(latency_bucket_${i}) AS b${i}`).join(", ")}
     FROM usage_hourly WHERE tenant_id = ? GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
  )
    .bind(tenant)
    .all();
  return results;
}

/** Ships everything, then checks usage against the audit log; returns the rows. */
async function expectUsageEqualsAudit(tenant: string) {
  await auditLog(tenant).flush();
  const expected = await countedFromAudit(tenant);
  expect(expected.length).toBeGreaterThan(0);
  expect(await usageRows(tenant)).toEqual(expected);
  return expected;
}

async function cursorOf(tenant: string): Promise<number | null> {
  return (await env.DB.prepare("SELECT seq FROM usage_cursor WHERE tenant_id = ?").bind(tenant).first<{ seq: number }>())?.seq ?? null;
}

async function auditCount(tenant: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_entries WHERE tenant_id = ?").bind(tenant).first<{ n: number }>())!.n;
}

async function shippedEntries(tenant: string): Promise<AuditEntry[]> {
  await auditLog(tenant).flush();
  const { results } = await env.DB.prepare("SELECT * FROM audit_entries WHERE tenant_id = ? ORDER BY seq").bind(tenant).all<Record<string, unknown>>();
  return results.map((row) => rowToEntry(camel(row) as unknown as AuditEntryRow));
}

function camel(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([key, value]) => [key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), value]));
}

/**
 * Makes the object ship D1's entries again, as after an acknowledgement that was lost: puts them back into its
 * storage and rewinds shipped_seq to 0.
 */
async function requeue(tenant: string) {
  const entries = await shippedEntries(tenant);
  await runInDurableObject(auditLog(tenant), (_i: AuditLogDurableObject, state) => {
    for (const entry of entries) state.storage.sql.exec("INSERT OR REPLACE INTO entries (seq, json) VALUES (?, ?)", entry.seq, JSON.stringify(entry));
    state.storage.sql.exec("UPDATE state SET shipped_seq = 0");
  });
  return entries.length;
}

/** A call the rate limiter refused, as it would append it: before routing (server null) or after (routed). */
function limited(tenant: string, i: number, overrides: Partial<AuditFields> = {}): AuditFields {
  return { ...auditFields(tenant, i), status: "limited", result: null, errorCode: -32029, errorMessage: "rate limited", ...overrides };
}

const toolCall = (name: string, args: Record<string, unknown> = {}, id = 1) => rpcRequest("tools/call", { name, arguments: args }, id);

/** A tenant with two consumers, a policy that denies crm's drop_* tools, and a connector answering by `mode`. */
async function mixedTenant() {
  const apiKey = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
  const agent2 = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
  const policies = [{ id: "p", roles: ["reader"], rules: [{ server: "crm", tool: "drop_*", action: "deny" }, { action: "allow" }] }];
  const keys = [{ id: "key-1", key: apiKey }, { id: "key-2", key: agent2, consumerId: "agent-2" }];
  const seeded = await seedTenant({ policies, keys });
  const connector = await FakeConnector.connect(seeded.connectorToken);
  const crm = echoServer("crm");
  crm.catalog.tools.push({ name: "drop_table", inputSchema: { type: "object" } });
  await connector.hello([crm, echoServer("billing")]);
  connector.socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data as string);
    if (frame.type !== "rpc") return;
    const mode = frame.request.params?.arguments?.mode;
    if (mode === "fail") connector.send({ type: "result", callId: frame.callId, error: { code: -32000, message: "database down" } });
    else if (mode === "tool-error") connector.send({ type: "result", callId: frame.callId, result: { content: [{ type: "text", text: "nope" }], isError: true } });
    else connector.send({ type: "result", callId: frame.callId, result: { content: [{ type: "text", text: `done ${JSON.stringify(frame.request.params?.arguments ?? {})}` }] } });
  });
  return { tenant: seeded.tenant, apiKey, agent2, connector };
}

/** Ok calls, tool errors, upstream errors, denials, unknown tools, the gateway's own tool, a resource read. */
async function mixedLoad(t: { apiKey: string; agent2: string }) {
  const answers = await Promise.all([
    ...[1, 2, 3].map((i) => mcpAnswer(toolCall("crm__echo", { text: `hello ${i}` }, i), t.apiKey)),
    mcpAnswer(toolCall("billing__echo", { text: "café €" }), t.agent2),
    mcpAnswer(toolCall("crm__echo", { mode: "tool-error" }), t.apiKey),
    mcpAnswer(toolCall("crm__echo", { mode: "tool-error" }), t.agent2),
    mcpAnswer(toolCall("crm__echo", { mode: "fail" }), t.apiKey),
    mcpAnswer(toolCall("billing__echo", { mode: "fail" }), t.apiKey),
    mcpAnswer(toolCall("crm__drop_table"), t.apiKey),
    mcpAnswer(toolCall("crm__drop_table", { really: true }), t.agent2),
    mcpAnswer(toolCall("crm__nothing_here"), t.apiKey),
    mcpAnswer(toolCall("no_such_tool_at_all"), t.agent2),
    mcpAnswer(toolCall("list_servers"), t.apiKey),
    mcpAnswer(rpcRequest("resources/read", { uri: "crm://readme" }), t.apiKey),
  ]);
  return answers;
}

describe("usage_hourly is a projection of audit_entries", () => {
  it("equals the audit log's own counts after a mixed load through /mcp and directly appended limited calls", async () => {
    const t = await mixedTenant();
    const answers = await mixedLoad(t);
    expect(answers.filter((a) => a.error).map((a) => a.error.code).sort()).toEqual([-32602, -32602, -32003, -32003, -32000, -32000].sort());
    const stub = auditLog(t.tenant);
    // Limited calls, as the rate limiter appends them: before routing, after routing, and an hour later.
    await stub.append(limited(t.tenant, 1, { server: null, tool: "crm__echo", latencyMs: 0 }));
    await stub.append(limited(t.tenant, 2, { latencyMs: 7 }));
    await stub.append(limited(t.tenant, 3, { latencyMs: 31_000, timestamp: auditFields(t.tenant, 3).timestamp + HOUR_MS }));
    await stub.append(limited(t.tenant, 4, { consumer: "agent-2", latencyMs: 600, requestBytes: 1_234, responseBytes: 99 }));
    // A refused key: unauthenticated, not routed.
    await env.DB.prepare("UPDATE api_keys SET revoked_at = 1 WHERE tenant_id = ? AND id = 'key-2'").bind(t.tenant).run();
    expect((await mcpPost(toolCall("crm__echo"), t.agent2)).status).toBe(401);

    const rows = await expectUsageEqualsAudit(t.tenant);
    const total = (pick: (r: Record<string, unknown>) => unknown) => rows.reduce((sum: number, r) => sum + Number(pick(r)), 0);
    expect(total((r) => r.calls)).toBe(answers.length + 4 + 1);
    expect(total((r) => r.limited)).toBe(4);
    expect(total((r) => r.unauthenticated)).toBe(1);
    expect(total((r) => r.denied)).toBe(2);
    expect(total((r) => r.unknown)).toBe(2);
    expect(total((r) => r.errors)).toBe(4);
    // The names of unrouted calls are the callers' own: usage keeps none of them.
    const usage = await usageRows(t.tenant);
    expect(usage.map((r) => r.tool)).not.toContain("crm__nothing_here");
    expect(usage.map((r) => r.tool)).not.toContain("no_such_tool_at_all");
    expect(usage.filter((r) => r.server === "").every((r) => r.tool === "")).toBe(true);
    expect(usage).toContainEqual(expect.objectContaining({ consumer: "agent-1", server: "crm", tool: "drop_table", denied: 1 }));
    expect(usage).toContainEqual(expect.objectContaining({ consumer: "agent-1", server: "gateway", tool: "list_servers", ok: 1 }));
    expect(await cursorOf(t.tenant)).toBe((await stub.state()).head.seq);
  });

  it("counts nothing twice when batches are shipped again, and counts what a longer re-shipped batch adds", async () => {
    const t = await mixedTenant();
    await mixedLoad(t);
    const stub = auditLog(t.tenant);
    for (let i = 0; i < 30; i++) await stub.append(limited(t.tenant, i, { latencyMs: i * 97 }));
    const before = await expectUsageEqualsAudit(t.tenant);
    const count = await auditCount(t.tenant);

    // The same batches again (their acknowledgement "lost"): nothing changes.
    expect(await requeue(t.tenant)).toBe(count);
    await stub.flush();
    expect(await auditCount(t.tenant)).toBe(count);
    expect(await expectUsageEqualsAudit(t.tenant)).toEqual(before);
    expect(await cursorOf(t.tenant)).toBe(count);

    // Again, now with new entries behind them: the re-shipped part adds nothing, the new part is counted once.
    await requeue(t.tenant);
    for (let i = 0; i < 3; i++) await stub.append(limited(t.tenant, 100 + i));
    await mcpAnswer(toolCall("crm__echo", { text: "after" }), t.apiKey);
    await stub.flush();
    const after = await expectUsageEqualsAudit(t.tenant);
    expect(after.reduce((sum: number, r) => sum + Number(r.calls), 0)).toBe(count + 4);
    expect(await cursorOf(t.tenant)).toBe(count + 4);
  }, 30_000);

  it("neither loses nor doubles counts when D1 fails in the middle of a batch", async () => {
    const tenant = (await seedTenant()).tenant;
    const stub = auditLog(tenant);
    for (let i = 0; i < 5; i++) await stub.append(auditFields(tenant, i));
    await expectUsageEqualsAudit(tenant);
    await env.DB.prepare("ALTER TABLE usage_hourly RENAME TO usage_hourly_away").run();
    try {
      for (let i = 5; i < 12; i++) await stub.append(limited(tenant, i, { latencyMs: i * 1_000 }));
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const failed = await stub.state();
      expect(failed.shippedSeq).toBe(5);
      expect(failed.shipFailures).toBeGreaterThan(0);
      // One transaction: the entries the batch inserted before its usage statement failed are gone with it.
      expect(await auditCount(tenant)).toBe(5);
      expect(await cursorOf(tenant)).toBe(5);
    } finally {
      await env.DB.prepare("ALTER TABLE usage_hourly_away RENAME TO usage_hourly").run();
    }
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.state()).toMatchObject({ shippedSeq: 12, shipFailures: 0 });
    const rows = await expectUsageEqualsAudit(tenant);
    expect(rows.reduce((sum: number, r) => sum + Number(r.calls), 0)).toBe(12);
    expect(rows.reduce((sum: number, r) => sum + Number(r.limited), 0)).toBe(7);
    expect(await cursorOf(tenant)).toBe(12);
  });

  it("starts counting where the cursor is for a chain shipped before usage existed", async () => {
    const tenant = (await seedTenant()).tenant;
    const stub = auditLog(tenant);
    for (let i = 0; i < 4; i++) await stub.append(auditFields(tenant, i));
    await stub.flush();
    // As if seq 1…4 had been shipped before metering: no usage, no cursor.
    await env.DB.prepare("DELETE FROM usage_hourly WHERE tenant_id = ?").bind(tenant).run();
    await env.DB.prepare("DELETE FROM usage_cursor WHERE tenant_id = ?").bind(tenant).run();
    for (let i = 4; i < 7; i++) await stub.append(auditFields(tenant, i));
    await stub.flush();
    expect((await usageRows(tenant)).reduce((sum: number, r) => sum + Number(r.calls), 0)).toBe(3);
    expect(await cursorOf(tenant)).toBe(7);
  });
});

describe("the sizes an entry records", () => {
  it("requestBytes and responseBytes are the UTF-8 lengths of the JSON the agent sent and received", async () => {
    const t = await mixedTenant();
    const params = { name: "crm__echo", arguments: { text: "héllo € 😀", n: [1, 2.5, null] } };
    const ok = await mcpAnswer(rpcRequest("tools/call", params), t.apiKey);
    const deniedParams = { name: "crm__drop_table", arguments: { table: "customers" } };
    const denied = await mcpAnswer(rpcRequest("tools/call", deniedParams), t.apiKey);
    const unknownParams = { name: "nope__nothing" };
    const unknown = await mcpAnswer(rpcRequest("tools/call", unknownParams), t.apiKey);
    const failParams = { name: "crm__echo", arguments: { mode: "fail" } };
    const failed = await mcpAnswer(rpcRequest("tools/call", failParams), t.apiKey);
    await env.DB.prepare("UPDATE api_keys SET revoked_at = 1 WHERE tenant_id = ? AND id = 'key-2'").bind(t.tenant).run();
    await mcpPost(toolCall("crm__echo"), t.agent2);

    const entries = await shippedEntries(t.tenant);
    expect(entries.map((e) => [e.status, e.requestBytes, e.responseBytes])).toEqual([
      ["ok", bytes(JSON.stringify(params)), bytes(JSON.stringify(ok.result))],
      ["denied", bytes(JSON.stringify(deniedParams)), bytes(JSON.stringify(denied.error))],
      ["unknown", bytes(JSON.stringify(unknownParams)), bytes(JSON.stringify(unknown.error))],
      ["error", bytes(JSON.stringify(failParams)), bytes(JSON.stringify(failed.error))],
      // A refused key: its body is never read and it gets no JSON-RPC answer of the handler's.
      ["unauthenticated", 0, 0],
    ]);
    expect(entries[0]!.requestBytes).toBeGreaterThan(JSON.stringify(params).length);
  });
});
