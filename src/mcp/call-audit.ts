/**
 * @module What one audited MCP call leaves in the audit chain: the handler notes what it learns as it goes (the
 * route, the deciding rule, the arguments as sent upstream), and {@link CallAudit.fields} turns that and the
 * outcome into the entry's fields, redacted with the tenant's audit plan (response and audit rules plus the secrets
 * floor, src/redact/engine.ts; the arguments with the request rules before it) and with the result truncated.
 * Pure: the backend writes the entry.
 */
import { ProtocolError } from "@modelcontextprotocol/server";
import { canonicalJson, sha256Hex } from "../audit/chain.ts";
import { toAuditJson, type AuditFields, type AuditStatus, type JsonValue } from "../audit/entry.ts";
import { redactJson, redactText, type CompiledRedaction, type Hasher, type RedactionTarget } from "../redact/engine.ts";
import { clip } from "../text.ts";
import { GatewayErrorCode } from "./errors.ts";

/** A stored result is cut to this many characters of JSON; its digest covers the whole (redacted) result. */
export const MAX_AUDIT_RESULT_CHARS = 16_384;
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
    const stored = outcome.ok ? storedResult(redact(toAuditJson(outcome.result)) as JsonValue) : { result: null, resultDigest: null };
    return {
      timestamp: this.startedAt,
      ...this.origin,
      server: this.server,
      method: this.method,
      // A resource URI can carry a presigned token or credentials: the stored name goes through the audit plan too.
      tool: this.tool !== null && plan ? redactText(plan, this.tool, hasher).value : this.tool,
      arguments: redact(sentArguments),
      ...stored,
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
 * The stored copy of a (redacted) result: as it is when its JSON is short enough, else a marker object holding the
 * start of its JSON text; the digest is of the whole.
 */
function storedResult(result: JsonValue): { result: JsonValue; resultDigest: string } {
  const text = canonicalJson(result);
  const resultDigest = sha256Hex(text);
  if (text.length <= MAX_AUDIT_RESULT_CHARS) return { result, resultDigest };
  return { result: { truncated: true, chars: text.length, preview: text.slice(0, MAX_AUDIT_RESULT_CHARS) }, resultDigest };
}

