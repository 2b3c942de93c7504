/**
 * @module The `mcp-gateway` command line: argv and environment into one {@link Invocation}, and every help text.
 * Pure (argv and env are passed in); nothing here reads a file or the network.
 */
import { parseArgs } from "node:util";

export const DEFAULT_URL = "http://127.0.0.1:8787";
export const DEFAULT_CONFIG_FILE = "./gateway.yaml";

/** What the CLI was asked to do, with its arguments checked. */
export type Command =
  | { kind: "init"; file: string; force: boolean; tenant: string }
  | { kind: "config validate"; file: string }
  | { kind: "config apply"; file: string }
  | { kind: "keys list" }
  | { kind: "keys create"; name: string; consumerId: string; roles: string[]; expiresAt: string | undefined; id: string | undefined }
  | { kind: "keys revoke"; id: string }
  | { kind: "keys rotate"; id: string }
  | { kind: "servers list" }
  | { kind: "connectors list" }
  | { kind: "connectors create"; id: string; name: string | undefined }
  | { kind: "connectors revoke"; id: string }
  | { kind: "whoami" };

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

type OptionName = (typeof GLOBAL_OPTIONS)[number] | "force" | "expires" | "id" | "name" | "version";

const PARSE_OPTIONS = {
  url: { type: "string" },
  "admin-key": { type: "string" },
  tenant: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  force: { type: "boolean" },
  expires: { type: "string" },
  id: { type: "string" },
  name: { type: "string" },
} as const;

const METAVARS: Partial<Record<OptionName, string>> = { expires: "TIME" };

type CommandSpec = {
  name: CommandName;
  /** Positional arguments; a trailing `?` marks an optional one. */
  args: readonly string[];
  /** Options beyond the global ones. */
  options: readonly OptionName[];
  /** Talks to the gateway (needs a URL and an admin key). */
  remote: boolean;
  summary: string;
  /** The command's own help, after its usage line. */
  help: string;
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
    options: [],
    remote: true,
    summary: "give a key a new secret; the old one stops working at once",
    help: "The new key is printed once and cannot be shown again.",
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
];

const GROUPS = ["config", "keys", "servers", "connectors"] as const;

const CONNECTION_HELP = `Connection (every command that talks to the gateway):
  --url URL          the gateway   env MCP_GATEWAY_URL   default ${DEFAULT_URL}
  --admin-key KEY    an API key with the admin role, or the platform admin token; prefer the env variable
                     env MCP_GATEWAY_ADMIN_KEY
  --tenant ID        the tenant to administer with the platform admin token   env MCP_GATEWAY_TENANT
  --json             print the gateway's JSON answer instead of a table or a sentence`;

function usageLine(spec: CommandSpec): string {
  const args = spec.args.map((a) => (a.endsWith("?") ? `[${a.slice(0, -1)}]` : a));
  const options = spec.options.map((o) => (PARSE_OPTIONS[o].type === "boolean" ? `[--${o}]` : `[--${o} ${METAVARS[o] ?? o.toUpperCase()}]`));
  return ["mcp-gateway", spec.name, ...args, ...options, "[--json]"].join(" ");
}

export const USAGE = `Usage: mcp-gateway COMMAND [ARGS] [OPTIONS]

Administers an MCP gateway tenant: its configuration, API keys, servers and connectors.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(19)}${c.summary}`).join("\n")}
  help [COMMAND]     this help, or a command's

${CONNECTION_HELP}
  --help, -h         help (also after a command: mcp-gateway keys create --help)
  --version, -V      the version

Exit status: 0 done, 1 the gateway refused or could not be reached, 2 a usage error or an invalid local file.`;

/** Help for one command, or for a group (`keys`): undefined when there is no such topic. */
export function helpFor(topic: readonly string[]): string | undefined {
  const name = topic.join(" ");
  const spec = COMMANDS.find((c) => c.name === name);
  if (spec) {
    const body = spec.help ? `\n\n${spec.help}` : "";
    const connection = spec.remote ? `\n\n${CONNECTION_HELP}` : "\n\n  --json         print the result as JSON";
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

/** Parses a whole command line. Flags may come before or after the command words. */
export function parseCli(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): CliParse {
  let values: { [K in keyof typeof PARSE_OPTIONS]?: (typeof PARSE_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };
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
  const isGroup = (GROUPS as readonly string[]).includes(first);
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
  const built = buildCommand(spec.name, args, values, tenant);
  if (!built.ok) return { kind: "usage", errors: built.errors, usage };

  const warnings: string[] = [];
  let connection: Connection | undefined;
  if (spec.remote) {
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
  values: { force?: boolean; expires?: string; id?: string; name?: string },
  tenant: string | undefined,
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
    case "keys revoke":
    case "keys rotate":
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
  }
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
