/**
 * @module Delivery of a tenant's audit chain out of the gateway (docs/audit-chain.md, "Delivery: webhook, R2 and
 * S3"), run by the tenant's AuditLog Durable Object after each shipment to D1. It reads what D1 holds and sends it on:
 *
 * - **webhook** (`audit.webhook`): the entries in seq order, `batchSize` per POST, with the checkpoints they need,
 *   signed Stripe-style (`x-mcp-gateway-signature: t=<s>,v1=<HMAC-SHA256 hex of "<t>.<body>">`) under a per-tenant
 *   key derived from the Worker secret AUDIT_WEBHOOK_SECRET, with an idempotency id (`x-mcp-gateway-delivery`).
 * - **R2** (`audit.r2`, binding AUDIT_BUCKET): one JSONL export object per checkpoint interval, each verifiable on
 *   its own with `verifyExport` (export-format.ts) and the checkpoint public key.
 * - **S3** (`audit.s3`, secrets AUDIT_S3_ACCESS_KEY_ID and AUDIT_S3_SECRET_ACCESS_KEY): the same objects, same keys
 *   and bytes, PUT to any store with the S3-compatible API, signed with AWS Signature V4 (aws4fetch). R2 and S3
 *   share the per-checkpoint-object logic and differ only in their {@link ObjectStore}.
 *
 * Each sink has a cursor in the object's own SQLite (table `delivery_sinks`), moved only in the very statement that
 * records a success, so nothing is skipped and nothing is sent again after a success, even across restarts. A failure
 * leaves the cursor where it is and is retried with exponential backoff (1 s doubling to 5 min, jittered), for ever.
 * A batch, once tried, is persisted as it was first sent and resent identically under the same id until it succeeds.
 * {@link AuditDelivery.deliver} never throws: failures are logged (src/log.ts).
 *
 * The signature helpers ({@link webhookSigningKey}, {@link signWebhookBody}, {@link verifyWebhookSignature}), the
 * planning helpers and the S3 request builder ({@link s3PutRequest}) are pure, for receivers and tests.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { AwsV4Signer } from "aws4fetch";
import { and, asc, eq, gt, gte, lte } from "drizzle-orm";
import type { AuditCheckpoint } from "./checkpoint.ts";
import { type AuditEntry, type ChainHead, GENESIS_HASH } from "./entry.ts";
import { exportLines } from "./export-format.ts";
import { rowToCheckpoint, rowToEntry } from "./rows.ts";
import type { PublishedConfig } from "../config/publish.ts";
import { database, type Database } from "../db/client.ts";
import { auditCheckpoints, auditEntries } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { log } from "../log.ts";

export const WEBHOOK_SIGNATURE_HEADER = "x-mcp-gateway-signature";
export const WEBHOOK_DELIVERY_HEADER = "x-mcp-gateway-delivery";
/** Domain separation of the per-tenant webhook key: HMAC-SHA256(secret, this + tenant). */
export const WEBHOOK_KEY_CONTEXT = "mcp-gateway audit webhook v1\n";
/** How old (or how far ahead) a signature's timestamp may be for {@link verifyWebhookSignature} by default. */
export const WEBHOOK_TOLERANCE_S = 300;
/** A webhook receiver or S3 endpoint that has not answered within this is a failure (retried). */
export const WEBHOOK_TIMEOUT_MS = 10_000;
export const WEBHOOK_BATCH_DEFAULT = 100;
export const R2_PREFIX_DEFAULT = "audit/";
/** The S3 sink writes the R2 sink's objects: the same default prefix. */
export const S3_PREFIX_DEFAULT = R2_PREFIX_DEFAULT;
/** The content type of an audit object, in R2 and S3 alike. */
export const OBJECT_CONTENT_TYPE = "application/x-ndjson; charset=utf-8";
/** Retry delays: base × 2^(failures − 1), capped, then jittered down by at most half. */
export const RETRY_BASE_MS = 1_000;
export const RETRY_MAX_MS = 5 * 60_000;
/** Batches (webhook) or objects (R2, S3) per sink per call; more pending = call again at once. */
const MAX_ROUNDS = 10;
/** Entries per D1 read. */
const READ_PAGE = 200;
/** Checkpoints per webhook batch at most (a sink far behind catches up over several batches). */
const MAX_BATCH_CHECKPOINTS = 1_000;
/** A run holds its sink for the webhook timeout plus this at most (a crash mid-delivery frees it after that). */
const LEASE_MARGIN_MS = 20_000;

export type AuditDeliveryConfig = NonNullable<PublishedConfig["audit"]>;
export type DeliverySinkName = "webhook" | "r2" | "s3";

/** Whether `audit` names any sink {@link AuditDelivery.deliver} delivers to (the AuditLog object skips it otherwise). */
export function hasDeliverySinks(audit: PublishedConfig["audit"] | undefined): boolean {
  return !!(audit?.webhook || audit?.r2 || audit?.s3);
}

// ---------------------------------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------------------------------

/** A tenant's webhook signing key: HMAC-SHA256(key = UTF-8 of the secret, message = UTF-8 of the context + tenant). */
export function webhookSigningKey(secret: string, tenant: string): Uint8Array {
  return hmac(sha256, utf8ToBytes(secret), utf8ToBytes(WEBHOOK_KEY_CONTEXT + tenant));
}

function bodyBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? utf8ToBytes(body) : body;
}

/** Lowercase hex HMAC-SHA256 over `"<t>." ‖ body` (the raw bytes, as sent). */
export function webhookSignature(key: Uint8Array, timestampS: number, body: string | Uint8Array): string {
  return bytesToHex(hmac.create(sha256, key).update(utf8ToBytes(`${timestampS}.`)).update(bodyBytes(body)).digest());
}

/** The signature header for `body` sent at `nowMs`: `t=<epoch seconds>,v1=<hex>`. */
export function signWebhookBody(key: Uint8Array, body: string | Uint8Array, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${webhookSignature(key, t, body)}`;
}

/** Compares two strings in time independent of where they differ. */
function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Whether `header` (an `x-mcp-gateway-signature` value) is a valid signature of `body` (the raw request body, not a
 * re-serialisation) under `key` ({@link webhookSigningKey}), with a timestamp within `toleranceS` seconds of `nowMs`
 * (epoch milliseconds) either way, which stops replays of an old delivery. Several `v1=` values are accepted (any
 * may match); unknown schemes are ignored. Never throws.
 */
export function verifyWebhookSignature(key: Uint8Array, header: string | null | undefined, body: string | Uint8Array, nowMs: number, toleranceS = WEBHOOK_TOLERANCE_S): boolean {
  if (typeof header !== "string" || header.length > 4096) return false;
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === "t") {
      if (t !== undefined || !/^\d{1,15}$/.test(value)) return false;
      t = Number(value);
    } else if (name === "v1" && /^[0-9a-fA-F]{64}$/.test(value)) signatures.push(value.toLowerCase());
  }
  if (t === undefined || signatures.length === 0) return false;
  if (Math.abs(Math.floor(nowMs / 1000) - t) > toleranceS) return false;
  let expected: string;
  try {
    expected = webhookSignature(key, t, body);
  } catch {
    return false;
  }
  let ok = false;
  for (const signature of signatures) ok = timingSafeEqual(signature, expected) || ok;
  return ok;
}

/** The idempotency id of a batch: the same range always gets the same id. */
export function webhookDeliveryId(tenant: string, fromSeq: number, toSeq: number): string {
  return `${tenant}:${fromSeq}-${toSeq}`;
}

/** What a webhook POST carries. `fromSeq = toSeq + 1` (no entries) when it carries only late checkpoints. */
export interface WebhookPayload {
  tenant: string;
  batch: { fromSeq: number; toSeq: number };
  entries: AuditEntry[];
  checkpoints: AuditCheckpoint[];
}

export function webhookBody(payload: WebhookPayload): string {
  const { tenant, batch, entries, checkpoints } = payload;
  return JSON.stringify({ tenant, batch: { fromSeq: batch.fromSeq, toSeq: batch.toSeq }, entries, checkpoints });
}

/**
 * The next webhook batch: the entries `[fromSeq, toSeq]` to read from D1, `cursor` being the last delivered seq and
 * `firstSeq` the lowest seq D1 holds above it (null when none is at or below `shippedSeq`). Normally `fromSeq` is
 * `cursor + 1` and `toSeq` is `min(cursor + batchSize, shippedSeq)`; when D1 no longer holds the entries right after
 * the cursor (retention pruned them), the batch starts at `firstSeq` and `skipped` counts the lost seqs.
 */
export function planBatch(cursor: number, shippedSeq: number, batchSize: number, firstSeq: number | null): { fromSeq: number; toSeq: number; skipped: number } | null {
  if (firstSeq === null || firstSeq > shippedSeq || firstSeq <= cursor) return null;
  const size = Math.max(1, Math.floor(batchSize));
  return { fromSeq: firstSeq, toSeq: Math.min(firstSeq + size - 1, shippedSeq), skipped: firstSeq - cursor - 1 };
}

/**
 * The delay before retry number `failures` (1 = after the first failure): `min(RETRY_MAX_MS, RETRY_BASE_MS ×
 * 2^(failures − 1))`, of which a random part of up to half is taken off (jitter, so many tenants failing together do
 * not retry together). `random` returns [0, 1).
 */
export function retryDelayMs(failures: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(failures) - 1), 30);
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(ceiling - (ceiling / 2) * r);
}

/** A seq as 16 decimal digits, so object keys sort in chain order. */
export function padSeq(seq: number): string {
  return String(seq).padStart(16, "0");
}

/** The R2 key of the object holding the entries `(startSeq, endSeq]`: `<prefix><tenant>/<start>-<end>.jsonl`. */
export function r2ObjectKey(prefix: string, tenant: string, startSeq: number, endSeq: number): string {
  return `${prefix}${tenant}/${padSeq(startSeq)}-${padSeq(endSeq)}.jsonl`;
}

/**
 * The text of one R2 object: a complete JSONL export of the entries `(start.seq, end.seq]`, anchored by the
 * checkpoint(s) at `start` (none at the genesis) and closed by those at `end`, so it verifies on its own. Identical
 * for identical input (`exportedAt` is the end checkpoint's signing time), so a retried write writes the same bytes.
 */
export async function r2ObjectText(source: {
  tenant: string;
  start: ChainHead;
  startCheckpoints: readonly AuditCheckpoint[];
  entries: Iterable<AuditEntry> | AsyncIterable<AuditEntry>;
  endCheckpoints: readonly AuditCheckpoint[];
}): Promise<string> {
  const end = source.endCheckpoints[0];
  if (!end) throw new TypeError("an R2 object ends at a checkpoint");
  const lines: string[] = [];
  for await (const line of exportLines({
    tenant: source.tenant,
    start: source.start,
    entries: source.entries,
    checkpoints: [...source.startCheckpoints, ...source.endCheckpoints],
    head: { seq: end.seq, hash: end.hash },
    keyId: end.keyId,
    exportedAt: Math.max(...source.endCheckpoints.map((c) => c.time)),
  })) {
    lines.push(line);
  }
  return `${lines.join("\n")}\n`;
}

/** The metadata of the object `(startSeq, endSeq]`: R2 custom metadata, S3 `x-amz-meta-*` headers. */
export function objectMetadata(tenant: string, startSeq: number, end: Pick<AuditCheckpoint, "seq" | "keyId">): Record<string, string> {
  return { tenant, startSeq: String(startSeq), endSeq: String(end.seq), keyId: end.keyId };
}

/**
 * Where the R2 and S3 sinks write an object: the only thing that differs between them. `put` resolves once the store
 * holds exactly `text` under `key` and throws otherwise (a failure, retried). The same arguments always write the
 * same object, so a retry is harmless.
 */
export interface ObjectStore {
  put(key: string, text: string, metadata: Record<string, string>): Promise<void>;
}

/** An {@link ObjectStore} on an R2 binding; R2 checks the upload against its SHA-256. */
export function r2ObjectStore(bucket: R2Bucket): ObjectStore {
  return {
    async put(key, text, metadata) {
      await bucket.put(key, text, {
        httpMetadata: { contentType: OBJECT_CONTENT_TYPE },
        customMetadata: metadata,
        sha256: bytesToHex(sha256(utf8ToBytes(text))),
      });
    },
  };
}

/** An S3-compatible bucket (`audit.s3` without its prefix). */
export interface S3Target {
  /** https (or http to a loopback host) base URL of the API, e.g. https://<account>.r2.cloudflarestorage.com; may have a path. */
  endpoint: string;
  bucket: string;
  /** The SigV4 region ("auto" for R2's S3 API). */
  region: string;
  /** Path style `<endpoint>/<bucket>/<key>`, or virtual-host style `<scheme>://<bucket>.<endpoint host>/<key>`. */
  pathStyle: boolean;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * An object key as it goes into an S3 URL path: each `/`-separated segment percent-encoded as SigV4's canonical URI
 * wants it (everything but A-Z a-z 0-9 - . _ ~ as UTF-8 %XX), so the path sent is the path signed. A `.` or `..`
 * segment would be resolved away by URL parsing (another key than R2's): it is refused (the config refuses such
 * prefixes; tenant ids cannot be one).
 */
export function s3EncodeKey(key: string): string {
  return key
    .split("/")
    .map((segment) => {
      if (segment === "." || segment === "..") throw new TypeError(`an S3 object key cannot have a "${segment}" path segment: ${key}`);
      return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    })
    .join("/");
}

/** The URL of `key` in `target`'s bucket, path style or virtual-host style; the endpoint's own path (if any) comes first. */
export function s3ObjectUrl(target: Pick<S3Target, "endpoint" | "bucket" | "pathStyle">, key: string): string {
  const endpoint = new URL(target.endpoint);
  const base = endpoint.pathname.replace(/\/+$/, "");
  const bucket = encodeURIComponent(target.bucket);
  const host = target.pathStyle ? endpoint.host : `${bucket}.${endpoint.host}`;
  const path = target.pathStyle ? `${base}/${bucket}/${s3EncodeKey(key)}` : `${base}/${s3EncodeKey(key)}`;
  return `${endpoint.protocol}//${host}${path}`;
}

/** A signed S3 request, ready for fetch(). */
export interface S3Request {
  method: "PUT";
  url: string;
  headers: Headers;
  body: string;
}

/**
 * The `PUT` that writes one audit object to an S3-compatible store: `content-type` {@link OBJECT_CONTENT_TYPE},
 * `x-amz-meta-<name>` for each metadata entry (names lowercased, as S3 stores them), `x-amz-content-sha256` the
 * body's SHA-256 (so the store checks the upload, and the signature covers the bytes), signed with AWS Signature V4
 * (`authorization: AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/s3/aws4_request, SignedHeaders=…,
 * Signature=…`, `x-amz-date`). `datetime` (`YYYYMMDDTHHMMSSZ`) is for tests; default now.
 */
export async function s3PutRequest(target: S3Target, credentials: S3Credentials, key: string, text: string, metadata: Record<string, string>, datetime?: string): Promise<S3Request> {
  const headers = new Headers({ "content-type": OBJECT_CONTENT_TYPE, "x-amz-content-sha256": bytesToHex(sha256(utf8ToBytes(text))) });
  for (const [name, value] of Object.entries(metadata)) headers.set(`x-amz-meta-${name.toLowerCase()}`, value);
  const signed = await new AwsV4Signer({
    method: "PUT",
    url: s3ObjectUrl(target, key),
    headers,
    body: text,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    service: "s3",
    region: target.region,
    ...(datetime ? { datetime } : {}),
  }).sign();
  return { method: "PUT", url: signed.url.toString(), headers: signed.headers, body: text };
}

/** The first `limit` characters of a response body (an S3 error document), never more, never throwing. */
async function bodyPrefix(response: Response, limit = 2048): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // What was read is enough.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return text.slice(0, limit);
}

/** A failed S3 answer in a few words: the status and the error document's `<Code>` (e.g. SignatureDoesNotMatch). */
function s3Failure(status: number, body: string): string {
  const code = /<Code>([^<]{1,100})<\/Code>/.exec(body)?.[1];
  return `the store answered ${status}${code ? ` (${code})` : ""}`;
}

/**
 * fetch() that gives up after `timeoutMs` (an Error "no answer within <ms> ms"; other failures are "fetch failed:
 * …") and hands the response to `read` under the same timer, which is cleared as soon as `read` is done
 * (AbortSignal.timeout's would outlive the request by up to the whole timeout, holding the object's eviction back).
 * Redirects are not followed: a 3xx is an answer like any other.
 */
async function timedFetch<T>(url: string, init: RequestInit, timeoutMs: number, read: (response: Response) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
  try {
    const response = await fetch(url, { ...init, redirect: "manual", signal: abort.signal });
    return await read(response);
  } catch (error) {
    throw new Error(abort.signal.aborted ? `no answer within ${timeoutMs} ms` : `fetch failed: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** An {@link ObjectStore} on an S3-compatible API: one signed PUT per object; anything but a 2xx throws. */
export function s3ObjectStore(target: S3Target, credentials: S3Credentials, timeoutMs = WEBHOOK_TIMEOUT_MS): ObjectStore {
  return {
    async put(key, text, metadata) {
      const request = await s3PutRequest(target, credentials, key, text, metadata);
      const failure = await timedFetch(request.url, { method: request.method, headers: request.headers, body: request.body }, timeoutMs, async (response) => {
        if (response.status >= 200 && response.status <= 299) {
          await response.body?.cancel().catch(() => undefined);
          return undefined;
        }
        return s3Failure(response.status, await bodyPrefix(response));
      });
      if (failure !== undefined) throw new Error(failure);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The sinks, with their state in the Durable Object's SQLite
// ---------------------------------------------------------------------------------------------------------------

/** One sink's persisted state, as {@link AuditDelivery.sinks} reports it. */
export interface DeliverySinkState {
  sink: DeliverySinkName;
  /** Webhook: the last entry delivered. R2, S3: the end (a checkpoint) of the last object written. */
  cursorSeq: number;
  cursorHash: string;
  /** Webhook: checkpoints up to this seq were delivered. */
  checkpointSeq: number;
  /** A batch tried and not yet acknowledged: it is resent as it is, under the same id. */
  pending: { fromSeq: number; toSeq: number } | null;
  /** Consecutive failures (0 after a success). */
  failures: number;
  /** Epoch ms before which the sink is not tried again (0 = whenever). */
  retryAt: number;
  /** Batches or objects delivered so far. */
  delivered: number;
  lastError: string | null;
}

interface SinkRow {
  sink: string;
  cursor_seq: number;
  cursor_hash: string;
  checkpoint_seq: number;
  pending_from: number | null;
  pending_to: number | null;
  pending_checkpoints: string | null;
  failures: number;
  retry_at: number;
  lease_until: number;
  delivered: number;
  last_error: string | null;
  [column: string]: SqlStorageValue;
}

interface Batch {
  fromSeq: number;
  toSeq: number;
  checkpoints: AuditCheckpoint[];
}

/** A sink's outcome for one call: when to be called again (null = idle). */
type Next = number | null;

export interface AuditDeliveryOptions {
  /** Webhook and S3 request timeout; default {@link WEBHOOK_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** For tests: the jitter's random source. */
  random?: () => number;
}

export class AuditDelivery {
  private readonly env: Env;
  private readonly sql: SqlStorage;
  private readonly timeoutMs: number;
  private readonly random: () => number;
  private dbHandle: Database | undefined;

  constructor(env: Env, sql: SqlStorage, options: AuditDeliveryOptions = {}) {
    this.env = env;
    this.sql = sql;
    this.timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
    this.random = options.random ?? Math.random;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS delivery_sinks (
        sink TEXT PRIMARY KEY,
        cursor_seq INTEGER NOT NULL DEFAULT 0,
        cursor_hash TEXT NOT NULL DEFAULT '${GENESIS_HASH}',
        checkpoint_seq INTEGER NOT NULL DEFAULT 0,
        pending_from INTEGER,
        pending_to INTEGER,
        pending_checkpoints TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        retry_at INTEGER NOT NULL DEFAULT 0,
        lease_until INTEGER NOT NULL DEFAULT 0,
        delivered INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
      );
    `);
  }

  private get db(): Database {
    this.dbHandle ??= database(this.env.DB);
    return this.dbHandle;
  }

  /**
   * Delivers what D1 holds beyond each configured sink's cursor, up to `shippedSeq`; returns the epoch-ms time it
   * wants to be called again (a retry after a failure, or at once when more is pending than one call sends), or null
   * when every sink is idle. Never throws: failures are logged and retried later.
   */
  async deliver(tenant: string, audit: PublishedConfig["audit"] | undefined, shippedSeq: number, now: number): Promise<number | null> {
    const results = await Promise.all([
      audit?.webhook ? this.guarded("webhook", tenant, now, () => this.deliverWebhook(tenant, audit.webhook!, shippedSeq, now)) : null,
      audit?.r2 ? this.guarded("r2", tenant, now, () => this.deliverR2(tenant, audit.r2!, shippedSeq, now)) : null,
      audit?.s3 ? this.guarded("s3", tenant, now, () => this.deliverS3(tenant, audit.s3!, shippedSeq, now)) : null,
    ]);
    const times = results.filter((t): t is number => t !== null);
    return times.length === 0 ? null : Math.min(...times);
  }

  /** Every sink's state (for status pages and tests). */
  sinks(): DeliverySinkState[] {
    return this.sql
      .exec<SinkRow>("SELECT * FROM delivery_sinks ORDER BY sink")
      .toArray()
      .map((row) => ({
        sink: row.sink as DeliverySinkName,
        cursorSeq: row.cursor_seq,
        cursorHash: row.cursor_hash,
        checkpointSeq: row.checkpoint_seq,
        pending: row.pending_from === null || row.pending_to === null ? null : { fromSeq: row.pending_from, toSeq: row.pending_to },
        failures: row.failures,
        retryAt: row.retry_at,
        delivered: row.delivered,
        lastError: row.last_error,
      }));
  }

  private row(sink: DeliverySinkName): SinkRow {
    this.sql.exec("INSERT OR IGNORE INTO delivery_sinks (sink) VALUES (?)", sink);
    return this.sql.exec<SinkRow>("SELECT * FROM delivery_sinks WHERE sink = ?", sink).one();
  }

  /**
   * Runs one sink under its lease (so two runs never send the same batch at once), honouring its backoff; turns
   * anything thrown (D1 down, a bug) into a logged failure with backoff.
   */
  private async guarded(sink: DeliverySinkName, tenant: string, now: number, run: () => Promise<Next>): Promise<Next> {
    let leaseUntil: number | undefined;
    const started = Date.now();
    try {
      const row = this.row(sink);
      if (row.retry_at > now) return row.retry_at;
      if (row.lease_until > now) return row.lease_until;
      leaseUntil = now + this.timeoutMs + LEASE_MARGIN_MS;
      this.sql.exec("UPDATE delivery_sinks SET lease_until = ? WHERE sink = ?", leaseUntil, sink);
      return await run();
    } catch (error) {
      try {
        return this.failed(sink, tenant, now + Math.max(0, Date.now() - started), (error as Error).message);
      } catch {
        log({ event: "audit.delivery_failed", tenant, sink, detail: (error as Error).message }, "error");
        return now + RETRY_MAX_MS;
      }
    } finally {
      try {
        if (leaseUntil !== undefined) this.sql.exec("UPDATE delivery_sinks SET lease_until = 0 WHERE sink = ? AND lease_until = ?", sink, leaseUntil);
      } catch {
        // The lease expires by itself.
      }
    }
  }

  /** Records a failure (the cursor stays) and returns when to retry. */
  private failed(sink: DeliverySinkName, tenant: string, at: number, detail: string, fromSeq?: number, toSeq?: number): number {
    const failures = this.row(sink).failures + 1;
    const delay = retryDelayMs(failures, this.random);
    const retryAt = at + delay;
    this.sql.exec("UPDATE delivery_sinks SET failures = ?, retry_at = ?, last_error = ? WHERE sink = ?", failures, retryAt, detail.slice(0, 500), sink);
    log({ event: "audit.delivery_failed", tenant, sink, failures, retryInMs: delay, fromSeq, toSeq, detail: detail.slice(0, 500) }, failures > 3 ? "error" : "warn");
    return retryAt;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Webhook
  // -------------------------------------------------------------------------------------------------------------

  private async deliverWebhook(tenant: string, config: NonNullable<AuditDeliveryConfig["webhook"]>, shippedSeq: number, now: number): Promise<Next> {
    const secret = this.env.AUDIT_WEBHOOK_SECRET;
    if (!secret) {
      log({ event: "audit.delivery_unconfigured", tenant, sink: "webhook", detail: "audit.webhook is set but the Worker secret AUDIT_WEBHOOK_SECRET is not: nothing is sent" }, "error");
      return now + RETRY_MAX_MS;
    }
    const key = webhookSigningKey(secret, tenant);
    const started = Date.now();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const row = this.row("webhook");
      const next = (await this.pendingBatch(tenant, row)) ?? (await this.planWebhookBatch(tenant, row, config.batchSize ?? WEBHOOK_BATCH_DEFAULT, shippedSeq));
      if (!next) return null;
      const { batch, entries } = next;
      const body = webhookBody({ tenant, batch: { fromSeq: batch.fromSeq, toSeq: batch.toSeq }, entries, checkpoints: batch.checkpoints });
      let failure: string | undefined;
      try {
        // timedFetch follows no redirect: a 3xx is an answer other than 2xx (retried), so a signed batch is never
        // re-posted elsewhere.
        const status = await timedFetch(
          config.url,
          {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "user-agent": "mcp-gateway-audit-webhook/1",
              [WEBHOOK_SIGNATURE_HEADER]: signWebhookBody(key, body, Date.now()),
              [WEBHOOK_DELIVERY_HEADER]: webhookDeliveryId(tenant, batch.fromSeq, batch.toSeq),
            },
            body,
          },
          this.timeoutMs,
          async (response) => {
            await response.body?.cancel().catch(() => undefined);
            return response.status;
          },
        );
        if (status < 200 || status > 299) failure = `the receiver answered ${status}`;
      } catch (error) {
        failure = (error as Error).message;
      }
      if (failure !== undefined) return this.failed("webhook", tenant, now + Math.max(0, Date.now() - started), failure, batch.fromSeq, batch.toSeq);
      // One statement: the cursor moves exactly when the success is recorded.
      const last = entries.at(-1);
      this.sql.exec(
        `UPDATE delivery_sinks SET cursor_seq = ?, cursor_hash = ?, checkpoint_seq = ?, pending_from = NULL, pending_to = NULL,
           pending_checkpoints = NULL, failures = 0, retry_at = 0, last_error = NULL, delivered = delivered + 1 WHERE sink = 'webhook'`,
        last ? last.seq : row.cursor_seq,
        last ? last.hash : row.cursor_hash,
        Math.max(row.checkpoint_seq, ...batch.checkpoints.map((c) => c.seq)),
      );
    }
    return now;
  }

  /**
   * The batch tried before and not acknowledged, exactly as it was (its checkpoints as first sent), or null. When
   * D1 no longer holds all its entries (pruned meanwhile), it is dropped and null returned: a new one is planned.
   */
  private async pendingBatch(tenant: string, row: SinkRow): Promise<{ batch: Batch; entries: AuditEntry[] } | null> {
    if (row.pending_from === null || row.pending_to === null) return null;
    let checkpoints: AuditCheckpoint[] = [];
    try {
      checkpoints = JSON.parse(row.pending_checkpoints ?? "[]") as AuditCheckpoint[];
    } catch {
      checkpoints = [];
    }
    const batch = { fromSeq: row.pending_from, toSeq: row.pending_to, checkpoints };
    const entries = batch.toSeq >= batch.fromSeq ? await this.readEntries(tenant, batch.fromSeq, batch.toSeq) : [];
    if (entries.length === Math.max(0, batch.toSeq - batch.fromSeq + 1)) return { batch, entries };
    this.sql.exec("UPDATE delivery_sinks SET pending_from = NULL, pending_to = NULL, pending_checkpoints = NULL WHERE sink = 'webhook'");
    return null;
  }

  /**
   * The next batch after the cursor, persisted as pending before it is sent: the entries (planBatch, cut short at a
   * hole in D1, which never happens but must not loop), and the checkpoints not delivered yet up to its end —
   * including ones signed after their entries went out (the head's checkpoint comes up to AUDIT_CHECKPOINT_SECONDS
   * later). With no new entry but such late checkpoints, a batch of checkpoints only (`fromSeq = cursor + 1`,
   * `toSeq = cursor`).
   */
  private async planWebhookBatch(tenant: string, row: SinkRow, batchSize: number, shippedSeq: number): Promise<{ batch: Batch; entries: AuditEntry[] } | null> {
    const first = await this.db
      .select({ seq: auditEntries.seq })
      .from(auditEntries)
      .where(and(eq(auditEntries.tenantId, tenant), gt(auditEntries.seq, row.cursor_seq), lte(auditEntries.seq, shippedSeq)))
      .orderBy(asc(auditEntries.seq))
      .limit(1)
      .get();
    const plan = planBatch(row.cursor_seq, shippedSeq, batchSize, first?.seq ?? null);
    let fromSeq = row.cursor_seq + 1;
    let toSeq = row.cursor_seq;
    let entries: AuditEntry[] = [];
    if (plan) {
      if (plan.skipped > 0) this.gap(tenant, "webhook", row, plan.fromSeq - 1);
      entries = await this.readEntries(tenant, plan.fromSeq, plan.toSeq);
      if (entries.length === 0) return null;
      fromSeq = plan.fromSeq;
      toSeq = plan.fromSeq + entries.length - 1;
      if (toSeq < plan.toSeq) log({ event: "audit.delivery_incomplete", tenant, sink: "webhook", fromSeq: toSeq + 1, toSeq: plan.toSeq, detail: "D1 lacks entries after this seq; the batch stops before them" }, "error");
    }
    const checkpoints = (
      await this.db
        .select()
        .from(auditCheckpoints)
        .where(and(eq(auditCheckpoints.tenantId, tenant), gt(auditCheckpoints.seq, row.checkpoint_seq), lte(auditCheckpoints.seq, toSeq)))
        .orderBy(asc(auditCheckpoints.seq), asc(auditCheckpoints.keyId))
        .limit(MAX_BATCH_CHECKPOINTS)
        .all()
    ).map(rowToCheckpoint);
    if (!plan && checkpoints.length === 0) return null;
    this.sql.exec(
      "UPDATE delivery_sinks SET pending_from = ?, pending_to = ?, pending_checkpoints = ? WHERE sink = 'webhook'",
      fromSeq,
      toSeq,
      JSON.stringify(checkpoints),
    );
    return { batch: { fromSeq, toSeq, checkpoints }, entries };
  }

  /**
   * Logs that a sink resumes after `resumeAfter`, the entries between its cursor and there being no longer in D1
   * (or, for a sink's first delivery, that it starts there).
   */
  private gap(tenant: string, sink: DeliverySinkName, row: SinkRow, resumeAfter: number): void {
    if (row.delivered === 0 && row.cursor_seq === 0) {
      log({ event: "audit.delivery_start", tenant, sink, resumeAfter, detail: "the oldest entries are no longer in D1 (retention): delivery starts at the oldest one kept" });
      return;
    }
    log(
      {
        event: "audit.delivery_gap",
        tenant,
        sink,
        cursorSeq: row.cursor_seq,
        resumeAfter,
        detail: `entries after seq ${row.cursor_seq} were pruned from D1 (retention) before this sink got them; it continues from what D1 still holds`,
      },
      "error",
    );
  }

  private async readEntries(tenant: string, fromSeq: number, toSeq: number): Promise<AuditEntry[]> {
    const entries: AuditEntry[] = [];
    let next = fromSeq;
    while (next <= toSeq) {
      const rows = await this.db
        .select()
        .from(auditEntries)
        .where(and(eq(auditEntries.tenantId, tenant), gte(auditEntries.seq, next), lte(auditEntries.seq, toSeq)))
        .orderBy(asc(auditEntries.seq))
        .limit(READ_PAGE)
        .all();
      for (const row of rows) {
        // Stop at a hole: a batch is always a contiguous run of the chain.
        if (row.seq !== next) return entries;
        entries.push(rowToEntry(row));
        next++;
      }
      if (rows.length < READ_PAGE) break;
    }
    return entries;
  }

  private async checkpointsAt(tenant: string, seq: number): Promise<AuditCheckpoint[]> {
    return (
      await this.db
        .select()
        .from(auditCheckpoints)
        .where(and(eq(auditCheckpoints.tenantId, tenant), eq(auditCheckpoints.seq, seq)))
        .orderBy(asc(auditCheckpoints.keyId))
        .all()
    ).map(rowToCheckpoint);
  }

  // -------------------------------------------------------------------------------------------------------------
  // R2 and S3: one object per checkpoint interval
  // -------------------------------------------------------------------------------------------------------------

  private async deliverR2(tenant: string, config: NonNullable<AuditDeliveryConfig["r2"]>, shippedSeq: number, now: number): Promise<Next> {
    const bucket = this.env.AUDIT_BUCKET;
    if (!bucket) {
      log({ event: "audit.delivery_unconfigured", tenant, sink: "r2", detail: "audit.r2 is set but the Worker has no AUDIT_BUCKET binding: nothing is written" }, "error");
      return now + RETRY_MAX_MS;
    }
    return this.deliverObjects("r2", tenant, config.prefix ?? R2_PREFIX_DEFAULT, r2ObjectStore(bucket), shippedSeq, now);
  }

  private async deliverS3(tenant: string, config: NonNullable<AuditDeliveryConfig["s3"]>, shippedSeq: number, now: number): Promise<Next> {
    const accessKeyId = this.env.AUDIT_S3_ACCESS_KEY_ID;
    const secretAccessKey = this.env.AUDIT_S3_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      const missing = [accessKeyId ? null : "AUDIT_S3_ACCESS_KEY_ID", secretAccessKey ? null : "AUDIT_S3_SECRET_ACCESS_KEY"].filter(Boolean);
      const what = missing.length === 1 ? `the Worker secret ${missing[0]} is not` : `the Worker secrets ${missing.join(" and ")} are not`;
      log({ event: "audit.delivery_unconfigured", tenant, sink: "s3", detail: `audit.s3 is set but ${what}: nothing is written` }, "error");
      return now + RETRY_MAX_MS;
    }
    const target: S3Target = { endpoint: config.endpoint, bucket: config.bucket, region: config.region ?? "auto", pathStyle: config.pathStyle ?? true };
    const store = s3ObjectStore(target, { accessKeyId, secretAccessKey }, this.timeoutMs);
    return this.deliverObjects("s3", tenant, config.prefix ?? S3_PREFIX_DEFAULT, store, shippedSeq, now);
  }

  /**
   * The R2 and S3 sinks: one object per checkpoint interval after the sink's cursor (the end of the last object
   * written), written to `store` ({@link r2ObjectKey}, {@link r2ObjectText}, {@link objectMetadata}); the cursor moves
   * to the object's end in the statement that records the success.
   */
  private async deliverObjects(sink: "r2" | "s3", tenant: string, prefix: string, store: ObjectStore, shippedSeq: number, now: number): Promise<Next> {
    if (!this.env.AUDIT_SIGNING_KEY) {
      log({ event: "audit.delivery_unconfigured", tenant, sink, detail: `audit.${sink} writes one object per checkpoint, and without AUDIT_SIGNING_KEY there are none` }, "error");
      return null;
    }
    const started = Date.now();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const row = this.row(sink);
      let start: ChainHead = { seq: row.cursor_seq, hash: row.cursor_hash };
      const first = await this.db
        .select({ seq: auditEntries.seq })
        .from(auditEntries)
        .where(and(eq(auditEntries.tenantId, tenant), gt(auditEntries.seq, start.seq), lte(auditEntries.seq, shippedSeq)))
        .orderBy(asc(auditEntries.seq))
        .limit(1)
        .get();
      if (!first) return null;
      let startCheckpoints: AuditCheckpoint[] = start.seq > 0 ? await this.checkpointsAt(tenant, start.seq) : [];
      if (first.seq > start.seq + 1) {
        // Pruned: restart at the checkpoint retention keeps right before what remains (or the next one after it).
        const anchor = await this.db
          .select()
          .from(auditCheckpoints)
          .where(and(eq(auditCheckpoints.tenantId, tenant), gte(auditCheckpoints.seq, first.seq - 1), lte(auditCheckpoints.seq, shippedSeq)))
          .orderBy(asc(auditCheckpoints.seq), asc(auditCheckpoints.keyId))
          .limit(1)
          .get();
        if (!anchor) return null;
        this.gap(tenant, sink, row, anchor.seq);
        start = { seq: anchor.seq, hash: anchor.hash };
        startCheckpoints = await this.checkpointsAt(tenant, anchor.seq);
      }
      const next = await this.db
        .select({ seq: auditCheckpoints.seq })
        .from(auditCheckpoints)
        .where(and(eq(auditCheckpoints.tenantId, tenant), gt(auditCheckpoints.seq, start.seq), lte(auditCheckpoints.seq, shippedSeq)))
        .orderBy(asc(auditCheckpoints.seq))
        .limit(1)
        .get();
      if (!next) return null;
      const endCheckpoints = await this.checkpointsAt(tenant, next.seq);
      const end = endCheckpoints[0] as AuditCheckpoint;
      const entries = await this.readEntries(tenant, start.seq + 1, end.seq);
      if (entries.length !== end.seq - start.seq) {
        log({ event: "audit.delivery_incomplete", tenant, sink, fromSeq: start.seq + 1, toSeq: end.seq, found: entries.length, detail: "D1 lacks entries inside a checkpoint interval; the object is written as it is and will not verify" }, "error");
      }
      const text = await r2ObjectText({ tenant, start, startCheckpoints, entries, endCheckpoints });
      const key = r2ObjectKey(prefix, tenant, start.seq, end.seq);
      try {
        await store.put(key, text, objectMetadata(tenant, start.seq, end));
      } catch (error) {
        const what = sink === "r2" ? "R2 put" : "S3 PUT";
        return this.failed(sink, tenant, now + Math.max(0, Date.now() - started), `${what} ${key} failed: ${(error as Error).message}`, start.seq + 1, end.seq);
      }
      this.sql.exec(
        "UPDATE delivery_sinks SET cursor_seq = ?, cursor_hash = ?, failures = 0, retry_at = 0, last_error = NULL, delivered = delivered + 1 WHERE sink = ?",
        end.seq,
        end.hash,
        sink,
      );
    }
    return now;
  }
}
