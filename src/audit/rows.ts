/**
 * @module An audit entry as a D1 row of `audit_entries` and back (src/db/schema.ts). Pure. The payloads are stored
 * as JSON text; entries are normalised plain JSON (entry.ts), so `JSON.parse(JSON.stringify(x))` gives back the very
 * value that was hashed and a row read back verifies.
 */
import type { AuditCheckpoint } from "./checkpoint.ts";
import type { AuditEntry, AuditStatus, JsonValue } from "./entry.ts";
import type { auditCheckpoints, auditEntries } from "../db/schema.ts";

export type AuditEntryRow = typeof auditEntries.$inferSelect;
export type NewAuditEntryRow = typeof auditEntries.$inferInsert;
export type AuditCheckpointRow = typeof auditCheckpoints.$inferSelect;

export function entryToRow(entry: AuditEntry): NewAuditEntryRow {
  const { tenant, arguments: args, result, ...rest } = entry;
  return { ...rest, tenantId: tenant, arguments: JSON.stringify(args), result: JSON.stringify(result) };
}

/** How a payload column's text becomes the entry's value. */
export type PayloadReader = (column: "arguments" | "result", text: string) => JsonValue;

const parsePayload: PayloadReader = (_column, text) => JSON.parse(text) as JsonValue;

/**
 * The entry a row holds, in the field order of AUDIT_ENTRY_FIELDS. By default a payload that is not JSON throws;
 * `readPayload` may decide otherwise (the store keeps the raw text of a row edited in D1, for verification to report).
 */
export function rowToEntry(row: AuditEntryRow, readPayload: PayloadReader = parsePayload): AuditEntry {
  return {
    seq: row.seq,
    timestamp: row.timestamp,
    tenant: row.tenantId,
    consumer: row.consumer,
    keyId: row.keyId,
    clientIp: row.clientIp,
    requestId: row.requestId,
    sessionId: row.sessionId,
    server: row.server,
    method: row.method,
    tool: row.tool,
    arguments: readPayload("arguments", row.arguments),
    result: readPayload("result", row.result),
    resultDigest: row.resultDigest,
    status: row.status as AuditStatus,
    errorCode: row.errorCode,
    errorMessage: row.errorMessage,
    latencyMs: row.latencyMs,
    ruleId: row.ruleId,
    requestBytes: row.requestBytes,
    responseBytes: row.responseBytes,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

export function checkpointToRow(checkpoint: AuditCheckpoint): AuditCheckpointRow {
  const { tenant, ...rest } = checkpoint;
  return { tenantId: tenant, ...rest };
}

export function rowToCheckpoint(row: AuditCheckpointRow): AuditCheckpoint {
  return { tenant: row.tenantId, seq: row.seq, hash: row.hash, time: row.time, keyId: row.keyId, signature: row.signature };
}
