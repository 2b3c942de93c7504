/**
 * @module How upstream tool and prompt names are shown to agents: `<server>__<name>` by default, `<prefix>__<name>`
 * when a server sets a prefix, the bare upstream name when it sets `prefix: ""`.
 *
 * Pure and shared by the config loader (ambiguity checks) and the edge's catalog (listing and routing).
 */

/** Between a prefix and an upstream name. Server ids and prefixes may not contain it, so the split is unique. */
export const NAMESPACE_SEPARATOR = "__";

/** The prefix a server's names carry: its own `prefix` when set (possibly ""), else its id. */
export function exposedPrefix(server: { id: string; prefix?: string | undefined }): string {
  return server.prefix ?? server.id;
}

/** The name an agent sees for an upstream tool or prompt. */
export function exposedName(prefix: string, upstreamName: string): string {
  return prefix === "" ? upstreamName : `${prefix}${NAMESPACE_SEPARATOR}${upstreamName}`;
}

/**
 * The prefix part of an exposed name, for error messages ("no server crm"): whatever stands before the first
 * separator, or undefined for a bare name.
 */
export function prefixOf(exposed: string): string | undefined {
  const at = exposed.indexOf(NAMESPACE_SEPARATOR);
  return at > 0 ? exposed.slice(0, at) : undefined;
}

/**
 * The gateway's own tools (the seed's names), exposed bare. They keep their names before any upstream tool: an
 * upstream tool a server exposes under one of them is withheld as a name conflict kept by the gateway.
 */
export const GATEWAY_TOOL_NAMES = ["list_tools", "list_servers", "server_status", "call", "usage", "audit_log", "audit_stats", "audit_verify"] as const;

/** The gateway's discovery tools, `call` and `usage`: for every caller (a built-in rule; a tenant's deny overrides it). */
export const GATEWAY_DISCOVERY_TOOLS = ["list_tools", "list_servers", "server_status", "call", "usage"] as const;

/** The gateway's audit tools: for the `admin` role (a built-in rule), or whichever roles a tenant's policy grants. */
export const GATEWAY_AUDIT_TOOLS = ["audit_log", "audit_stats", "audit_verify"] as const;
