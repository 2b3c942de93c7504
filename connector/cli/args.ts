/**
 * @module The `mcp-gateway` command line: argv and environment into one {@link Invocation}, and every help text.
 * Pure (argv and env are passed in); nothing here reads a file or the network.
 */
import { parseArgs } from "node:util";
import { decodePublicKey } from "../../src/audit/checkpoint.ts";
import { AUDIT_STATUSES, type AuditStatus, type ChainHead } from "../../src/audit/entry.ts";
import { monthPeriod, USAGE_GROUPS, type UsageGroupBy } from "../../src/metering/usage-store.ts";

export const DEFAULT_URL = "http://127.0.0.1:8787";
export const DEFAULT_CONFIG_FILE = "./gateway.yaml";
/** `audit log` prints this many entries unless --limit says otherwise, and at most MAX_AUDIT_LOG_LIMIT. */
export const DEFAULT_AUDIT_LOG_LIMIT = 50;
export const MAX_AUDIT_LOG_LIMIT = 10_000;

/** The audit query filters (docs/admin-api.md "Audit query parameters"); times already as UTC ISO strings. */
export type AuditFilters = {
  consumer?: string;
  server?: string;
  tool?: string;
  status?: AuditStatus;
  /** Inclusive. */
  from?: string;
  /** Exclusive. */
  to?: string;
};

/** `audit verify --file`: everything an offline verification needs; no URL, no admin key. */
export type OfflineVerify = {
  file: string;
  /** base64url Ed25519 public keys (checked); more than one while a signing key is being rotated. */
  publicKeys: string[];
  /** --head SEQ:HASH: where the export must end (from an earlier verification or the live gateway). */
  expectedHead: ChainHead | undefined;
};

/** What the CLI was asked to do, with its arguments checked. */
export type Command =
  | { kind: "init"; file: string; force: boolean; tenant: string }
  | { kind: "config validate"; file: string }
  | { kind: "config apply"; file: string }
  | { kind: "keys list" }
  | { kind: "keys create"; name: string; consumerId: string; roles: string[]; expiresAt: string | undefined; id: string | undefined }
  | { kind: "keys revoke"; id: string }
  | { kind: "keys rotate"; id: string; graceSeconds?: number | undefined }
  | { kind: "servers list" }
  | { kind: "connectors list" }
  | { kind: "connectors create"; id: string; name: string | undefined }
  | { kind: "connectors revoke"; id: string }
  | { kind: "whoami" }
  | { kind: "audit log"; filters: AuditFilters; limit: number }
  | { kind: "audit stats"; filters: AuditFilters }
  /** offline undefined: the gateway verifies its own copy (POST /admin/v1/audit/verify). */
  | { kind: "audit verify"; offline: OfflineVerify | undefined }
  | { kind: "audit export"; format: "jsonl" | "csv"; out: string | undefined; fromSeq: number | undefined; toSeq: number | undefined }
  | { kind: "usage"; consumer: string | undefined; from: string | undefined; to: string | undefined; by: UsageGroupBy }
  /** format "table" prints a table (stdout only); json and csv are the gateway's answer as it came. */
  | { kind: "usage chargeback"; period: UsagePeriod; format: "table" | "json" | "csv"; out: string | undefined }
  | { kind: "usage stripe"; period: string; out: string | undefined };

/** A chargeback period: a calendar month, or times (UTC ISO strings) the gateway rounds out to whole hours. */
export type UsagePeriod = { month: string } | { from: string | undefined; to: string | undefined };

export type CommandName = Command["kind"];

/** Where the admin API is and the credential for it. The admin key is never printed. */
export type Connection = {
  /** The gateway's base URL (http or https), as given. */
  url: string;
  adminKey: string;
  /** Sent as `?tenant=`: names the tenant for the platform admin token. */
  tenant: string | undefined;
};

export type Invocation = {
  command: Command;
  json: boolean;
  /** Present for every command that talks to the gateway. */
  connection: Connection | undefined;
  /** Worth saying on stderr; never containing the admin key. */
  warnings: string[];
};

export type CliParse =
  | { kind: "run"; invocation: Invocation }
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "usage"; errors: string[]; usage: string };

/** Options every command accepts. */
const GLOBAL_OPTIONS = ["url", "admin-key", "tenant", "json", "help"] as const;

type OptionName = Exclude<keyof typeof PARSE_OPTIONS, "help">;

const PARSE_OPTIONS = {
  url: { type: "string" },
  "admin-key": { type: "string" },
  tenant: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  force: { type: "boolean" },
  expires: { type: "string" },
  grace: { type: "string" },
  id: { type: "string" },
  name: { type: "string" },
  consumer: { type: "string" },
  server: { type: "string" },
  tool: { type: "string" },
  status: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  limit: { type: "string" },
  file: { type: "string" },
  "public-key": { type: "string", multiple: true },
  head: { type: "string" },
  format: { type: "string" },
  out: { type: "string" },
  "from-seq": { type: "string" },
  "to-seq": { type: "string" },
  by: { type: "string" },
  period: { type: "string" },
} as const;

const METAVARS: Partial<Record<OptionName, string>> = {
  expires: "TIME",
  grace: "DURATION",
  consumer: "ID",
  server: "ID",
  tool: "NAME",
  status: "STATUS",
  from: "TIME",
  to: "TIME",
  limit: "N",
  file: "FILE",
  "public-key": "KEY",
  head: "SEQ:HASH",
  format: "jsonl|csv",
  out: "FILE",
  "from-seq": "N",
  "to-seq": "N",
  by: "consumer|server|tool|hour",
  period: "YYYY-MM",
};

/** The options that say where the gateway is: refused by an offline command rather than silently ignored. */
const CONNECTION_OPTIONS = ["url", "admin-key", "tenant"] as const;

const AUDIT_FILTER_OPTIONS = ["consumer", "server", "tool", "status", "from", "to"] as const satisfies readonly OptionName[];

const AUDIT_FILTER_HELP = `  --consumer ID     only this consumer's entries
  --server ID       only calls to this MCP server
  --tool NAME       only this tool (or prompt, or resource URI)
  --status STATUS   ${AUDIT_STATUSES.join(", ")}
  --from TIME       from this time on (inclusive)
  --to TIME         before this time (exclusive)`;

const TIME_HELP = `TIME is an ISO 8601 date or date-time (2026-05-31, 2026-05-31T12:00:00Z; without an offset, local time), or how
long ago: 90s, 30m, 1h, 7d, 2w.`;

type CommandSpec = {
  name: CommandName;
  /** Positional arguments; a trailing `?` marks an optional one. */
  args: readonly string[];
  /** Options beyond the global ones. */
  options: readonly OptionName[];
  /** Talks to the gateway (needs a URL and an admin key); "unless-file": unless --file is given (audit verify). */
  remote: boolean | "unless-file";
  summary: string;
  /** The command's own help, after its usage line. */
  help: string;
  /** Metavariables of this command's options where they differ from {@link METAVARS}. */
  metavars?: Partial<Record<OptionName, string>>;
};

const COMMANDS: readonly CommandSpec[] = [
  {
    name: "init",
    args: ["FILE?"],
    options: ["force"],
    remote: false,
    summary: "write a commented starter gateway.yaml with a new agent key and admin key",
    help: `Writes FILE (default ${DEFAULT_CONFIG_FILE}): a tenant, an agent API key, an admin key, one example server and
reader, writer and admin policies. The two keys are printed once; the file keeps only their SHA-256 digests.

  --force        overwrite FILE if it exists
  --tenant ID    the tenant the file describes (env MCP_GATEWAY_TENANT, default "default")`,
  },
  {
    name: "config validate",
    args: ["FILE"],
    options: [],
    remote: false,
    summary: "check a gateway.yaml locally (no network)",
    help: "Parses FILE with the gateway's own schema and prints every problem with the path of its key.",
  },
  {
    name: "config apply",
    args: ["FILE"],
    options: [],
    remote: true,
    summary: "validate a gateway.yaml and make it the tenant's configuration",
    help: `Validates FILE locally, then sends it as it is (comments included) to PUT /admin/v1/config. FILE is never
rewritten. The tenant is the file's tenant: (a --tenant or MCP_GATEWAY_TENANT must name the same one).`,
  },
  { name: "keys list", args: [], options: [], remote: true, summary: "list the tenant's API keys (never a key itself)", help: "" },
  {
    name: "keys create",
    args: ["NAME", "CONSUMER", "ROLES"],
    options: ["expires", "id"],
    remote: true,
    summary: "create an API key; it is printed once",
    help: `NAME is a label, CONSUMER the consumer id the key acts as, ROLES comma-separated (e.g. reader,writer).
The key is printed once and cannot be shown again.

  --expires TIME   ISO 8601 date or date-time after which the key is refused
  --id ID          the key's id (default: chosen by the gateway)`,
  },
  { name: "keys revoke", args: ["ID"], options: [], remote: true, summary: "disable an API key at once", help: "" },
  {
    name: "keys rotate",
    args: ["ID"],
    options: ["grace"],
    remote: true,
    summary: "give a key a new secret; the old one stops at once or after --grace",
    help: `The new key is printed once and cannot be shown again.

  --grace DURATION   keep the old key working next to the new one for this long (e.g. 90s, 30m, 1h, 7d; at
                     most 7d); without it the old key stops at once. Rotating again during a grace ends the
                     older key.`,
  },
  {
    name: "servers list",
    args: [],
    options: [],
    remote: true,
    summary: "list the tenant's MCP servers: status, connector, tools",
    help: "",
  },
  {
    name: "connectors create",
    args: ["ID"],
    options: ["name"],
    remote: true,
    summary: "create a connector; its token is printed once",
    help: `Prints the connector's token once and how to run mcp-gateway-connector with it.

  --name NAME   a label for the connector`,
  },
  { name: "connectors list", args: [], options: [], remote: true, summary: "list the tenant's connectors", help: "" },
  {
    name: "connectors revoke",
    args: ["ID"],
    options: [],
    remote: true,
    summary: "disable a connector's token and close its links",
    help: "",
  },
  {
    name: "whoami",
    args: [],
    options: [],
    remote: true,
    summary: "show the tenant, consumer and roles of the admin credential",
    help: "",
  },
  {
    name: "audit log",
    args: [],
    options: [...AUDIT_FILTER_OPTIONS, "limit"],
    remote: true,
    summary: "list the tenant's audit entries, newest first",
    help: `Prints time, seq, consumer, server, tool (or method), status, latency and the deciding rule of each entry,
following the gateway's pages until N entries are printed. --json prints {"entries": [...]}, every field of each.

${AUDIT_FILTER_HELP}
  --limit N         print at most N entries (default ${DEFAULT_AUDIT_LOG_LIMIT}, at most ${MAX_AUDIT_LOG_LIMIT.toLocaleString("en-US")})

${TIME_HELP}`,
  },
  {
    name: "audit stats",
    args: [],
    options: [...AUDIT_FILTER_OPTIONS],
    remote: true,
    summary: "count the tenant's audit entries by status, server, tool and consumer; latency",
    help: `Prints the total, the counts by status, the busiest servers, tools and consumers, and the latency percentiles
of the matching entries.

${AUDIT_FILTER_HELP}

${TIME_HELP}`,
  },
  {
    name: "audit verify",
    args: [],
    options: ["file", "public-key", "head"],
    remote: "unless-file",
    summary: "verify the tenant's audit hash chain, on the gateway or in an export file (offline)",
    help: `Without --file, the gateway verifies its stored copy of the chain against its live head and the signed
checkpoints, streaming its progress (POST /admin/v1/audit/verify).

With --file, an export (mcp-gateway audit export) is verified here, with no network at all: every entry's hash and
link, every checkpoint's signature, and that nothing was cut off its end.

  --file FILE            the JSONL export to verify (needs --public-key; no URL or admin key)
  --public-key=KEY       the tenant's checkpoint public key (base64url, from GET /admin/v1/audit/head or your
                         operator); repeat it while a signing key is being rotated. Write it with "=": a base64url
                         key may begin with "-", which would otherwise read as an option
  --head SEQ:HASH        where the export must end, e.g. the head an earlier verification printed: catches a file
                         whose last entries were removed after the last checkpoint

Exit status: 0 the chain verifies; 1 it does not (the first bad seq, the reason and what it means are printed), or
the gateway refused or could not be reached; 2 a usage error, or a file that cannot be read.`,
  },
  {
    name: "audit export",
    args: [],
    options: ["format", "out", "from-seq", "to-seq"],
    remote: true,
    summary: "download the tenant's audit chain: JSONL (verifiable offline) or CSV",
    help: `Streams GET /admin/v1/audit/export to FILE, or to stdout without --out. FILE is written under a temporary
name and renamed when the download is complete, so it never holds half an export; an existing FILE is replaced.

  --format jsonl|csv   jsonl (default): the chain as the gateway stores it, for mcp-gateway audit verify --file;
                       csv: for spreadsheets, not verifiable
  --out FILE           write to FILE (readable by its owner only) and print a summary on stderr
  --from-seq N         the first entry (a partial JSONL export verifies offline only from a signed checkpoint)
  --to-seq N           the last entry
  --json               with --out: print what was written (file, bytes, lines, tenant, head) as JSON on stdout`,
  },
  {
    name: "usage",
    args: ["CONSUMER?"],
    options: ["consumer", "from", "to", "by"],
    remote: true,
    summary: "the tenant's usage and cost, by consumer, server, tool or hour",
    help: `Prints calls, ok, errors, denied, limited, latency percentiles, bytes and cost per group, then the totals
(GET /admin/v1/usage). Usage is kept per UTC hour: --from is rounded down to its hour and --to up to the next one.
Cost is in the tenant's metering.currency, under its metering.prices. Latency percentiles are the upper bound of
the histogram bucket they fall in (">30s": beyond the last bound).

  CONSUMER          only this consumer (or --consumer ID, for a consumer named chargeback or stripe)
  --from TIME       from this hour on (default: the start of the current month, UTC)
  --to TIME         up to this hour, exclusive (default: the end of the current hour); at most 366 days
  --by GROUP        consumer (default), server, tool (server and tool) or hour (at most 31 days)

${TIME_HELP}

Also: mcp-gateway usage chargeback, mcp-gateway usage stripe (mcp-gateway help usage chargeback).`,
  },
  {
    name: "usage chargeback",
    args: [],
    options: ["period", "from", "to", "format", "out"],
    remote: true,
    summary: "each consumer's calls and cost for a month: a table, CSV or JSON",
    metavars: { format: "csv|json" },
    help: `Prints the chargeback of a period (GET /admin/v1/usage/chargeback): per consumer, its calls, billable calls
(those that reached a server), bytes and cost, and the total (the sum of the consumers' costs).

  --period YYYY-MM     a calendar month (UTC), e.g. 2026-11; or:
  --from TIME          from this hour on (default: the start of the current month)
  --to TIME            up to this hour, exclusive (default: the end of the current hour)
  --format csv|json    the gateway's CSV (formula-safe cells) or JSON instead of a table; csv by default with --out
  --out FILE           write it to FILE instead of stdout

${TIME_HELP}`,
  },
  {
    name: "usage stripe",
    args: ["PERIOD?"],
    options: ["period", "out"],
    remote: true,
    summary: "build and send a month's Stripe meter events, each exactly once",
    help: `POST /admin/v1/usage/stripe: one meter event per consumer that has a Stripe customer in metering.stripe.customers
(its cost, or its billable calls without a price table), recorded once by the gateway and sent once Stripe's key is
set on the gateway (the Worker secret STRIPE_API_KEY); without it they are only built. Prints what was sent now,
what was sent before, what is left unsent, the consumers without a Stripe customer, and any failure. Running it again
is safe: an event already sent is never sent again, and a failed one is retried.

  --period YYYY-MM   the month (it must have ended), e.g. 2026-11 (or as PERIOD)
  --out FILE         also write the events (Stripe's Meter Events shape) to FILE as a JSON array

Exit status: 0 done; 1 the gateway refused, or Stripe refused or failed an event (left for the next run); 2 a usage
error.`,
  },
];

const GROUPS = ["config", "keys", "servers", "connectors", "audit", "usage"] as const;

const CONNECTION_HELP = `Connection (every command that talks to the gateway):
  --url URL          the gateway   env MCP_GATEWAY_URL   default ${DEFAULT_URL}
  --admin-key KEY    an API key with the admin role, or the platform admin token; prefer the env variable
                     env MCP_GATEWAY_ADMIN_KEY
  --tenant ID        the tenant to administer with the platform admin token   env MCP_GATEWAY_TENANT
  --json             print the gateway's JSON answer instead of a table or a sentence`;

function usageLine(spec: CommandSpec): string {
  const args = spec.args.map((a) => (a.endsWith("?") ? `[${a.slice(0, -1)}]` : a));
  const options = spec.options.map((o) => (PARSE_OPTIONS[o].type === "boolean" ? `[--${o}]` : `[--${o} ${spec.metavars?.[o] ?? METAVARS[o] ?? o.toUpperCase()}]`));
  return ["mcp-gateway", spec.name, ...args, ...options, "[--json]"].join(" ");
}

export const USAGE = `Usage: mcp-gateway COMMAND [ARGS] [OPTIONS]

Administers an MCP gateway tenant: its configuration, API keys, servers and connectors, and reads its audit trail, usage and cost.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(19)}${c.summary}`).join("\n")}
  help [COMMAND]     this help, or a command's

${CONNECTION_HELP}
  --help, -h         help (also after a command: mcp-gateway keys create --help)
  --version, -V      the version

Exit status: 0 done, 1 the gateway refused or could not be reached (or an audit chain does not verify), 2 a usage
error or an invalid local file.`;

/** Help for one command, or for a group (`keys`): undefined when there is no such topic. */
export function helpFor(topic: readonly string[]): string | undefined {
  const name = topic.join(" ");
  const spec = COMMANDS.find((c) => c.name === name);
  if (spec) {
    const body = spec.help ? `\n\n${spec.help}` : "";
    const connection =
      spec.remote === "unless-file"
        ? `\n\n${CONNECTION_HELP.replace("(every command that talks to the gateway)", "(without --file)")}`
        : spec.remote
          ? `\n\n${CONNECTION_HELP}`
          : "\n\n  --json         print the result as JSON";
    return `Usage: ${usageLine(spec)}\n\n${capitalise(spec.summary)}.${body}${connection}`;
  }
  if ((GROUPS as readonly string[]).includes(name)) {
    const members = COMMANDS.filter((c) => c.name.startsWith(`${name} `));
    return `Usage: mcp-gateway ${name} ${members.map((c) => c.name.slice(name.length + 1)).join("|")} ...\n\n${members
      .map((c) => `  ${usageLine(c)}\n      ${c.summary}`)
      .join("\n")}\n\nmcp-gateway help ${name} SUBCOMMAND for more.`;
  }
  return undefined;
}

type Values = {
  [K in keyof typeof PARSE_OPTIONS]?: (typeof PARSE_OPTIONS)[K]["type"] extends "boolean"
    ? boolean
    : (typeof PARSE_OPTIONS)[K] extends { multiple: true }
      ? string[]
      : string;
};

/**
 * Parses a whole command line. Flags may come before or after the command words. `now` (epoch ms) turns relative
 * times (`--from 1h`) into absolute ones.
 */
export function parseCli(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, now: number = Date.now()): CliParse {
  let values: Values;
  let positionals: string[];
  let tokens: { kind: string; name?: string; rawName?: string }[];
  try {
    ({ values, positionals, tokens } = parseArgs({
      args: [...argv],
      options: PARSE_OPTIONS,
      strict: true,
      allowPositionals: true,
      tokens: true,
    }));
  } catch (error) {
    return { kind: "usage", errors: [(error as Error).message], usage: USAGE };
  }

  if (positionals[0] === "help") {
    const topic = positionals.slice(1);
    if (topic.length === 0) return { kind: "help", text: USAGE };
    const text = helpFor(topic);
    return text ? { kind: "help", text } : { kind: "usage", errors: [`no help for "${topic.join(" ")}": unknown command`], usage: USAGE };
  }
  if (values.version && positionals.length === 0) return { kind: "version" };
  if (positionals.length === 0) {
    return values.help ? { kind: "help", text: USAGE } : { kind: "usage", errors: ["no command given"], usage: USAGE };
  }

  const first = positionals[0] as string;
  // "usage" is a command of its own (usage [CONSUMER]) and the group of "usage chargeback" and "usage stripe".
  const subcommand = positionals[1] !== undefined && COMMANDS.some((c) => c.name === `${first} ${positionals[1]}`);
  const standalone = COMMANDS.some((c) => c.name === first);
  const isGroup = (GROUPS as readonly string[]).includes(first) && (subcommand || !standalone);
  const words = isGroup ? positionals.slice(0, 2) : positionals.slice(0, 1);
  const spec = COMMANDS.find((c) => c.name === words.join(" "));
  if (!spec) {
    if (isGroup && words.length === 1) {
      const groupHelp = helpFor([first]) as string;
      return values.help ? { kind: "help", text: groupHelp } : { kind: "usage", errors: [`"${first}" needs a subcommand`], usage: groupHelp };
    }
    if (isGroup) return { kind: "usage", errors: [`unknown command "${words.join(" ")}"`], usage: helpFor([first]) as string };
    return { kind: "usage", errors: [`unknown command "${first}"`], usage: USAGE };
  }
  const usage = helpFor(spec.name.split(" ")) as string;
  if (values.help) return { kind: "help", text: usage };

  const errors: string[] = [];
  const allowed = new Set<string>([...GLOBAL_OPTIONS, ...spec.options]);
  for (const token of tokens) {
    if (token.kind === "option" && token.name !== undefined && !allowed.has(token.name)) {
      errors.push(`${token.rawName ?? `--${token.name}`} is not an option of "mcp-gateway ${spec.name}"`);
    }
  }
  const args = positionals.slice(words.length);
  const required = spec.args.filter((a) => !a.endsWith("?")).length;
  if (args.length < required) errors.push(`missing ${spec.args.slice(args.length).filter((a) => !a.endsWith("?")).join(" ")}`);
  if (args.length > spec.args.length) errors.push(`unexpected argument "${args[spec.args.length]}"`);
  if (errors.length > 0) return { kind: "usage", errors: [...new Set(errors)], usage };

  const tenant = nonEmpty(values.tenant) ?? nonEmpty(env.MCP_GATEWAY_TENANT);
  const built = buildCommand(spec.name, args, values, tenant, now);
  if (!built.ok) return { kind: "usage", errors: built.errors, usage };

  const offline = built.command.kind === "audit verify" && built.command.offline !== undefined;
  if (offline) {
    const given = CONNECTION_OPTIONS.filter((o) => values[o] !== undefined).map((o) => `--${o}`);
    if (given.length > 0) return { kind: "usage", errors: [`--file verifies offline: ${given.join(", ")} ${given.length === 1 ? "is" : "are"} not used`], usage };
  }

  const warnings: string[] = [];
  let connection: Connection | undefined;
  if (spec.remote && !offline) {
    const resolved = resolveConnection(values, env, tenant);
    if (!resolved.ok) return { kind: "usage", errors: resolved.errors, usage };
    connection = resolved.connection;
    warnings.push(...resolved.warnings);
  }
  return { kind: "run", invocation: { command: built.command, json: values.json === true, connection, warnings } };
}

function buildCommand(
  name: CommandName,
  args: readonly string[],
  values: Values,
  tenant: string | undefined,
  now: number,
): { ok: true; command: Command } | { ok: false; errors: string[] } {
  const arg = (i: number) => args[i] as string;
  switch (name) {
    case "init":
      return { ok: true, command: { kind: name, file: args[0] ?? DEFAULT_CONFIG_FILE, force: values.force === true, tenant: tenant ?? "default" } };
    case "config validate":
    case "config apply":
      return nonEmpty(arg(0)) ? { ok: true, command: { kind: name, file: arg(0) } } : { ok: false, errors: ["FILE must not be empty"] };
    case "keys list":
    case "servers list":
    case "connectors list":
    case "whoami":
      return { ok: true, command: { kind: name } };
    case "keys create": {
      const errors: string[] = [];
      const roles = parseRoles(arg(2));
      if (roles.length === 0) errors.push("ROLES must name at least one role, comma-separated (e.g. reader,writer)");
      if (!nonEmpty(arg(0))) errors.push("NAME must not be empty");
      const consumer = checkId("CONSUMER", arg(1));
      if (consumer) errors.push(consumer);
      let expiresAt: string | undefined;
      if (values.expires !== undefined) {
        const expires = parseExpiry(values.expires);
        if (expires.ok) expiresAt = expires.iso;
        else errors.push(expires.error);
      }
      const idError = values.id === undefined ? undefined : checkId("--id", values.id);
      if (idError) errors.push(idError);
      if (errors.length > 0) return { ok: false, errors };
      return { ok: true, command: { kind: name, name: arg(0), consumerId: arg(1), roles, expiresAt, id: values.id } };
    }
    case "keys rotate": {
      const errors: string[] = [];
      const idError = checkId("ID", arg(0));
      if (idError) errors.push(idError);
      let graceSeconds: number | undefined;
      if (values.grace !== undefined) {
        const grace = parseGrace(values.grace);
        if (grace.ok) graceSeconds = grace.seconds;
        else errors.push(grace.error);
      }
      return errors.length > 0 ? { ok: false, errors } : { ok: true, command: { kind: name, id: arg(0), graceSeconds } };
    }
    case "keys revoke":
    case "connectors revoke": {
      const error = checkId("ID", arg(0));
      return error ? { ok: false, errors: [error] } : { ok: true, command: { kind: name, id: arg(0) } };
    }
    case "connectors create": {
      const error = checkId("ID", arg(0));
      if (error) return { ok: false, errors: [error] };
      if (values.name !== undefined && !nonEmpty(values.name)) return { ok: false, errors: ["--name must not be empty"] };
      return { ok: true, command: { kind: name, id: arg(0), name: values.name } };
    }
    case "audit log": {
      const errors: string[] = [];
      const filters = auditFilters(values, now, errors);
      let limit = DEFAULT_AUDIT_LOG_LIMIT;
      if (values.limit !== undefined) {
        const parsed = parseCount("--limit", values.limit, 1, MAX_AUDIT_LOG_LIMIT);
        if (parsed.ok) limit = parsed.value;
        else errors.push(parsed.error);
      }
      return errors.length > 0 ? { ok: false, errors } : { ok: true, command: { kind: name, filters, limit } };
    }
    case "audit stats": {
      const errors: string[] = [];
      const filters = auditFilters(values, now, errors);
      return errors.length > 0 ? { ok: false, errors } : { ok: true, command: { kind: name, filters } };
    }
    case "audit verify":
      return auditVerify(values);
    case "audit export": {
      const errors: string[] = [];
      const format = values.format ?? "jsonl";
      if (format !== "jsonl" && format !== "csv") errors.push(`--format must be jsonl or csv, not "${format}"`);
      if (values.out !== undefined && !nonEmpty(values.out)) errors.push("--out must not be empty");
      const seq = (flag: "--from-seq" | "--to-seq", text: string | undefined): number | undefined => {
        if (text === undefined) return undefined;
        const parsed = parseCount(flag, text, 1, Number.MAX_SAFE_INTEGER);
        if (parsed.ok) return parsed.value;
        errors.push(parsed.error);
        return undefined;
      };
      const fromSeq = seq("--from-seq", values["from-seq"]);
      const toSeq = seq("--to-seq", values["to-seq"]);
      if (fromSeq !== undefined && toSeq !== undefined && fromSeq > toSeq) errors.push(`--from-seq ${fromSeq} is after --to-seq ${toSeq}`);
      if (errors.length > 0) return { ok: false, errors };
      return { ok: true, command: { kind: name, format: format as "jsonl" | "csv", out: values.out, fromSeq, toSeq } };
    }
    case "usage": {
      const errors: string[] = [];
      if (args[0] !== undefined && values.consumer !== undefined) errors.push("give the consumer once: as CONSUMER or as --consumer");
      const consumer = args[0] ?? values.consumer;
      const consumerError = consumer === undefined ? undefined : checkId("CONSUMER", consumer);
      if (consumerError) errors.push(consumerError);
      const by = values.by ?? "consumer";
      if (!(USAGE_GROUPS as readonly string[]).includes(by)) errors.push(`--by must be one of ${USAGE_GROUPS.join(", ")}, not "${by}"`);
      const times = usageTimes(values, now, errors);
      if (errors.length > 0) return { ok: false, errors };
      return { ok: true, command: { kind: name, consumer, ...times, by: by as UsageGroupBy } };
    }
    case "usage chargeback": {
      const errors: string[] = [];
      const format = values.format ?? (values.out !== undefined ? "csv" : values.json === true ? "json" : "table");
      if (format !== "csv" && format !== "json" && format !== "table") errors.push(`--format must be csv or json, not "${format}"`);
      if (values.out !== undefined && !nonEmpty(values.out)) errors.push("--out must not be empty");
      if (values.out !== undefined && format === "table") errors.push("--out writes csv or json");
      let period: UsagePeriod;
      if (values.period !== undefined) {
        if (values.from !== undefined || values.to !== undefined) errors.push("give --period, or --from and --to, not both");
        if (!monthPeriod(values.period)) errors.push(`--period must be a calendar month YYYY-MM (e.g. 2026-11), not "${values.period}"`);
        period = { month: values.period };
      } else {
        period = usageTimes(values, now, errors);
      }
      if (errors.length > 0) return { ok: false, errors };
      return { ok: true, command: { kind: name, period, format: format as "table" | "json" | "csv", out: values.out } };
    }
    case "usage stripe": {
      const errors: string[] = [];
      if (args[0] !== undefined && values.period !== undefined) errors.push("give the month once: as PERIOD or as --period");
      const period = args[0] ?? values.period;
      if (period === undefined) errors.push("--period YYYY-MM is required: the month whose meter events to send");
      else if (!monthPeriod(period)) errors.push(`--period must be a calendar month YYYY-MM (e.g. 2026-11), not "${period}"`);
      if (values.out !== undefined && !nonEmpty(values.out)) errors.push("--out must not be empty");
      if (errors.length > 0) return { ok: false, errors };
      return { ok: true, command: { kind: name, period: period as string, out: values.out } };
    }
  }
}

/** --from and --to of the usage commands as UTC ISO strings (relative times allowed), from before to. */
function usageTimes(values: Values, now: number, errors: string[]): { from: string | undefined; to: string | undefined } {
  const times: { from: string | undefined; to: string | undefined } = { from: undefined, to: undefined };
  for (const key of ["from", "to"] as const) {
    const text = values[key];
    if (text === undefined) continue;
    const parsed = parseTime(`--${key}`, text, now);
    if (parsed.ok) times[key] = parsed.iso;
    else errors.push(parsed.error);
  }
  if (times.from !== undefined && times.to !== undefined && Date.parse(times.from) >= Date.parse(times.to)) {
    errors.push(`--from (${times.from}) must be before --to (${times.to}): nothing is both`);
  }
  return times;
}

function auditFilters(values: Values, now: number, errors: string[]): AuditFilters {
  const filters: AuditFilters = {};
  for (const key of ["consumer", "server", "tool"] as const) {
    const value = values[key];
    if (value === undefined) continue;
    if (!nonEmpty(value)) errors.push(`--${key} must not be empty`);
    else filters[key] = value;
  }
  if (values.status !== undefined) {
    if ((AUDIT_STATUSES as readonly string[]).includes(values.status)) filters.status = values.status as AuditStatus;
    else errors.push(`--status must be one of ${AUDIT_STATUSES.join(", ")}, not "${values.status}"`);
  }
  for (const key of ["from", "to"] as const) {
    const text = values[key];
    if (text === undefined) continue;
    const parsed = parseTime(`--${key}`, text, now);
    if (parsed.ok) filters[key] = parsed.iso;
    else errors.push(parsed.error);
  }
  if (filters.from !== undefined && filters.to !== undefined && Date.parse(filters.from) >= Date.parse(filters.to)) {
    errors.push(`--from (${filters.from}) must be before --to (${filters.to}): nothing is both`);
  }
  return filters;
}

function auditVerify(values: Values): { ok: true; command: Command } | { ok: false; errors: string[] } {
  const keys = values["public-key"] ?? [];
  if (values.file === undefined) {
    const stray = [...(keys.length > 0 ? ["--public-key"] : []), ...(values.head !== undefined ? ["--head"] : [])];
    if (stray.length > 0) return { ok: false, errors: [`${stray.join(" and ")} go${stray.length === 1 ? "es" : ""} with --file: the gateway verifies its own copy with its own key`] };
    return { ok: true, command: { kind: "audit verify", offline: undefined } };
  }
  const errors: string[] = [];
  if (!nonEmpty(values.file)) errors.push("--file must not be empty");
  if (keys.length === 0) errors.push("--file needs --public-key KEY: the tenant's checkpoint public key (GET /admin/v1/audit/head shows it)");
  for (const key of keys) {
    try {
      decodePublicKey(key.trim());
    } catch (error) {
      errors.push(`--public-key: ${(error as Error).message}`);
    }
  }
  let expectedHead: ChainHead | undefined;
  if (values.head !== undefined) {
    const head = parseHead(values.head);
    if (head.ok) expectedHead = head.head;
    else errors.push(head.error);
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, command: { kind: "audit verify", offline: { file: values.file, publicKeys: keys.map((k) => k.trim()), expectedHead } } };
}

const RELATIVE_UNITS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * An audit TIME as a UTC ISO string: an ISO 8601 date or date-time like {@link parseExpiry} accepts, or how long
 * before `now` (`90s`, `30m`, `1h`, `7d`, `2w`).
 */
export function parseTime(flag: string, text: string, now: number): { ok: true; iso: string } | { ok: false; error: string } {
  const relative = /^(\d{1,9})\s*([smhdw])$/i.exec(text.trim());
  if (relative) {
    const time = now - Number(relative[1]) * (RELATIVE_UNITS[(relative[2] as string).toLowerCase()] as number);
    const date = new Date(time);
    if (!Number.isNaN(date.getTime()) && time >= 0) return { ok: true, iso: date.toISOString() };
    return { ok: false, error: `${flag} "${text}" is too long ago` };
  }
  const absolute = parseExpiry(text);
  if (absolute.ok) return absolute;
  return { ok: false, error: `${flag} "${text}" is neither an ISO 8601 date or date-time (2026-05-31, 2026-05-31T12:00:00Z) nor a time ago (30m, 1h, 7d)` };
}

/** A decimal integer in [min, max]. */
export function parseCount(flag: string, text: string, min: number, max: number): { ok: true; value: number } | { ok: false; error: string } {
  const value = /^\d{1,16}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= min && value <= max) return { ok: true, value };
  const range = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max.toLocaleString("en-US")}`;
  return { ok: false, error: `${flag} must be ${range}, not "${text}"` };
}

/** `--head SEQ:HASH`: a seq and 64 hex characters (the form verification prints). */
export function parseHead(text: string): { ok: true; head: ChainHead } | { ok: false; error: string } {
  const match = /^(\d{1,16}):([0-9a-fA-F]{64})$/.exec(text.trim());
  const seq = match ? Number(match[1]) : Number.NaN;
  if (!match || !Number.isSafeInteger(seq)) return { ok: false, error: `--head must be SEQ:HASH (a seq, a colon and the 64 hex characters of that entry's hash), not "${text}"` };
  return { ok: true, head: { seq, hash: (match[2] as string).toLowerCase() } };
}

function resolveConnection(
  values: { url?: string; "admin-key"?: string },
  env: Readonly<Record<string, string | undefined>>,
  tenant: string | undefined,
): { ok: true; connection: Connection; warnings: string[] } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const url = nonEmpty(values.url) ?? nonEmpty(env.MCP_GATEWAY_URL) ?? DEFAULT_URL;
  const urlError = checkGatewayUrl(url);
  if (urlError) errors.push(urlError);
  const adminKey = (nonEmpty(values["admin-key"]) ?? nonEmpty(env.MCP_GATEWAY_ADMIN_KEY))?.trim();
  if (!adminKey) errors.push("no admin key: set MCP_GATEWAY_ADMIN_KEY (or pass --admin-key)");
  // What a Bearer header can carry (and the gateway accepts); said without echoing the key.
  else if (!/^[\x21-\x7e]{1,512}$/.test(adminKey)) errors.push("the admin key must be 1-512 printable ASCII characters without spaces");
  if (values["admin-key"] !== undefined) {
    warnings.push("--admin-key is visible to every user of this host in the process list; set MCP_GATEWAY_ADMIN_KEY instead");
  }
  if (!urlError) {
    const u = new URL(url);
    if (u.protocol === "http:" && !isLoopback(u.hostname)) {
      warnings.push(`${url} is not encrypted (http://): the admin key crosses the network in clear text; use https://`);
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, connection: { url, adminKey: adminKey as string, tenant }, warnings };
}

/** Undefined when the URL can be the gateway's base URL, else why not. */
export function checkGatewayUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `the gateway URL "${url}" is not a valid URL`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return `the gateway URL must start with https:// or http:// (got ${u.protocol}//)`;
  if (u.username || u.password) return "the gateway URL must not contain credentials; the admin key goes in MCP_GATEWAY_ADMIN_KEY";
  return undefined;
}

/** `reader, writer,` → [reader, writer]: trimmed, empty entries and repeats dropped. */
export function parseRoles(text: string): string[] {
  return [...new Set(text.split(",").map((r) => r.trim()).filter((r) => r !== ""))];
}

/** An ISO 8601 date (midnight UTC) or date-time (with or without offset) as a UTC ISO string. */
export function parseExpiry(text: string): { ok: true; iso: string } | { ok: false; error: string } {
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/i.test(text.trim());
  const time = Date.parse(text.trim());
  if (!iso || Number.isNaN(time)) return { ok: false, error: `--expires "${text}" is not an ISO 8601 date or date-time (e.g. 2027-01-31 or 2027-01-31T12:00:00Z)` };
  return { ok: true, iso: new Date(time).toISOString() };
}

/** Ids become URL path segments: "." and ".." would walk the path, and an empty one would name the collection. */
function checkId(label: string, id: string): string | undefined {
  if (!nonEmpty(id)) return `${label} must not be empty`;
  if (id === "." || id === "..") return `${label} "${id}" is not an id`;
  if (/[\x00-\x1f\x7f]/.test(id)) return `${label} must not contain control characters`;
  return undefined;
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text.trim() === "" ? undefined : text;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || hostname.startsWith("127.");
}

/** The longest rotation grace the gateway accepts (7 days), as its admin API says. */
export const MAX_GRACE_SECONDS = 7 * 24 * 60 * 60;

const GRACE_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `--grace`: a whole number of seconds, or one with a unit (s, m, h, d); 0 up to 7 days. */
export function parseGrace(text: string): { ok: true; seconds: number } | { ok: false; error: string } {
  const match = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  const seconds = match ? Number(match[1]) * (GRACE_UNITS[match[2] || "s"] as number) : Number.NaN;
  if (!match) return { ok: false, error: `--grace must be a duration such as 90s, 30m, 1h or 7d, got "${text}"` };
  if (seconds > MAX_GRACE_SECONDS) return { ok: false, error: `--grace may be at most 7d (${MAX_GRACE_SECONDS}s), got "${text}"` };
  return { ok: true, seconds };
}
