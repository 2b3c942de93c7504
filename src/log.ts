/**
 * @module Structured logs for Workers Logs: one JSON object per line with stable field names (event, tenant,
 * consumer, server, tool, status, latencyMs, requestId), so the dashboard indexes them. Never a secret, a key, a
 * token or an argument value.
 */
export type LogFields = { event: string } & Record<string, string | number | boolean | null | undefined>;

export function log(fields: LogFields, level: "info" | "warn" | "error" = "info"): void {
  const line = JSON.stringify({ level, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
