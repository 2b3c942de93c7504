/**
 * @module The admin API's audit endpoints (docs/admin-api.md): entries, stats, head, verify and export of one
 * tenant's trail. Thin over src/audit/store.ts (D1 reads) and the tenant's AuditLog Durable Object (live head,
 * signing key). verify and export stream their answers: nothing the size of a chain is held in memory.
 */
import { auditLog } from "../audit/append.ts";
import type { AuditLogState } from "../audit/durable-object.ts";
import {
  type AuditQuery,
  AuditCursorError,
  exportStoredLines,
  type ExportStoredOptions,
  readAuditEntries,
  readAuditStats,
  verifyStoredChain,
} from "../audit/store.ts";
import type { ChainVerifyResult } from "../audit/verify.ts";
import { tenantConfig } from "../config/tenant-config.ts";
import { database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { log } from "../log.ts";
import { AdminError } from "./errors.ts";

export const NDJSON = "application/x-ndjson";
export const CSV = "text/csv; charset=utf-8";
/** Streamed lines are sent in chunks of about this many characters. */
const CHUNK_CHARS = 64 * 1024;

export async function listAuditEntries(env: Env, tenant: string, query: AuditQuery, page: { limit: number; cursor?: string | undefined }) {
  try {
    return await readAuditEntries(env, tenant, query, page);
  } catch (error) {
    if (error instanceof AuditCursorError) throw new AdminError("bad_request", error.message);
    throw error;
  }
}

export function auditStatsOf(env: Env, tenant: string, query: AuditQuery) {
  return readAuditStats(env, tenant, query);
}

/** The live head, shipping progress, latest checkpoint and verification key of the tenant's AuditLog object. */
export async function auditHead(env: Env, tenant: string) {
  const stub = auditLog(env, tenant);
  const [state, key, config] = await Promise.all([
    stub.state() as Promise<AuditLogState>,
    stub.publicKey() as Promise<{ publicKey: string; keyId: string } | null>,
    tenantConfig(database(env.DB), tenant),
  ]);
  return {
    tenant,
    head: state.head,
    shippedSeq: state.shippedSeq,
    failureMode: config.published?.audit?.failureMode ?? ("closed" as const),
    checkpoint: state.checkpoint,
    publicKey: key?.publicKey ?? null,
    keyId: key?.keyId ?? null,
  };
}

/** The result line: the verifier's outcome as docs/admin-api.md words it. */
function resultLine(result: ChainVerifyResult) {
  if (!result.ok) {
    const { seq, reason, message } = result.failure;
    return { type: "result" as const, ok: false as const, failure: { seq, reason, message }, entries: result.entries, checkpoints: result.checkpoints };
  }
  const { entries, checkpoints, firstSeq, head, lastCheckpoint, uncheckpointed } = result;
  return { type: "result" as const, ok: true as const, entries, checkpoints, firstSeq, head, lastCheckpoint, uncheckpointed };
}

/**
 * The verify answer: NDJSON progress lines as verification goes, then the result line. The work runs while the
 * body is read (`run`, for waitUntil); a failure of the gateway itself (not of the chain) ends the stream with an
 * `{"type":"error","error":{code,message}}` line instead of a result.
 */
export function verifyStream(env: Env, tenant: string, fromSeq: number | undefined): { response: Response; run: Promise<void> } {
  const encoder = new TextEncoder();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const send = (line: unknown) => writer.write(encoder.encode(`${JSON.stringify(line)}\n`));
  const run = (async () => {
    try {
      const result = await verifyStoredChain(env, tenant, { fromSeq, onProgress: (verified, total) => send({ type: "progress", verified, total }) });
      await send(resultLine(result));
      await writer.close();
      log({ event: "audit.verified", tenant, ok: result.ok, entries: result.entries, ...(result.ok ? {} : { seq: result.failure.seq, reason: result.failure.reason }) });
    } catch (error) {
      // The gateway failed, not the chain: said in band (the status line went out long ago), without internals.
      const requestId = crypto.randomUUID();
      log({ event: "audit.verify_failed", tenant, requestId, detail: (error as Error).message }, "error");
      const message = `The verification could not finish (the gateway logged it as ${requestId}); nothing is known about the chain — retry`;
      await send({ type: "error", error: { code: "unavailable", message } }).catch(() => undefined);
      await writer.close().catch(() => undefined);
    }
  })();
  return { response: new Response(readable, { status: 200, headers: { "content-type": NDJSON, "cache-control": "no-store" } }), run };
}

/**
 * The export answer. The first line (the JSONL header or the CSV header row) is read before answering, so the
 * AuditLog object's flush and the start are settled and a failure there is an error answer, not a cut stream.
 */
export async function exportResponse(env: Env, tenant: string, options: ExportStoredOptions): Promise<Response> {
  const lines = exportStoredLines(env, tenant, options);
  const first = await lines.next();
  const terminator = options.format === "csv" ? "\r\n" : "\n";
  const encoder = new TextEncoder();
  let buffered = first.done ? null : first.value + terminator;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        let chunk = buffered ?? "";
        buffered = null;
        while (chunk.length < CHUNK_CHARS) {
          const next = await lines.next();
          if (next.done) {
            if (chunk.length > 0) controller.enqueue(encoder.encode(chunk));
            controller.close();
            return;
          }
          chunk += next.value + terminator;
        }
        controller.enqueue(encoder.encode(chunk));
      } catch (error) {
        log({ event: "audit.export_failed", tenant, detail: (error as Error).message }, "error");
        controller.error(error);
      }
    },
    async cancel() {
      await lines.return(undefined);
    },
  });
  const extension = options.format === "csv" ? "csv" : "jsonl";
  return new Response(body, {
    status: 200,
    headers: {
      "content-type": options.format === "csv" ? CSV : NDJSON,
      "content-disposition": `attachment; filename="audit-${tenant.replace(/[^A-Za-z0-9_.-]/g, "_")}.${extension}"`,
      "cache-control": "no-store",
    },
  });
}
