/**
 * @module Splits a child's stdout into newline-delimited JSON-RPC messages (the MCP stdio framing), with a size
 * limit per message. Pure.
 *
 * The SDK's ReadBuffer throws and clears everything it holds when one message is too large, which loses the
 * messages around it and says nothing about which call the big one answered. This framer skips just the oversized
 * line and reports its JSON-RPC id when the id can be read from either end of the line, so that one call fails
 * with a clear "too large" error and every other call carries on.
 */

export type FramedLine =
  | { kind: "line"; text: string }
  | {
      kind: "oversized";
      bytes: number;
      /** The message's JSON-RPC id, when it stands at the start or the end of the line (where SDKs put it). */
      id: string | number | undefined;
    };

/** Enough of each end of an oversized line to find its top-level id. */
const EDGE_BYTES = 512;
const NEWLINE = 0x0a;

export class LineFramer {
  readonly #maxLineBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Set while skipping a line that exceeded the limit: its size so far and both of its ends. */
  #oversized: { bytes: number; head: Buffer; tail: Buffer } | undefined;

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /** Feeds one chunk of stdout; returns the lines it completed, in order. */
  push(chunk: Buffer): FramedLine[] {
    const out: FramedLine[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE, start); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      this.#absorb(chunk.subarray(start, end));
      const line = this.#finishLine();
      if (line) out.push(line);
      start = end + 1;
    }
    if (start < chunk.length) this.#absorb(chunk.subarray(start));
    return out;
  }

  #absorb(part: Buffer): void {
    if (part.length === 0) return;
    if (this.#oversized) {
      this.#oversized.bytes += part.length;
      this.#oversized.tail = lastBytes(Buffer.concat([this.#oversized.tail, part]), EDGE_BYTES);
      return;
    }
    if (this.#pendingBytes + part.length > this.#maxLineBytes) {
      const sofar = Buffer.concat([...this.#pending, part]);
      this.#oversized = { bytes: sofar.length, head: sofar.subarray(0, EDGE_BYTES), tail: lastBytes(sofar, EDGE_BYTES) };
      this.#pending = [];
      this.#pendingBytes = 0;
      return;
    }
    this.#pending.push(part);
    this.#pendingBytes += part.length;
  }

  #finishLine(): FramedLine | undefined {
    if (this.#oversized) {
      const { bytes, head, tail } = this.#oversized;
      this.#oversized = undefined;
      return { kind: "oversized", bytes, id: topLevelId(head.toString("utf8"), tail.toString("utf8")) };
    }
    const text = Buffer.concat(this.#pending).toString("utf8").replace(/\r$/, "");
    this.#pending = [];
    this.#pendingBytes = 0;
    return text.trim() === "" ? undefined : { kind: "line", text };
  }
}

function lastBytes(buffer: Buffer, n: number): Buffer {
  return buffer.length <= n ? buffer : buffer.subarray(buffer.length - n);
}

const ID_VALUE = String.raw`("(?:[^"\\]|\\.)*"|-?\d+)`;
/** `{"id":…` or `{"jsonrpc":"2.0","id":…` at the very start (Python SDK order). */
const ID_AT_HEAD = new RegExp(String.raw`^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*` + ID_VALUE);
/** `…"id":…}` at the very end (TypeScript SDK order: result, jsonrpc, id). */
const ID_AT_TAIL = new RegExp(String.raw`"id"\s*:\s*` + ID_VALUE + String.raw`\s*\}\s*$`);

/**
 * The id of a JSON-RPC message known only by its two ends. Anchored at the outermost braces so that an "id" key
 * nested inside the payload is never mistaken for the message's own.
 */
export function topLevelId(head: string, tail: string): string | number | undefined {
  const match = ID_AT_HEAD.exec(head) ?? ID_AT_TAIL.exec(tail.replace(/\r$/, ""));
  if (!match?.[1]) return undefined;
  try {
    return JSON.parse(match[1]) as string | number;
  } catch {
    return undefined;
  }
}
