/**
 * @module What one audited MCP call leaves in the audit chain: the handler notes what it learns as it goes (the
 * route, the deciding rule, the arguments as sent upstream), and {@link CallAudit.fields} turns that and the
 * outcome into the entry's fields, redacted with the tenant's audit plan (response and audit rules plus the secrets
 * floor, src/redact/engine.ts; the arguments with the request rules before it), then bounded: the name and the
 * session id clipped, long arguments and results stored as a {@link TruncatedJson} marker. An entry stays far below
 * the 2 MB per row/value that D1 and Durable Object SQLite accept, whatever the agent sends: one row they refused
 * would stall the tenant's shipping from the AuditLog object to D1. Pure: the backend writes the entry.
 */
import { ProtocolError } from "@modelcontextprotocol/server";
import { canonicalJson, sha256Hex } from "../audit/chain.ts";
import { toAuditJson, type AuditFields, type AuditStatus, type JsonValue } from "../audit/entry.ts";
import { redactJson, redactText, type CompiledRedaction, type Hasher, type RedactionTarget } from "../redact/engine.ts";
import { clip, prefix } from "../text.ts";
import { GatewayErrorCode } from "./errors.ts";

/**
 * A stored result or arguments value whose canonical JSON is longer than this many characters is stored as a
 * {@link TruncatedJson} marker; the digest covers the whole (redacted) value.
 */
export const MAX_AUDIT_PAYLOAD_CHARS = 16_384;
/** The stored name (tool or prompt name, resource URI) is clipped to this many characters, after redaction. */
export const MAX_AUDIT_NAME_CHARS = 1_024;
/** The stored session id (the client's `Mcp-Session-Id` header) is clipped to this many characters. */
export const MAX_AUDIT_SESSION_ID_CHARS = 1_024;
/** Stored in place of payloads when the tenant's redaction rules could not be read. */
export const WITHHELD = "[WITHHELD: redaction rules unavailable]";
/** Error messages in the chain are cut to this many characters. */
export const MAX_AUDIT_ERROR_CHARS = 2_048;

/** The request's identity, from the transport: who, from where, in which session. */
export interface AuditOrigin {
  tenant: string;
  consumer: string;
  keyId: string;
  clientIp: string | null;
  requestId: string;
  sessionId: string | null;
}

/** The client's `mcp-session-id` as an entry stores it: clipped, since the client chooses it. */
export function storedSessionId(sessionId: string | null): string | null {
  return sessionId === null ? null : clip(sessionId, MAX_AUDIT_SESSION_ID_CHARS);
}

export type CallOutcome = { ok: true; result: unknown } | { ok: false; error: unknown };

export class CallAudit {
  readonly startedAt: number;
  /** The upstream server (or `gateway` for the gateway's own tools); null until the call is routed. */
  server: string | null = null;
  /** The tool or prompt name as the agent called it, or the resource URI. */
  tool: string | null = null;
  /** The arguments as the agent sent them, before any redaction. */
  arguments: unknown = null;
  /** The rule that decided (allowed or denied). */
  ruleId: string | null = null;
  /** Which redaction rules cover the call: the upstream's own name for the item. */
  target: RedactionTarget | undefined;
  /** Whether the call has been charged to the caller's rate limits (once per call, whatever `call` nests). */
  charged = false;

  readonly method: string;
  readonly origin: AuditOrigin;
  /** UTF-8 bytes of the JSON of the params as the agent sent them (the handler's `request.params`). */
  readonly requestBytes: number;

  /** `params`: the request's params as the handler received them (undefined when the request has none). */
  constructor(method: string, origin: AuditOrigin, now: number, params?: unknown) {
    this.method = method;
    this.origin = origin;
    this.startedAt = now;
    this.requestBytes = jsonBytes(params);
  }

  /**
   * The entry's fields for this outcome, redacted with the audit plan of the call's target. Without the tenant's
   * redaction rules (`undefined`: its configuration could not be read) no payload is stored at all.
   */
  fields(outcome: CallOutcome, redaction: CompiledRedaction | undefined, hasher: Hasher, now: number): AuditFields {
    const target = this.target ?? { server: this.server ?? "", name: this.tool ?? "" };
    const plan = redaction?.plan("audit", target);
    // The arguments are stored at most as the upstream got them: the request rules first, then the audit plan.
    const requestPlan = redaction?.plan("request", target);
    const redact = <T>(value: T): T | string => (!redaction ? WITHHELD : plan ? redactJson(plan, value, hasher).value : value);
    const sentArguments = requestPlan ? redactJson(requestPlan, toAuditJson(this.arguments), hasher).value : toAuditJson(this.arguments);
    const error = outcome.ok ? undefined : errorOf(outcome.error);
    // Redacted first, then bounded: a secret is never kept in a preview, and the digest is of the redacted whole.
    const result = outcome.ok ? bounded(redact(toAuditJson(outcome.result)) as JsonValue) : undefined;
    // A resource URI can carry a presigned token or credentials: the stored name goes through the audit plan too.
    const tool = this.tool !== null && plan ? redactText(plan, this.tool, hasher).value : this.tool;
    return {
      timestamp: this.startedAt,
      ...this.origin,
      sessionId: storedSessionId(this.origin.sessionId),
      server: this.server,
      method: this.method,
      tool: tool === null ? null : clip(tool, MAX_AUDIT_NAME_CHARS),
      // No digest column for the arguments: a truncated marker carries the digest of the whole.
      arguments: bounded(redact(sentArguments) as JsonValue).stored,
      result: result?.stored ?? null,
      resultDigest: result?.digest() ?? null,
      status: outcome.ok ? resultStatus(outcome.result) : this.errorStatus(error as { code: number | null }),
      errorCode: error?.code ?? null,
      errorMessage: error ? clip(!redaction ? WITHHELD : plan ? redactText(plan, error.message, hasher).value : error.message, MAX_AUDIT_ERROR_CHARS) : null,
      latencyMs: Math.max(0, Math.round(now - this.startedAt)),
      ruleId: this.ruleId,
      requestBytes: this.requestBytes,
      responseBytes: responseBytes(outcome),
    };
  }

  private errorStatus(error: { code: number | null }): AuditStatus {
    if (error.code === GatewayErrorCode.Denied) return "denied";
    if (error.code === GatewayErrorCode.RateLimited) return "limited";
    // Unknown names and bad params share -32602; a call that never found its target is the unknown kind.
    if (error.code === GatewayErrorCode.UnknownTarget && this.server === null) return "unknown";
    return "error";
  }
}

/**
 * UTF-8 bytes of `JSON.stringify(value)`: what the value weighs on the wire (0 for undefined, which JSON-RPC leaves
 * out). Counted without encoding; a value JSON.stringify refuses (a bigint, a cycle) is measured as its audit copy.
 */
export function jsonBytes(value: unknown): number {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = JSON.stringify(toAuditJson(value));
  }
  return text === undefined ? 0 : utf8Length(text);
}

/** UTF-8 length of a string, as TextEncoder would encode it (a lone surrogate becomes U+FFFD, 3 bytes). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * UTF-8 bytes of what the agent receives for `outcome`: the JSON-RPC `result`, or the `error` object the MCP SDK
 * builds from a thrown error — `{code, message, data?}`, code -32603 and message "Internal error" when the error
 * has none of its own.
 */
export function responseBytes(outcome: CallOutcome): number {
  if (outcome.ok) return jsonBytes(outcome.result);
  const error = (typeof outcome.error === "object" && outcome.error !== null ? outcome.error : {}) as { code?: unknown; message?: unknown; data?: unknown };
  const code = Number.isSafeInteger(error.code) ? error.code : -32603;
  return jsonBytes({ code, message: error.message ?? "Internal error", ...(error.data !== undefined && { data: error.data }) });
}

function resultStatus(result: unknown): AuditStatus {
  return typeof result === "object" && result !== null && (result as { isError?: unknown }).isError === true ? "error" : "ok";
}

function errorOf(error: unknown): { code: number | null; message: string } {
  if (error instanceof ProtocolError) return { code: error.code, message: error.message };
  // Not a protocol error: a bug or a platform failure, answered as an internal error; its text stays in the logs.
  return { code: null, message: "internal error" };
}

/**
 * What is stored in place of a (redacted) result or arguments value whose canonical JSON is longer than
 * {@link MAX_AUDIT_PAYLOAD_CHARS}: the length and SHA-256 (hex, of the UTF-8 bytes) of that whole JSON text, and its
 * start.
 */
export interface TruncatedJson {
  truncated: true;
  /** UTF-16 code units of the whole canonical JSON text. */
  chars: number;
  /** SHA-256 of the whole canonical JSON text, lowercase hex. */
  sha256: string;
  /** The first {@link MAX_AUDIT_PAYLOAD_CHARS} code units of it (one fewer rather than half a surrogate pair). */
  preview: string;
}

/**
 * The stored copy of a (redacted) payload: as it is when its canonical JSON is short enough, else a
 * {@link TruncatedJson} marker. `digest()` is that of the whole either way, computed only when asked for (a result's
 * is stored; arguments keep one only inside a marker).
 */
export function bounded(value: JsonValue): { stored: JsonValue; digest(): string } {
  // Normalised again: a redaction can leave what canonical JSON refuses (a lone surrogate from a cut emoji).
  const normal = toAuditJson(value);
  const text = canonicalJson(normal);
  let digest: string | undefined;
  const digestOf = () => (digest ??= sha256Hex(text));
  if (text.length <= MAX_AUDIT_PAYLOAD_CHARS) return { stored: normal, digest: digestOf };
  const marker: TruncatedJson = { truncated: true, chars: text.length, sha256: digestOf(), preview: prefix(text, MAX_AUDIT_PAYLOAD_CHARS) };
  return { stored: { ...marker }, digest: digestOf };
}

