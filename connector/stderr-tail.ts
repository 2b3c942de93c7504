/**
 * @module The last lines a child wrote to stderr, bounded in lines and in line length: what an operator needs to
 * see why a server keeps crashing, without letting a chatty child grow the connector's memory. Pure.
 */

import { clip } from "../src/text.ts";

export class StderrTail {
  readonly #maxLines: number;
  readonly #maxLineChars: number;
  #lines: string[] = [];
  #partial = "";

  constructor(maxLines = 20, maxLineChars = 300) {
    this.#maxLines = maxLines;
    this.#maxLineChars = maxLineChars;
  }

  /** Adds a chunk of stderr text; returns the lines it completed (truncated), for logging. */
  push(text: string): string[] {
    const parts = (this.#partial + text).split(/\r?\n/);
    // The last part has no newline yet; keep it (bounded) until one arrives.
    this.#partial = (parts.pop() ?? "").slice(0, this.#maxLineChars);
    const complete = parts.filter((line) => line.trim() !== "").map((line) => clip(line, this.#maxLineChars));
    this.#lines.push(...complete);
    if (this.#lines.length > this.#maxLines) this.#lines.splice(0, this.#lines.length - this.#maxLines);
    return complete;
  }

  /** The most recent lines, oldest first, including an unfinished last line. */
  lines(): string[] {
    return this.#partial.trim() === "" ? [...this.#lines] : [...this.#lines, this.#partial].slice(-this.#maxLines);
  }
}
