/**
 * @module What the CLI prints: tables and sentences for people, the gateway's JSON for scripts, and one line per
 * failure. Pure: every function returns text.
 *
 * Names, details and messages come from the gateway and, through it, from connectors and MCP servers: control
 * characters are made visible before they reach a terminal, so a server name cannot rewrite the screen.
 */
import Table from "cli-table3";
import type { AdminFailure } from "./admin-client.ts";

/** Borderless, uncoloured columns two spaces apart: readable, and easy to cut or grep. */
const PLAIN = {
  chars: {
    top: "", "top-mid": "", "top-left": "", "top-right": "",
    bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "",
    left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: "  ",
  },
  style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
};

/** Control characters (C0, DEL, C1) shown as `\x1b`-style escapes; newlines and tabs too, for one-line cells. */
export function visible(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const t = new Table({ head: [...head], ...PLAIN });
  for (const row of rows) t.push(row.map(visible));
  return t
    .toString()
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n");
}

/** `--json`: the gateway's answer as it came, pretty-printed. */
export function jsonOutput(body: unknown): string {
  return JSON.stringify(body, null, 2);
}

type Row = Record<string, unknown>;

const str = (value: unknown, empty = "-"): string =>
  value === undefined || value === null || value === "" ? empty : typeof value === "string" ? value : JSON.stringify(value);
const yesNo = (value: unknown): string => (value === true ? "yes" : value === false ? "no" : str(value));
const list = (value: unknown): string => (Array.isArray(value) ? value.map((v) => str(v)).join(",") || "-" : str(value));
const count = (value: unknown): string => (Array.isArray(value) ? String(value.length) : str(value));
const rowsOf = (body: unknown, field: string): Row[] => {
  const value = typeof body === "object" && body !== null ? (body as Row)[field] : undefined;
  return Array.isArray(value) ? value.filter((r): r is Row => typeof r === "object" && r !== null) : [];
};
const field = (body: unknown, name: string): unknown => (typeof body === "object" && body !== null ? (body as Row)[name] : undefined);

/** `2026-01-31T12:00:00.000Z` → `2026-01-31 12:00 UTC`; anything else as it is. */
export function time(value: unknown, empty = "-"): string {
  if (typeof value !== "string" || value === "") return str(value, empty);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return value;
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export function keysTable(body: unknown, now: number): string {
  const keys = rowsOf(body, "keys");
  if (keys.length === 0) return "no API keys";
  return table(
    ["ID", "NAME", "CONSUMER", "ROLES", "STATUS", "EXPIRES", "LAST USED", "SOURCE", "CREATED"],
    keys.map((k) => [
      str(k.id),
      str(k.name),
      str(k.consumerId),
      list(k.roles),
      keyStatus(k, now),
      time(k.expiresAt, "never"),
      time(k.lastUsedAt, "never"),
      str(k.source),
      time(k.createdAt),
    ]),
  );
}

/**
 * The gateway's `status` (revoked, disabled, expired, grace, active), a grace with the time the old secret stops;
 * worked out here from the other fields when an older gateway sends no status.
 */
function keyStatus(key: Row, now: number): string {
  const at = (value: unknown) => (typeof value === "string" ? Date.parse(value) : Number.NaN);
  const graceUntil = at(key.previousExpiresAt);
  let status = typeof key.status === "string" ? key.status : undefined;
  if (status === undefined) {
    const expires = at(key.expiresAt);
    if (typeof key.revokedAt === "string") status = "revoked";
    else if (key.enabled === false) status = "disabled";
    else if (!Number.isNaN(expires) && expires <= now) status = "expired";
    else status = !Number.isNaN(graceUntil) && graceUntil > now ? "grace" : "active";
  }
  return status === "grace" && !Number.isNaN(graceUntil) ? `grace: old key until ${time(key.previousExpiresAt)}` : status;
}

export function serversTable(body: unknown): string {
  const servers = rowsOf(body, "servers");
  if (servers.length === 0) return "no servers (a connector reports them when it connects; gateway.yaml declares them)";
  return table(
    ["ID", "NAME", "STATUS", "CONNECTOR", "TOOLS", "DECLARED", "ENABLED", "DETAIL"],
    servers.map((s) => [str(s.id), str(s.name), str(s.status), str(s.connectorId), count(s.tools), yesNo(s.declared), yesNo(s.enabled), serverDetail(s)]),
  );
}

function serverDetail(server: Row): string {
  const parts: string[] = [];
  if (typeof server.detail === "string" && server.detail !== "") parts.push(server.detail);
  const conflicts = server.conflicts;
  if (typeof conflicts === "string" && conflicts !== "") parts.push(conflicts);
  else if (Array.isArray(conflicts) && conflicts.length > 0) parts.push(`${conflicts.length} name${conflicts.length === 1 ? "" : "s"} withheld (conflict)`);
  return parts.join("; ");
}

export function connectorsTable(body: unknown): string {
  const connectors = rowsOf(body, "connectors");
  if (connectors.length === 0) return "no connectors (mcp-gateway connectors create ID)";
  return table(
    ["ID", "NAME", "STATUS", "CREATED"],
    connectors.map((c) => [str(c.id), str(c.name), c.enabled === false ? "revoked" : "enabled", time(c.createdAt)]),
  );
}

export function whoamiText(body: unknown): string {
  const platform = field(body, "platformAdmin") === true;
  const tenant = field(body, "tenant");
  const rows: [string, string][] = [
    ["tenant", tenant === null || tenant === undefined ? (platform ? "(none: pass --tenant ID to administer one)" : "-") : str(tenant)],
    ["consumer", str(field(body, "consumer"))],
    ["key", str(field(body, "keyId"))],
    ["roles", list(field(body, "roles"))],
    ["platform admin", yesNo(field(body, "platformAdmin"))],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${visible(v)}`).join("\n");
}

/** A secret the gateway shows once: on its own line, indented, with the warning that it will not be shown again. */
function secretBlock(secret: unknown, what: "key" | "token"): string {
  return `\n    ${visible(str(secret))}\n\nStore this ${what} now: it is shown only once and cannot be shown again.`;
}

export function keyCreatedText(body: unknown): string {
  const expires = field(body, "expiresAt");
  const expiry = typeof expires === "string" ? `, expires ${time(expires)}` : "";
  const head = `created key ${str(field(body, "id"))} "${str(field(body, "name"))}" for consumer ${str(field(body, "consumerId"))}, roles ${list(field(body, "roles"))}${expiry}`;
  return `${visible(head)}\n${secretBlock(field(body, "key"), "key")}`;
}

export function keyRotatedText(body: unknown): string {
  const until = field(body, "previousExpiresAt");
  const previous = typeof until === "string" ? `its previous secret keeps working until ${time(until)}` : "its previous secret stopped working";
  return `${visible(`rotated key ${str(field(body, "id"))}: ${previous}`)}\n${secretBlock(field(body, "key"), "key")}`;
}

export function connectorCreatedText(body: unknown, gatewayUrl: string): string {
  return `${visible(`created connector ${str(field(body, "id"))}`)}\n${secretBlock(field(body, "token"), "token")}

On each host that runs its MCP servers, with the gateway.yaml that lists them:

    MCP_GATEWAY_CONNECTOR_TOKEN=<the token above> mcp-gateway-connector --config gateway.yaml --url ${gatewayUrl}`;
}

export function revokedText(what: "key" | "connector", body: unknown): string {
  const id = visible(str(field(body, "id")));
  return what === "key" ? `revoked key ${id}: it stops working at once` : `revoked connector ${id}: its token stops working and its links are closed`;
}

export function appliedText(file: string, body: unknown): string {
  return `applied ${file} to tenant ${visible(str(field(body, "tenant")))}: version ${visible(str(field(body, "version")))}`;
}

export type ConfigSummary = { tenant: string; keys: number; policies: number; servers: number };

export function validText(file: string, summary: ConfigSummary): string {
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const counts = [plural(summary.keys, "key", "keys"), plural(summary.policies, "policy", "policies"), plural(summary.servers, "server", "servers")];
  return `${file} is valid: tenant ${summary.tenant}, ${counts.join(", ")}`;
}

/**
 * The lines (without the `mcp-gateway: ` prefix) that say why a request failed. With `file`, the details of an
 * invalid_config are named after it like local validation errors (`gateway.yaml: policies[0].id: …`).
 */
export function failureLines(failure: AdminFailure, file?: string): string[] {
  switch (failure.kind) {
    case "network":
      return [`cannot reach the gateway at ${failure.url}: ${failure.reason}`];
    case "unexpected":
      return [`unexpected answer from ${failure.url}: HTTP ${failure.status}: ${failure.reason}`];
    case "refused": {
      const { code, message, details } = failure.error;
      const hint = failure.status === 401 ? " (check MCP_GATEWAY_ADMIN_KEY or --admin-key)" : "";
      const verb = failure.status >= 500 ? "failed" : "refused";
      const first = `the gateway ${verb}: ${code} (HTTP ${failure.status})${message ? `: ${message}` : ""}${hint}`;
      const prefix = file !== undefined && code === "invalid_config" ? `${file}: ` : "  ";
      return [visible(first), ...details.map((d) => `${prefix}${visible(d)}`)];
    }
  }
}

// ---- audit ----------------------------------------------------------------------------------------------------

const int = (value: unknown): string => (typeof value === "number" && Number.isFinite(value) ? value.toLocaleString("en-US") : str(value));

/** An entry's `timestamp` (epoch ms) as ISO 8601 UTC; anything else as it is. */
function isoTime(value: unknown): string {
  if (typeof value === "number" && Number.isFinite(value)) {
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) return date.toISOString();
  }
  return str(value);
}

/** `audit log`: one row per entry, as the gateway sent them (newest first). */
export function auditLogTable(entries: readonly unknown[]): string {
  const rows = entries.filter((e): e is Row => typeof e === "object" && e !== null);
  if (rows.length === 0) return "no audit entries match";
  return table(
    ["TIME", "SEQ", "CONSUMER", "SERVER", "TOOL", "STATUS", "LATENCY", "RULE"],
    rows.map((e) => [
      isoTime(e.timestamp),
      str(e.seq),
      str(e.consumer),
      str(e.server),
      e.tool === null || e.tool === undefined || e.tool === "" ? str(e.method) : str(e.tool),
      str(e.status),
      typeof e.latencyMs === "number" ? `${e.latencyMs} ms` : str(e.latencyMs),
      str(e.ruleId),
    ]),
  );
}

/** How many rows of each top list `audit stats` prints (the gateway sends up to 100; --json has them all). */
export const STATS_TOP = 10;

/** `audit stats`: total, by status, latency, then the busiest servers, tools and consumers. */
export function auditStatsText(body: unknown): string {
  const total = field(body, "total");
  if (total === 0) return "no audit entries match";
  const byStatus = field(body, "byStatus");
  const statuses =
    typeof byStatus === "object" && byStatus !== null
      ? Object.entries(byStatus as Row)
          .map(([status, n]) => `${status} ${int(n)}`)
          .join("  ")
      : "-";
  const latency = field(body, "latencyMs");
  const latencyText =
    typeof latency === "object" && latency !== null
      ? (["p50", "p95", "p99", "max"] as const).map((p) => `${p} ${int((latency as Row)[p])} ms`).join("  ")
      : "-";
  const summary: [string, string][] = [
    ["entries", int(total)],
    ["status", statuses],
    ["latency", latencyText],
  ];
  const parts = [summary.map(([k, v]) => `${k.padEnd(9)}${visible(v)}`).join("\n")];
  const top = (name: string, head: string[], cells: (r: Row) => string[]) => {
    const rows = rowsOf(body, name);
    if (rows.length === 0) return;
    const more = rows.length > STATS_TOP ? `\n(${rows.length - STATS_TOP} more; --json lists them)` : "";
    parts.push(table(head, rows.slice(0, STATS_TOP).map(cells)) + more);
  };
  top("byServer", ["SERVER", "COUNT"], (r) => [str(r.server), int(r.count)]);
  top("byTool", ["SERVER", "TOOL", "COUNT"], (r) => [str(r.server), str(r.tool), int(r.count)]);
  top("byConsumer", ["CONSUMER", "COUNT"], (r) => [str(r.consumer), int(r.count)]);
  return parts.join("\n\n");
}

const plural = (n: unknown, one: string, many: string) => `${int(n)} ${n === 1 ? one : many}`;

/**
 * A verification's verdict, the result line of POST /admin/v1/audit/verify or the result of verifyExport. A
 * failure leads with the first bad seq and the reason, then what it means. `file` names an offline export.
 */
export function verifyText(result: unknown, file?: string): string {
  const what = file === undefined ? "the gateway's audit chain" : `the audit export ${file}`;
  const entries = field(result, "entries");
  const checkpoints = field(result, "checkpoints");
  if (field(result, "ok") !== true) {
    const failure = field(result, "failure");
    const seq = field(failure, "seq");
    const reason = str(field(failure, "reason"));
    const where = typeof seq === "number" ? ` at seq ${seq}: ${reason}` : `: ${reason}`;
    const line = field(failure, "line");
    const before = `${plural(entries, "entry", "entries")} and ${plural(checkpoints, "checkpoint", "checkpoints")} verified before it`;
    return [
      visible(`FAILED  ${what} does not verify${where}`),
      `  ${visible(str(field(failure, "message")))}`,
      `  ${typeof line === "number" && file !== undefined ? `line ${line} of ${visible(file)}; ` : ""}${before}`,
    ].join("\n");
  }
  const firstSeq = field(result, "firstSeq");
  const head = field(result, "head");
  const headSeq = field(head, "seq");
  const range = typeof firstSeq === "number" && typeof headSeq === "number" ? ` (seq ${firstSeq}-${headSeq})` : "";
  const lines = [`OK  ${what} verifies: ${plural(entries, "entry", "entries")}${range}, ${plural(checkpoints, "signed checkpoint", "signed checkpoints")}`];
  const rows: [string, string][] = [["head", `seq ${str(headSeq)}  ${str(field(head, "hash"))}`]];
  const last = field(result, "lastCheckpoint");
  const uncheckpointed = field(result, "uncheckpointed");
  rows.push(["last checkpoint", last === null || last === undefined ? "none" : `seq ${str(field(last, "seq"))}`]);
  if (typeof uncheckpointed === "number") rows.push(["after it", plural(uncheckpointed, "entry", "entries")]);
  lines.push(...rows.map(([k, v]) => `  ${k.padEnd(16)}${visible(v)}`));
  if (file !== undefined) {
    if (checkpoints === 0) {
      lines.push("  No signed checkpoint: the export only vouches for itself (a consistent rewrite of the whole file would pass).");
    } else if (typeof uncheckpointed === "number" && uncheckpointed > 0) {
      lines.push(`  The last ${plural(uncheckpointed, "entry", "entries")} have no checkpoint yet: removing them would not show in this file alone.`);
    }
    if (typeof headSeq === "number" && typeof field(head, "hash") === "string" && headSeq > 0) {
      lines.push(visible(`  Keep the head to check the next export against it: --head ${headSeq}:${str(field(head, "hash"))}`));
    }
  }
  return lines.join("\n");
}

/** `1536` → `1.5 KB`. */
export function bytesText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** One line of a progress bar (no line control): `[#####---------------]  25%  detail`; no bar when the total is unknown. */
export function progressBar(fraction: number | undefined, detail: string, width = 30): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return detail;
  const f = Math.max(0, Math.min(1, fraction));
  const filled = Math.round(f * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(f * 100)).padStart(3)}%  ${detail}`;
}

/** What `audit export --out FILE` wrote. `header` is the JSONL export's first line, parsed, when it is one. */
export function exportSummaryText(file: string, format: string, bytes: number, lines: number, header: unknown): string {
  let detail = "";
  if (field(header, "type") === "header") {
    const start = field(field(header, "start"), "seq");
    const head = field(field(header, "head"), "seq");
    const range = typeof start === "number" && typeof head === "number" ? (head > start ? `, entries ${start + 1}-${head}` : ", no entries") : "";
    detail = `; tenant ${str(field(header, "tenant"))}${range}`;
  }
  const hint = format === "jsonl" ? `\nverify it offline: mcp-gateway audit verify --file ${file} --public-key KEY` : "";
  return visible(`wrote ${file}: ${plural(lines, "line", "lines")}, ${bytesText(bytes)}${detail}`) + hint;
}

// ---- usage ----------------------------------------------------------------------------------------------------

/** A latency percentile: `50ms`, `>30s` (beyond the histogram's last bound), `-` (no calls measured). */
function percentile(value: unknown, measured: boolean): string {
  if (typeof value === "number") return value >= 1000 && value % 1000 === 0 ? `${value / 1000}s` : `${value}ms`;
  return measured ? ">30s" : "-";
}

/** A cost as the gateway sent it (a JSON number with at most six decimals, printed exactly). */
const cost = (value: unknown): string => (typeof value === "number" && Number.isFinite(value) ? String(value) : str(value));

const usageCells = (r: Row): string[] => {
  const latency = typeof r.latencyMs === "object" && r.latencyMs !== null ? (r.latencyMs as Row) : {};
  const measured = typeof latency.count === "number" && latency.count > 0;
  return [
    int(r.calls),
    int(r.ok),
    int(r.errors),
    int(r.denied),
    int(r.limited),
    percentile(latency.p50, measured),
    percentile(latency.p95, measured),
    percentile(latency.p99, measured),
    typeof r.bytes === "number" ? bytesText(r.bytes) : str(r.bytes),
    cost(r.cost),
  ];
};

const USAGE_GROUP_HEAD: Record<string, string[]> = { consumer: ["CONSUMER"], server: ["SERVER"], tool: ["SERVER", "TOOL"], hour: ["HOUR"] };

/** `usage`: one row per group (the gateway's order), then TOTAL; a line saying the period and the currency first. */
export function usageTable(body: unknown): string {
  const by = str(field(body, "by"));
  const head = USAGE_GROUP_HEAD[by] ?? ["GROUP"];
  const consumer = field(body, "consumer");
  const title = visible(
    `usage of ${str(field(body, "tenant"))}${typeof consumer === "string" ? ` by consumer ${consumer}` : ""} from ${time(field(body, "from"))} to ${time(field(body, "to"))}, cost in ${str(field(body, "currency"))}`,
  );
  const rows = rowsOf(body, "rows");
  if (rows.length === 0) return `${title}\nno usage in this period`;
  const group = (r: Row): string[] => {
    switch (by) {
      case "tool":
        return [str(r.server), str(r.tool)];
      case "hour":
        return [time(r.hour)];
      default:
        return [str(r[by])];
    }
  };
  const totals = field(body, "totals");
  const totalRow = typeof totals === "object" && totals !== null ? [["TOTAL", ...head.slice(1).map(() => ""), ...usageCells(totals as Row)]] : [];
  return `${title}\n${table([...head, "CALLS", "OK", "ERRORS", "DENIED", "LIMITED", "P50", "P95", "P99", "BYTES", "COST"], [...rows.map((r) => [...group(r), ...usageCells(r)]), ...totalRow])}`;
}

/** `usage chargeback`: one row per consumer, then TOTAL. */
export function chargebackTable(body: unknown): string {
  const period = field(body, "period");
  const month = field(period, "month");
  const when = typeof month === "string" ? month : `${time(field(period, "from"))} to ${time(field(period, "to"))}`;
  const incomplete = field(body, "complete") === false ? " (the period has not ended: these numbers can still grow)" : "";
  const title = visible(`chargeback of ${str(field(body, "tenant"))} for ${when}, cost in ${str(field(body, "currency"))}${incomplete}`);
  const consumers = rowsOf(body, "consumers");
  if (consumers.length === 0) return `${title}\nno consumer used the gateway in this period`;
  const cells = (r: Row) => [int(r.calls), int(r.billableCalls), typeof r.bytes === "number" ? bytesText(r.bytes) : str(r.bytes), cost(r.cost)];
  const totals = field(body, "totals");
  const totalRow = typeof totals === "object" && totals !== null ? [["TOTAL", ...cells(totals as Row)]] : [];
  return `${title}\n${table(["CONSUMER", "CALLS", "BILLABLE", "BYTES", "COST"], [...consumers.map((r) => [str(r.consumer), ...cells(r)]), ...totalRow])}`;
}

const names = (value: unknown): string => (Array.isArray(value) && value.length > 0 ? value.map((v) => str(v)).join(", ") : "none");
const countOf = (value: unknown): number => (Array.isArray(value) ? value.length : 0);

/** `usage stripe`: what was sent now and before, what waits, who has no Stripe customer, what failed. */
export function stripeText(body: unknown): string {
  const period = field(field(body, "period"), "month") ?? field(field(body, "period"), "from");
  const events = rowsOf(body, "events");
  const sending = field(body, "sending") === true;
  const lines = [
    visible(
      `Stripe meter events of ${str(field(body, "tenant"))} for ${str(period)} (meter ${str(field(body, "eventName"))}, value: ${field(body, "value") === "calls" ? "billable calls" : `cost in ${str(field(body, "currency"))}`}): ${plural(events.length, "event", "events")}`,
    ),
  ];
  const rows: [string, string][] = [
    ["sent now", names(field(body, "sent"))],
    ["sent before", names(field(body, "alreadySent"))],
    ["not sent", names(field(body, "unsent"))],
    ["no customer", names(field(body, "unmapped"))],
  ];
  lines.push(...rows.map(([k, v]) => `  ${k.padEnd(12)}${visible(v)}`));
  for (const failure of rowsOf(body, "failed")) {
    lines.push(visible(`  FAILED      ${str(failure.consumer)}: ${str(failure.message)}`));
  }
  if (!sending && countOf(field(body, "unsent")) > 0) {
    lines.push("The gateway has no Stripe key (the Worker secret STRIPE_API_KEY): the events are recorded, not sent. Set it and run this again.");
  } else if (countOf(field(body, "failed")) > 0 || countOf(field(body, "unsent")) > 0) {
    lines.push("Run this again to send what is left: an event already sent is never sent twice.");
  }
  if (countOf(field(body, "unmapped")) > 0) lines.push("Consumers without a customer are not billed: add them to metering.stripe.customers in gateway.yaml.");
  return lines.join("\n");
}
