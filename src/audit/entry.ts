/**
 * @module The audit entry: every field of it is hashed (decision D4, docs/audit-chain.md). The types, the zod schema
 * that parses entries back from exports and storage, and the normalisation that turns whatever a caller hands over
 * (redacted arguments, a truncated result, an upstream error message) into plain JSON that hashes the same way in
 * every implementation. Pure: no Node built-ins, runs in workerd and Node.
 */
import { z } from "zod";

/** The prevHash of seq 1: 64 zeros. */
export const GENESIS_HASH = "0".repeat(64);

export const AUDIT_STATUSES = ["ok", "error", "denied", "limited", "unknown", "unauthenticated"] as const;
export type AuditStatus = (typeof AUDIT_STATUSES)[number];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What a writer supplies; {@link appendEntry} (chain.ts) adds seq, prevHash and hash. */
export interface AuditFields {
  /** Epoch milliseconds, an integer. */
  timestamp: number;
  tenant: string;
  /** The consumer the key belongs to; null only when the caller could not be identified (unauthenticated). */
  consumer: string | null;
  /** The API key id, or the token's subject; null only when unknown (unauthenticated). */
  keyId: string | null;
  clientIp: string | null;
  /** The gateway's own id for the HTTP request (not the JSON-RPC id). */
  requestId: string;
  /** The MCP session id, when the client has one. */
  sessionId: string | null;
  /** The upstream server id; null for the gateway's own methods and for failures before routing. */
  server: string | null;
  /** The MCP method: "tools/call", "resources/read", "prompts/get", "initialize", … */
  method: string;
  /** The tool or prompt name, or the resource URI; null when the method names none. */
  tool: string | null;
  /** The redacted copy of the arguments (null when the method has none); normalised by {@link toAuditJson}. */
  arguments: unknown;
  /** The redacted, possibly truncated copy of the result; null when there is none (errors, denials). Normalised too. */
  result: unknown;
  /** Lowercase hex SHA-256 of the canonical JSON of the full result before truncation ({@link digestJson}); null without a result. */
  resultDigest: string | null;
  status: AuditStatus;
  /** The JSON-RPC error code, when the call failed. */
  errorCode: number | null;
  errorMessage: string | null;
  /** Milliseconds from the request to the response, an integer ≥ 0. */
  latencyMs: number;
  /** The policy rule that decided (`<policy>.rules[<i>]`); null for the default deny or when no rule applied. */
  ruleId: string | null;
  /** UTF-8 bytes of the JSON of the call's params as the agent sent them, an integer ≥ 0 (metering). */
  requestBytes: number;
  /** UTF-8 bytes of the JSON of the result or error object as the agent received it, an integer ≥ 0 (metering). */
  responseBytes: number;
}

/** One link of a tenant's chain, exactly as stored and exported. */
export interface AuditEntry extends AuditFields {
  /** 1 for the tenant's first entry, then +1 each: no gaps. */
  seq: number;
  arguments: JsonValue;
  result: JsonValue;
  /** The previous entry's hash; {@link GENESIS_HASH} for seq 1. */
  prevHash: string;
  /** Lowercase hex SHA-256 over prevHash and the canonical JSON of every other field (chain.ts). */
  hash: string;
}

/** A writer's fields after {@link normalizeFields}: an entry without seq, prevHash and hash. */
export type NormalizedFields = Omit<AuditEntry, "seq" | "prevHash" | "hash">;

/** The last entry of a chain, enough to append the next one or to check a verification's end. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** Every field of an entry in the order entries are written (the hash does not depend on it). */
export const AUDIT_ENTRY_FIELDS = [
  "seq",
  "timestamp",
  "tenant",
  "consumer",
  "keyId",
  "clientIp",
  "requestId",
  "sessionId",
  "server",
  "method",
  "tool",
  "arguments",
  "result",
  "resultDigest",
  "status",
  "errorCode",
  "errorMessage",
  "latencyMs",
  "ruleId",
  "requestBytes",
  "responseBytes",
  "prevHash",
  "hash",
] as const satisfies readonly (keyof AuditEntry)[];

export const HEX64_PATTERN = /^[0-9a-f]{64}$/;
const hex64 = z.string().regex(HEX64_PATTERN, "must be 64 lowercase hex characters (SHA-256)");
/** An integer JavaScript numbers represent exactly, so every JSON implementation reads it back unchanged. */
const safeInt = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const text = z.string();
const id = z.string().min(1);

/** Any JSON value (finite numbers, no undefined), validated in depth. */
export const jsonValueSchema: z.ZodType<JsonValue> = z.json();
/** Present, and otherwise taken as it is: for values that are JSON by construction. */
const presentValue = z.custom<JsonValue>((value) => value !== undefined, "required");

function fieldsShape(payload: z.ZodType<JsonValue>) {
  return {
    timestamp: safeInt.min(0),
    tenant: id,
    consumer: id.nullable(),
    keyId: id.nullable(),
    clientIp: text.nullable(),
    requestId: text,
    sessionId: text.nullable(),
    server: text.nullable(),
    method: text,
    tool: text.nullable(),
    arguments: payload,
    result: payload,
    resultDigest: hex64.nullable(),
    status: z.enum(AUDIT_STATUSES),
    errorCode: safeInt.nullable(),
    errorMessage: text.nullable(),
    latencyMs: safeInt.min(0),
    ruleId: text.nullable(),
    requestBytes: safeInt.min(0),
    responseBytes: safeInt.min(0),
  };
}

function entryShape(payload: z.ZodType<JsonValue>) {
  return { seq: safeInt.min(1), ...fieldsShape(payload), prevHash: hex64, hash: hex64 };
}

/** The writer's fields: every one present (null, not absent), nothing else. */
export const auditFieldsSchema = z.strictObject(fieldsShape(jsonValueSchema));

/** A stored or exported entry: every field present, nothing else (an extra field would not be covered by the hash). */
export const auditEntrySchema = z.strictObject(entryShape(jsonValueSchema));

/**
 * {@link auditEntrySchema} for values that are JSON by construction (JSON.parse output, normalised fields): the
 * payloads pass through as they are, unvalidated and uncopied, which keeps parsing a million export lines cheap and
 * keeps a payload's `__proto__` key an ordinary key.
 */
export const parsedEntrySchema = z.strictObject(entryShape(presentValue));
const parsedFieldsSchema = z.strictObject(fieldsShape(presentValue));

export const chainHeadSchema = z.strictObject({ seq: safeInt.min(0), hash: hex64 });

/** How deep a normalised JSON value may nest; deeper values become {@link DEPTH_MARKER} (redaction caps at 64). */
export const MAX_JSON_DEPTH = 128;
export const DEPTH_MARKER = "[TRUNCATED:depth]";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** True when `value` has no lone surrogate, so RFC 8785 can serialise it (it refuses lone surrogates). */
export function isWellFormed(value: string): boolean {
  const native = (value as unknown as { isWellFormed?: () => boolean }).isWellFormed;
  if (native) return native.call(value);
  LONE_SURROGATE.lastIndex = 0;
  return !LONE_SURROGATE.test(value);
}

/** `value` with every lone surrogate replaced by U+FFFD (what a truncation in the middle of a pair leaves). */
export function wellFormed(value: string): string {
  if (isWellFormed(value)) return value;
  return value.replace(LONE_SURROGATE, "\uFFFD");
}

/**
 * A plain-JSON copy of `value`, as JSON.stringify would see it, made safe for RFC 8785: strings (keys too) with a
 * lone surrogate get U+FFFD, non-finite numbers become null, -0 becomes 0, bigints become decimal strings,
 * `toJSON` is honoured (dates become ISO strings), undefined/function/symbol members are dropped (null in arrays),
 * a `__proto__` key stays an ordinary key, and values nested deeper than {@link MAX_JSON_DEPTH} (cycles included)
 * become {@link DEPTH_MARKER}. Never throws for data: the audit copy must always be writable.
 */
export function toAuditJson(value: unknown): JsonValue {
  return normalize(value, 0) ?? null;
}

function normalize(value: unknown, depth: number): JsonValue | undefined {
  switch (typeof value) {
    case "string":
      return wellFormed(value);
    case "number":
      return Number.isFinite(value) ? (value === 0 ? 0 : value) : null;
    case "boolean":
      return value;
    case "bigint":
      return value.toString();
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (value === null) return null;
  if (depth >= MAX_JSON_DEPTH) return DEPTH_MARKER;
  const object = value as Record<string, unknown>;
  if (typeof object.toJSON === "function") {
    let json: unknown;
    try {
      json = (object.toJSON as () => unknown)();
    } catch {
      json = null; // an invalid Date's toJSON returns null; a throwing one is treated alike
    }
    return json === value ? null : normalize(json, depth + 1);
  }
  if (Array.isArray(value)) {
    const out: JsonValue[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = normalize(value[i], depth + 1) ?? null;
    return out;
  }
  const out: Record<string, JsonValue> = {};
  for (const key of Object.keys(object)) {
    const item = normalize(object[key], depth + 1);
    if (item === undefined) continue;
    const safeKey = wellFormed(key);
    if (safeKey === "__proto__") Object.defineProperty(out, safeKey, { value: item, enumerable: true, writable: true, configurable: true });
    else out[safeKey] = item;
  }
  return out;
}

const TEXT_FIELDS = ["tenant", "consumer", "keyId", "clientIp", "requestId", "sessionId", "server", "method", "tool", "errorMessage", "ruleId"] as const;

/**
 * Validates a writer's fields and returns a normalised copy in {@link AUDIT_ENTRY_FIELDS} order: JSON payloads
 * through {@link toAuditJson}, lone surrogates in text fields replaced. Throws a TypeError naming the field for a
 * wrong type, a missing field, an unknown one, a non-integer timestamp or latency, or a malformed digest: those are
 * programming errors, not data.
 */
export function normalizeFields(fields: AuditFields): NormalizedFields {
  const copy: Record<string, unknown> = { ...fields };
  copy.arguments = toAuditJson(fields.arguments);
  copy.result = toAuditJson(fields.result);
  for (const key of TEXT_FIELDS) {
    const value = copy[key];
    if (typeof value === "string") copy[key] = wellFormed(value);
  }
  const parsed = parsedFieldsSchema.safeParse(copy);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TypeError(`invalid audit entry field ${issue?.path.join(".") || "(entry)"}: ${issue?.message ?? "invalid"}`);
  }
  const data = parsed.data as NormalizedFields;
  // The payloads are already plain JSON; keep them as normalised rather than as zod's copies.
  return {
    timestamp: data.timestamp,
    tenant: data.tenant,
    consumer: data.consumer,
    keyId: data.keyId,
    clientIp: data.clientIp,
    requestId: data.requestId,
    sessionId: data.sessionId,
    server: data.server,
    method: data.method,
    tool: data.tool,
    arguments: copy.arguments as JsonValue,
    result: copy.result as JsonValue,
    resultDigest: data.resultDigest,
    status: data.status,
    errorCode: data.errorCode,
    errorMessage: data.errorMessage,
    latencyMs: data.latencyMs,
    ruleId: data.ruleId,
    requestBytes: data.requestBytes,
    responseBytes: data.responseBytes,
  };
}

type Check = (value: unknown) => boolean;
const safeIntAtLeast =
  (min: number): Check =>
  (value) =>
    typeof value === "number" && Number.isSafeInteger(value) && value >= min;
const isText: Check = (value) => typeof value === "string";
const isId: Check = (value) => typeof value === "string" && value.length > 0;
const isHex64: Check = (value) => typeof value === "string" && HEX64_PATTERN.test(value);
const isPresent: Check = (value) => value !== undefined;
const orNull =
  (check: Check): Check =>
  (value) =>
    value === null || check(value);
const STATUS_SET: ReadonlySet<unknown> = new Set(AUDIT_STATUSES);

/** {@link parsedEntrySchema}, field by field, as plain checks (the tests hold the two to the same verdicts). */
const ENTRY_CHECKS: readonly (readonly [keyof AuditEntry, Check, string])[] = [
  ["seq", safeIntAtLeast(1), "must be an integer ≥ 1"],
  ["timestamp", safeIntAtLeast(0), "must be an integer ≥ 0 (epoch ms)"],
  ["tenant", isId, "must be a non-empty string"],
  ["consumer", orNull(isId), "must be a non-empty string or null"],
  ["keyId", orNull(isId), "must be a non-empty string or null"],
  ["clientIp", orNull(isText), "must be a string or null"],
  ["requestId", isText, "must be a string"],
  ["sessionId", orNull(isText), "must be a string or null"],
  ["server", orNull(isText), "must be a string or null"],
  ["method", isText, "must be a string"],
  ["tool", orNull(isText), "must be a string or null"],
  ["arguments", isPresent, "required"],
  ["result", isPresent, "required"],
  ["resultDigest", orNull(isHex64), "must be 64 lowercase hex characters or null"],
  ["status", (value) => STATUS_SET.has(value), `must be one of ${AUDIT_STATUSES.join(", ")}`],
  ["errorCode", orNull(safeIntAtLeast(Number.MIN_SAFE_INTEGER)), "must be an integer or null"],
  ["errorMessage", orNull(isText), "must be a string or null"],
  ["latencyMs", safeIntAtLeast(0), "must be an integer ≥ 0"],
  ["ruleId", orNull(isText), "must be a string or null"],
  ["requestBytes", safeIntAtLeast(0), "must be an integer ≥ 0"],
  ["responseBytes", safeIntAtLeast(0), "must be an integer ≥ 0"],
  ["prevHash", isHex64, "must be 64 lowercase hex characters"],
  ["hash", isHex64, "must be 64 lowercase hex characters"],
];

/**
 * Reads an entry out of a JSON.parse result (an export line, a stored row's JSON): the same verdicts as
 * {@link parsedEntrySchema}, without zod, since a verification reads a million of them. `ignoredKey` (an export
 * line's `type`) is allowed and left out. The entry's fields are copied in {@link AUDIT_ENTRY_FIELDS} order; the
 * payloads are taken as they are.
 */
export function readParsedEntry(value: unknown, ignoredKey?: string): { ok: true; entry: AuditEntry } | { ok: false; error: string } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: "not a JSON object" };
  const record = value as Record<string, unknown>;
  const entry: Record<string, unknown> = {};
  for (const [key, check, message] of ENTRY_CHECKS) {
    const field = Object.hasOwn(record, key) ? record[key] : undefined;
    if (!check(field)) return { ok: false, error: `${key}: ${field === undefined ? "required" : message}` };
    entry[key] = field;
  }
  const keys = Object.keys(record);
  if (keys.length !== ENTRY_CHECKS.length + (ignoredKey !== undefined && Object.hasOwn(record, ignoredKey) ? 1 : 0)) {
    const extra = keys.find((key) => key !== ignoredKey && !ENTRY_CHECKS.some(([name]) => name === key));
    return { ok: false, error: `unknown field ${JSON.stringify(extra)}: an entry holds exactly its hashed fields` };
  }
  return { ok: true, entry: entry as unknown as AuditEntry };
}
