/**
 * @module Reading a tenant's audit trail back from D1, the queryable copy the AuditLog Durable Object ships to
 * (src/audit/durable-object.ts): filtered listings with keyset pagination, stats, and the streams that verification
 * and exports read. Every query names the tenant. Nothing here holds a whole chain in memory: entries and checkpoints
 * are read in pages, and stats (percentiles included) are computed by D1.
 *
 * Online verification ({@link verifyStoredChain}) checks the D1 copy against the Durable Object's live head and the
 * signed checkpoints: see "Audit API" in docs/audit-chain.md.
 */
import { and, asc, desc, eq, gt, gte, lt, lte, type SQL, sql } from "drizzle-orm";
import { z } from "zod";
import { database, type Database } from "../db/client.ts";
import { auditCheckpoints, auditEntries } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { log } from "../log.ts";
import { auditLog, flushAuditLog } from "./append.ts";
import { GENESIS_HEAD } from "./chain.ts";
import { type AuditCheckpoint, decodePublicKey } from "./checkpoint.ts";
import type { AuditLogState } from "./durable-object.ts";
import { AUDIT_STATUSES, type AuditEntry, type AuditStatus, type ChainHead, type JsonValue } from "./entry.ts";
import { AUDIT_CSV_HEADER, entryToCsvRow, exportCheckpointLine, exportEntryLine, exportHeaderLine } from "./export-format.ts";
import { type AuditCheckpointRow, type AuditEntryRow, rowToCheckpoint, rowToEntry } from "./rows.ts";
import { type ChainFailure, ChainVerifier, type ChainVerifyFailed, type ChainVerifyResult } from "./verify.ts";

// ---------------------------------------------------------------------------------------------------------------
// Queries

/** Longest accepted filter value (consumer and server ids are far shorter; a tool may be a resource URI). */
export const AUDIT_FILTER_MAX_LENGTH = 1024;
/** Entries per page of {@link queryAuditEntries}: at most this many. */
export const AUDIT_PAGE_MAX = 500;
export const AUDIT_PAGE_DEFAULT = 50;
/** Longest list in {@link AuditStats} (byServer, byTool, byConsumer). */
export const AUDIT_STATS_TOP = 100;

const ISO_DATE = z.iso.date();
/** The latest time a JavaScript Date holds (±8.64e15 ms): later "times" would fail every date conversion. */
const MAX_DATE_MS = 8.64e15;
const ISO_DATETIME = z.iso.datetime({ offset: true });

/**
 * Epoch milliseconds from an ISO 8601 date or date-time (with `Z` or an offset; a bare date is UTC midnight), an
 * epoch-ms integer, or a string of digits. Undefined for anything else.
 */
export function epochMs(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 && value <= MAX_DATE_MS ? value : undefined;
  if (/^\d{1,16}$/.test(value)) {
    const ms = Number(value);
    return Number.isSafeInteger(ms) && ms <= MAX_DATE_MS ? ms : undefined;
  }
  if (!ISO_DATETIME.safeParse(value).success && !ISO_DATE.safeParse(value).success) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

const timeBound = z
  .union([z.number(), z.string().max(64)])
  .transform((value, ctx) => {
    const ms = epochMs(value);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: "must be an ISO 8601 date or date-time (with Z or an offset), or epoch milliseconds" });
      return z.NEVER;
    }
    return ms;
  });

const filterText = z.string().min(1).max(AUDIT_FILTER_MAX_LENGTH);

/** The filters of a listing or stats, each optional; `from` inclusive, `to` exclusive. */
export const auditQueryShape = {
  consumer: filterText.optional(),
  server: filterText.optional(),
  tool: filterText.optional(),
  status: z.enum(AUDIT_STATUSES).optional(),
  from: timeBound.optional(),
  to: timeBound.optional(),
};

/** {@link auditQueryShape} as a strict object (unknown keys refused). `from` and `to` come out as epoch ms. */
export const auditQuerySchema = z.strictObject(auditQueryShape);
export type AuditQuery = z.output<typeof auditQuerySchema>;

/** A cursor that is not one {@link queryAuditEntries} handed out (the admin API answers 400 bad_request). */
export class AuditCursorError extends Error {
  constructor(message = "The cursor is not one this API handed out: start again without it") {
    super(message);
    this.name = "AuditCursorError";
  }
}

function encodeCursor(seq: number): string {
  return btoa(JSON.stringify({ seq })).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The seq a cursor continues below. Throws {@link AuditCursorError}. */
export function decodeCursor(cursor: string): number {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(cursor)) throw new AuditCursorError();
  let value: unknown;
  try {
    const base64 = cursor.replace(/-/g, "+").replace(/_/g, "/");
    value = JSON.parse(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)));
  } catch {
    throw new AuditCursorError();
  }
  const parsed = z.strictObject({ seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }).safeParse(value);
  if (!parsed.success) throw new AuditCursorError();
  return parsed.data.seq;
}

function filters(tenant: string, query: AuditQuery): SQL {
  const conditions: SQL[] = [eq(auditEntries.tenantId, tenant)];
  if (query.consumer !== undefined) conditions.push(eq(auditEntries.consumer, query.consumer));
  if (query.server !== undefined) conditions.push(eq(auditEntries.server, query.server));
  if (query.tool !== undefined) conditions.push(eq(auditEntries.tool, query.tool));
  if (query.status !== undefined) conditions.push(eq(auditEntries.status, query.status));
  if (query.from !== undefined) conditions.push(gte(auditEntries.timestamp, query.from));
  if (query.to !== undefined) conditions.push(lt(auditEntries.timestamp, query.to));
  return and(...conditions) as SQL;
}

/**
 * A row as an entry. A payload column that is not JSON (only a row edited in D1 can have one) comes back as its raw
 * text, with a message saying so: listings and exports show it as stored, verification reports it `malformed`.
 */
function readRow(row: AuditEntryRow): { entry: AuditEntry; problem: string | null } {
  const problems: string[] = [];
  const entry = rowToEntry(row, (column, text) => {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      problems.push(column);
      return text;
    }
  });
  return { entry, problem: problems.length === 0 ? null : `seq ${row.seq}'s stored ${problems.join(" and ")} ${problems.length > 1 ? "are" : "is"} not JSON: the row was edited in D1` };
}

/**
 * One page of the tenant's entries matching `query`, newest first (seq descending). `nextCursor` continues below
 * the page's last seq (keyset pagination: entries appended meanwhile never shift a page), null on the last page.
 * Throws {@link AuditCursorError} for a cursor it did not hand out.
 */
export async function queryAuditEntries(
  db: Database,
  tenant: string,
  query: AuditQuery,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ entries: AuditEntry[]; nextCursor: string | null }> {
  const limit = Number.isFinite(page.limit) ? Math.min(AUDIT_PAGE_MAX, Math.max(1, Math.trunc(page.limit))) : AUDIT_PAGE_DEFAULT;
  const below = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
  const where = below === undefined ? filters(tenant, query) : (and(filters(tenant, query), lt(auditEntries.seq, below)) as SQL);
  const rows = await db
    .select()
    .from(auditEntries)
    .where(where)
    .orderBy(desc(auditEntries.seq))
    .limit(limit + 1)
    .all();
  const more = rows.length > limit;
  const entries = rows.slice(0, limit).map((row) => readRow(row).entry);
  return { entries, nextCursor: more ? encodeCursor((entries.at(-1) as AuditEntry).seq) : null };
}

/**
 * {@link queryAuditEntries} after shipping what the tenant's AuditLog object holds, so a reader sees every entry
 * appended so far (its own latest calls included). A failed flush leaves D1 as it is.
 */
export async function readAuditEntries(env: Env, tenant: string, query: AuditQuery, page: { limit: number; cursor?: string | undefined }) {
  await flushAuditLog(env, tenant);
  return queryAuditEntries(database(env.DB), tenant, query, page);
}

/** {@link auditStats} after shipping what the tenant's AuditLog object holds (see {@link readAuditEntries}). */
export async function readAuditStats(env: Env, tenant: string, query: AuditQuery): Promise<AuditStats> {
  await flushAuditLog(env, tenant);
  return auditStats(database(env.DB), tenant, query);
}

export interface AuditStats {
  total: number;
  /** Every status, 0 when none. */
  byStatus: Record<AuditStatus, number>;
  /** Top {@link AUDIT_STATS_TOP} by count, descending (ties by name); null = entries without a server. */
  byServer: { server: string | null; count: number }[];
  byTool: { server: string | null; tool: string | null; count: number }[];
  byConsumer: { consumer: string | null; count: number }[];
  /** Nearest-rank percentiles of latencyMs over the matching entries; null when none match. */
  latencyMs: { p50: number; p95: number; p99: number; max: number } | null;
}

const count = sql<number>`count(*)`.mapWith(Number);

/**
 * Counts and latency percentiles of the tenant's entries matching `query`, all computed by D1 (two round trips):
 * nothing is loaded row by row. Percentiles are nearest-rank: p = the value at rank ⌈p·n/100⌉ in ascending order.
 */
export async function auditStats(db: Database, tenant: string, query: AuditQuery): Promise<AuditStats> {
  const where = filters(tenant, query);
  const [statuses, servers, tools, consumers, maxima] = await db.batch([
    db.select({ status: auditEntries.status, count }).from(auditEntries).where(where).groupBy(auditEntries.status),
    db
      .select({ server: auditEntries.server, count })
      .from(auditEntries)
      .where(where)
      .groupBy(auditEntries.server)
      .orderBy(desc(count), asc(auditEntries.server))
      .limit(AUDIT_STATS_TOP),
    db
      .select({ server: auditEntries.server, tool: auditEntries.tool, count })
      .from(auditEntries)
      .where(where)
      .groupBy(auditEntries.server, auditEntries.tool)
      .orderBy(desc(count), asc(auditEntries.server), asc(auditEntries.tool))
      .limit(AUDIT_STATS_TOP),
    db
      .select({ consumer: auditEntries.consumer, count })
      .from(auditEntries)
      .where(where)
      .groupBy(auditEntries.consumer)
      .orderBy(desc(count), asc(auditEntries.consumer))
      .limit(AUDIT_STATS_TOP),
    db.select({ max: sql<number | null>`max(${auditEntries.latencyMs})`, total: count }).from(auditEntries).where(where),
  ]);
  const byStatus = Object.fromEntries(AUDIT_STATUSES.map((status) => [status, 0])) as Record<AuditStatus, number>;
  // A status outside the enum only exists in a row edited in D1: it counts in total, under no status.
  for (const row of statuses) if ((AUDIT_STATUSES as readonly string[]).includes(row.status)) byStatus[row.status as AuditStatus] = row.count;
  const total = maxima[0]?.total ?? 0;
  let latencyMs: AuditStats["latencyMs"] = null;
  if (total > 0) {
    const at = (percent: number) =>
      db
        .select({ value: auditEntries.latencyMs })
        .from(auditEntries)
        .where(where)
        .orderBy(asc(auditEntries.latencyMs))
        .limit(1)
        .offset(Math.max(0, Math.ceil((percent * total) / 100) - 1));
    const [p50, p95, p99] = await db.batch([at(50), at(95), at(99)]);
    latencyMs = { p50: p50[0]?.value ?? 0, p95: p95[0]?.value ?? 0, p99: p99[0]?.value ?? 0, max: Number(maxima[0]?.max ?? 0) };
  }
  return { total, byStatus, byServer: servers, byTool: tools, byConsumer: consumers, latencyMs };
}

// ---------------------------------------------------------------------------------------------------------------
// Streams

/** Rows per D1 read of {@link storedEntries} and {@link storedCheckpoints}. */
export const STORED_PAGE = 500;

/**
 * A D1 row that is not an entry: a payload column is not JSON. `entry` holds the row with the raw text in place of
 * that payload (for listings and exports); verification reports `message` as `malformed` at `seq`.
 */
export interface MalformedStoredEntry {
  malformed: true;
  seq: number;
  message: string;
  entry: AuditEntry;
}

export type StoredEntry = AuditEntry | MalformedStoredEntry;

export function isMalformedStored(item: StoredEntry): item is MalformedStoredEntry {
  return (item as Partial<MalformedStoredEntry>).malformed === true;
}

/** The entry to show or export for a stored item (a malformed row with its raw text). */
export function storedEntryOf(item: StoredEntry): AuditEntry {
  return isMalformedStored(item) ? item.entry : item;
}

/**
 * The tenant's entries in D1 with fromSeq ≤ seq ≤ toSeq, in seq order, read {@link STORED_PAGE} rows at a time.
 * A row whose payload is not JSON comes as a {@link MalformedStoredEntry}; nothing is thrown for bad data.
 */
export async function* storedEntries(db: Database, tenant: string, fromSeq = 1, toSeq?: number): AsyncGenerator<StoredEntry> {
  let next = fromSeq;
  for (;;) {
    const conditions = [eq(auditEntries.tenantId, tenant), gte(auditEntries.seq, next)];
    if (toSeq !== undefined) conditions.push(lte(auditEntries.seq, toSeq));
    const rows = await db
      .select()
      .from(auditEntries)
      .where(and(...conditions))
      .orderBy(asc(auditEntries.seq))
      .limit(STORED_PAGE)
      .all();
    for (const row of rows) {
      const { entry, problem } = readRow(row);
      yield problem === null ? entry : { malformed: true, seq: row.seq, message: problem, entry };
    }
    if (rows.length < STORED_PAGE) return;
    next = (rows.at(-1) as AuditEntryRow).seq + 1;
  }
}

/** The tenant's checkpoints in D1 with fromSeq ≤ seq ≤ toSeq, in seq order (then key id), read in pages. */
export async function* storedCheckpoints(db: Database, tenant: string, fromSeq = 0, toSeq?: number): AsyncGenerator<AuditCheckpoint> {
  let after: { seq: number; keyId: string } | null = null;
  for (;;) {
    const conditions: SQL[] = [eq(auditCheckpoints.tenantId, tenant)];
    if (after === null) conditions.push(gte(auditCheckpoints.seq, fromSeq));
    else {
      const { seq, keyId } = after;
      conditions.push(sql`(${auditCheckpoints.seq} > ${seq} OR (${auditCheckpoints.seq} = ${seq} AND ${auditCheckpoints.keyId} > ${keyId}))`);
    }
    if (toSeq !== undefined) conditions.push(lte(auditCheckpoints.seq, toSeq));
    const rows: AuditCheckpointRow[] = await db
      .select()
      .from(auditCheckpoints)
      .where(and(...conditions))
      .orderBy(asc(auditCheckpoints.seq), asc(auditCheckpoints.keyId))
      .limit(STORED_PAGE)
      .all();
    for (const row of rows) yield rowToCheckpoint(row);
    if (rows.length < STORED_PAGE) return;
    const last = rows.at(-1) as AuditCheckpointRow;
    after = { seq: last.seq, keyId: last.keyId };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Verification and export

/** How long verification and exports wait for the AuditLog object to ship what D1 does not have yet. */
const SHIP_WAIT_MS = 5_000;
const SHIP_POLL_MS = 100;
/** Progress is reported every this many entries. */
export const VERIFY_PROGRESS_EVERY = 1_000;

type AuditLogStub = ReturnType<typeof auditLog>;

/**
 * The object's state once D1 holds everything up to its head: flush() signs the head and ships; appends racing it
 * may leave a few unshipped, so it is asked again for up to {@link SHIP_WAIT_MS}. When flushing fails (D1 down),
 * the state as it is: verification then checks what D1 has against the live head.
 */
async function shippedState(stub: AuditLogStub, tenant: string): Promise<{ state: AuditLogState; shipped: boolean }> {
  const deadline = Date.now() + SHIP_WAIT_MS;
  for (;;) {
    let state: AuditLogState;
    try {
      state = (await stub.flush()) as AuditLogState;
    } catch (error) {
      log({ event: "audit.flush_failed", tenant, detail: (error as Error).message }, "warn");
      return { state: (await stub.state()) as AuditLogState, shipped: false };
    }
    const shipped = state.shippedSeq >= state.head.seq;
    if (shipped || Date.now() >= deadline) return { state, shipped };
    await new Promise((resolve) => setTimeout(resolve, SHIP_POLL_MS));
  }
}

/**
 * Where the D1 copy's entries start, as a verifier's `start`, for a read that wants to begin at `wantSeq + 1`:
 * - the copy begins after the first retained entry's predecessor: seq 0 (genesis) for a whole chain, or, once
 *   retention pruned the oldest entries (always up to and including a checkpoint), `{firstRetained - 1,
 *   firstRetained.prevHash}`, which the checkpoint kept at that seq must vouch for (else `unanchored`);
 * - with no entry in D1 at all (everything pruned), the newest checkpoint up to the head;
 * - a later `wantSeq` snaps DOWN to the nearest checkpoint at or before it (a partial read must start right after a
 *   checkpointed seq so it verifies on its own); none there = the copy's own start.
 */
async function chainStart(db: Database, tenant: string, wantSeq: number, headSeq: number, keyId: string | null): Promise<ChainHead> {
  const first = await db
    .select({ seq: auditEntries.seq, prevHash: auditEntries.prevHash })
    .from(auditEntries)
    .where(and(eq(auditEntries.tenantId, tenant), gt(auditEntries.seq, 0)))
    .orderBy(asc(auditEntries.seq))
    .limit(1)
    .get();
  let base: ChainHead = GENESIS_HEAD;
  if (first) {
    if (first.seq > 1) base = { seq: first.seq - 1, hash: first.prevHash };
  } else {
    const anchor = await newestCheckpoint(db, tenant, 0, headSeq, keyId);
    if (anchor) base = anchor;
  }
  if (wantSeq <= base.seq) return base;
  return (await newestCheckpoint(db, tenant, base.seq + 1, Math.min(wantSeq, headSeq), keyId)) ?? base;
}

/**
 * The public keys of signing keys no longer in use (`AUDIT_RETIRED_PUBLIC_KEYS`, comma-separated base64url):
 * malformed entries are left out (and logged), so a typo cannot make every verification throw.
 */
export function retiredPublicKeys(env: Pick<Env, "AUDIT_RETIRED_PUBLIC_KEYS">): string[] {
  const keys: string[] = [];
  for (const text of (env.AUDIT_RETIRED_PUBLIC_KEYS ?? "").split(",").map((k) => k.trim()).filter(Boolean)) {
    try {
      decodePublicKey(text);
      keys.push(text);
    } catch {
      log({ event: "audit.retired_key_invalid", detail: "an AUDIT_RETIRED_PUBLIC_KEYS entry is not base64url of a 32-byte Ed25519 public key" }, "error");
    }
  }
  return keys;
}

/** The first seq the D1 copy holds, or undefined when it holds none. */
async function firstStoredSeq(db: Database, tenant: string): Promise<number | undefined> {
  const row = await db.select({ seq: auditEntries.seq }).from(auditEntries).where(eq(auditEntries.tenantId, tenant)).orderBy(asc(auditEntries.seq)).limit(1).get();
  return row?.seq;
}

/** The newest checkpoint with fromSeq ≤ seq ≤ toSeq (signed with `keyId` when there are several at that seq). */
async function newestCheckpoint(db: Database, tenant: string, fromSeq: number, toSeq: number, keyId: string | null): Promise<ChainHead | undefined> {
  if (toSeq < fromSeq) return undefined;
  const row = await db
    .select({ seq: auditCheckpoints.seq, hash: auditCheckpoints.hash })
    .from(auditCheckpoints)
    .where(and(eq(auditCheckpoints.tenantId, tenant), gte(auditCheckpoints.seq, fromSeq), lte(auditCheckpoints.seq, toSeq)))
    .orderBy(desc(auditCheckpoints.seq), desc(sql`${auditCheckpoints.keyId} = ${keyId ?? ""}`))
    .limit(1)
    .get();
  return row ? { seq: row.seq, hash: row.hash } : undefined;
}

export interface VerifyStoredOptions {
  /** Verify from this seq: snapped down to the nearest checkpointed seq before it (default: the whole D1 copy). */
  fromSeq?: number | undefined;
  /** Called with entries read and the number expected, at the start, every {@link VERIFY_PROGRESS_EVERY}, and at the end. */
  onProgress?: ((verified: number, total: number) => void | Promise<void>) | undefined;
}

/**
 * Verifies the tenant's D1 copy online: every entry's hash and link, every checkpoint's signature (the AuditLog
 * object's public key) and hash, and the end against the object's live head, so a deleted tail shows even after
 * the last checkpoint. Flushes the object first so D1 holds everything up to the head; entries appended meanwhile
 * (beyond that head) are not read. A pruned copy starts after its first retained entry's predecessor, which its
 * kept checkpoint must vouch for. Streams: pages of entries and checkpoints, merged in seq order, each checkpoint
 * fed before the entry of its seq. Two checks beyond the chain's own, once it verified:
 * - the object's latest checkpoint must be in D1 (the flush shipped it): missing = deleted there
 *   (`checkpoint-mismatch` at its seq);
 * - D1 must hold nothing beyond the object's head (read after the chain): such a row was never written by the
 *   gateway (`beyond-head` at its seq).
 * Throws only when the object or D1 fails; every finding about the data is in the result.
 */
export async function verifyStoredChain(env: Env, tenant: string, options: VerifyStoredOptions = {}): Promise<ChainVerifyResult> {
  const stub = auditLog(env, tenant);
  const { state, shipped } = await shippedState(stub, tenant);
  const key = (await stub.publicKey()) as { publicKey: string; keyId: string } | null;
  const db = database(env.DB);
  const head = state.head;
  const start = await chainStart(db, tenant, Math.max(0, (options.fromSeq ?? 1) - 1), head.seq, key?.keyId ?? null);
  // Oldest entries missing beyond what retention pruned were deleted by someone else: pruning would look the same.
  const prunedSeq = state.prunedSeq ?? 0;
  const firstSeq = await firstStoredSeq(db, tenant);
  if (firstSeq !== undefined && firstSeq - 1 > prunedSeq && (options.fromSeq ?? 1) - 1 <= prunedSeq) {
    const message = `entries ${prunedSeq + 1}…${firstSeq - 1} are missing from the start of the D1 copy, but retention deleted only through seq ${prunedSeq}`;
    return { ok: false, failure: { seq: prunedSeq + 1, reason: "gap", message }, entries: 0, checkpoints: 0 };
  }
  const verifier = new ChainVerifier({
    tenant,
    // The current key and the retired ones: checkpoints signed before a rotation of AUDIT_SIGNING_KEY still verify.
    ...(key || retiredPublicKeys(env).length > 0 ? { publicKeys: [...(key ? [key.publicKey] : []), ...retiredPublicKeys(env)] } : {}),
    start,
    expectedHead: head,
  });
  const total = Math.max(0, head.seq - start.seq);
  const progress = options.onProgress ?? (() => undefined);
  const latest = state.checkpoint;
  let latestStored = false;

  const checkpoints = storedCheckpoints(db, tenant, start.seq, head.seq);
  let pending = await checkpoints.next();
  /** Feeds every checkpoint up to `seq` (those at `seq` wait in the verifier for their entry). */
  const feedCheckpoints = async (seq: number): Promise<void> => {
    while (!pending.done && pending.value.seq <= seq && !verifier.settled) {
      const checkpoint = pending.value;
      if (latest && checkpoint.seq === latest.seq && checkpoint.keyId === latest.keyId && checkpoint.signature === latest.signature) latestStored = true;
      verifier.checkpoint(checkpoint);
      pending = await checkpoints.next();
    }
  };

  let read = 0;
  await progress(0, total);
  try {
    await feedCheckpoints(start.seq);
    if (!verifier.settled) {
      for await (const item of storedEntries(db, tenant, start.seq + 1, head.seq)) {
        await feedCheckpoints(item.seq);
        if (verifier.settled) break;
        if (isMalformedStored(item)) verifier.malformed(item.message, undefined, item.seq);
        else verifier.entry(item);
        if (++read % VERIFY_PROGRESS_EVERY === 0) await progress(read, total);
        if (verifier.settled) break;
      }
    }
    // Checkpoints beyond the last entry: evidence of a deleted tail.
    await feedCheckpoints(Number.MAX_SAFE_INTEGER);
  } finally {
    await checkpoints.return(undefined);
  }
  if (read % VERIFY_PROGRESS_EVERY !== 0) await progress(read, total);
  const result = verifier.finish();
  if (!result.ok) return result;
  const failed = (failure: ChainFailure): ChainVerifyFailed => ({ ok: false, failure, entries: result.entries, checkpoints: result.checkpoints });
  // The object's latest checkpoint was shipped by the flush: missing from D1, it was deleted there.
  if (shipped && latest && latest.seq >= start.seq && !latestStored) {
    return failed({
      seq: latest.seq,
      reason: "checkpoint-mismatch",
      message: `the AuditLog object's latest signed checkpoint (seq ${latest.seq}) is not in D1: it was deleted there`,
    });
  }
  // Rows beyond the object's head were never written by it: forged. D1's extent is read BEFORE the head, so an entry
  // appended and shipped in between is under the head read after it, never mistaken for a forgery.
  const extent = await db
    .select({ low: sql<number | null>`min(${auditEntries.seq})`, high: sql<number | null>`max(${auditEntries.seq})` })
    .from(auditEntries)
    .where(eq(auditEntries.tenantId, tenant))
    .get();
  if (extent?.low != null && Number(extent.low) < 1) {
    return failed({ seq: Number(extent.low), reason: "malformed", message: `D1 holds seq ${extent.low}: a chain starts at seq 1, so the gateway never wrote it` });
  }
  const now = (await stub.state()) as AuditLogState;
  if (extent?.high != null && Number(extent.high) > now.head.seq) {
    const beyond = await db
      .select({ seq: sql<number | null>`min(${auditEntries.seq})` })
      .from(auditEntries)
      .where(and(eq(auditEntries.tenantId, tenant), gt(auditEntries.seq, now.head.seq)))
      .get();
    const seq = Number(beyond?.seq ?? extent.high);
    return failed({
      seq,
      reason: "beyond-head",
      message: `D1 holds seq ${seq}, beyond the AuditLog object's head (seq ${now.head.seq}): an entry the gateway never wrote was inserted`,
    });
  }
  return result;
}

export interface ExportStoredOptions {
  fromSeq?: number | undefined;
  toSeq?: number | undefined;
  format: "jsonl" | "csv";
}

/**
 * The lines (without terminators) of an export of the tenant's D1 copy, after flushing the AuditLog object.
 *
 * JSONL (docs/audit-chain.md, verifiable offline with the object's public key): the header names the object's key
 * id, `start`, and as `head` the object's live head (or, for `toSeq` below it, the entry at `toSeq`), so a tail
 * missing from D1 shows offline too. A partial export starts right after a checkpointed seq: `fromSeq` snaps DOWN
 * to the nearest checkpoint before it (the header's `start`, with that checkpoint as the anchor line), so the file
 * may begin a little earlier than asked. The order of lines is exportLines' (export-format.ts), with checkpoints
 * read in pages rather than held in memory.
 *
 * CSV (for people): the header row and one row per entry with fromSeq ≤ seq ≤ toSeq, no snapping.
 */
export async function* exportStoredLines(env: Env, tenant: string, options: ExportStoredOptions): AsyncGenerator<string> {
  const stub = auditLog(env, tenant);
  const { state, shipped } = await shippedState(stub, tenant);
  const db = database(env.DB);
  const headSeq = Math.min(options.toSeq ?? Number.MAX_SAFE_INTEGER, state.head.seq);
  if (options.format === "csv") {
    yield AUDIT_CSV_HEADER;
    for await (const item of storedEntries(db, tenant, Math.max(1, options.fromSeq ?? 1), headSeq)) yield entryToCsvRow(storedEntryOf(item));
    return;
  }
  const key = (await stub.publicKey()) as { publicKey: string; keyId: string } | null;
  const start = await chainStart(db, tenant, Math.max(0, (options.fromSeq ?? 1) - 1), headSeq, key?.keyId ?? null);
  const last = Math.max(start.seq, headSeq);
  const head = last === state.head.seq && shipped ? state.head : await exportHead(db, tenant, start, last);
  yield exportHeaderLine({ tenant, keyId: key?.keyId ?? null, start, head, exportedAt: Date.now() });

  // Up to the requested end, not the header's head: a checkpoint past a tail deleted from D1 must still show.
  const checkpoints = storedCheckpoints(db, tenant, start.seq, Math.max(head.seq, last));
  try {
    let pending = await checkpoints.next();
    while (!pending.done && pending.value.seq <= start.seq) {
      yield exportCheckpointLine(pending.value);
      pending = await checkpoints.next();
    }
    for await (const item of storedEntries(db, tenant, start.seq + 1, head.seq)) {
      // A checkpoint whose entry is missing goes where that entry should have been: the verifier reports the gap.
      while (!pending.done && pending.value.seq < item.seq) {
        yield exportCheckpointLine(pending.value);
        pending = await checkpoints.next();
      }
      yield exportEntryLine(storedEntryOf(item));
      while (!pending.done && pending.value.seq === item.seq) {
        yield exportCheckpointLine(pending.value);
        pending = await checkpoints.next();
      }
    }
    while (!pending.done) {
      yield exportCheckpointLine(pending.value);
      pending = await checkpoints.next();
    }
  } finally {
    await checkpoints.return(undefined);
  }
}

/**
 * The header's head for an export ending at `seq` below the live head (or when D1 could not be brought up to it):
 * the entry at `seq`; if D1 lacks it, `seq` with the next entry's prevHash; else the last entry before it.
 */
async function exportHead(db: Database, tenant: string, start: ChainHead, seq: number): Promise<ChainHead> {
  if (seq <= start.seq) return start;
  const rows = await db
    .select({ seq: auditEntries.seq, hash: auditEntries.hash, prevHash: auditEntries.prevHash })
    .from(auditEntries)
    .where(and(eq(auditEntries.tenantId, tenant), gte(auditEntries.seq, seq), lte(auditEntries.seq, seq + 1)))
    .orderBy(asc(auditEntries.seq))
    .all();
  const at = rows.find((row) => row.seq === seq);
  if (at) return { seq, hash: at.hash };
  const after = rows.find((row) => row.seq === seq + 1);
  if (after) return { seq, hash: after.prevHash };
  const before = await db
    .select({ seq: auditEntries.seq, hash: auditEntries.hash })
    .from(auditEntries)
    .where(and(eq(auditEntries.tenantId, tenant), gt(auditEntries.seq, start.seq), lt(auditEntries.seq, seq)))
    .orderBy(desc(auditEntries.seq))
    .limit(1)
    .get();
  return before ?? start;
}
