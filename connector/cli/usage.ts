/**
 * @module The `mcp-gateway usage …` commands that are more than one request and a printed answer: `usage
 * chargeback` (a table, the gateway's JSON, or its CSV; to stdout or --out) and `usage stripe` (a summary, the
 * events to --out, exit 1 when an event failed). `usage` itself is a plain request (commands.ts).
 */
import { randomBytes } from "node:crypto";
import { rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { AdminStreamError, sendAdminRequest, streamAdminRequest } from "./admin-client.ts";
import type { Command, Connection } from "./args.ts";
import { EXIT_GATEWAY, EXIT_OK, EXIT_USAGE, fileErrorReason, type CliIo } from "./io.ts";
import { chargebackTable, failureLines, jsonOutput, stripeText } from "./output.ts";
import { requestFor } from "./requests.ts";

type Fail = (lines: readonly string[], code: number) => number;
type Print = (text: string) => void;
export type UsageContext = { io: CliIo; json: boolean; fail: Fail; print: Print };

const sendOptions = (io: CliIo) => ({ ...(io.timeoutMs !== undefined ? { timeoutMs: io.timeoutMs } : {}), ...(io.fetch ? { fetch: io.fetch } : {}) });

type Row = Record<string, unknown>;
const isObject = (value: unknown): value is Row => typeof value === "object" && value !== null && !Array.isArray(value);

/** Writes FILE whole or not at all: a temporary file in the same directory, renamed once written. */
async function writeWhole(io: CliIo, out: string, text: string): Promise<string | undefined> {
  const path = resolve(io.cwd ?? process.cwd(), out);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) return `cannot write ${out}: it is a directory`;
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}.part`);
  try {
    await writeFile(temp, text, { flag: "wx", mode: 0o600 });
    await rename(temp, path);
    return undefined;
  } catch (error) {
    await unlink(temp).catch(() => {});
    return `cannot write ${out}: ${fileErrorReason(error)}`;
  }
}

/** `usage chargeback`: GET /admin/v1/usage/chargeback as a table, JSON or CSV, printed or written to --out. */
export async function usageChargeback(command: Extract<Command, { kind: "usage chargeback" }>, connection: Connection, { io, fail, print }: UsageContext): Promise<number> {
  const notWritten = command.out === undefined ? [] : [`${command.out} was not written`];
  let text: string;
  if (command.format === "csv") {
    const stream = await streamAdminRequest(connection, requestFor(command), { ...sendOptions(io), accept: "text/csv" });
    if (!stream.ok) return fail([...failureLines(stream.failure), ...notWritten], EXIT_GATEWAY);
    if (stream.contentType !== "text/csv") {
      await stream.cancel();
      const got = stream.contentType === "" ? "no content type" : stream.contentType;
      return fail([...failureLines({ kind: "unexpected", url: stream.url, status: stream.status, reason: `expected text/csv, got ${got}` }), ...notWritten], EXIT_GATEWAY);
    }
    const chunks: Uint8Array[] = [];
    try {
      for await (const chunk of stream.chunks) chunks.push(chunk);
    } catch (error) {
      if (error instanceof AdminStreamError) return fail([...failureLines(error.failure), ...notWritten], EXIT_GATEWAY);
      throw error;
    }
    text = Buffer.concat(chunks).toString("utf8");
  } else {
    const result = await sendAdminRequest(connection, requestFor(command), sendOptions(io));
    if (!result.ok) return fail([...failureLines(result.failure), ...notWritten], EXIT_GATEWAY);
    if (command.format === "table") {
      print(chargebackTable(result.body));
      return EXIT_OK;
    }
    text = `${jsonOutput(result.body)}\n`;
  }
  if (command.out === undefined) {
    io.stdout(text);
    return EXIT_OK;
  }
  const problem = await writeWhole(io, command.out, text);
  if (problem) return fail([problem], EXIT_USAGE);
  io.stderr(`wrote ${command.out} (${command.format})\n`);
  return EXIT_OK;
}

/** `usage stripe`: POST /admin/v1/usage/stripe; a summary (or --json), the events to --out; exit 1 when one failed. */
export async function usageStripe(command: Extract<Command, { kind: "usage stripe" }>, connection: Connection, { io, json, fail, print }: UsageContext): Promise<number> {
  const result = await sendAdminRequest(connection, requestFor(command), sendOptions(io));
  if (!result.ok) return fail(failureLines(result.failure), EXIT_GATEWAY);
  const body = result.body;
  const events = isObject(body) && Array.isArray(body.events) ? body.events : undefined;
  if (!events) {
    const url = connection.url;
    return fail(failureLines({ kind: "unexpected", url, status: result.status, reason: "the answer is not a Stripe meter event report ({events, sent, …})" }), EXIT_GATEWAY);
  }
  print(json ? jsonOutput(body) : stripeText(body));
  if (command.out !== undefined) {
    const stripeEvents = events.map((e) => (isObject(e) && isObject(e.event) ? e.event : e));
    const problem = await writeWhole(io, command.out, `${JSON.stringify(stripeEvents, null, 2)}\n`);
    if (problem) return fail([problem], EXIT_USAGE);
    if (!json) io.stderr(`wrote ${stripeEvents.length} event${stripeEvents.length === 1 ? "" : "s"} to ${command.out}\n`);
  }
  const failed = isObject(body) && Array.isArray(body.failed) ? body.failed.length : 0;
  return failed > 0 ? EXIT_GATEWAY : EXIT_OK;
}
