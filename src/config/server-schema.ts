/**
 * @module The `servers:` entries of gateway.yaml and how any gateway.yaml is read: the YAML parse, the entries'
 * schema and the checks across them, and the path-named error messages.
 *
 * Kept apart from the whole schema (schema.ts, which uses all of this) so that the connector, which runs only the
 * servers, can validate exactly what it uses without loading the schemas of auth, policies, redaction, metering
 * and the rest, and the libraries behind them (connector/config.ts). Platform-free, and light on purpose: import
 * nothing here that the connector would not load anyway.
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { EDGE_CALL_DEADLINE_MS, serverIdSchema } from "../link/protocol.ts";
import { exposedPrefix } from "../mcp/namespacing.ts";
import { clip } from "../text.ts";

/** Environment variable names as POSIX shells accept them. */
const envNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name");

export const serverConfigSchema = z.strictObject({
  id: serverIdSchema,
  name: z.string().min(1).max(256).optional(),
  /** Required where the file runs servers (the connector); the edge never receives it (see edgeDocument). */
  command: z.string().min(1).optional(),
  args: z.array(z.string()).default([]),
  /** Values may reference the connector's own environment as `${VAR}`; resolved on the connector host only. */
  env: z.record(envNameSchema, z.string()).default({}),
  enabled: z.boolean().default(true),
  /** Per-call timeout in milliseconds; at most the edge's own deadline for a relayed call. */
  timeout: z.number().int().min(100).max(EDGE_CALL_DEADLINE_MS).default(60_000),
  /** Name tools and prompts `<prefix>__<name>` instead of `<id>__<name>`; "" exposes the upstream's own names. */
  prefix: z.union([serverIdSchema, z.literal("")]).optional(),
  /** Working directory of the child process. */
  cwd: z.string().optional(),
});
/** A server as the file declares it; on the edge its command is absent. */
export type DeclaredServer = z.infer<typeof serverConfigSchema>;
/** A server as the connector runs it: from a file parsed for the host, so its command is there. */
export type ServerConfig = DeclaredServer & { command: string };

/** The servers of a config parsed for the host (the default), typed as runnable. */
export function hostServers(config: { servers: readonly DeclaredServer[] }): ServerConfig[] {
  return config.servers.map((server, i) => {
    if (server.command === undefined) throw new Error(`servers[${i}].command is missing: parse the file for the host`);
    return { ...server, command: server.command };
  });
}

/**
 * gateway.yaml text as a plain value (an empty file is `{}`), or the `syntax` error. No aliases: a few KB of anchors
 * could otherwise expand to megabytes. No pretty errors: they quote the file's lines, which can hold keys and env
 * values.
 */
export function parseConfigYaml(text: string): { ok: true; raw: unknown } | { ok: false; kind: "syntax"; errors: string[] } {
  try {
    return { ok: true, raw: parseYaml(text, { maxAliasCount: 0, prettyErrors: false }) ?? {} };
  } catch (error) {
    const reason = clip((error as Error).message.split("\n")[0] ?? "", 200);
    return { ok: false, kind: "syntax", errors: [`not valid YAML: ${reason}`] };
  }
}

/** What a file read for the host needs on top of the schema: every server's command, first in the error list. */
export function missingCommands(servers: readonly DeclaredServer[]): string[] {
  const errors: string[] = [];
  servers.forEach((server, i) => {
    if (server.command === undefined) errors.push(`servers[${i}].command: required: the connector runs this command to start the server`);
  });
  return errors;
}

/** Rules across the servers no single key can express: unique ids, and names agents would find ambiguous. */
export function serverChecks(servers: readonly DeclaredServer[]): string[] {
  const errors: string[] = [];
  const serverIds = new Map<string, number>();
  const prefixes = new Map<string, number>();
  servers.forEach((server, i) => {
    const sameId = serverIds.get(server.id);
    if (sameId !== undefined) errors.push(`servers[${i}].id: "${server.id}" is already used by servers[${sameId}]`);
    serverIds.set(server.id, i);
    // Two servers behind one prefix would make every tool name ambiguous; bare names ("") are checked per tool,
    // when the servers report their tools, because only then are the names known.
    const prefix = exposedPrefix(server);
    if (prefix === "") return;
    const samePrefix = prefixes.get(prefix);
    if (samePrefix !== undefined) {
      errors.push(
        `servers[${i}].prefix: tools would be named "${prefix}__<tool>" like those of servers[${samePrefix}]; give one a different prefix`,
      );
    }
    prefixes.set(prefix, i);
  });
  return errors;
}

/** `policies[2].rules[0].action: expected "allow" | "deny", got "permit"`: the path, what was expected, what came. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const path = formatPath(issue.path);
  // A key's value is a secret even when it is malformed: say what was expected, never echo it.
  if (issue.path.at(-1) === "key" || issue.path.at(-1) === "keyHash") return `${path}: ${issue.message}`;
  if (issue.code === "invalid_value") {
    const expected = issue.values.map((v) => JSON.stringify(v)).join(" | ");
    return `${path}: expected ${expected}, got ${shown(issue.input)}`;
  }
  if (issue.code === "invalid_type") {
    // The type of what came, never its value: a misplaced value can be an env secret.
    return `${path}: expected ${issue.expected}, got ${issue.input === undefined ? "nothing" : typeName(issue.input)}`;
  }
  if (issue.code === "unrecognized_keys") {
    return `${path}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  }
  return `${path}: ${issue.message}`;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a mapping" : `a ${typeof value}`;
}

/** A bad value as the error shows it: JSON, bounded (a file can hold a huge string). */
function shown(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value !== null && typeof value === "object") return "a mapping";
  return clip(JSON.stringify(value) ?? String(value), 80);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(top level)";
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}
