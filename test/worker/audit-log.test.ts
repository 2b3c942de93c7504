/**
 * The audit chain as the Worker writes it, inside workerd with the real AuditLog Durable Object and local D1: what
 * each kind of call leaves, the ordering guarantee (stored before the agent is answered), one linear chain under
 * concurrency, eviction mid-stream, shipping retried after a D1 failure, redacted values never stored, the closed
 * and open failure modes, checkpoints, and retention.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyChain } from "../../src/audit/verify.ts";
import { verifyStoredChain } from "../../src/audit/store.ts";
import { rowToEntry, type AuditEntryRow } from "../../src/audit/rows.ts";
import type { AuditEntry } from "../../src/audit/entry.ts";
import { generateCheckpointKeys, signCheckpoint, verifyCheckpoint, type AuditCheckpoint } from "../../src/audit/checkpoint.ts";
import { digestJson } from "../../src/audit/chain.ts";
import type { AuditLogDurableObject } from "../../src/audit/durable-object.ts";
import { ALLOW_ALL, adminCall, auditFields, PLATFORM_TOKEN, answerEveryRpc, echoServer, FakeConnector, mcpAnswer, mcpPost, rpcMessages, rpcRequest, seedTenant } from "./fixtures.ts";

const SSN = "123-45-6789";
const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";

const auditLog = (tenant: string) => env.AUDIT_LOG.getByName(tenant);

/** The entries the object still holds (not yet shipped), as stored. */
async function unshippedEntries(tenant: string): Promise<AuditEntry[]> {
  return runInDurableObject(auditLog(tenant), (_instance: AuditLogDurableObject, state) =>
    state.storage.sql
      .exec<{ json: string }>("SELECT json FROM entries ORDER BY seq")
      .toArray()
      .map((row) => JSON.parse(row.json) as AuditEntry),
  );
}

/** Every entry of the tenant in D1 after shipping everything, in seq order. */
async function shippedEntries(tenant: string): Promise<AuditEntry[]> {
  await auditLog(tenant).flush();
  const { results } = await env.DB.prepare(
    "SELECT tenant_id AS tenantId, seq, timestamp, consumer, key_id AS keyId, client_ip AS clientIp, request_id AS requestId, session_id AS sessionId, server, method, tool, arguments, result, result_digest AS resultDigest, status, error_code AS errorCode, error_message AS errorMessage, latency_ms AS latencyMs, rule_id AS ruleId, request_bytes AS requestBytes, response_bytes AS responseBytes, prev_hash AS prevHash, hash FROM audit_entries WHERE tenant_id = ? ORDER BY seq",
  )
    .bind(tenant)
    .all<AuditEntryRow>();
  return results.map((row) => rowToEntry(row));
}

async function connected(options: Parameters<typeof seedTenant>[0] = {}) {
  const seeded = await seedTenant({ policies: ALLOW_ALL, ...options });
  const connector = await FakeConnector.connect(seeded.connectorToken);
  await connector.hello([echoServer("crm")]);
  return { ...seeded, connector };
}

/** Replaces the tenant's applied config's audit section (as an apply would), bumping its version. */
async function publishAudit(tenant: string, audit: Record<string, unknown>) {
  const row = await env.DB.prepare("SELECT config FROM tenants WHERE id = ?").bind(tenant).first<{ config: string }>();
  const config = { ...JSON.parse(row!.config), audit: { enabled: true, hashChain: true, failureMode: "closed", ...audit } };
  await env.DB.prepare("UPDATE tenants SET config = ?, config_version = config_version + 1 WHERE id = ?").bind(JSON.stringify(config), tenant).run();
}

const toolCall = (name: string, args: Record<string, unknown> = {}, id = 1) => rpcRequest("tools/call", { name, arguments: args }, id);

const fields = auditFields;

describe("every call leaves an entry", () => {
  it("records an allowed call with who, from where, what, the redacted copy, the digest and the deciding rule", async () => {
    const { tenant, apiKey, connector } = await connected();
    answerEveryRpc(connector, { content: [{ type: "text", text: "done" }] });
    const response = await mcpPost(toolCall("crm__echo", { text: "hello" }), apiKey, { "cf-connecting-ip": "203.0.113.9", "x-forwarded-for": "198.51.100.1" });
    expect((await rpcMessages(response)).at(-1)?.result.content[0].text).toBe("done");
    const [entry] = await shippedEntries(tenant);
    expect(entry).toMatchObject({
      seq: 1,
      tenant,
      consumer: "agent-1",
      keyId: "key-1",
      // Cloudflare's header; the client-written X-Forwarded-For never counts.
      clientIp: "203.0.113.9",
      requestId: response.headers.get("x-request-id"),
      server: "crm",
      method: "tools/call",
      tool: "echo",
      arguments: { text: "hello" },
      result: { content: [{ type: "text", text: "done" }] },
      resultDigest: digestJson({ content: [{ type: "text", text: "done" }] }),
      status: "ok",
      errorCode: null,
      ruleId: "allow-all.rules[0]",
    });
    expect(entry?.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("records denials with their rule, unknown tools, upstream errors, tool errors and refused keys", async () => {
    const policies = [{ id: "p", roles: ["reader"], rules: [{ server: "crm", tool: "echo", action: "allow" }, { server: "crm", tool: "drop_*", action: "deny" }] }];
    const seeded = await seedTenant({ policies });
    const connector = await FakeConnector.connect(seeded.connectorToken);
    const crm = echoServer("crm");
    crm.catalog.tools.push({ name: "drop_table", inputSchema: { type: "object" } });
    await connector.hello([crm]);
    const { tenant, apiKey } = seeded;
    connector.socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data as string);
      if (frame.type !== "rpc") return;
      const text = frame.request.params.arguments.mode;
      if (text === "fail") connector.send({ type: "result", callId: frame.callId, error: { code: -32000, message: "database down" } });
      else connector.send({ type: "result", callId: frame.callId, result: { content: [{ type: "text", text: "nope" }], isError: true } });
    });
    expect((await mcpAnswer(toolCall("crm__drop_table"), apiKey)).error.code).toBe(-32003);
    expect((await mcpAnswer(toolCall("crm__nothing_here"), apiKey)).error.code).toBe(-32602);
    expect((await mcpAnswer(toolCall("crm__echo", { mode: "fail" }), apiKey)).error.message).toBe("database down");
    expect((await mcpAnswer(toolCall("crm__echo", { mode: "tool-error" }), apiKey)).result.isError).toBe(true);
    // The key is revoked: the refusal names the tenant, so the attempt is the tenant's to see.
    await env.DB.prepare("UPDATE api_keys SET revoked_at = 1 WHERE tenant_id = ?").bind(tenant).run();
    expect((await mcpPost(toolCall("crm__echo"), apiKey)).status).toBe(401);

    const entries = await shippedEntries(tenant);
    expect(entries.map((e) => [e.status, e.server, e.tool, e.errorCode, e.ruleId])).toEqual([
      ["denied", "crm", "drop_table", -32003, "p.rules[1]"],
      ["unknown", null, "crm__nothing_here", -32602, null],
      ["error", "crm", "echo", -32000, "p.rules[0]"],
      ["error", "crm", "echo", null, "p.rules[0]"],
      ["unauthenticated", null, null, -32001, null],
    ]);
    expect(entries[4]).toMatchObject({ method: "authenticate", consumer: "agent-1", keyId: "key-1" });
    expect(entries[2]?.errorMessage).toBe("database down");
  });

  it("records a call through the gateway's `call` tool once, as the tool it called", async () => {
    const { tenant, apiKey, connector } = await connected();
    answerEveryRpc(connector, { content: [{ type: "text", text: "via call" }] });
    const answer = await mcpAnswer(toolCall("call", { tool: "crm__echo", arguments: { x: 1 } }), apiKey);
    expect(answer.result.content[0].text).toBe("via call");
    expect((await mcpAnswer(toolCall("list_servers"), apiKey)).result).toBeDefined();
    const entries = await shippedEntries(tenant);
    expect(entries.map((e) => [e.server, e.tool, e.arguments])).toEqual([
      ["crm", "echo", { x: 1 }],
      ["gateway", "list_servers", {}],
    ]);
  });

  it("stores the entry before the agent gets its answer", async () => {
    const { tenant, apiKey, connector } = await connected();
    answerEveryRpc(connector);
    for (let i = 1; i <= 3; i++) {
      await mcpAnswer(toolCall("crm__echo", { i }), apiKey);
      // No flush: the object itself already holds it.
      expect((await auditLog(tenant).state()).head.seq).toBe(i);
    }
  });

  it("keeps lists out of the chain: they are reads of the catalog, not calls", async () => {
    const { tenant, apiKey } = await connected();
    await mcpAnswer(rpcRequest("tools/list"), apiKey);
    expect((await auditLog(tenant).state()).head.seq).toBe(0);
  });
});

describe("one linear chain", () => {
  it("links 240 concurrent calls into seq 1…240 with nothing lost, and the D1 copy verifies", async () => {
    // More than the default 60-call burst: this test is about the chain, not the limits.
    const { tenant, apiKey, connector } = await connected({ rateLimit: { enabled: false } });
    answerEveryRpc(connector, { content: [{ type: "text", text: "ok" }] });
    const answers = await Promise.all(Array.from({ length: 240 }, (_, i) => mcpAnswer(toolCall("crm__echo", { i }, i), apiKey)));
    expect(answers.every((a) => a.result?.content[0].text === "ok")).toBe(true);
    const entries = await shippedEntries(tenant);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 240 }, (_, i) => i + 1));
    expect(new Set(entries.map((e) => (e.arguments as { i: number }).i)).size).toBe(240);
    const state = await auditLog(tenant).state();
    const verdict = await verifyChain(entries, { tenant, expectedHead: state.head });
    expect(verdict).toMatchObject({ ok: true, entries: 240 });
  }, 30_000);

  it("continues the chain without a fork after the object is evicted mid-stream", async () => {
    const tenant = (await seedTenant()).tenant;
    const stub = auditLog(tenant);
    for (let i = 0; i < 10; i++) await stub.append(fields(tenant, i));
    await evictDurableObject(stub);
    const after = auditLog(tenant);
    await Promise.all(Array.from({ length: 10 }, (_, i) => after.append(fields(tenant, 10 + i))));
    const entries = await shippedEntries(tenant);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await verifyChain(entries, { tenant, expectedHead: (await after.state()).head })).toMatchObject({ ok: true });
  });

  it("refuses an entry of another tenant and writes nothing", async () => {
    const tenant = (await seedTenant()).tenant;
    const refused = await auditLog(tenant)
      .append(fields("someone-else", 1))
      .then(
        () => undefined,
        (error: Error) => error,
      );
    expect(refused?.message).toMatch(/not "someone-else"/);
    expect((await auditLog(tenant).state()).head.seq).toBe(0);
  });
});

describe("shipping to D1", () => {
  it("keeps entries in the object while D1 fails, retries with backoff, and ships each exactly once when it is back", async () => {
    const tenant = (await seedTenant()).tenant;
    const stub = auditLog(tenant);
    for (let i = 0; i < 5; i++) await stub.append(fields(tenant, i));
    await env.DB.prepare("ALTER TABLE audit_entries RENAME TO audit_entries_away").run();
    try {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const failed = await stub.state();
      expect(failed).toMatchObject({ shippedSeq: 0, shipFailures: 1 });
      expect(await unshippedEntries(tenant)).toHaveLength(5);
      // The retry is scheduled by the object itself (the runtime's own alarm retries give up).
      expect(await runInDurableObject(stub, (_i: AuditLogDurableObject, state) => state.storage.getAlarm())).not.toBeNull();
    } finally {
      await env.DB.prepare("ALTER TABLE audit_entries_away RENAME TO audit_entries").run();
    }
    await stub.append(fields(tenant, 5));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.state()).toMatchObject({ shippedSeq: 6, shipFailures: 0 });
    expect(await unshippedEntries(tenant)).toHaveLength(0);
    // Shipping again (a retry after a success that was not recorded) changes nothing: INSERT OR IGNORE.
    await runInDurableObject(stub, (_i: AuditLogDurableObject, state) => state.storage.sql.exec("UPDATE state SET shipped_seq = 0"));
    await stub.flush();
    const entries = await shippedEntries(tenant);
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe("what the chain stores", () => {
  it("never stores a value redaction removed, in the object or in D1, while the agent gets what its rules allow", async () => {
    const redaction = { rules: [{ directions: ["audit"], detectors: ["ssn"] }] };
    const { tenant, apiKey, connector } = await connected({ redaction });
    answerEveryRpc(connector, { content: [{ type: "text", text: `patient ${SSN}, key ${AWS_KEY}` }] });
    const answer = await mcpAnswer(toolCall("crm__echo", { ssn: SSN, note: `call me about ${SSN}` }), apiKey);
    // An audit-only rule leaves the agent's answer alone; the secrets floor applies to the audit copy only.
    expect(answer.result.content[0].text).toBe(`patient ${SSN}, key ${AWS_KEY}`);
    const held = JSON.stringify(await unshippedEntries(tenant));
    expect(held).toContain("REDACTED");
    expect(held).not.toContain(SSN);
    expect(held).not.toContain(AWS_KEY);
    const stored = JSON.stringify(await shippedEntries(tenant));
    expect(stored).not.toContain(SSN);
    expect(stored).not.toContain(AWS_KEY);
    expect(stored).not.toContain("123456789");
  });

  it("stores the arguments at most as the upstream got them: a request-only rule holds for the audit copy too", async () => {
    const { tenant, apiKey, connector } = await connected({ redaction: { rules: [{ directions: ["request"], detectors: ["ssn"] }] } });
    answerEveryRpc(connector);
    await mcpAnswer(toolCall("crm__echo", { note: `ssn ${SSN}` }), apiKey);
    const [entry] = await shippedEntries(tenant);
    expect(entry?.arguments).toEqual({ note: "ssn [REDACTED:ssn]" });
  });

  it("stores a long result truncated, with the digest of the whole", async () => {
    const { tenant, apiKey, connector } = await connected();
    const long = { content: [{ type: "text", text: "x".repeat(50_000) }] };
    answerEveryRpc(connector, long);
    await mcpAnswer(toolCall("crm__echo"), apiKey);
    const [entry] = await shippedEntries(tenant);
    expect(entry?.result).toMatchObject({ truncated: true, chars: JSON.stringify(long).length });
    expect(JSON.stringify(entry?.result).length).toBeLessThan(20_000);
    expect(entry?.resultDigest).toBe(digestJson(long));
  });

  it("keeps every entry small whatever the agent sends: a 3 MiB tool name, 1 MiB of arguments, a long session id", async () => {
    const { tenant, apiKey, connector } = await connected();
    answerEveryRpc(connector);
    const name = `crm__${"e".repeat(3 * 1024 * 1024)}`;
    const unknown = await mcpAnswer(toolCall(name), apiKey, { "mcp-session-id": "s".repeat(20_000) });
    expect(unknown.error.code).toBe(-32602);
    const args = { text: "a".repeat(1024 * 1024) };
    expect((await mcpAnswer(toolCall("crm__echo", args), apiKey)).result).toBeDefined();
    // Also in the object's own SQLite, before shipping.
    for (const entry of await unshippedEntries(tenant)) expect(JSON.stringify(entry).length).toBeLessThan(64 * 1024);
    const entries = await shippedEntries(tenant);
    expect(entries).toHaveLength(2);
    for (const entry of entries) expect(JSON.stringify(entry).length).toBeLessThan(64 * 1024);
    const [named, argued] = entries;
    expect(named).toMatchObject({ status: "unknown", tool: expect.stringMatching(/^crm__e+…$/) });
    expect(named?.tool).toHaveLength(1024);
    expect(named?.sessionId).toHaveLength(1024);
    expect(argued?.arguments).toMatchObject({ truncated: true, chars: JSON.stringify(args).length, sha256: digestJson(args) });
    const { results } = await env.DB.prepare("SELECT max(length(tool)) AS tool, max(length(session_id)) AS session, max(length(arguments)) AS args FROM audit_entries WHERE tenant_id = ?")
      .bind(tenant)
      .all<{ tool: number; session: number; args: number }>();
    expect(results[0]!.tool).toBeLessThanOrEqual(1024);
    expect(results[0]!.session).toBeLessThanOrEqual(1024);
    expect(results[0]!.args).toBeLessThan(64 * 1024);
    expect(await verifyStoredChain(env, tenant)).toMatchObject({ ok: true, entries: 2 });
  });
});

describe("when the entry cannot be written", () => {
  /** Puts a row where the next entry must go: the append's insert fails and its transaction rolls back. */
  async function breakChain(tenant: string) {
    await runInDurableObject(auditLog(tenant), (_i: AuditLogDurableObject, state) => {
      const { seq } = state.storage.sql.exec<{ seq: number }>("SELECT seq FROM state").one();
      state.storage.sql.exec("INSERT INTO entries (seq, json) VALUES (?, '{}')", seq + 1);
    });
  }

  it("withholds the result in closed mode (the default) with a clear, stable error", async () => {
    const { tenant, apiKey, connector } = await connected();
    answerEveryRpc(connector, { content: [{ type: "text", text: "secret result" }] });
    await breakChain(tenant);
    const answer = await mcpAnswer(toolCall("crm__echo"), apiKey);
    expect(answer.error.code).toBe(-32005);
    expect(answer.error.message).toMatch(/could not be recorded in the audit log/);
    expect(JSON.stringify(answer)).not.toContain("secret result");
    expect((await auditLog(tenant).state()).head.seq).toBe(0);
  });

  it("lets the call through in open mode", async () => {
    const seeded = await seedTenant({ policies: ALLOW_ALL });
    await publishAudit(seeded.tenant, { failureMode: "open" });
    const connector = await FakeConnector.connect(seeded.connectorToken);
    await connector.hello([echoServer("crm")]);
    answerEveryRpc(connector, { content: [{ type: "text", text: "delivered" }] });
    await breakChain(seeded.tenant);
    // The config cache re-checks the version at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const answer = await mcpAnswer(toolCall("crm__echo"), seeded.apiKey);
    expect(answer.result.content[0].text).toBe("delivered");
  });
});

describe("checkpoints and retention", () => {
  it("signs the head every AUDIT_CHECKPOINT_EVERY entries and on flush, verifiable with the public key", async () => {
    const tenant = (await seedTenant()).tenant;
    const stub = auditLog(tenant);
    const every = Number(env.AUDIT_CHECKPOINT_EVERY);
    for (let i = 0; i < every + 3; i++) await stub.append(fields(tenant, i));
    const key = await stub.publicKey();
    expect(key).not.toBeNull();
    const atCount = (await stub.state()).checkpoint as AuditCheckpoint;
    expect(atCount.seq).toBe(every);
    expect(verifyCheckpoint(atCount, key!.publicKey)).toBe(true);
    const flushed = await stub.flush();
    expect(flushed.checkpoint?.seq).toBe(every + 3);
    const { results } = await env.DB.prepare("SELECT seq FROM audit_checkpoints WHERE tenant_id = ? ORDER BY seq").bind(tenant).all<{ seq: number }>();
    expect(results.map((r) => r.seq)).toEqual([every, every + 3]);
  });

  it("prunes D1 up to a checkpoint older than the retention, and what remains verifies from it", async () => {
    const seeded = await seedTenant();
    const tenant = seeded.tenant;
    await publishAudit(tenant, { retentionDays: 30 });
    const stub = auditLog(tenant);
    for (let i = 0; i < 8; i++) await stub.append(fields(tenant, i));
    await stub.flush();
    const entries = await shippedEntries(tenant);
    // A checkpoint of seq 5 signed 40 days ago, as the object would have signed it then (the test holds the key).
    const old = signCheckpoint({ tenant, seq: 5, hash: entries[4]!.hash, time: Date.now() - 40 * 86_400_000 }, env.AUDIT_SIGNING_KEY!);
    await runInDurableObject(stub, (_i: AuditLogDurableObject, state) => {
      state.storage.sql.exec("INSERT INTO checkpoints (seq, key_id, json, shipped) VALUES (?, ?, ?, 1)", old.seq, old.keyId, JSON.stringify(old));
      state.storage.sql.exec("UPDATE state SET pruned_at = 0");
    });
    await env.DB.prepare("INSERT INTO audit_checkpoints (tenant_id, seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(tenant, old.seq, old.hash, old.time, old.keyId, old.signature)
      .run();
    await stub.append(fields(tenant, 8));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const remaining = await shippedEntries(tenant);
    expect(remaining.map((e) => e.seq)).toEqual([6, 7, 8, 9]);
    const { results } = await env.DB.prepare("SELECT tenant_id AS tenant, seq, hash, time, key_id AS keyId, signature FROM audit_checkpoints WHERE tenant_id = ? ORDER BY seq").bind(tenant).all<AuditCheckpoint>();
    expect(results[0]?.seq).toBe(5);
    const key = (await stub.publicKey())!.publicKey;
    const verdict = await verifyChain(remaining, { tenant, publicKeys: key, checkpoints: results, start: { seq: 5, hash: old.hash }, expectedHead: (await stub.state()).head });
    expect(verdict).toMatchObject({ ok: true, entries: 4 });
  });
});

describe("deletions that look like retention", () => {
  it("are caught: the D1 copy must start right after what retention pruned, even at a checkpoint", async () => {
    const tenant = (await seedTenant()).tenant;
    const stub = auditLog(tenant);
    for (let i = 0; i < 30; i++) await stub.append(fields(tenant, i));
    await stub.flush();
    expect(await verifyStoredChain(env, tenant)).toMatchObject({ ok: true, entries: 30 });
    // seq 25 has a checkpoint (every 25 in the worker tests): deleting 1…25 leaves a copy that is anchored.
    await env.DB.prepare("DELETE FROM audit_entries WHERE tenant_id = ? AND seq <= 25").bind(tenant).run();
    expect(await verifyStoredChain(env, tenant)).toMatchObject({ ok: false, failure: { seq: 1, reason: "gap" } });
  });
});

describe("after a rotation of the signing key", () => {
  it("checkpoints signed with a retired key verify once its public key is listed in AUDIT_RETIRED_PUBLIC_KEYS", async () => {
    const tenant = (await seedTenant()).tenant;
    const stub = auditLog(tenant);
    for (let i = 0; i < 5; i++) await stub.append(fields(tenant, i));
    await stub.sync();
    const [, second] = await shippedEntries(tenant);
    // A checkpoint the previous key signed before the rotation.
    const retired = generateCheckpointKeys();
    const old = signCheckpoint({ tenant, seq: 2, hash: second!.hash, time: Date.now() - 1_000 }, retired.privateKey);
    await env.DB.prepare("INSERT INTO audit_checkpoints (tenant_id, seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(tenant, old.seq, old.hash, old.time, old.keyId, old.signature)
      .run();
    expect(await verifyStoredChain(env, tenant)).toMatchObject({ ok: false, failure: { seq: 2, reason: "bad-signature" } });
    expect(await verifyStoredChain({ ...env, AUDIT_RETIRED_PUBLIC_KEYS: `not-a-key, ${retired.publicKey}` }, tenant)).toMatchObject({ ok: true, entries: 5 });
  });
});

describe("a verification the gateway cannot finish", () => {
  it("ends its stream with an error line, not a verdict, and leaks no internals", async () => {
    const tenant = (await seedTenant()).tenant;
    const stub = auditLog(tenant);
    for (let i = 0; i < 3; i++) await stub.append(fields(tenant, i));
    await env.DB.prepare("ALTER TABLE audit_entries RENAME TO audit_entries_away").run();
    let answer;
    try {
      answer = await adminCall("POST", `/admin/v1/audit/verify?tenant=${tenant}`, PLATFORM_TOKEN);
    } finally {
      await env.DB.prepare("ALTER TABLE audit_entries_away RENAME TO audit_entries").run();
    }
    expect(answer.status).toBe(200);
    const lines = answer.text.trim().split("\n").map((line) => JSON.parse(line));
    expect(lines.some((line) => line.type === "result")).toBe(false);
    expect(lines.at(-1)).toMatchObject({ type: "error", error: { code: "unavailable" } });
    expect(answer.text).not.toMatch(/audit_entries|SQLITE|no such table/i);
  });
});

describe("the gateway's audit tools", () => {
  const ADMIN_KEY = () => `gw_${crypto.randomUUID().replace(/-/g, "")}`;

  async function withAdmin() {
    const admin = ADMIN_KEY();
    const agent = ADMIN_KEY();
    const seeded = await seedTenant({ policies: ALLOW_ALL, keys: [{ id: "agent", key: agent }, { id: "boss", key: admin, roles: ["admin"] }] });
    const connector = await FakeConnector.connect(seeded.connectorToken);
    await connector.hello([echoServer("crm")]);
    answerEveryRpc(connector, { content: [{ type: "text", text: "ok" }] });
    return { ...seeded, admin, agent };
  }

  it("are listed and answered for administrators only, even where a catch-all allow covers the gateway's tools", async () => {
    const { admin, agent } = await withAdmin();
    const names = async (key: string) => ((await mcpAnswer(rpcRequest("tools/list"), key)).result.tools as { name: string }[]).map((t) => t.name);
    expect(await names(admin)).toEqual(expect.arrayContaining(["audit_log", "audit_stats", "audit_verify"]));
    expect((await names(agent)).filter((n) => n.startsWith("audit_"))).toEqual([]);
    const refused = await mcpAnswer(toolCall("audit_log"), agent);
    expect(refused.error).toMatchObject({ code: -32003, data: { ruleId: "gateway:admin-only" } });
  });

  it("read the tenant's own trail: log newest first with paging, stats, and a verification", async () => {
    const { tenant, admin, agent } = await withAdmin();
    for (let i = 0; i < 3; i++) await mcpAnswer(toolCall("crm__echo", { i }), agent);
    await mcpAnswer(toolCall("audit_log"), agent); // refused, and recorded as denied
    const page = (await mcpAnswer(toolCall("audit_log", { limit: 2, consumer: "agent-1", status: "ok" }), admin)).result.structuredContent;
    expect(page.entries.map((e: AuditEntry) => (e.arguments as { i: number }).i)).toEqual([2, 1]);
    const next = (await mcpAnswer(toolCall("audit_log", { limit: 2, consumer: "agent-1", status: "ok", cursor: page.nextCursor }), admin)).result.structuredContent;
    expect(next.entries.map((e: AuditEntry) => e.seq)).toEqual([1]);
    expect(next.nextCursor).toBeNull();
    const stats = (await mcpAnswer(toolCall("audit_stats"), admin)).result.structuredContent;
    // 3 calls, the agent's refused audit_log, and the two audit_log calls of the admin before this one.
    expect(stats).toMatchObject({ total: 6, byStatus: { ok: 5, denied: 1 } });
    const verdict = (await mcpAnswer(toolCall("audit_verify"), admin)).result.structuredContent;
    expect(verdict).toMatchObject({ ok: true, entries: 7 });
    expect((await auditLog(tenant).state()).head.seq).toBe(8);
    // A 2025-03-26 request (no protocol header): argument errors are -32602 before 2025-11-25.
    const bad = await mcpAnswer(toolCall("audit_log", { cursor: "not-a-cursor" }), admin);
    expect(bad.error).toMatchObject({ code: -32602 });
    expect(bad.error.message).toMatch(/cursor/);
  });

  it("never show another tenant's entries", async () => {
    const a = await withAdmin();
    const b = await withAdmin();
    await mcpAnswer(toolCall("crm__echo", { secret: "only-b" }), b.agent);
    const page = (await mcpAnswer(toolCall("audit_log"), a.admin)).result.structuredContent;
    expect(JSON.stringify(page)).not.toContain("only-b");
    expect(page.entries).toEqual([]);
  });
});
