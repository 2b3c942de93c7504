/**
 * @module The connector's log: one JSON object per line on stderr, with stable field names (event, server, callId,
 * status, latencyMs, …) so log shippers can index them. Callers pass identifiers and outcomes only — never a
 * token, an env value or a call's arguments.
 */

export type LogLevel = "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined | readonly string[]>;
export type Logger = (level: LogLevel, event: string, fields?: LogFields) => void;

/** A logger writing JSON lines to a stream (stderr by default, keeping stdout free for tools that wrap the CLI). */
export function jsonLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  return (level, event, fields = {}) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
  };
}

/** Discards everything (tests that do not look at logs). */
export const silentLogger: Logger = () => {};
