/**
 * @module The hash chain (decision D4, docs/audit-chain.md):
 *
 *     hash = lowercase hex SHA-256( UTF-8( prevHash ‖ JCS(entry without prevHash and hash) ) )
 *
 * where prevHash is the previous entry's hash as 64 lowercase hex characters ({@link GENESIS_HASH} for seq 1) and
 * JCS is the RFC 8785 canonical JSON of the object holding every other field of the entry (all 21 of them, nulls
 * included). {@link appendEntry} is the one way to make an entry: pure and synchronous, so an AuditLog Durable
 * Object can read its head, append and insert inside one `transactionSync`.
 *
 * Canonical JSON is the `canonicalize` package (RFC 8785); the entry's own top level — fixed keys whose values are
 * strings, integers or null — is laid out here in the same sorted order, and only the payloads go through the
 * library (the tests check both give the same bytes). SHA-256 is @noble/hashes: synchronous, no Node built-ins.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import canonicalize from "canonicalize";
import {
  AUDIT_ENTRY_FIELDS,
  type AuditEntry,
  type AuditFields,
  type ChainHead,
  GENESIS_HASH,
  HEX64_PATTERN,
  isWellFormed,
  normalizeFields,
  toAuditJson,
} from "./entry.ts";

/** The head before the first entry. */
export const GENESIS_HEAD: ChainHead = Object.freeze({ seq: 0, hash: GENESIS_HASH });

/** The fields the canonical JSON holds: every field but prevHash and hash, in RFC 8785 order (UTF-16 code units). */
export const HASHED_FIELDS: readonly (keyof AuditEntry)[] = AUDIT_ENTRY_FIELDS.filter((k) => k !== "prevHash" && k !== "hash").sort();

const MEMBER_PREFIXES = HASHED_FIELDS.map((key) => [key, `${JSON.stringify(key)}:`] as const);

/**
 * RFC 8785 (JCS) canonical JSON of a JSON value. Throws a TypeError for what JCS cannot represent: undefined at the
 * top, NaN or ±Infinity, a lone surrogate, a cycle (use {@link toAuditJson} first for data of unknown provenance).
 */
export function canonicalJson(value: unknown): string {
  let out: string | undefined;
  try {
    out = canonicalize(value);
  } catch (error) {
    throw new TypeError(`not canonicalisable JSON: ${(error as Error).message}`);
  }
  if (out === undefined) throw new TypeError("not canonicalisable JSON: undefined");
  return out;
}

const encoder = new TextEncoder();
/** Reused UTF-8 scratch space (hashing is synchronous and noble keeps no reference to its input). */
let scratch = new Uint8Array(16 * 1024);
const SCRATCH_LIMIT = 1024 * 1024;

/** Lowercase hex SHA-256 of the UTF-8 bytes of `text`. */
export function sha256Hex(text: string): string {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit; encodeInto spares an allocation per entry.
  const room = text.length * 3;
  if (room > scratch.length) {
    if (room > SCRATCH_LIMIT) return bytesToHex(sha256(utf8ToBytes(text)));
    scratch = new Uint8Array(room);
  }
  const { written } = encoder.encodeInto(text, scratch);
  return bytesToHex(sha256(scratch.subarray(0, written)));
}

/**
 * The `resultDigest` of a full result: lowercase hex SHA-256 of the canonical JSON of {@link toAuditJson}(result)
 * (for a result that came from JSON.parse the normalisation changes nothing).
 */
export function digestJson(value: unknown): string {
  return sha256Hex(canonicalJson(toAuditJson(value)));
}

/**
 * The canonical JSON the hash covers: `entry` without prevHash and hash (and without anything that is not an entry
 * field, such as an export line's `type`). Equal to `canonicalJson` of that object; throws like it.
 */
export function entryCanonicalJson(entry: Omit<AuditEntry, "hash"> | AuditEntry): string {
  const record = entry as unknown as Record<string, unknown>;
  let out = "{";
  for (const [key, prefix] of MEMBER_PREFIXES) {
    const value = record[key];
    let json: string;
    if (typeof value === "string") {
      if (!isWellFormed(value)) throw new TypeError(`not canonicalisable JSON: lone surrogate in ${key}`);
      json = JSON.stringify(value);
    } else if (value === null) json = "null";
    else if (value === undefined) continue; // as canonicalize does; entry schemas never let a field be absent
    else json = canonicalJson(value);
    out += out.length === 1 ? prefix + json : `,${prefix}${json}`;
  }
  return `${out}}`;
}

/** The exact string whose UTF-8 bytes are hashed: prevHash followed by {@link entryCanonicalJson}. */
export function entryHashInput(entry: Omit<AuditEntry, "hash"> | AuditEntry): string {
  return entry.prevHash + entryCanonicalJson(entry);
}

/** The hash an entry must carry. */
export function computeEntryHash(entry: Omit<AuditEntry, "hash"> | AuditEntry): string {
  return sha256Hex(entryHashInput(entry));
}

/** The head an entry leaves the chain at. */
export function headOf(entry: AuditEntry): ChainHead {
  return { seq: entry.seq, hash: entry.hash };
}

/**
 * The next entry of a chain whose head is `head` (null or {@link GENESIS_HEAD} for an empty chain): seq =
 * head.seq + 1, prevHash = head.hash, fields normalised ({@link normalizeFields}), hash computed. Pure and
 * synchronous. Throws a TypeError for a malformed head or fields (see normalizeFields); never for payload data.
 */
export function appendEntry(head: ChainHead | null, fields: AuditFields): AuditEntry {
  const prev = head ?? GENESIS_HEAD;
  if (!Number.isSafeInteger(prev.seq) || prev.seq < 0 || typeof prev.hash !== "string" || !HEX64_PATTERN.test(prev.hash)) {
    throw new TypeError("invalid chain head: seq must be an integer ≥ 0 and hash 64 lowercase hex characters");
  }
  if (prev.seq === 0 && prev.hash !== GENESIS_HASH) throw new TypeError("invalid chain head: seq 0 is the genesis, whose hash is 64 zeros");
  if (prev.seq >= Number.MAX_SAFE_INTEGER) throw new TypeError("invalid chain head: seq exhausted");
  const entry: AuditEntry = { seq: prev.seq + 1, ...normalizeFields(fields), prevHash: prev.hash, hash: "" };
  entry.hash = computeEntryHash(entry);
  return entry;
}
