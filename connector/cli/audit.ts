/**
 * @module The `mcp-gateway audit …` commands that are more than one request and one answer: `audit log` (pages
 * followed up to --limit), `audit verify` (the gateway's NDJSON stream, or an export file verified offline) and
 * `audit export` (streamed to a file or stdout). `audit stats` is a plain request (commands.ts).
 */
import { randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { verifyExport } from "../../src/audit/export-format.ts";
import { AdminStreamError, sendAdminRequest, streamAdminRequest, streamLines, type AdminFailure } from "./admin-client.ts";
import type { Command, Connection, OfflineVerify } from "./args.ts";
import { EXIT_GATEWAY, EXIT_OK, EXIT_USAGE, fileErrorReason, type CliIo } from "./io.ts";
import { auditLogTable, bytesText, exportSummaryText, failureLines, jsonOutput, progressBar, verifyText } from "./output.ts";
import { auditEntriesRequest, requestFor, requestUrl } from "./requests.ts";

type Fail = (lines: readonly string[], code: number) => number;
type Print = (text: string) => void;
export type AuditContext = { io: CliIo; json: boolean; fail: Fail; print: Print };

const sendOptions = (io: CliIo) => ({ ...(io.timeoutMs !== undefined ? { timeoutMs: io.timeoutMs } : {}), ...(io.fetch ? { fetch: io.fetch } : {}) });

type Row = Record<string, unknown>;
const isObject = (value: unknown): value is Row => typeof value === "object" && value !== null && !Array.isArray(value);

/** `audit log`: GET /admin/v1/audit/entries page after page (newest first) until `limit` entries or the last page. */
export async function auditLog(command: Extract<Command, { kind: "audit log" }>, connection: Connection, { io, json, fail, print }: AuditContext): Promise<number> {
  const entries: unknown[] = [];
  let cursor: string | undefined;
  let more = false;
  for (;;) {
    const remaining = command.limit - entries.length;
    const request = auditEntriesRequest(command.filters, remaining, cursor);
    const result = await sendAdminRequest(connection, request, sendOptions(io));
    if (!result.ok) return fail(failureLines(result.failure), EXIT_GATEWAY);
    const page = result.body;
    const rows = isObject(page) ? page.entries : undefined;
    if (!Array.isArray(rows)) {
      const url = requestUrl(connection.url, request.path, connection.tenant, request.query);
      return fail(failureLines({ kind: "unexpected", url, status: result.status, reason: "the answer is not a page of audit entries ({entries, nextCursor})" }), EXIT_GATEWAY);
    }
    entries.push(...rows.slice(0, remaining));
    const next = (page as Row).nextCursor;
    const hasNext = typeof next === "string" && next !== "";
    if (entries.length >= command.limit) {
      more = hasNext || rows.length > remaining;
      break;
    }
    // An empty page, or a cursor that does not move, would otherwise ask forever.
    if (!hasNext || rows.length === 0 || next === cursor) break;
    cursor = next;
  }
  if (json) {
    print(jsonOutput({ entries }));
    return EXIT_OK;
  }
  print(auditLogTable(entries));
  if (more) io.stderr(`(the first ${entries.length}; there are more: --limit N, or narrow with --from/--to and the filters)\n`);
  return EXIT_OK;
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. Redrawn only when what it shows changes. */
function progressReporter(io: CliIo) {
  let shown: string | undefined;
  return {
    update(key: string, text: string) {
      if (!io.interactive || key === shown) return;
      shown = key;
      io.stderr(`\r${text}\x1b[K`);
    },
    clear() {
      if (shown !== undefined) io.stderr("\r\x1b[K");
      shown = undefined;
    },
  };
}

/** `audit verify` without --file: POST /admin/v1/audit/verify, reading its NDJSON progress as it comes. */
export async function auditVerifyRemote(command: Extract<Command, { kind: "audit verify" }>, connection: Connection, { io, json, fail, print }: AuditContext): Promise<number> {
  const stream = await streamAdminRequest(connection, requestFor(command), { ...sendOptions(io), accept: "application/x-ndjson" });
  if (!stream.ok) return fail(failureLines(stream.failure), EXIT_GATEWAY);
  const unexpected = (reason: string): AdminFailure => ({ kind: "unexpected", url: stream.url, status: stream.status, reason });
  const progress = progressReporter(io);
  let verdict: Row | undefined;
  try {
    for await (const raw of streamLines(stream.chunks, stream.url)) {
      const line = raw.trim();
      if (line === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new AdminStreamError(unexpected(`a line of the answer is not JSON${stream.contentType ? ` (${stream.contentType})` : ""}; is this the gateway's URL?`));
      }
      if (!isObject(value)) throw new AdminStreamError(unexpected("a line of the answer is not a JSON object"));
      if (value.type === "progress") {
        const verified = typeof value.verified === "number" ? value.verified : 0;
        const total = typeof value.total === "number" && value.total > 0 ? value.total : undefined;
        const fraction = total === undefined ? undefined : verified / total;
        const detail = `verifying: ${verified.toLocaleString("en-US")}${total === undefined ? "" : ` of ${total.toLocaleString("en-US")}`} entries`;
        progress.update(fraction === undefined ? String(verified) : String(Math.floor(fraction * 100)), progressBar(fraction, detail));
      } else if (value.type === "result") {
        // The result's fields are on the line itself; a nested {"result": {...}} is read too.
        const inner = typeof value.ok === "boolean" ? value : isObject(value.result) && typeof value.result.ok === "boolean" ? value.result : undefined;
        if (!inner) throw new AdminStreamError(unexpected("the result line has no ok: true|false"));
        const { type: _type, ...rest } = inner;
        verdict = rest;
        break;
      } else if (value.type === "error") {
        // The gateway could not finish (its own failure, not the chain's): its message says what to do.
        const error = isObject(value.error) ? value.error : {};
        const message = typeof error.message === "string" ? error.message : "the gateway could not finish the verification";
        const code = typeof error.code === "string" ? error.code : "unavailable";
        throw new AdminStreamError({ kind: "refused", url: stream.url, status: stream.status, error: { code, message, details: [] } });
      }
      // Other line types are for later versions: skipped.
    }
  } catch (error) {
    progress.clear();
    if (error instanceof AdminStreamError) return fail(failureLines(error.failure), EXIT_GATEWAY);
    throw error;
  }
  progress.clear();
  if (!verdict) {
    return fail([`the gateway's verification ended without a result (${stream.url}): the answer was cut short, so nothing is known about the chain`], EXIT_GATEWAY);
  }
  print(json ? jsonOutput(verdict) : verifyText(verdict));
  return verdict.ok === true ? EXIT_OK : EXIT_GATEWAY;
}

/**
 * `audit verify --file FILE --public-key KEY`: offline, no network. The file is read line by line (node:readline
 * over a read stream) into verifyExport, so a million-entry export never sits in memory.
 */
export async function auditVerifyFile(offline: OfflineVerify, { io, json, fail, print }: AuditContext): Promise<number> {
  const path = resolve(io.cwd ?? process.cwd(), offline.file);
  let handle: FileHandle;
  let size: number;
  try {
    handle = await open(path, "r");
  } catch (error) {
    return fail([`cannot read ${offline.file}: ${fileErrorReason(error)}`], EXIT_USAGE);
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw Object.assign(new Error("directory"), { code: "EISDIR" });
    size = info.size;
  } catch (error) {
    await handle.close().catch(() => {});
    return fail([`cannot read ${offline.file}: ${fileErrorReason(error)}`], EXIT_USAGE);
  }

  const input = handle.createReadStream({ highWaterMark: 256 * 1024 });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  const progress = progressReporter(io);
  const report = (entries: number) => {
    const fraction = size > 0 ? input.bytesRead / size : undefined;
    const detail = `${bytesText(input.bytesRead)} of ${bytesText(size)}, ${entries.toLocaleString("en-US")} entries`;
    progress.update(String(fraction === undefined ? entries : Math.floor(fraction * 100)), progressBar(fraction, detail));
  };
  let result: Awaited<ReturnType<typeof verifyExport>>;
  try {
    result = await verifyExport(lines, offline.publicKeys, { ...(offline.expectedHead ? { expectedHead: offline.expectedHead } : {}), onProgress: report });
  } catch (error) {
    progress.clear();
    // verifyExport throws only for a malformed key (args.ts checked them) or when the file cannot be read.
    if (error instanceof TypeError && /key/.test(error.message)) return fail([`--public-key: ${error.message}`], EXIT_USAGE);
    return fail([`cannot read ${offline.file}: ${fileErrorReason(error)}`], EXIT_USAGE);
  } finally {
    lines.close();
    input.destroy();
  }
  progress.clear();
  print(json ? jsonOutput(result) : verifyText(result, offline.file));
  return result.ok ? EXIT_OK : EXIT_GATEWAY;
}

const JSONL_TYPES = ["application/x-ndjson", "application/jsonl", "application/x-jsonlines"];

/**
 * `audit export`: GET /admin/v1/audit/export streamed to --out (through a temporary file in the same directory,
 * renamed once complete, so FILE never holds a partial export) or to stdout. The bytes are written as they came.
 */
export async function auditExport(command: Extract<Command, { kind: "audit export" }>, connection: Connection, { io, json, fail, print }: AuditContext): Promise<number> {
  let target: { path: string; temp: string; handle: FileHandle } | undefined;
  if (command.out !== undefined) {
    const path = resolve(io.cwd ?? process.cwd(), command.out);
    const existing = await stat(path).catch(() => undefined);
    if (existing?.isDirectory()) return fail([`cannot write ${command.out}: it is a directory`], EXIT_USAGE);
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}.part`);
    try {
      // Audit data (consumers, client IPs, redacted arguments): readable by its owner only.
      target = { path, temp, handle: await open(temp, "wx", 0o600) };
    } catch (error) {
      return fail([`cannot write ${command.out}: ${fileErrorReason(error)}`], EXIT_USAGE);
    }
  }
  const discard = async () => {
    if (!target) return;
    await target.handle.close().catch(() => {});
    await unlink(target.temp).catch(() => {});
  };
  const notWritten = command.out === undefined ? [] : [`${command.out} was not written`];

  const accept = command.format === "csv" ? "text/csv" : "application/x-ndjson";
  const stream = await streamAdminRequest(connection, requestFor(command), { ...sendOptions(io), accept });
  if (!stream.ok) {
    await discard();
    return fail([...failureLines(stream.failure), ...notWritten], EXIT_GATEWAY);
  }
  const expected = command.format === "csv" ? ["text/csv"] : JSONL_TYPES;
  if (!expected.includes(stream.contentType)) {
    await stream.cancel();
    await discard();
    const got = stream.contentType === "" ? "no content type" : stream.contentType;
    return fail([...failureLines({ kind: "unexpected", url: stream.url, status: stream.status, reason: `expected ${accept}, got ${got}` }), ...notWritten], EXIT_GATEWAY);
  }

  const decoder = new TextDecoder();
  const toStdout = io.stdoutBytes ?? ((chunk: Uint8Array) => io.stdout(decoder.decode(chunk, { stream: true })));
  const progress = progressReporter(io);
  let bytes = 0;
  let lines = 0;
  /** The first line's bytes (the JSONL header), up to 64 KiB. */
  let first: Uint8Array[] = [];
  let firstDone = false;
  let firstBytes = 0;
  let lastByte = -1;
  let stage: "download" | "write" = "download";
  try {
    for await (const chunk of stream.chunks) {
      bytes += chunk.length;
      if (chunk.length > 0) lastByte = chunk[chunk.length - 1] as number;
      let newline = chunk.indexOf(10);
      if (!firstDone) {
        const part = newline === -1 ? chunk : chunk.subarray(0, newline);
        if (firstBytes < 65_536) first.push(part.slice(0, 65_536 - firstBytes));
        firstBytes += part.length;
        firstDone = newline !== -1;
      }
      for (; newline !== -1; newline = chunk.indexOf(10, newline + 1)) lines++;
      stage = "write";
      if (target) await writeAll(target.handle, chunk);
      else await toStdout(chunk);
      stage = "download";
      if (target) progress.update(String(Math.floor(bytes / 1_048_576)), `downloading: ${bytesText(bytes)}`);
    }
    if (!target) {
      if (!io.stdoutBytes) {
        const rest = decoder.decode();
        if (rest) io.stdout(rest);
      }
      return EXIT_OK;
    }
    if (bytes === 0) {
      progress.clear();
      await discard();
      return fail([...failureLines({ kind: "unexpected", url: stream.url, status: stream.status, reason: "the export is empty" }), ...notWritten], EXIT_GATEWAY);
    }
    stage = "write";
    await target.handle.sync();
    await target.handle.close();
    await rename(target.temp, target.path);
  } catch (error) {
    progress.clear();
    await discard();
    if (error instanceof AdminStreamError) return fail([...failureLines(error.failure), ...notWritten], EXIT_GATEWAY);
    if (stage === "write") return fail([`cannot write ${command.out ?? "to stdout"}: ${fileErrorReason(error)}`, ...notWritten], EXIT_USAGE);
    throw error;
  }
  progress.clear();
  if (lastByte !== 10) lines++; // a last line without "\n" is a line too
  let header: unknown;
  if (command.format === "jsonl") {
    try {
      header = JSON.parse(Buffer.concat(first).toString("utf8"));
    } catch {
      header = undefined;
    }
  }
  first = [];
  const out = command.out as string;
  if (json) print(jsonOutput({ file: out, format: command.format, bytes, lines, ...(isObject(header) && header.type === "header" ? { tenant: header.tenant, start: header.start, head: header.head } : {}) }));
  else io.stderr(`${exportSummaryText(out, command.format, bytes, lines, header)}\n`);
  return EXIT_OK;
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}
