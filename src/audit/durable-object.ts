/**
 * @module The AuditLog Durable Object, one per tenant (decision D4): the only writer of the tenant's hash chain.
 *
 * - {@link AuditLogDurableObject.append} reads the head, hashes the entry onto it and stores it in ONE
 *   `transactionSync` with no await inside, so concurrent requests make one linear chain and nothing can interleave.
 *   The RPC resolves only once the write is durable (the output gate), so an entry is stored before the agent that
 *   caused it gets its response.
 * - Every {@link CHECKPOINT_EVERY_DEFAULT} entries (in the same transaction) and at the latest
 *   {@link CHECKPOINT_INTERVAL_DEFAULT_MS} after an unsigned entry (by alarm), the head is signed with the Worker
 *   secret AUDIT_SIGNING_KEY (Ed25519, src/audit/checkpoint.ts).
 * - An alarm ships entries and checkpoints to D1 in batches with `INSERT OR IGNORE`, then marks them shipped and
 *   drops the shipped entries from the object's own storage. A failure anywhere (D1, the alarm, an eviction) leaves
 *   the rows unshipped and the next attempt (backed off, never given up) sends them again: idempotent, nothing lost.
 *
 * The object keeps only the head, the checkpoints and what D1 does not have yet; D1 is the queryable copy.
 */
import { DurableObject } from "cloudflare:workers";
import { appendEntry, GENESIS_HEAD } from "./chain.ts";
import { type AuditCheckpoint, publicKeyFromPrivate, publicKeyId, signCheckpoint } from "./checkpoint.ts";
import type { AuditEntry, AuditFields, ChainHead } from "./entry.ts";
import { checkpointToRow, entryToRow } from "./rows.ts";
import { pruneAnchor } from "./retention.ts";
import { AuditDelivery, hasDeliverySinks } from "./delivery.ts";
import { and, eq, lt, lte } from "drizzle-orm";
import { tenantConfig } from "../config/tenant-config.ts";
import { database } from "../db/client.ts";
import { auditCheckpoints, auditEntries } from "../db/schema.ts";
import { cursorMoved, readUsageCursor, usageWrite } from "../metering/usage-write.ts";
import type { Env } from "../env.ts";
import { log } from "../log.ts";

export const CHECKPOINT_EVERY_DEFAULT = 1_000;
export const CHECKPOINT_INTERVAL_DEFAULT_MS = 60_000;
/** Appends within this delay ship together. */
const SHIP_DELAY_MS = 200;
/** Entries per D1 batch: one statement each (23 bound values, under D1's 100 per statement), plus their usage. */
const SHIP_BATCH = 200;
/** Shipping retries back off exponentially up to this, and never give up. */
const MAX_RETRY_DELAY_MS = 60_000;
/** Retention is applied at most this often. */
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** What {@link AuditLogDurableObject.state} reports. */
export interface AuditLogState {
  tenant: string | null;
  head: ChainHead;
  /** The last seq D1 holds (everything up to it was shipped). */
  shippedSeq: number;
  /** The latest signed checkpoint, or null. */
  checkpoint: AuditCheckpoint | null;
  /** Consecutive failed shipping attempts (0 when D1 is up to date or the last attempt succeeded). */
  shipFailures: number;
  /** Retention deleted D1's entries up to and including this seq (0: none): the D1 copy must start right after it. */
  prunedSeq: number;
}

/** What an append returns: where the entry landed. */
export interface AuditReceipt {
  seq: number;
  hash: string;
}

interface SigningKey {
  privateKey: string;
  publicKey: string;
  keyId: string;
}

interface StateRow {
  tenant: string | null;
  seq: number;
  hash: string;
  shipped_seq: number;
  checkpoint_seq: number;
  checkpoint_time: number;
  ship_failures: number;
  pruned_at: number;
  pruned_seq: number;
  [column: string]: SqlStorageValue;
}

export class AuditLogDurableObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly signingKey: SigningKey | undefined;
  private readonly checkpointEvery: number;
  private readonly checkpointIntervalMs: number;
  /** When the alarm is known to be set for; undefined after an eviction, when setting one again is harmless. */
  private alarmAt: number | undefined;
  /** Webhook and R2 delivery of what D1 holds (src/audit/delivery.ts), with its cursors in this object's storage. */
  private readonly delivery: AuditDelivery;
  /** One shipping run at a time (the alarm and flush() may both ask). */
  private shipping: Promise<void> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        tenant TEXT,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        shipped_seq INTEGER NOT NULL DEFAULT 0,
        checkpoint_seq INTEGER NOT NULL DEFAULT 0,
        checkpoint_time INTEGER NOT NULL DEFAULT 0,
        ship_failures INTEGER NOT NULL DEFAULT 0,
        pruned_at INTEGER NOT NULL DEFAULT 0,
        pruned_seq INTEGER NOT NULL DEFAULT 0
      );
      INSERT OR IGNORE INTO state (id, tenant, seq, hash) VALUES (1, NULL, 0, '${GENESIS_HEAD.hash}');
      CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, json TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS checkpoints (seq INTEGER NOT NULL, key_id TEXT NOT NULL, json TEXT NOT NULL, shipped INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (seq, key_id));
    `);
    this.signingKey = signingKeyFrom(env.AUDIT_SIGNING_KEY);
    this.checkpointEvery = positiveInt(env.AUDIT_CHECKPOINT_EVERY, CHECKPOINT_EVERY_DEFAULT);
    this.checkpointIntervalMs = positiveInt(env.AUDIT_CHECKPOINT_SECONDS, CHECKPOINT_INTERVAL_DEFAULT_MS / 1000) * 1000;
    this.delivery = new AuditDelivery(env, this.sql);
  }

  /**
   * Appends one entry to the chain. Throws a TypeError for fields that are not an entry's (a programming error) or
   * of another tenant than this object's; storage failures throw as they come. Either way nothing is written.
   */
  async append(fields: AuditFields): Promise<AuditReceipt> {
    let shipFailures = 0;
    const entry = this.ctx.storage.transactionSync(() => {
      const state = this.readState();
      if (state.tenant !== null && state.tenant !== fields.tenant) {
        throw new TypeError(`this audit log belongs to tenant "${state.tenant}", not "${fields.tenant}"`);
      }
      if (this.ctx.id.name !== undefined && this.ctx.id.name !== fields.tenant) {
        throw new TypeError(`this audit log is named "${this.ctx.id.name}", not "${fields.tenant}"`);
      }
      shipFailures = state.ship_failures;
      const appended = appendEntry({ seq: state.seq, hash: state.hash }, fields);
      this.sql.exec("INSERT INTO entries (seq, json) VALUES (?, ?)", appended.seq, JSON.stringify(appended));
      this.sql.exec("UPDATE state SET tenant = ?, seq = ?, hash = ? WHERE id = 1", appended.tenant, appended.seq, appended.hash);
      // The interval of the first checkpoint counts from the first entry, not from the epoch.
      if (state.checkpoint_time === 0) this.sql.exec("UPDATE state SET checkpoint_time = ? WHERE id = 1", Date.now());
      // Signed at the time of signing, never an entry's own timestamp: requests that started earlier may land later.
      if (appended.seq - state.checkpoint_seq >= this.checkpointEvery) this.checkpoint(appended.tenant, appended, Date.now());
      return appended;
    });
    await this.scheduleShipping(shipFailures);
    return { seq: entry.seq, hash: entry.hash };
  }

  /** The live head, shipping progress and latest checkpoint. */
  async state(): Promise<AuditLogState> {
    const state = this.readState();
    return {
      tenant: state.tenant,
      head: { seq: state.seq, hash: state.hash },
      shippedSeq: state.shipped_seq,
      checkpoint: this.latestCheckpoint(),
      shipFailures: state.ship_failures,
      prunedSeq: state.pruned_seq,
    };
  }

  /** The public half of the signing key (null without one), for verifiers. */
  async publicKey(): Promise<{ publicKey: string; keyId: string } | null> {
    return this.signingKey ? { publicKey: this.signingKey.publicKey, keyId: this.signingKey.keyId } : null;
  }

  /**
   * Signs the head now when entries came after the last checkpoint, and ships everything to D1; resolves with the
   * state after. Throws when D1 refuses (the alarm keeps retrying regardless).
   */
  async flush(): Promise<AuditLogState> {
    this.ctx.storage.transactionSync(() => this.checkpointIfBehind(Date.now()));
    await this.ship();
    return this.state();
  }

  /** Ships everything to D1 without signing a checkpoint (for readers: a read must not make the object sign). */
  async sync(): Promise<AuditLogState> {
    await this.ship();
    return this.state();
  }

  override async alarm(): Promise<void> {
    this.alarmAt = undefined;
    const now = Date.now();
    try {
      this.ctx.storage.transactionSync(() => {
        const state = this.readState();
        if (now - state.checkpoint_time >= this.checkpointIntervalMs) this.checkpointIfBehind(now);
      });
      await this.ship();
      this.sql.exec("UPDATE state SET ship_failures = 0 WHERE id = 1");
      await this.pruneIfDue(now);
      const state = this.readState();
      // Entries after the last checkpoint get one within the interval, even if no more come.
      if (this.signingKey && state.seq > state.checkpoint_seq) await this.scheduleAlarm(state.checkpoint_time + this.checkpointIntervalMs);
      const deliverAt = await this.deliver(state, now);
      if (deliverAt !== null) await this.scheduleAlarm(deliverAt);
    } catch (error) {
      this.sql.exec("UPDATE state SET ship_failures = ship_failures + 1 WHERE id = 1");
      const failures = this.readState().ship_failures;
      const delay = Math.min(MAX_RETRY_DELAY_MS, SHIP_DELAY_MS * 2 ** Math.min(failures, 20));
      log({ event: "audit.ship_failed", tenant: this.readState().tenant, failures, retryInMs: delay, detail: (error as Error).message }, "error");
      // Our own retry schedule, not the runtime's (which gives up after a few attempts): the rows wait in storage.
      await this.scheduleAlarm(now + delay, true);
    }
  }

  /**
   * Retention: at most once per {@link PRUNE_INTERVAL_MS}, deletes from D1 the entries of the tenant older than its
   * `audit.retentionDays`, up to and including the newest checkpoint signed before the cutoff, and the checkpoints
   * before that one. What remains starts right after a kept checkpoint, so it still verifies (docs/audit-chain.md).
   * Without checkpoints (no signing key) nothing is pruned. A failure is logged and tried again at the next alarm.
   */
  private async pruneIfDue(now: number): Promise<void> {
    const state = this.readState();
    if (state.tenant === null || now - state.pruned_at < PRUNE_INTERVAL_MS) return;
    try {
      const db = database(this.env.DB);
      const days = (await tenantConfig(db, state.tenant)).published?.audit?.retentionDays;
      this.sql.exec("UPDATE state SET pruned_at = ? WHERE id = 1", now);
      if (days === undefined) return;
      const anchor = pruneAnchor(this.shippedCheckpoints(), state.shipped_seq, now - days * DAY_MS);
      if (!anchor) return;
      // The intent first: a verification running while the delete is under way must not see a "gap" the object
      // did not declare (and one that failed leaves D1 holding more than declared, which verifies as well).
      this.sql.exec("UPDATE state SET pruned_seq = MAX(pruned_seq, ?) WHERE id = 1", anchor.seq);
      await db.batch([
        db.delete(auditEntries).where(and(eq(auditEntries.tenantId, state.tenant), lte(auditEntries.seq, anchor.seq))),
        db.delete(auditCheckpoints).where(and(eq(auditCheckpoints.tenantId, state.tenant), lt(auditCheckpoints.seq, anchor.seq))),
      ]);
      this.sql.exec("DELETE FROM checkpoints WHERE seq < ?", anchor.seq);
      log({ event: "audit.pruned", tenant: state.tenant, throughSeq: anchor.seq, retentionDays: days });
    } catch (error) {
      log({ event: "audit.prune_failed", tenant: state.tenant, detail: (error as Error).message }, "error");
    }
  }

  private shippedCheckpoints(): AuditCheckpoint[] {
    return this.sql
      .exec<{ json: string }>("SELECT json FROM checkpoints WHERE shipped = 1 ORDER BY seq")
      .toArray()
      .map((row) => JSON.parse(row.json) as AuditCheckpoint);
  }

  private readState(): StateRow {
    return this.sql.exec<StateRow>("SELECT tenant, seq, hash, shipped_seq, checkpoint_seq, checkpoint_time, ship_failures, pruned_at, pruned_seq FROM state WHERE id = 1").one();
  }

  private latestCheckpoint(): AuditCheckpoint | null {
    const row = this.sql.exec<{ json: string }>("SELECT json FROM checkpoints ORDER BY seq DESC LIMIT 1").toArray()[0];
    return row ? (JSON.parse(row.json) as AuditCheckpoint) : null;
  }

  /** Signs a checkpoint of the head when it moved since the last one. Inside a transaction. */
  private checkpointIfBehind(now: number): void {
    const state = this.readState();
    if (state.tenant !== null && state.seq > state.checkpoint_seq) this.checkpoint(state.tenant, { seq: state.seq, hash: state.hash }, now);
  }

  /** Signs and stores a checkpoint of `head` (no-op without a signing key). Inside a transaction. */
  private checkpoint(tenant: string, head: ChainHead, time: number): void {
    if (!this.signingKey) return;
    const checkpoint = signCheckpoint({ tenant, seq: head.seq, hash: head.hash, time }, this.signingKey.privateKey);
    this.sql.exec("INSERT OR IGNORE INTO checkpoints (seq, key_id, json) VALUES (?, ?, ?)", checkpoint.seq, checkpoint.keyId, JSON.stringify(checkpoint));
    this.sql.exec("UPDATE state SET checkpoint_seq = ?, checkpoint_time = ? WHERE id = 1", head.seq, time);
  }

  /**
   * Ships soon after an append; but while D1 is failing the backoff's alarm stands (appends must not turn it into a
   * tight loop), and only a missing alarm (after an eviction) is set again.
   */
  private async scheduleShipping(shipFailures: number): Promise<void> {
    if (shipFailures === 0) return this.scheduleAlarm(Date.now() + SHIP_DELAY_MS);
    if (this.alarmAt !== undefined) return;
    const at = await this.ctx.storage.getAlarm();
    if (at === null) await this.scheduleAlarm(Date.now() + SHIP_DELAY_MS);
    else this.alarmAt = at;
  }

  /** Webhook and R2 delivery (never throws); when it wants to run again, or null. */
  private async deliver(state: StateRow, now: number): Promise<number | null> {
    if (state.tenant === null) return null;
    const audit = (await tenantConfig(database(this.env.DB), state.tenant).catch(() => undefined))?.published?.audit;
    if (!hasDeliverySinks(audit)) return null;
    return this.delivery.deliver(state.tenant, audit, state.shipped_seq, now);
  }

  /**
   * Sets the alarm for `at` unless one is already set for earlier: the earliest wish wins. `force` (a retry's
   * backoff) sets it regardless, so appends during an outage do not turn the backoff into a tight loop.
   */
  private async scheduleAlarm(at: number, force = false): Promise<void> {
    if (!force && this.alarmAt !== undefined && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  private ship(): Promise<void> {
    // A run already going will pick up what was appended meanwhile (it loops until nothing is left).
    this.shipping ??= this.shipAll().finally(() => (this.shipping = undefined));
    return this.shipping;
  }

  /**
   * Ships everything unshipped to D1, batch by batch. Each batch also adds its entries' usage to `usage_hourly`
   * (src/metering/usage-write.ts) in the same D1 transaction, guarded by the tenant's `usage_cursor`: the cursor is
   * expected where this object's shipping left it; when it is not (a lost acknowledgement moved it, or usage began
   * after the chain did), the batch's usage is not applied, the cursor is read, and the batch is shipped again with
   * only the entries beyond it folded. So usage counts every shipped entry exactly once.
   */
  private async shipAll(): Promise<void> {
    const db = database(this.env.DB);
    /** D1's usage cursor, once read or moved by this run; until then assumed to be shipped_seq. */
    let usageCursor: number | undefined;
    let cursorRead = false;
    for (;;) {
      const state = this.readState();
      const entries = this.sql
        .exec<{ json: string }>("SELECT json FROM entries WHERE seq > ? ORDER BY seq LIMIT ?", state.shipped_seq, SHIP_BATCH)
        .toArray()
        .map((row) => JSON.parse(row.json) as AuditEntry);
      const checkpoints = this.sql
        // With their entries, never ahead of them (D1 would show a checkpoint past its last entry: a "deleted tail"),
        // and a bounded number per batch (after a long outage there can be thousands).
        .exec<{ json: string }>("SELECT json FROM checkpoints WHERE shipped = 0 AND seq <= ? ORDER BY seq LIMIT 50", entries.at(-1)?.seq ?? state.shipped_seq)
        .toArray()
        .map((row) => JSON.parse(row.json) as AuditCheckpoint);
      if (entries.length === 0 && checkpoints.length === 0) return;
      const tenant = state.tenant ?? entries[0]?.tenant;
      const usage = tenant === undefined || tenant === null ? undefined : usageWrite(db, tenant, entries, usageCursor ?? state.shipped_seq);
      const statements = [
        ...entries.map((entry) => db.insert(auditEntries).values(entryToRow(entry)).onConflictDoNothing()),
        ...checkpoints.map((checkpoint) => db.insert(auditCheckpoints).values(checkpointToRow(checkpoint)).onConflictDoNothing()),
        ...(usage?.statements ?? []),
      ];
      const results = await db.batch(statements as [(typeof statements)[number], ...typeof statements]);
      if (usage?.movesCursor && !cursorMoved(results.at(-1))) {
        // The entries are in D1 now, their usage is not: read where the cursor is and ship the batch again.
        if (cursorRead) throw new Error("the usage cursor moved while this batch was shipped");
        usageCursor = await readUsageCursor(db, tenant as string);
        cursorRead = true;
        continue;
      }
      if (usage) usageCursor = usage.cursor;
      cursorRead = false;
      const last = entries.at(-1)?.seq ?? state.shipped_seq;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE state SET shipped_seq = MAX(shipped_seq, ?) WHERE id = 1", last);
        this.sql.exec("DELETE FROM entries WHERE seq <= ?", last);
        for (const checkpoint of checkpoints) this.sql.exec("UPDATE checkpoints SET shipped = 1 WHERE seq = ? AND key_id = ?", checkpoint.seq, checkpoint.keyId);
      });
    }
  }
}

/** The signing key from the secret, or undefined (logged) when it is unset or not a base64url Ed25519 seed. */
function signingKeyFrom(secret: string | undefined): SigningKey | undefined {
  if (!secret) return undefined;
  try {
    const publicKey = publicKeyFromPrivate(secret);
    return { privateKey: secret, publicKey, keyId: publicKeyId(publicKey) };
  } catch {
    log({ event: "audit.signing_key_invalid", detail: "AUDIT_SIGNING_KEY is not base64url of a 32-byte Ed25519 seed; checkpoints are not signed" }, "error");
    return undefined;
  }
}

function positiveInt(text: string | undefined, fallback: number): number {
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : fallback;
}
