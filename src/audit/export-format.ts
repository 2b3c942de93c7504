/**
 * @module The audit export formats (docs/audit-chain.md).
 *
 * JSONL, verifiable offline: one JSON object per line, lines separated by "\n" (a trailing "\r" is tolerated):
 *   1. `{"type":"header","format":"mcp-gateway-audit","version":1,"tenant",…,"keyId","start","head","exportedAt"}`;
 *   2. `{"type":"checkpoint",…}` lines for checkpoints at or before `start.seq` (the one AT start.seq anchors a
 *      pruned or partial export and is required when start.seq > 0);
 *   3. `{"type":"entry","hash":…,"prevHash":…, …the other 21 fields}` in seq order, each followed by the checkpoints
 *      of its seq. {@link exportEntryLine} writes the 21 fields as the very canonical JSON the hash covers, so a
 *      verifier can hash the line's text; any other layout of the same fields verifies too, by re-serialising.
 * {@link exportLines} writes it, {@link parseExportLine} reads one line, {@link verifyExport} verifies a whole file
 * streaming (the CLI's `mcp-gateway audit verify --file export.jsonl --public-key K`).
 *
 * CSV, for people and spreadsheets, NOT verifiable (cells are quoted and guarded against formula injection, nulls
 * and empty strings look alike): {@link AUDIT_CSV_HEADER} then one {@link entryToCsvRow} per entry, "\r\n"-separated.
 */
import { z } from "zod";
import { type AuditCheckpoint, auditCheckpointSchema, KEY_ID_PATTERN, publicKeyId } from "./checkpoint.ts";
import { entryCanonicalJson, sha256Hex } from "./chain.ts";
import { AUDIT_ENTRY_FIELDS, type AuditEntry, type ChainHead, chainHeadSchema, GENESIS_HASH, HEX64_PATTERN, readParsedEntry } from "./entry.ts";
import { ChainVerifier, type ChainVerifyResult } from "./verify.ts";

export const EXPORT_FORMAT = "mcp-gateway-audit";
export const EXPORT_VERSION = 1;

export interface ExportHeader {
  type: "header";
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  tenant: string;
  /** Id ({@link publicKeyId}) of the key the checkpoints are signed with; null when the export has none. */
  keyId: string | null;
  /** The entries start after this head: seq 0 and 64 zeros for a whole chain, else a checkpointed seq. */
  start: ChainHead;
  /** The last exported entry's seq and hash (unsigned: it shows a truncated file, signed checkpoints show the rest). */
  head: ChainHead | null;
  /** Epoch milliseconds. */
  exportedAt: number;
}

export type ExportLine =
  | { type: "header"; header: ExportHeader }
  | { type: "entry"; entry: AuditEntry }
  | { type: "checkpoint"; checkpoint: AuditCheckpoint };

export const exportHeaderSchema = z.strictObject({
  type: z.literal("header"),
  format: z.literal(EXPORT_FORMAT),
  version: z.literal(EXPORT_VERSION),
  tenant: z.string().min(1),
  keyId: z.string().regex(KEY_ID_PATTERN, "must be 16 lowercase hex characters").nullable(),
  start: chainHeadSchema,
  head: chainHeadSchema.nullable(),
  exportedAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** A line that is not part of a valid export; `seq` when the line's seq could be read. */
export class AuditExportError extends Error {
  readonly seq: number | null;
  constructor(message: string, seq: number | null = null) {
    super(message);
    this.name = "AuditExportError";
    this.seq = seq;
  }
}

function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join(".") || "(line)"}: ${issue.message}` : "invalid";
}

/** Parses one export line (a trailing "\r" or "\n" is ignored). Throws {@link AuditExportError}. */
export function parseExportLine(line: string): ExportLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new AuditExportError("not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new AuditExportError("not a JSON object");
  const record = value as Record<string, unknown>;
  const type = record.type;
  const seq = typeof record.seq === "number" ? record.seq : null;
  switch (type) {
    case "entry": {
      const read = readParsedEntry(record, "type");
      if (!read.ok) throw new AuditExportError(`invalid entry: ${read.error}`, seq);
      return { type, entry: read.entry };
    }
    case "checkpoint": {
      const { type: _type, ...rest } = record;
      const parsed = auditCheckpointSchema.safeParse(rest);
      if (!parsed.success) throw new AuditExportError(`invalid checkpoint: ${issueText(parsed.error)}`, seq);
      return { type, checkpoint: parsed.data };
    }
    case "header": {
      const parsed = exportHeaderSchema.safeParse(value);
      if (!parsed.success) throw new AuditExportError(`invalid header: ${issueText(parsed.error)}`);
      if (parsed.data.start.seq === 0 && parsed.data.start.hash !== GENESIS_HASH) throw new AuditExportError("invalid header: start.hash must be 64 zeros at seq 0");
      return { type, header: parsed.data as ExportHeader };
    }
    default:
      throw new AuditExportError(`unknown line type ${JSON.stringify(type)}`, seq);
  }
}

export function exportHeaderLine(header: Omit<ExportHeader, "type" | "format" | "version">): string {
  const { tenant, keyId, start, head, exportedAt } = header;
  return JSON.stringify({ type: "header", format: EXPORT_FORMAT, version: EXPORT_VERSION, tenant, keyId, start, head, exportedAt });
}

/** How an entry line written by {@link exportEntryLine} begins: type, hash and prevHash, then the hashed text. */
const ENTRY_LINE_HEAD = /^\{"type":"entry","hash":"([0-9a-f]{64})","prevHash":"([0-9a-f]{64})",/;
const ENTRY_LINE_HEAD_LENGTH = '{"type":"entry","hash":"","prevHash":"",'.length + 128;

/**
 * An entry's line: `{"type":"entry","hash":H,"prevHash":P,` followed by the members of the entry's canonical JSON
 * (the exact text its hash covers, {@link entryCanonicalJson}). Any JSON reader sees the entry's 23 fields plus
 * `type`; a verifier can hash the line's own text instead of re-serialising it ({@link verifyExport}). An entry that
 * cannot be canonicalised (which appendEntry never makes) is written as plain JSON and fails verification.
 */
export function exportEntryLine(entry: AuditEntry): string {
  if (typeof entry.hash === "string" && typeof entry.prevHash === "string" && HEX64_PATTERN.test(entry.hash) && HEX64_PATTERN.test(entry.prevHash)) {
    let canonical: string | undefined;
    try {
      canonical = entryCanonicalJson(entry);
    } catch {
      canonical = undefined;
    }
    if (canonical !== undefined && canonical.length > 2) return `{"type":"entry","hash":"${entry.hash}","prevHash":"${entry.prevHash}",${canonical.slice(1)}`;
  }
  return JSON.stringify({ type: "entry", ...entry });
}

/**
 * The hash of an entry line's content read off its text, when the line is laid out as {@link exportEntryLine} writes
 * it: SHA-256 of prevHash followed by `{` and the rest of the line after the prevHash member. Undefined for any
 * other layout. When it equals the line's `hash`, the text after the head is byte for byte the canonical JSON the
 * gateway hashed (finding another text with that hash would break SHA-256), so the fields parsed from the line
 * are verified without re-serialising them.
 */
export function entryLineHash(line: string): { hash: string; prevHash: string; contentHash: string } | undefined {
  if (!line.startsWith('{"type":"entry","hash":"')) return undefined;
  const head = ENTRY_LINE_HEAD.exec(line);
  if (!head) return undefined;
  const prevHash = head[2] as string;
  return { hash: head[1] as string, prevHash, contentHash: sha256Hex(`${prevHash}{${line.slice(ENTRY_LINE_HEAD_LENGTH)}`) };
}

export function exportCheckpointLine(checkpoint: AuditCheckpoint): string {
  const { tenant, seq, hash, time, keyId, signature } = checkpoint;
  return JSON.stringify({ type: "checkpoint", tenant, seq, hash, time, keyId, signature });
}

export interface ExportSource {
  tenant: string;
  /** Default: the whole chain (seq 0, genesis). A later start needs a checkpoint at start.seq among `checkpoints`. */
  start?: ChainHead;
  /** Entries in seq order, each > start.seq. */
  entries: Iterable<AuditEntry> | AsyncIterable<AuditEntry>;
  /** The tenant's checkpoints, any order. Those before start.seq are left out, and those after `head.seq`. */
  checkpoints?: Iterable<AuditCheckpoint>;
  /** For the header: the last entry the export holds. Null or absent: a whole-chain export up to the live head. */
  head?: ChainHead | null;
  /** The signing key's id for the header; default: the checkpoints' keyId. */
  keyId?: string | null;
  exportedAt?: number;
}

/**
 * The JSONL lines of an export, without line terminators, in the order {@link verifyExport} reads them. Checkpoints
 * are few (one per N entries) and are held in memory; entries stream through. Every checkpoint in (start.seq,
 * head.seq] is written, each right after the entry of its seq — or where that entry should have been, and at the
 * end when beyond the last entry, so an export never hides the evidence of missing entries.
 */
export async function* exportLines(source: ExportSource): AsyncGenerator<string> {
  const start = source.start ?? { seq: 0, hash: GENESIS_HASH };
  const head = source.head ?? null;
  const checkpoints = [...(source.checkpoints ?? [])]
    .filter((c) => c.seq >= start.seq && (head === null || c.seq <= head.seq))
    .sort((a, b) => a.seq - b.seq);
  const keyId = source.keyId !== undefined ? source.keyId : (checkpoints[0]?.keyId ?? null);
  yield exportHeaderLine({ tenant: source.tenant, keyId, start, head, exportedAt: source.exportedAt ?? Date.now() });
  let next = 0;
  while (next < checkpoints.length && (checkpoints[next] as AuditCheckpoint).seq <= start.seq) yield exportCheckpointLine(checkpoints[next++] as AuditCheckpoint);
  for await (const entry of source.entries) {
    // A checkpoint whose entry is missing goes before the next entry: the verifier reports the gap first.
    while (next < checkpoints.length && (checkpoints[next] as AuditCheckpoint).seq < entry.seq) yield exportCheckpointLine(checkpoints[next++] as AuditCheckpoint);
    yield exportEntryLine(entry);
    while (next < checkpoints.length && (checkpoints[next] as AuditCheckpoint).seq === entry.seq) yield exportCheckpointLine(checkpoints[next++] as AuditCheckpoint);
  }
  while (next < checkpoints.length) yield exportCheckpointLine(checkpoints[next++] as AuditCheckpoint);
}

export type ExportVerifyResult = ChainVerifyResult & { header: ExportHeader | null };

export interface VerifyExportOptions {
  /** The head the export must end at, from a source the export's author does not control (default: the header's). */
  expectedHead?: ChainHead;
  /**
   * Checkpoints obtained apart from the export (the latest one kept from an earlier verification, or published):
   * an export that ends before one of them is reported as a missing tail, whatever its own lines say.
   */
  checkpoints?: Iterable<AuditCheckpoint>;
  /** Called every 10,000 entries with the count so far (a CLI progress bar). */
  onProgress?: (entries: number) => void;
  /** See ChainVerifierOptions.lookahead. */
  lookahead?: number;
}

/**
 * Verifies a JSONL export offline with the tenant's checkpoint public key(s): every entry's hash, every link, every
 * checkpoint's signature and hash, the header's head, and the anchor of a partial export. `lines` yields one line
 * each (from a file read line by line: nothing is held but a small window). Never throws for bad input: a
 * malformed export is a failure with its line number. Throws a TypeError only for a malformed public key.
 */
export async function verifyExport(
  lines: Iterable<string> | AsyncIterable<string>,
  publicKey: string | Uint8Array | readonly (string | Uint8Array)[],
  options: VerifyExportOptions = {},
): Promise<ExportVerifyResult> {
  const keys = (Array.isArray(publicKey) ? publicKey : [publicKey]) as (string | Uint8Array)[];
  const keyIds = keys.map((key) => publicKeyId(key));
  let header: ExportHeader | null = null;
  let verifier: ChainVerifier | null = null;
  let failure: ExportVerifyResult | null = null;
  let lineNo = 0;
  let entries = 0;
  const fail = (message: string, reason: "malformed" | "key-mismatch" = "malformed"): ExportVerifyResult => ({
    ok: false,
    failure: { seq: null, reason, message, line: lineNo },
    entries: 0,
    checkpoints: 0,
    header,
  });
  /** Handles one line; true when the outcome is settled. */
  const feed = (raw: string): boolean => {
    lineNo++;
    const line = raw.endsWith("\n") || raw.endsWith("\r") ? raw.replace(/[\r\n]+$/, "") : raw;
    if (line.length === 0) return false;
    if (!verifier) {
      let parsed: ExportLine;
      try {
        parsed = parseExportLine(line);
      } catch (error) {
        failure = fail(`line ${lineNo} should be the export header: ${(error as Error).message}`);
        return true;
      }
      if (parsed.type !== "header") {
        failure = fail(`line ${lineNo} should be the export header, not a ${parsed.type}`);
        return true;
      }
      header = parsed.header;
      if (header.keyId !== null && !keyIds.includes(header.keyId)) {
        failure = fail(`the export's checkpoints are signed with key ${header.keyId}, not the given public key (${keyIds.join(", ")})`, "key-mismatch");
        return true;
      }
      const expectedHead = options.expectedHead ?? header.head ?? undefined;
      verifier = new ChainVerifier({
        tenant: header.tenant,
        publicKeys: keys,
        start: header.start,
        ...(expectedHead ? { expectedHead } : {}),
        ...(options.lookahead === undefined ? {} : { lookahead: options.lookahead }),
      });
      for (const checkpoint of options.checkpoints ?? []) if (!verifier.checkpoint(checkpoint)) break;
      return verifier.settled;
    }
    let parsed: ExportLine;
    try {
      parsed = parseExportLine(line);
    } catch (error) {
      const seq = error instanceof AuditExportError ? error.seq : null;
      verifier.malformed(`line ${lineNo}${seq === null ? "" : ` (seq ${seq})`}: ${(error as Error).message}`, lineNo, seq);
      return verifier.settled;
    }
    if (parsed.type === "entry") {
      // The line's own text, hashed: used only when it is exactly what this entry's fields say it is.
      const fast = entryLineHash(line);
      const { entry } = parsed;
      const known = fast && fast.hash === entry.hash && fast.prevHash === entry.prevHash && fast.contentHash === entry.hash ? fast.contentHash : undefined;
      verifier.entry(entry, lineNo, known);
      if (options.onProgress && ++entries % 10_000 === 0) options.onProgress(entries);
    } else if (parsed.type === "checkpoint") verifier.checkpoint(parsed.checkpoint, lineNo);
    else verifier.malformed(`line ${lineNo}: a second header`, lineNo);
    return verifier.settled;
  };
  if (Symbol.iterator in lines) {
    for (const line of lines as Iterable<string>) if (feed(line)) break;
  } else {
    for await (const line of lines as AsyncIterable<string>) if (feed(line)) break;
  }
  if (failure) return failure;
  if (!verifier) return fail("the export is empty: no header line");
  return { ...(verifier as ChainVerifier).finish(), header };
}

/** The CSV columns: `time` (ISO 8601 UTC of timestamp, for reading; not an entry field), then every entry field. */
export const AUDIT_CSV_COLUMNS: readonly string[] = ["time", ...AUDIT_ENTRY_FIELDS];
export const AUDIT_CSV_HEADER = AUDIT_CSV_COLUMNS.join(",");

/** Characters that make a spreadsheet read a cell as a formula (OWASP CSV injection), plus tab and carriage return. */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

/**
 * One CSV cell: numbers as they are, null as an empty cell, text guarded (a leading = + - @ tab or CR gets a `'`
 * in front, so no spreadsheet evaluates it) and quoted when it holds a quote, comma, line break or edge whitespace
 * (RFC 4180: quotes doubled).
 */
export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV row (no line terminator) in {@link AUDIT_CSV_COLUMNS} order; arguments and result as compact JSON text. */
export function entryToCsvRow(entry: AuditEntry): string {
  const date = new Date(entry.timestamp);
  const cells: string[] = [csvCell(Number.isNaN(date.getTime()) ? null : date.toISOString())];
  for (const field of AUDIT_ENTRY_FIELDS) {
    const value = entry[field];
    cells.push(csvCell(field === "arguments" || field === "result" ? (value === null ? null : JSON.stringify(value)) : (value as string | number | null)));
  }
  return cells.join(",");
}
