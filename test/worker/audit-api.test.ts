/**
 * The admin API's audit endpoints (docs/admin-api.md) inside workerd with the real AuditLog Durable Object and local
 * D1: listing with every filter and keyset pagination, stats computed by D1 checked against the entries, the live
 * head, online verification (and tamper detection: an edit of every column of a row, deleted, reordered and forged
 * rows, a deleted tail, forged and deleted checkpoints, a pruned chain), and exports that verify offline.
 *
 * Entries are appended through the object's RPC (as the Worker does), with the chain recomputed here to know what
 * must come back; one suite makes real /mcp calls. Tampering is done with SQL on D1, a fresh tenant per case.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appendEntry, computeEntryHash, digestJson } from "../../src/audit/chain.ts";
import { generateCheckpointKeys, publicKeyFromPrivate, publicKeyId, signCheckpoint, type AuditCheckpoint } from "../../src/audit/checkpoint.ts";
import type { AuditLogDurableObject } from "../../src/audit/durable-object.ts";
import { AUDIT_STATUSES, type AuditEntry, type AuditFields, type AuditStatus } from "../../src/audit/entry.ts";
import { AUDIT_CSV_HEADER, entryToCsvRow, exportLines, verifyExport } from "../../src/audit/export-format.ts";
import { entryToRow } from "../../src/audit/rows.ts";
import { auditQuerySchema, storedCheckpoints, storedEntries, storedEntryOf } from "../../src/audit/store.ts";
import { database } from "../../src/db/client.ts";
import {
  adminCall,
  ALLOW_ALL,
  answerEveryRpc,
  BASE,
  echoServer,
  FakeConnector,
  mcpAnswer,
  PLATFORM_TOKEN,
  rpcRequest,
  seedTenant,
  seedTenantWithAdmin,
  type AdminAnswer,
} from "./fixtures.ts";

const ADMIN = "/admin/v1";
/** vitest.config.ts binds AUDIT_SIGNING_KEY to the seed bytes 1…32: its public key is docs/audit-chain.md's golden one. */
const PUBLIC_KEY = "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ";
const KEY_ID = "65b60673d6ed884b";
const EVERY = Number(env.AUDIT_CHECKPOINT_EVERY);
const T0 = Date.UTC(2026, 0, 1);
const HEX = (c: string) => c.repeat(64);
const COUNT_SMALL = 6;

const auditLog = (tenant: string) => env.AUDIT_LOG.getByName(tenant);

type Make = (tenant: string, i: number) => AuditFields;

/** Varied entries: every status, three consumers (null when unauthenticated), two servers and gateway methods. */
const varied: Make = (tenant, i) => {
  const status = AUDIT_STATUSES[i % AUDIT_STATUSES.length] as AuditStatus;
  const routes: [string | null, string | null][] = [
    ["crm", "get_customer"],
    ["crm", "update_customer"],
    ["billing", "refund"],
    [null, null],
  ];
  const [server, tool] = routes[i % routes.length] as [string | null, string | null];
  const consumer = status === "unauthenticated" ? null : (["agent-1", "agent-2", "agent-3"][i % 3] as string);
  const result = status === "ok" ? { content: [{ type: "text", text: `r${i}` }] } : null;
  return {
    timestamp: T0 + i * 1_000,
    tenant,
    consumer,
    keyId: consumer === null ? null : `key-${consumer}`,
    clientIp: "203.0.113.7",
    requestId: `req-${i}`,
    sessionId: i % 2 === 0 ? `session-${i % 4}` : null,
    server,
    method: tool === null ? "initialize" : "tools/call",
    tool,
    arguments: tool === null ? null : { id: `c-${i}`, note: "café €" },
    result,
    resultDigest: result === null ? null : digestJson(result),
    status,
    errorCode: status === "ok" ? null : -32000 - (i % 4),
    errorMessage: status === "ok" ? null : `failed ${i}`,
    latencyMs: (i * 37) % 101,
    ruleId: status === "ok" || status === "denied" ? `p.rules[${i % 3}]` : null,
    requestBytes: 30 + i,
    responseBytes: result === null ? 40 : 45,
  };
};

/** Entries with every nullable field set, so an edit of any column (to another value or to NULL) is an edit. */
const full: Make = (tenant, i) => {
  const result = { content: [{ type: "text", text: `partial ${i}` }], isError: true };
  return {
    timestamp: T0 + i * 1_000,
    tenant,
    consumer: "agent-1",
    keyId: "key-1",
    clientIp: "203.0.113.7",
    requestId: `req-${i}`,
    sessionId: "session-1",
    server: "crm",
    method: "tools/call",
    tool: "get_customer",
    arguments: { id: `c-${i}`, nested: { list: [1, 2.5, "x"] } },
    result,
    resultDigest: digestJson(result),
    status: "error",
    errorCode: -32000,
    errorMessage: "upstream failed",
    latencyMs: 40 + i,
    ruleId: "p.rules[0]",
    requestBytes: 60 + i,
    responseBytes: 70,
  };
};

interface Built {
  tenant: string;
  adminKey: string;
  consumerKey: string;
  /** The chain as it must be, computed here independently of the object (newest last). */
  entries: AuditEntry[];
}

/** A fresh tenant (admin and consumer keys) whose chain holds `count` entries, flushed to D1. */
async function build(count: number, make: Make = varied): Promise<Built> {
  const { tenant, adminKey, consumerKey } = await seedTenantWithAdmin();
  const entries = await append(tenant, count, make);
  return { tenant, adminKey, consumerKey, entries };
}

/** Appends `count` entries through the object's RPC, checks each receipt against the chain computed here, flushes. */
async function append(tenant: string, count: number, make: Make, after: AuditEntry[] = []): Promise<AuditEntry[]> {
  const stub = auditLog(tenant);
  const entries = [...after];
  for (let i = 0; i < count; i++) {
    const entry = appendEntry(entries.at(-1) ?? null, make(tenant, entries.length + 1));
    const receipt = await stub.append(make(tenant, entries.length + 1));
    expect(receipt).toEqual({ seq: entry.seq, hash: entry.hash });
    entries.push(entry);
  }
  await stub.flush();
  return entries;
}

const run = (query: string, ...values: unknown[]) => env.DB.prepare(query).bind(...values).run();

/**
 * The seqs D1 holds checkpoints of. Besides every EVERY entries and at each flush, the object signs one by alarm
 * when a while passed since the last (at its very first alarm too), so tests read where they are.
 */
async function checkpointSeqs(tenant: string): Promise<number[]> {
  const { results } = await env.DB.prepare("SELECT DISTINCT seq FROM audit_checkpoints WHERE tenant_id = ? ORDER BY seq").bind(tenant).all<{ seq: number }>();
  return results.map((r) => r.seq);
}

/** Where a read wanting to start at `fromSeq` starts: the last checkpoint at or before fromSeq − 1 (0 for none). */
async function anchorFor(tenant: string, fromSeq: number): Promise<number> {
  return Math.max(0, ...(await checkpointSeqs(tenant)).filter((seq) => seq <= fromSeq - 1));
}

/** An admin error in the documented shape. */
function expectError(answer: AdminAnswer, status: number, code: string): void {
  expect({ status: answer.status, code: answer.body?.error?.code }, answer.text).toEqual({ status, code });
  expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
}

async function listAll(t: Built, query: string, limit: number, from: string | null = null): Promise<{ pages: AuditEntry[][]; cursors: (string | null)[] }> {
  const pages: AuditEntry[][] = [];
  const cursors: (string | null)[] = [];
  let cursor: string | null = from;
  do {
    const answer = await adminCall("GET", `${ADMIN}/audit/entries?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, t.adminKey);
    expect(answer.status, answer.text).toBe(200);
    pages.push(answer.body.entries);
    cursor = answer.body.nextCursor;
    cursors.push(cursor);
    expect(pages.length).toBeLessThan(200);
  } while (cursor !== null);
  return { pages, cursors };
}

/**
 * A streamed admin answer (verify, export), its body read as bytes and decoded as UTF-8 (workerd warns when
 * .text() reads a type it does not know as text).
 */
async function adminStream(method: string, path: string, credential: string, body?: unknown): Promise<AdminAnswer> {
  const response = await exports.default.fetch(
    new Request(`${BASE}${path}`, {
      method,
      headers: { authorization: `Bearer ${credential}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  );
  const text = new TextDecoder().decode(await response.arrayBuffer());
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // a stream of lines
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

const newestFirst = (entries: AuditEntry[]) => [...entries].reverse();

describe("GET /audit/entries", () => {
  const count = 40;
  let built: Promise<Built> | undefined;
  const data = () => (built ??= build(count));

  it("lists every entry newest first, exactly as the chain holds it", async () => {
    const t = await data();
    const answer = await adminCall("GET", `${ADMIN}/audit/entries?limit=500`, t.adminKey);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ entries: newestFirst(t.entries), nextCursor: null });
    // The default page is 50.
    const defaults = await adminCall("GET", `${ADMIN}/audit/entries`, t.adminKey);
    expect(defaults.body.entries).toHaveLength(40);
  });

  it.each([
    { label: "consumer", query: "consumer=agent-2", match: (e: AuditEntry) => e.consumer === "agent-2" },
    { label: "server", query: "server=billing", match: (e: AuditEntry) => e.server === "billing" },
    { label: "tool", query: "tool=update_customer", match: (e: AuditEntry) => e.tool === "update_customer" },
    { label: "status", query: "status=denied", match: (e: AuditEntry) => e.status === "denied" },
    { label: "status unauthenticated", query: "status=unauthenticated", match: (e: AuditEntry) => e.status === "unauthenticated" },
    { label: "server and tool", query: "server=crm&tool=get_customer", match: (e: AuditEntry) => e.server === "crm" && e.tool === "get_customer" },
    {
      label: "consumer, status and time",
      query: `consumer=agent-1&status=ok&from=${T0 + 5_000}&to=${new Date(T0 + 30_000).toISOString()}`,
      match: (e: AuditEntry) => e.consumer === "agent-1" && e.status === "ok" && e.timestamp >= T0 + 5_000 && e.timestamp < T0 + 30_000,
    },
  ])("the $label filter narrows to exactly the matching entries", async ({ query, match }) => {
    const t = await data();
    const expected = newestFirst(t.entries.filter(match));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(count);
    const answer = await adminCall("GET", `${ADMIN}/audit/entries?limit=500&${query}`, t.adminKey);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.entries.map((e: AuditEntry) => e.seq)).toEqual(expected.map((e) => e.seq));
  });

  it.each([
    { label: "epoch milliseconds", from: String(T0 + 10_000), to: String(T0 + 20_000) },
    { label: "ISO 8601 in UTC", from: new Date(T0 + 10_000).toISOString(), to: new Date(T0 + 20_000).toISOString() },
    { label: "ISO 8601 with an offset", from: "2026-01-01T01:00:10+01:00", to: "2026-01-01T00:00:20Z" },
  ])("a time range in $label: from inclusive, to exclusive", async ({ from, to }) => {
    const t = await data();
    const answer = await adminCall("GET", `${ADMIN}/audit/entries?limit=500&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, t.adminKey);
    expect(answer.status, answer.text).toBe(200);
    // Entry seq s has timestamp T0 + s·1000: seqs 10…19.
    expect(answer.body.entries.map((e: AuditEntry) => e.seq)).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10]);
  });

  it("a bare date is UTC midnight; values that match nothing answer an empty page", async () => {
    const t = await data();
    expect((await adminCall("GET", `${ADMIN}/audit/entries?from=2026-01-02`, t.adminKey)).body).toEqual({ entries: [], nextCursor: null });
    expect((await adminCall("GET", `${ADMIN}/audit/entries?to=2026-01-02`, t.adminKey)).body.entries).toHaveLength(count);
    expect((await adminCall("GET", `${ADMIN}/audit/entries?consumer=nobody`, t.adminKey)).body).toEqual({ entries: [], nextCursor: null });
    expect((await adminCall("GET", `${ADMIN}/audit/entries?from=${T0 + 20_000}&to=${T0 + 10_000}`, t.adminKey)).body.entries).toEqual([]);
  });

  it.each([1, 7, 13, 40, 500])("pages of %i visit every entry exactly once, newest first", async (limit) => {
    const t = await data();
    const { pages, cursors } = await listAll(t, "", limit);
    expect(pages.flat()).toEqual(newestFirst(t.entries));
    expect(pages.slice(0, -1).every((page) => page.length === limit)).toBe(true);
    expect(pages.length).toBe(Math.max(1, Math.ceil(count / limit)));
    expect(cursors.at(-1)).toBeNull();
  });

  it("pages a filtered listing, and entries appended meanwhile never shift a page", async () => {
    const t = await build(30);
    const first = await adminCall("GET", `${ADMIN}/audit/entries?limit=4&server=crm`, t.adminKey);
    // New entries land on top; the cursor continues below the page it came from.
    const entries = await append(t.tenant, 10, varied, t.entries);
    const rest = await listAll(t, "&server=crm", 4, first.body.nextCursor);
    const seen = [...first.body.entries, ...rest.pages.flat()].map((e: AuditEntry) => e.seq);
    expect(seen).toEqual(
      newestFirst(entries.filter((e) => e.server === "crm" && e.seq <= 30)).map((e) => e.seq),
    );
  });

  it.each([
    ["a cursor that is not base64url", "cursor=%25%25%25"],
    ["a cursor that is not JSON", `cursor=${btoa("seq").replace(/=+$/, "")}`],
    ["a cursor with another shape", `cursor=${btoa(JSON.stringify({ seq: 0 })).replace(/=+$/, "")}`],
    ["a cursor with extra keys", `cursor=${btoa(JSON.stringify({ seq: 3, x: 1 })).replace(/=+$/, "")}`],
    ["an overlong cursor", `cursor=${"A".repeat(200)}`],
    ["limit 0", "limit=0"],
    ["limit 501", "limit=501"],
    ["a limit that is not a number", "limit=ten"],
    ["a fractional limit", "limit=2.5"],
    ["an unknown status", "status=bogus"],
    ["a time that is not ISO 8601", "from=yesterday"],
    ["a date that does not exist", "from=2026-02-30"],
    ["a time without a zone", "to=2026-01-01T00:00:00"],
    ["an empty filter", "consumer="],
    ["an overlong filter", `tool=${"x".repeat(1025)}`],
    ["a repeated filter", "status=ok&status=error"],
    ["an unknown parameter", "consumr=agent-1"],
  ])("%s is 400 bad_request", async (_label, query) => {
    const t = await data();
    expectError(await adminCall("GET", `${ADMIN}/audit/entries?${query}`, t.adminKey), 400, "bad_request");
  });

  it("shows each tenant only its own entries", async () => {
    const a = await data();
    const b = await build(5);
    const mine = await adminCall("GET", `${ADMIN}/audit/entries?limit=500`, a.adminKey);
    expect(mine.body.entries.every((e: AuditEntry) => e.tenant === a.tenant)).toBe(true);
    expect(mine.body.entries).toHaveLength(count);
    const theirs = await adminCall("GET", `${ADMIN}/audit/entries?limit=500`, b.adminKey);
    expect(theirs.body.entries).toEqual(newestFirst(b.entries));
    // A's cursor does not reach into B: the seq is a position within the caller's own tenant.
    const page = await adminCall("GET", `${ADMIN}/audit/entries?limit=1`, b.adminKey);
    const next = await adminCall("GET", `${ADMIN}/audit/entries?limit=500&cursor=${page.body.nextCursor}`, a.adminKey);
    expect(next.body.entries.every((e: AuditEntry) => e.tenant === a.tenant)).toBe(true);
    for (const path of ["entries", "stats", "head", "export"]) {
      expectError(await adminCall("GET", `${ADMIN}/audit/${path}?tenant=${b.tenant}`, a.adminKey), 403, "forbidden");
    }
    expectError(await adminCall("POST", `${ADMIN}/audit/verify?tenant=${b.tenant}`, a.adminKey), 403, "forbidden");
    // The platform token names the tenant, and must.
    const platform = await adminCall("GET", `${ADMIN}/audit/entries?limit=500&tenant=${b.tenant}`, PLATFORM_TOKEN);
    expect(platform.body.entries).toEqual(newestFirst(b.entries));
    expectError(await adminCall("GET", `${ADMIN}/audit/entries`, PLATFORM_TOKEN), 400, "bad_request");
  });
});

describe("who may call the audit endpoints", () => {
  const endpoints = [
    ["GET", "/audit/entries"],
    ["GET", "/audit/stats"],
    ["GET", "/audit/head"],
    ["POST", "/audit/verify"],
    ["GET", "/audit/export"],
  ] as const;

  it.each(endpoints)("%s %s is 401 without a credential and 403 with a consumer key", async (method, path) => {
    const t = await build(1);
    expectError(await adminCall(method, `${ADMIN}${path}`, undefined), 401, "unauthenticated");
    expectError(await adminCall(method, `${ADMIN}${path}`, t.consumerKey), 403, "forbidden");
    expectError(await adminCall(method, `${ADMIN}${path}`, PLATFORM_TOKEN), 400, "bad_request");
  });

  it("lists the five operations in the OpenAPI document with the bearer scheme", async () => {
    const doc = (await adminCall("GET", "/openapi.json", undefined)).body;
    for (const [method, path] of endpoints) {
      const operation = doc.paths[`${ADMIN}${path}`]?.[method.toLowerCase()];
      expect(operation, `${method} ${path}`).toBeDefined();
      expect(operation.security).toEqual([{ bearer: [] }]);
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "403"]));
    }
    const params = doc.paths[`${ADMIN}/audit/entries`].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(expect.arrayContaining(["tenant", "consumer", "server", "tool", "status", "from", "to", "limit", "cursor"]));
    expect(Object.keys(doc.paths[`${ADMIN}/audit/export`].get.responses["200"].content)).toEqual(["application/x-ndjson", "text/csv"]);
  });
});

/** Nearest-rank percentile of a sorted list. */
const nearestRank = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil((p * sorted.length) / 100) - 1)] as number;

/** Counts of `key` over entries, as [key, count] sorted by count desc then key (null first), like the API. */
function countBy<K>(entries: AuditEntry[], key: (e: AuditEntry) => K): [K, number][] {
  const counts = new Map<string, [K, number]>();
  for (const e of entries) {
    const k = key(e);
    const id = JSON.stringify(k);
    counts.set(id, [k, (counts.get(id)?.[1] ?? 0) + 1]);
  }
  return [...counts.values()];
}

function sortCounted<T extends { count: number }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => b.count - a.count || JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Stats of entries computed here, independently of D1. */
function expectedStats(entries: AuditEntry[]) {
  const latencies = entries.map((e) => e.latencyMs).sort((a, b) => a - b);
  return {
    total: entries.length,
    byStatus: Object.fromEntries(AUDIT_STATUSES.map((s) => [s, entries.filter((e) => e.status === s).length])),
    byServer: sortCounted(countBy(entries, (e) => e.server).map(([server, count]) => ({ server, count }))),
    byTool: sortCounted(countBy(entries, (e) => [e.server, e.tool] as const).map(([[server, tool], count]) => ({ server, tool, count }))),
    byConsumer: sortCounted(countBy(entries, (e) => e.consumer).map(([consumer, count]) => ({ consumer, count }))),
    latencyMs: entries.length === 0 ? null : { p50: nearestRank(latencies, 50), p95: nearestRank(latencies, 95), p99: nearestRank(latencies, 99), max: latencies.at(-1) },
  };
}

describe("GET /audit/stats", () => {
  it.each([
    ["no filter", "", (_e: AuditEntry) => true],
    ["a consumer", "consumer=agent-1", (e: AuditEntry) => e.consumer === "agent-1"],
    ["a server and a time range", `server=crm&from=${T0 + 7_000}&to=${T0 + 33_000}`, (e: AuditEntry) => e.server === "crm" && e.timestamp >= T0 + 7_000 && e.timestamp < T0 + 33_000],
    ["a status", "status=error", (e: AuditEntry) => e.status === "error"],
  ])("with %s, equal what the entries say", async (_label, query, match) => {
    const t = await build(45);
    const answer = await adminCall("GET", `${ADMIN}/audit/stats?${query}`, t.adminKey);
    expect(answer.status, answer.text).toBe(200);
    const stats = answer.body;
    const expected = expectedStats(t.entries.filter(match));
    expect({ ...stats, byServer: sortCounted(stats.byServer), byTool: sortCounted(stats.byTool), byConsumer: sortCounted(stats.byConsumer) }).toEqual(expected);
    // Lists come by count, descending.
    for (const list of [stats.byServer, stats.byTool, stats.byConsumer]) {
      expect(list.map((r: { count: number }) => r.count)).toEqual([...list.map((r: { count: number }) => r.count)].sort((a, b) => b - a));
    }
    // The listing agrees.
    const listed = await adminCall("GET", `${ADMIN}/audit/entries?limit=500&${query}`, t.adminKey);
    expect(listed.body.entries).toHaveLength(stats.total);
  });

  it("computes nearest-rank percentiles on a known latency set", async () => {
    // Latencies 1…200 in a shuffled order: p50 = 100, p95 = 190, p99 = 198, max = 200.
    const order = Array.from({ length: 200 }, (_, i) => ((i * 73) % 200) + 1);
    const t = await build(200, (tenant, i) => ({ ...varied(tenant, i), latencyMs: order[i - 1] as number }));
    expect((await adminCall("GET", `${ADMIN}/audit/stats`, t.adminKey)).body.latencyMs).toEqual({ p50: 100, p95: 190, p99: 198, max: 200 });
    // Three entries, 5, 9 and 1000 ms: p50 is the 2nd (9), p95 and p99 the 3rd.
    const u = await build(3, (tenant, i) => ({ ...varied(tenant, i), latencyMs: [1000, 5, 9][i - 1] as number }));
    expect((await adminCall("GET", `${ADMIN}/audit/stats`, u.adminKey)).body.latencyMs).toEqual({ p50: 9, p95: 1000, p99: 1000, max: 1000 });
  });

  it("has every status key, 0 when none, and no latency when nothing matches", async () => {
    const t = await build(3);
    expect((await adminCall("GET", `${ADMIN}/audit/stats?consumer=nobody`, t.adminKey)).body).toEqual({
      total: 0,
      byStatus: { ok: 0, error: 0, denied: 0, limited: 0, unknown: 0, unauthenticated: 0 },
      byServer: [],
      byTool: [],
      byConsumer: [],
      latencyMs: null,
    });
  });

  it("keeps at most 100 per list", async () => {
    const t = await build(120, (tenant, i) => ({ ...varied(tenant, i), consumer: `agent-${i}`, tool: `tool-${i}` }));
    const stats = (await adminCall("GET", `${ADMIN}/audit/stats`, t.adminKey)).body;
    expect(stats.total).toBe(120);
    expect(stats.byConsumer).toHaveLength(100);
    expect(stats.byTool).toHaveLength(100);
  });

  it.each(["limit=5", "cursor=abc", "status=nope", "from=soon", "bogus=1"])("refuses %s with 400", async (query) => {
    const t = await build(1);
    expectError(await adminCall("GET", `${ADMIN}/audit/stats?${query}`, t.adminKey), 400, "bad_request");
  });
});

describe("GET /audit/head", () => {
  it("is the object's live head, what D1 has, the latest checkpoint and the key that verifies it", async () => {
    const t = await build(EVERY + 2);
    const head = await adminCall("GET", `${ADMIN}/audit/head`, t.adminKey);
    expect(head.status).toBe(200);
    const last = t.entries.at(-1) as AuditEntry;
    expect(head.body).toMatchObject({
      tenant: t.tenant,
      head: { seq: last.seq, hash: last.hash },
      shippedSeq: last.seq,
      failureMode: "closed",
      publicKey: PUBLIC_KEY,
      keyId: KEY_ID,
      checkpoint: { tenant: t.tenant, seq: last.seq, hash: last.hash, keyId: KEY_ID },
    });
    expect(publicKeyFromPrivate(env.AUDIT_SIGNING_KEY as string)).toBe(PUBLIC_KEY);
    // A new entry not yet shipped shows as head ahead of shippedSeq.
    await auditLog(t.tenant).append(varied(t.tenant, 99));
    const after = (await adminCall("GET", `${ADMIN}/audit/head`, t.adminKey)).body;
    expect(after.head.seq).toBe(last.seq + 1);
    expect(after.shippedSeq).toBeLessThanOrEqual(last.seq + 1);
  });

  it("is the genesis for a tenant without entries", async () => {
    const t = await build(0);
    expect((await adminCall("GET", `${ADMIN}/audit/head`, t.adminKey)).body).toEqual({
      tenant: t.tenant,
      head: { seq: 0, hash: HEX("0") },
      shippedSeq: 0,
      failureMode: "closed",
      checkpoint: null,
      publicKey: PUBLIC_KEY,
      keyId: KEY_ID,
    });
  });
});

interface VerifyAnswer {
  lines: Record<string, any>[];
  progress: { verified: number; total: number }[];
  result: Record<string, any>;
}

async function verify(t: Built, body?: unknown): Promise<VerifyAnswer> {
  const answer = await adminStream("POST", `${ADMIN}/audit/verify`, t.adminKey, body);
  expect(answer.status, answer.text).toBe(200);
  expect(answer.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
  expect(answer.text.endsWith("\n")).toBe(true);
  const lines = answer.text
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line));
  const result = lines.at(-1) as Record<string, any>;
  expect(result.type).toBe("result");
  expect(lines.slice(0, -1).every((line) => line.type === "progress")).toBe(true);
  return { lines, progress: lines.slice(0, -1).map(({ verified, total }) => ({ verified, total })), result };
}

/** Asserts verification failed at `seq` for one of `reasons`. */
async function expectFailure(t: Built, seq: number, reasons: string[]): Promise<Record<string, any>> {
  const { result } = await verify(t);
  expect(result.ok, JSON.stringify(result)).toBe(false);
  expect(result.failure.seq, JSON.stringify(result.failure)).toBe(seq);
  expect(reasons, JSON.stringify(result.failure)).toContain(result.failure.reason);
  expect(typeof result.failure.message).toBe("string");
  return result;
}

/** A stored row, as an entry, read straight from D1. */
async function storedRow(tenant: string, seq: number): Promise<AuditEntry> {
  for await (const item of storedEntries(database(env.DB), tenant, seq, seq)) return storedEntryOf(item);
  throw new Error(`no row ${seq}`);
}

/** Writes `entry` over the stored row of its seq (every column). */
async function overwrite(entry: AuditEntry): Promise<void> {
  const row = entryToRow(entry);
  await run(
    "UPDATE audit_entries SET timestamp = ?, consumer = ?, key_id = ?, client_ip = ?, request_id = ?, session_id = ?, server = ?, method = ?, tool = ?, arguments = ?, result = ?, result_digest = ?, status = ?, error_code = ?, error_message = ?, latency_ms = ?, rule_id = ?, request_bytes = ?, response_bytes = ?, prev_hash = ?, hash = ? WHERE tenant_id = ? AND seq = ?",
    row.timestamp, row.consumer, row.keyId, row.clientIp, row.requestId, row.sessionId, row.server, row.method, row.tool, row.arguments, row.result,
    row.resultDigest, row.status, row.errorCode, row.errorMessage, row.latencyMs, row.ruleId, row.requestBytes, row.responseBytes, row.prevHash, row.hash, row.tenantId, row.seq,
  );
}

async function insertRow(entry: AuditEntry): Promise<void> {
  const row = entryToRow(entry);
  const columns = "tenant_id, seq, timestamp, consumer, key_id, client_ip, request_id, session_id, server, method, tool, arguments, result, result_digest, status, error_code, error_message, latency_ms, rule_id, request_bytes, response_bytes, prev_hash, hash";
  await run(
    `INSERT INTO audit_entries (${columns}) VALUES (${columns.split(",").map(() => "?").join(", ")})`,
    row.tenantId, row.seq, row.timestamp, row.consumer, row.keyId, row.clientIp, row.requestId, row.sessionId, row.server, row.method, row.tool,
    row.arguments, row.result, row.resultDigest, row.status, row.errorCode, row.errorMessage, row.latencyMs, row.ruleId, row.requestBytes, row.responseBytes,
    row.prevHash, row.hash,
  );
}

describe("POST /audit/verify", () => {
  it("verifies an intact chain: progress lines, then the result with every entry and checkpoint", async () => {
    const t = await build(2 * EVERY + 10);
    const last = t.entries.at(-1) as AuditEntry;
    const { progress, result } = await verify(t);
    expect(progress[0]).toEqual({ verified: 0, total: last.seq });
    expect(progress.at(-1)).toEqual({ verified: last.seq, total: last.seq });
    const checkpoints = await checkpointSeqs(t.tenant);
    // At most EVERY entries apart, and the head (signed by the flush).
    expect(checkpoints.at(-1)).toBe(last.seq);
    expect(checkpoints.every((seq, i) => seq - (checkpoints[i - 1] ?? 0) <= EVERY)).toBe(true);
    expect(result).toEqual({
      type: "result",
      ok: true,
      entries: last.seq,
      checkpoints: checkpoints.length,
      firstSeq: 1,
      head: { seq: last.seq, hash: last.hash },
      lastCheckpoint: { seq: last.seq, hash: last.hash },
      uncheckpointed: 0,
    });
  });

  it("verifies an empty chain", async () => {
    const t = await build(0);
    expect((await verify(t)).result).toMatchObject({ ok: true, entries: 0, firstSeq: null, head: { seq: 0, hash: HEX("0") } });
  });

  it("ships what D1 does not have yet before verifying", async () => {
    const t = await build(3);
    const stub = auditLog(t.tenant);
    for (let i = 0; i < 4; i++) await stub.append(varied(t.tenant, 10 + i));
    expect((await verify(t)).result).toMatchObject({ ok: true, entries: 7, head: { seq: 7 } });
  });

  it("reports progress every 1000 entries on a long chain, read from D1 in pages", async () => {
    const t = await build(1_050);
    const { progress, result } = await verify(t);
    expect(progress).toEqual([
      { verified: 0, total: 1_050 },
      { verified: 1_000, total: 1_050 },
      { verified: 1_050, total: 1_050 },
    ]);
    expect(result).toMatchObject({ ok: true, entries: 1_050, checkpoints: (await checkpointSeqs(t.tenant)).length });
  }, 60_000);

  it("verifies from a seq, starting right after the checkpoint before it", async () => {
    const t = await build(2 * EVERY + 10);
    const last = t.entries.at(-1) as AuditEntry;
    const middle = (await checkpointSeqs(t.tenant)).find((seq) => seq > 1 && seq < last.seq) as number;
    for (const fromSeq of [EVERY + 15, middle + 1, middle, 3]) {
      const anchor = await anchorFor(t.tenant, fromSeq);
      expect(anchor).toBeLessThanOrEqual(fromSeq - 1);
      expect((await verify(t, { fromSeq })).result).toMatchObject({ ok: true, firstSeq: anchor + 1, entries: last.seq - anchor });
    }
    expect(await anchorFor(t.tenant, middle + 1)).toBe(middle);
    expect((await verify(t, { fromSeq: 10_000 })).result).toMatchObject({ ok: true, firstSeq: null, entries: 0, head: { seq: last.seq } });
  });

  it.each([
    ["fromSeq 0", { fromSeq: 0 }],
    ["a fractional fromSeq", { fromSeq: 1.5 }],
    ["fromSeq as a string", { fromSeq: "3" }],
    ["an unknown member", { from: 3 }],
  ])("refuses %s with 400", async (_label, body) => {
    const t = await build(1);
    expectError(await adminCall("POST", `${ADMIN}/audit/verify`, t.adminKey, body), 400, "bad_request");
  });

  it("refuses a body that is not JSON with 400", async () => {
    const t = await build(1);
    expectError(await adminCall("POST", `${ADMIN}/audit/verify`, t.adminKey, "fromSeq: 3", { "content-type": "text/plain" }), 400, "bad_request");
    expectError(await adminCall("POST", `${ADMIN}/audit/verify`, t.adminKey, "{", { "content-type": "application/json" }), 400, "bad_request");
  });

  it("verifies a chain made by real /mcp calls", async () => {
    const adminKey = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
    const apiKey = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
    const { tenant, connectorToken } = await seedTenant({
      policies: ALLOW_ALL,
      keys: [
        { id: "key-1", key: apiKey },
        { id: "admin", key: adminKey, roles: ["admin"] },
      ],
    });
    const connector = await FakeConnector.connect(connectorToken);
    await connector.hello([echoServer("crm")]);
    answerEveryRpc(connector, { content: [{ type: "text", text: "done" }] });
    for (let i = 0; i < 3; i++) await mcpAnswer(rpcRequest("tools/call", { name: "crm__echo", arguments: { i } }, i + 1), apiKey);
    const t: Built = { tenant, adminKey, consumerKey: apiKey, entries: [] };
    expect((await verify(t)).result).toMatchObject({ ok: true, entries: 3 });
    const listed = await adminCall("GET", `${ADMIN}/audit/entries?tool=echo`, adminKey);
    expect(listed.body.entries.map((e: AuditEntry) => [e.seq, e.server, e.arguments, e.status])).toEqual([
      [3, "crm", { i: 2 }, "ok"],
      [2, "crm", { i: 1 }, "ok"],
      [1, "crm", { i: 0 }, "ok"],
    ]);
  });
});

describe("tamper detection through the API", () => {
  const COUNT = 12;
  const SEQ = 7;
  const NULLABLE = ["consumer", "key_id", "client_ip", "session_id", "server", "tool", "result_digest", "error_code", "error_message", "rule_id"];
  /** One edit of one column of row SEQ, and the reasons that may name SEQ. */
  const edits: { column: string; set: string; reasons: string[] }[] = [
    { column: "seq", set: "seq = 1000", reasons: ["gap"] },
    { column: "timestamp", set: "timestamp = timestamp + 1", reasons: ["hash-mismatch"] },
    { column: "timestamp", set: "timestamp = 'yesterday'", reasons: ["hash-mismatch"] },
    { column: "tenant_id", set: "tenant_id = 'someone-else'", reasons: ["gap", "tenant-mismatch"] },
    { column: "consumer", set: "consumer = 'mallory'", reasons: ["hash-mismatch"] },
    { column: "key_id", set: "key_id = 'key-2'", reasons: ["hash-mismatch"] },
    { column: "client_ip", set: "client_ip = '198.51.100.66'", reasons: ["hash-mismatch"] },
    { column: "request_id", set: "request_id = 'req-forged'", reasons: ["hash-mismatch"] },
    { column: "session_id", set: "session_id = 'session-2'", reasons: ["hash-mismatch"] },
    { column: "server", set: "server = 'billing'", reasons: ["hash-mismatch"] },
    { column: "method", set: "method = 'resources/read'", reasons: ["hash-mismatch"] },
    { column: "tool", set: "tool = 'drop_table'", reasons: ["hash-mismatch"] },
    { column: "arguments", set: `arguments = '{"id":"c-1","nested":{"list":[1,2.5,"x"]}}'`, reasons: ["hash-mismatch"] },
    { column: "arguments", set: "arguments = 'null'", reasons: ["hash-mismatch"] },
    { column: "arguments", set: "arguments = '{not json'", reasons: ["malformed"] },
    { column: "result", set: `result = '{"content":[]}'`, reasons: ["hash-mismatch"] },
    { column: "result", set: "result = 'null'", reasons: ["hash-mismatch"] },
    { column: "result", set: "result = ''", reasons: ["malformed"] },
    { column: "result_digest", set: `result_digest = '${HEX("a")}'`, reasons: ["hash-mismatch"] },
    { column: "status", set: "status = 'ok'", reasons: ["hash-mismatch"] },
    { column: "error_code", set: "error_code = error_code + 1", reasons: ["hash-mismatch"] },
    { column: "error_message", set: "error_message = 'nothing happened'", reasons: ["hash-mismatch"] },
    { column: "latency_ms", set: "latency_ms = latency_ms + 1", reasons: ["hash-mismatch"] },
    { column: "rule_id", set: "rule_id = 'p.rules[9]'", reasons: ["hash-mismatch"] },
    { column: "request_bytes", set: "request_bytes = request_bytes + 1", reasons: ["hash-mismatch"] },
    { column: "response_bytes", set: "response_bytes = 0", reasons: ["hash-mismatch"] },
    { column: "prev_hash", set: `prev_hash = '${HEX("0")}'`, reasons: ["hash-mismatch", "broken-link"] },
    { column: "hash", set: `hash = '${HEX("f")}'`, reasons: ["hash-mismatch", "broken-link"] },
    ...NULLABLE.map((column) => ({ column, set: `${column} = NULL`, reasons: ["hash-mismatch"] })),
  ];

  it("covers every column of audit_entries", async () => {
    const { results } = await env.DB.prepare("PRAGMA table_info(audit_entries)").all<{ name: string }>();
    expect(results.length).toBe(23);
    expect(new Set(edits.map((e) => e.column))).toEqual(new Set(results.map((r) => r.name)));
  });

  it.each(edits)("an edit of $column ($set) is detected at that seq", async ({ set, reasons }) => {
    const t = await build(COUNT, full);
    expect((await verify(t)).result.ok).toBe(true);
    const changed = await run(`UPDATE audit_entries SET ${set} WHERE tenant_id = ? AND seq = ?`, t.tenant, SEQ);
    expect(changed.meta.changes).toBe(1);
    await expectFailure(t, SEQ, reasons);
  });

  it("an edit with its hash recomputed breaks the link to the next entry", async () => {
    const t = await build(COUNT, full);
    const entry = { ...(await storedRow(t.tenant, SEQ)), consumer: "mallory" };
    await overwrite({ ...entry, hash: computeEntryHash(entry) });
    await expectFailure(t, SEQ + 1, ["broken-link"]);
  });

  it("a rewrite of the tail with every hash recomputed is caught by the signed checkpoint, or else by the live head", async () => {
    const t = await build(EVERY + 5, full);
    let prev = t.entries[SEQ - 2] as AuditEntry;
    for (const original of t.entries.slice(SEQ - 1)) {
      const entry = { ...original, consumer: "mallory", prevHash: prev.hash };
      prev = { ...entry, hash: computeEntryHash(entry) };
      await overwrite(prev);
    }
    // The first checkpoint after the rewritten entry: EVERY, or an earlier one the alarm signed.
    await expectFailure(t, (await checkpointSeqs(t.tenant)).find((seq) => seq >= SEQ) as number, ["checkpoint-mismatch"]);
    // Without the checkpoints (deleted as well), the live head still tells.
    await run("DELETE FROM audit_checkpoints WHERE tenant_id = ?", t.tenant);
    await expectFailure(t, EVERY + 5, ["head-mismatch"]);
  });

  it("a deleted middle row is a gap at its seq", async () => {
    const t = await build(COUNT, full);
    await run("DELETE FROM audit_entries WHERE tenant_id = ? AND seq = ?", t.tenant, SEQ);
    await expectFailure(t, SEQ, ["gap"]);
  });

  it("deleted last rows are a missing tail from the first missing seq, with or without the last checkpoint", async () => {
    const t = await build(COUNT, full);
    await run("DELETE FROM audit_entries WHERE tenant_id = ? AND seq >= ?", t.tenant, COUNT - 2);
    await expectFailure(t, COUNT - 2, ["missing-tail"]);
    await run("DELETE FROM audit_checkpoints WHERE tenant_id = ?", t.tenant);
    await expectFailure(t, COUNT - 2, ["missing-tail", "head-mismatch"]);
  });

  it("every row deleted is a missing tail from seq 1", async () => {
    const t = await build(COUNT, full);
    await run("DELETE FROM audit_entries WHERE tenant_id = ?", t.tenant);
    await run("DELETE FROM audit_checkpoints WHERE tenant_id = ?", t.tenant);
    await expectFailure(t, 1, ["missing-tail"]);
  });

  it("two rows with their seqs swapped (reordered) are detected at the first", async () => {
    const t = await build(COUNT, full);
    await run("UPDATE audit_entries SET seq = -1 WHERE tenant_id = ? AND seq = ?", t.tenant, SEQ);
    await run("UPDATE audit_entries SET seq = ? WHERE tenant_id = ? AND seq = ?", SEQ, t.tenant, SEQ + 1);
    await run("UPDATE audit_entries SET seq = ? WHERE tenant_id = ? AND seq = -1", SEQ + 1, t.tenant);
    await expectFailure(t, SEQ, ["hash-mismatch", "reordered", "broken-link"]);
  });

  it("a forged row in place of a deleted one, correctly hashed, breaks the link after it", async () => {
    const t = await build(COUNT, full);
    await run("DELETE FROM audit_entries WHERE tenant_id = ? AND seq = ?", t.tenant, SEQ);
    await insertRow(appendEntry(t.entries[SEQ - 2] as AuditEntry, { ...full(t.tenant, SEQ), consumer: "mallory" }));
    await expectFailure(t, SEQ + 1, ["broken-link"]);
  });

  it("a forged row after the head, correctly linked, is an entry the gateway never wrote", async () => {
    const t = await build(COUNT, full);
    await insertRow(appendEntry(t.entries.at(-1) as AuditEntry, full(t.tenant, COUNT + 1)));
    await expectFailure(t, COUNT + 1, ["beyond-head"]);
    // Listings show it (D1 is what they read), verification names it.
    expect((await adminCall("GET", `${ADMIN}/audit/entries?limit=1`, t.adminKey)).body.entries[0].seq).toBe(COUNT + 1);
  });

  it("a forged row at seq 0 or below, which no chain walk reaches, is still named", async () => {
    const t = await build(COUNT, full);
    await insertRow({ ...(t.entries[0] as AuditEntry), seq: 0 });
    await expectFailure(t, 0, ["malformed"]);
  });

  it("a forged checkpoint signature, or a checkpoint's hash edited, is a bad signature at its seq", async () => {
    const t = await build(EVERY + 5, full);
    const first = (await checkpointSeqs(t.tenant))[0] as number;
    expect(first).toBeLessThan(EVERY + 5);
    const other = signCheckpoint({ tenant: t.tenant, seq: first, hash: HEX("1"), time: 1 }, env.AUDIT_SIGNING_KEY as string).signature;
    await run("UPDATE audit_checkpoints SET signature = ? WHERE tenant_id = ? AND seq = ?", other, t.tenant, first);
    await expectFailure(t, first, ["bad-signature"]);

    const u = await build(EVERY + 5, full);
    const firstOfU = (await checkpointSeqs(u.tenant))[0] as number;
    await run("UPDATE audit_checkpoints SET hash = ? WHERE tenant_id = ? AND seq = ?", HEX("2"), u.tenant, firstOfU);
    await expectFailure(u, firstOfU, ["bad-signature"]);
  });

  it("a checkpoint signed with another key is a bad signature at its seq", async () => {
    const t = await build(COUNT, full);
    const keys = generateCheckpointKeys();
    const forged = signCheckpoint({ tenant: t.tenant, seq: SEQ, hash: (t.entries[SEQ - 1] as AuditEntry).hash, time: Date.now() }, keys.privateKey);
    expect(forged.keyId).toBe(publicKeyId(keys.publicKey));
    await run(
      "INSERT INTO audit_checkpoints (tenant_id, seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)",
      t.tenant, forged.seq, forged.hash, forged.time, forged.keyId, forged.signature,
    );
    await expectFailure(t, SEQ, ["bad-signature"]);
  });

  it("the latest checkpoint deleted from D1 is detected against the object's", async () => {
    const t = await build(COUNT, full);
    await run("DELETE FROM audit_checkpoints WHERE tenant_id = ? AND seq = ?", t.tenant, COUNT);
    await expectFailure(t, COUNT, ["checkpoint-mismatch"]);
  });
});

/** Replaces the tenant's applied config's audit section (as an apply would), bumping its version. */
async function publishAudit(tenant: string, audit: Record<string, unknown>) {
  const row = await env.DB.prepare("SELECT config FROM tenants WHERE id = ?").bind(tenant).first<{ config: string }>();
  const config = { ...JSON.parse(row?.config as string), audit: { enabled: true, hashChain: true, failureMode: "closed", ...audit } };
  await run("UPDATE tenants SET config = ?, config_version = config_version + 1 WHERE id = ?", JSON.stringify(config), tenant);
}

/** A tenant whose D1 copy retention pruned up to and including seq `anchor` (the object's own prune, by its alarm). */
async function pruned(count: number, anchor: number): Promise<Built> {
  const t = await build(0);
  // Retention is published before the first entry, so no alarm caches the config without it.
  await publishAudit(t.tenant, { retentionDays: 30 });
  const before = await append(t.tenant, count, varied);
  const stub = auditLog(t.tenant);
  // A checkpoint of `anchor` signed 40 days ago, as the object would have signed it then (the test holds the key).
  const old = signCheckpoint({ tenant: t.tenant, seq: anchor, hash: (before[anchor - 1] as AuditEntry).hash, time: Date.now() - 40 * 86_400_000 }, env.AUDIT_SIGNING_KEY as string);
  await runInDurableObject(stub, (_instance: AuditLogDurableObject, state) => {
    state.storage.sql.exec("INSERT OR REPLACE INTO checkpoints (seq, key_id, json, shipped) VALUES (?, ?, ?, 1)", old.seq, old.keyId, JSON.stringify(old));
    state.storage.sql.exec("UPDATE state SET pruned_at = 0");
  });
  await run("INSERT OR REPLACE INTO audit_checkpoints (tenant_id, seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)", t.tenant, old.seq, old.hash, old.time, old.keyId, old.signature);
  const entries = await append(t.tenant, 1, varied, before);
  // The alarm the append set prunes; run it now (unless it already ran on its own).
  await runDurableObjectAlarm(stub);
  const firstSeq = async () => (await env.DB.prepare("SELECT MIN(seq) AS seq FROM audit_entries WHERE tenant_id = ?").bind(t.tenant).first<{ seq: number }>())?.seq;
  for (let i = 0; i < 40 && (await firstSeq()) !== anchor + 1; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(await firstSeq()).toBe(anchor + 1);
  return { ...t, entries };
}

describe("a pruned chain", () => {
  it("verifies from the checkpoint retention kept, and not without it", async () => {
    const t = await pruned(EVERY + 10, 12);
    const last = t.entries.at(-1) as AuditEntry;
    expect((await verify(t)).result).toMatchObject({ ok: true, firstSeq: 13, entries: last.seq - 12, head: { seq: last.seq, hash: last.hash } });
    // Its export verifies offline from the same anchor.
    const exported = await exportJsonl(t, "");
    expect(exported.header.start).toEqual({ seq: 12, hash: (t.entries[11] as AuditEntry).hash });
    expect(await verifyExport(exported.lines, PUBLIC_KEY)).toMatchObject({ ok: true, firstSeq: 13 });
    // The anchoring checkpoint deleted: nothing vouches for the start any more.
    await run("DELETE FROM audit_checkpoints WHERE tenant_id = ? AND seq = 12", t.tenant);
    await expectFailure(t, 12, ["unanchored"]);
  });
});

async function exportJsonl(t: Built, query: string) {
  const answer = await adminStream("GET", `${ADMIN}/audit/export?format=jsonl${query}`, t.adminKey);
  expect(answer.status, answer.text).toBe(200);
  expect(answer.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
  expect(answer.headers.get("content-disposition")).toMatch(/^attachment; filename="audit-.+\.jsonl"$/);
  expect(answer.text.endsWith("\n")).toBe(true);
  const lines = answer.text.slice(0, -1).split("\n");
  return { lines, header: JSON.parse(lines[0] as string), records: lines.map((line) => JSON.parse(line)) };
}

describe("GET /audit/export", () => {
  it("a partial export up to toSeq still carries the checkpoint past a tail deleted from D1", async () => {
    const t = await build(2 * EVERY + 10);
    const cut = EVERY - 3;
    await run("DELETE FROM audit_entries WHERE tenant_id = ? AND seq > ? AND seq <= ?", t.tenant, cut, EVERY + 1);
    const { lines } = await exportJsonl(t, `&toSeq=${EVERY}`);
    const verdict = await verifyExport(lines, PUBLIC_KEY);
    expect(verdict).toMatchObject({ ok: false, failure: { reason: "missing-tail" } });
  });

  it("writes the JSONL export of docs/audit-chain.md, which verifies offline with the object's public key", async () => {
    const t = await build(2 * EVERY + 10);
    const last = t.entries.at(-1) as AuditEntry;
    const { lines, header, records } = await exportJsonl(t, "");
    expect(header).toMatchObject({ type: "header", tenant: t.tenant, keyId: KEY_ID, start: { seq: 0, hash: HEX("0") }, head: { seq: last.seq, hash: last.hash } });
    const verdict = await verifyExport(lines, PUBLIC_KEY);
    expect(verdict).toMatchObject({ ok: true, entries: last.seq, checkpoints: (await checkpointSeqs(t.tenant)).length, firstSeq: 1, head: { seq: last.seq, hash: last.hash }, uncheckpointed: 0 });
    expect(records.filter((r) => r.type === "entry").map(({ type: _type, ...entry }) => entry)).toEqual(t.entries);
    // Line for line what exportLines writes from the same entries and checkpoints.
    const db = database(env.DB);
    const checkpoints: AuditCheckpoint[] = [];
    for await (const checkpoint of storedCheckpoints(db, t.tenant)) checkpoints.push(checkpoint);
    const expected: string[] = [];
    for await (const line of exportLines({ tenant: t.tenant, entries: t.entries, checkpoints, keyId: KEY_ID, head: header.head, exportedAt: header.exportedAt })) expected.push(line);
    expect(lines).toEqual(expected);
  });

  it.each([
    { label: "from the middle", fromSeq: EVERY + 15, head: 2 * EVERY + 10 },
    { label: "from right after a checkpoint", fromSeq: "after-checkpoint" as const, head: 2 * EVERY + 10 },
    { label: "a middle range", fromSeq: EVERY + 5, toSeq: 2 * EVERY - 3, head: 2 * EVERY - 3 },
    { label: "up to a seq", toSeq: EVERY + 3, head: EVERY + 3 },
    { label: "from near the start", fromSeq: 3, head: 2 * EVERY + 10 },
  ])("a partial export $label starts after a checkpoint and verifies on its own", async ({ fromSeq: asked, toSeq, head }) => {
    const t = await build(2 * EVERY + 10);
    const afterCheckpoint = ((await checkpointSeqs(t.tenant)).find((seq) => seq > 1 && seq < head) as number) + 1;
    const fromSeq = asked === "after-checkpoint" ? afterCheckpoint : asked;
    const query = `${fromSeq ? `&fromSeq=${fromSeq}` : ""}${toSeq ? `&toSeq=${toSeq}` : ""}`;
    const start = fromSeq ? await anchorFor(t.tenant, fromSeq) : 0;
    if (asked === "after-checkpoint") expect(start).toBe(afterCheckpoint - 1);
    const { lines, header, records } = await exportJsonl(t, query);
    expect(header.start).toEqual(start === 0 ? { seq: 0, hash: HEX("0") } : { seq: start, hash: (t.entries[start - 1] as AuditEntry).hash });
    expect(header.head).toEqual({ seq: head, hash: (t.entries[head - 1] as AuditEntry).hash });
    if (start > 0) expect(records[1]).toMatchObject({ type: "checkpoint", seq: start });
    const entries = records.filter((r) => r.type === "entry");
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: head - start }, (_, i) => start + 1 + i));
    expect(await verifyExport(lines, PUBLIC_KEY)).toMatchObject({ ok: true, firstSeq: start + 1, entries: head - start, head: header.head });
  });

  it("never hides what was done to D1: a tampered row or a deleted tail fails offline", async () => {
    const t = await build(EVERY + 5, full);
    await run("UPDATE audit_entries SET latency_ms = 0 WHERE tenant_id = ? AND seq = 9", t.tenant);
    expect(await verifyExport((await exportJsonl(t, "")).lines, PUBLIC_KEY)).toMatchObject({ ok: false, failure: { seq: 9, reason: "hash-mismatch" } });
    const u = await build(EVERY + 5, full);
    await run("DELETE FROM audit_entries WHERE tenant_id = ? AND seq > ?", u.tenant, EVERY + 2);
    await run("DELETE FROM audit_checkpoints WHERE tenant_id = ? AND seq > ?", u.tenant, EVERY);
    // The header's head is the object's live head: the cut shows even without a checkpoint after it.
    expect(await verifyExport((await exportJsonl(u, "")).lines, PUBLIC_KEY)).toMatchObject({ ok: false, failure: { seq: EVERY + 3, reason: "missing-tail" } });
    const v = await build(COUNT_SMALL, full);
    await run("UPDATE audit_entries SET arguments = '{oops' WHERE tenant_id = ? AND seq = 3", v.tenant);
    expect(await verifyExport((await exportJsonl(v, "")).lines, PUBLIC_KEY)).toMatchObject({ ok: false, failure: { seq: 3 } });
    // The listing still answers, with the stored text as it is.
    const listed = await adminCall("GET", `${ADMIN}/audit/entries?limit=500`, v.adminKey);
    expect(listed.body.entries.find((e: AuditEntry) => e.seq === 3).arguments).toBe("{oops");
  });

  it("writes CSV: the header row, then one row per entry, CRLF-separated", async () => {
    const t = await build(30);
    const answer = await adminStream("GET", `${ADMIN}/audit/export?format=csv`, t.adminKey);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(answer.headers.get("content-disposition")).toMatch(/\.csv"$/);
    const rows = answer.text.split("\r\n");
    expect(rows.pop()).toBe("");
    expect(rows[0]).toBe(AUDIT_CSV_HEADER);
    expect(rows.slice(1)).toEqual(t.entries.map(entryToCsvRow));
    const range = await adminStream("GET", `${ADMIN}/audit/export?format=csv&fromSeq=10&toSeq=12`, t.adminKey);
    expect(range.text).toBe([AUDIT_CSV_HEADER, ...t.entries.slice(9, 12).map(entryToCsvRow), ""].join("\r\n"));
  });

  it("exports an empty chain", async () => {
    const t = await build(0);
    const { lines, header } = await exportJsonl(t, "");
    expect(lines).toHaveLength(1);
    expect(header.head).toEqual({ seq: 0, hash: HEX("0") });
    expect(await verifyExport(lines, PUBLIC_KEY)).toMatchObject({ ok: true, entries: 0 });
    expect((await adminStream("GET", `${ADMIN}/audit/export?format=csv`, t.adminKey)).text).toBe(`${AUDIT_CSV_HEADER}\r\n`);
  });

  it.each(["format=xml", "fromSeq=0", "fromSeq=5&toSeq=4", "toSeq=abc", "fromSeq=1.5", "limit=3", "consumer=agent-1"])("refuses %s with 400", async (query) => {
    const t = await build(1);
    expectError(await adminCall("GET", `${ADMIN}/audit/export?${query}`, t.adminKey), 400, "bad_request");
  });
});

describe("the store's readers", () => {
  it("auditQuerySchema takes ISO 8601, epoch ms and digit strings, and refuses unknown keys", () => {
    expect(auditQuerySchema.parse({ from: "2026-01-01T00:00:00Z", to: T0 + 5 })).toEqual({ from: T0, to: T0 + 5 });
    expect(auditQuerySchema.parse({ from: String(T0), to: "2026-01-01" })).toEqual({ from: T0, to: T0 });
    expect(auditQuerySchema.safeParse({ from: -1 }).success).toBe(false);
    expect(auditQuerySchema.safeParse({ from: 1.5 }).success).toBe(false);
    expect(auditQuerySchema.safeParse({ limit: 5 }).success).toBe(false);
    expect(auditQuerySchema.safeParse({ status: "nope" }).success).toBe(false);
  });

  it("storedCheckpoints reads every checkpoint in seq order, across pages", async () => {
    const tenant = `pages-${crypto.randomUUID().slice(0, 8)}`;
    const rows = Array.from({ length: 620 }, (_, i) => ({ seq: i + 1, keyId: i % 50 === 0 ? "bbbbbbbbbbbbbbbb" : "aaaaaaaaaaaaaaaa" }));
    rows.push({ seq: 51, keyId: "aaaaaaaaaaaaaaaa" });
    for (let i = 0; i < rows.length; i += 50) {
      await env.DB.batch(
        rows.slice(i, i + 50).map((r) =>
          env.DB.prepare("INSERT INTO audit_checkpoints (tenant_id, seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)").bind(tenant, r.seq, HEX("a"), 1, r.keyId, "s"),
        ),
      );
    }
    const seen: [number, string][] = [];
    for await (const c of storedCheckpoints(database(env.DB), tenant, 3, 610)) seen.push([c.seq, c.keyId]);
    const expected = rows
      .filter((r) => r.seq >= 3 && r.seq <= 610)
      .sort((a, b) => a.seq - b.seq || a.keyId.localeCompare(b.keyId))
      .map((r) => [r.seq, r.keyId]);
    expect(seen).toEqual(expected);
  });
});
