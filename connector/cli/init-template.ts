/**
 * @module The starter gateway.yaml that `mcp-gateway init` writes: the seed's schema, commented, holding only the
 * digests of the keys it prints. Pure: the keys are made by the caller.
 */

export const STARTER_KEYS = {
  agent: { id: "agent-key", name: "Agent", consumerId: "agent-1", roles: ["reader", "writer"] },
  admin: { id: "admin-key", name: "Administrator", consumerId: "admin", roles: ["admin"] },
} as const;

/** The file's text; the caller checks it with the schema (the tenant was typed by someone). */
export function starterConfig(tenant: string, hashes: { agent: string; admin: string }): string {
  const { agent, admin } = STARTER_KEYS;
  const roles = (r: readonly string[]) => `[${r.join(", ")}]`;
  return `# gateway.yaml — written by \`mcp-gateway init\`. The seed's schema: tenant, auth, servers, policies (audit,
# metering, rateLimit and ipFilter are accepted too).
#
#   mcp-gateway config validate gateway.yaml   checks it here, without the network
#   mcp-gateway config apply gateway.yaml      makes it the tenant's configuration at the gateway (sent as it is,
#                                              comments included; this file is never rewritten)
#   mcp-gateway-connector --config gateway.yaml --url URL
#                                              runs the servers: section on the host that has the servers

# The tenant this file describes. One gateway serves many tenants; they never see each other's keys or servers.
tenant: ${yamlScalar(tenant)}

auth:
  type: api-key
  keys:
    # Both keys were printed once by \`mcp-gateway init\`; this file holds only their SHA-256 digests, and so does
    # the gateway. A lost key cannot be recovered: replace its keyHash, or create keys with
    # \`mcp-gateway keys create NAME CONSUMER ROLES\` (those live at the gateway only; applying this file keeps them).
    - id: ${agent.id}
      keyHash: ${hashes.agent}
      name: "${agent.name}"
      consumerId: ${agent.consumerId}      # who the calls are attributed to (limits, usage, audit)
      roles: ${roles(agent.roles)}
      enabled: true
      # expiresAt: "2027-01-31T00:00:00Z"

    # The admin role lets a key use the admin API (the mcp-gateway CLI) for this tenant. Keep it off agents.
    - id: ${admin.id}
      keyHash: ${hashes.admin}
      name: "${admin.name}"
      consumerId: ${admin.consumerId}
      roles: ${roles(admin.roles)}
      enabled: true

# The MCP servers the connector runs as supervised child processes on its host. command, args, env and cwd never
# leave that host; \`\${VAR}\` in env is read from the connector's own environment there.
servers:
  - id: everything                   # agents see its tools as everything__<tool>
    name: "MCP Everything (reference server)"
    command: npx
    args: ["-y", "@modelcontextprotocol/server-everything", "stdio"]
    timeout: 60000                   # per call, in milliseconds
    enabled: true

  # A server that needs a secret:
  # - id: crm
  #   command: npx
  #   args: ["-y", "@acme/crm-mcp"]
  #   env:
  #     CRM_TOKEN: "\${CRM_API_TOKEN}"  # from the connector host's environment; never sent to the gateway
  #   prefix: kb                     # tools named kb__<tool>; "" keeps the server's own tool names

# Which tools each role may call. A call that no rule allows is denied, and a deny rule wins over every allow
# rule whatever the order (so no catch-all "deny *" at the end, as the seed had: it would cancel the allows).
policies:
  - id: reader-policy
    name: "Read-only access"
    roles: [reader]
    rules:
      - { tool: "get_*", action: allow }
      - { tool: "search_*", action: allow }

  - id: writer-policy
    name: "Read and write, no deletes"
    roles: [writer]
    rules:
      - { tool: "delete_*", action: deny }
      - action: allow

  - id: admin-policy
    name: "Full access"
    roles: [admin]
    rules:
      - action: allow
`;
}

/**
 * A plain scalar when it reads back as the same string, else a double-quoted one (a JSON string is valid YAML), so
 * whatever was typed as the tenant cannot add keys to the file or become a number or a boolean.
 */
function yamlScalar(text: string): string {
  const plain = /^[A-Za-z][A-Za-z0-9_.-]*$/.test(text) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(text);
  return plain ? text : JSON.stringify(text);
}
