/**
 * @module The gateway's own MCP tools (the seed's names): `list_tools`, `list_servers`, `server_status`, `call` and
 * `usage` (a consumer's own; an administrator's tenant's), and for administrators `audit_log`, `audit_stats` and
 * `audit_verify`.
 * They live on the reserved server id `gateway`, so policy governs them like any tool (built-in rules allow the
 * first four to every caller and the audit tools to the `admin` role; a tenant's deny rule overrides either). The
 * audit tools are moreover for the `admin` role only, whatever a tenant's allow rules say. The caller is always the transport's principal: no
 * tool takes a key, tenant or consumer as an argument.
 *
 * Each shows only what the caller may use; a server the caller may use nothing of is unknown to it.
 */
import { z } from "zod";
import { ADMIN_ROLE, GATEWAY_SERVER_ID } from "../config/schema.ts";
import type { CompiledPolicies, PolicyPrincipal } from "../policy/engine.ts";
import type { AggregatedCatalog, CatalogServer } from "./catalog.ts";
import { serverVisible, usableCounts, visibleCatalog } from "./visibility.ts";
import { AUDIT_STATUSES, type AuditEntry } from "../audit/entry.ts";
import { AuditCursorError, auditQueryShape, auditQuerySchema, type AuditQuery, type AuditStats } from "../audit/store.ts";
import type { ChainVerifyResult } from "../audit/verify.ts";
import { USAGE_GROUPS, type UsageParams, type UsageReport } from "../metering/usage-store.ts";

/** What a meta-tool handler needs: the caller's view and, for `call`, the regular tools/call path. */
export interface MetaToolContext {
  catalog: AggregatedCatalog;
  principal: PolicyPrincipal;
  policies: CompiledPolicies;
  /** tools/call of an exposed name, with policy, routing and relay exactly as if the agent had sent it. */
  callTool(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** The caller's tenant's audit trail (never another tenant's: the tenant is the principal's, not an argument). */
  audit: AuditTrail;
  /** The caller's tenant's usage, grouped; an error string for a period that is not one. */
  usage(params: UsageParams): Promise<{ ok: true; report: UsageReport } | { ok: false; error: string }>;
}

/** Reads of the caller's tenant's audit trail (src/audit/store.ts behind the backend). */
export interface AuditTrail {
  entries(query: AuditQuery, page: { limit: number; cursor?: string | undefined }): Promise<{ entries: AuditEntry[]; nextCursor: string | null }>;
  stats(query: AuditQuery): Promise<AuditStats>;
  verify(): Promise<ChainVerifyResult>;
}

export type MetaToolResult = Record<string, unknown>;

/** A meta-tool's arguments were wrong; reported per protocol era (see gateway-server.ts). */
export class MetaToolInputError extends Error {}

interface MetaTool {
  definition: { name: string; title: string; description: string; inputSchema: Record<string, unknown>; annotations: Record<string, unknown> };
  /**
   * Only for callers with the `admin` role, whatever the tenant's policies allow: a catch-all allow written for
   * agents must not hand them the whole tenant's audit trail. Policy still applies on top (a deny removes it).
   */
  adminOnly?: true;
  run(args: unknown, ctx: MetaToolContext): Promise<MetaToolResult>;
}

const noArguments = z.strictObject({});
const listToolsArguments = z.strictObject({ server: z.string().max(256).optional() });
const serverStatusArguments = z.strictObject({ server: z.string().min(1).max(256) });
/** audit_log pages are smaller than the admin API's: entries hold redacted arguments and results. */
const AUDIT_LOG_TOOL_MAX = 100;
const auditLogArguments = z.strictObject({
  ...auditQueryShape,
  limit: z.number().int().min(1).max(AUDIT_LOG_TOOL_MAX).default(20),
  cursor: z.string().max(256).optional(),
});
const auditStatsArguments = auditQuerySchema;
const usageArguments = z.strictObject({
  from: auditQueryShape.from,
  to: auditQueryShape.to,
  by: z.enum(USAGE_GROUPS).default("tool"),
  consumer: z.string().min(1).max(256).optional(),
});
const callArguments = z.strictObject({
  tool: z.string().min(1).max(512),
  arguments: z.record(z.string(), z.unknown()).default({}),
});

function parsed<T>(schema: z.ZodType<T>, args: unknown, tool: string): T {
  const result = schema.safeParse(args ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "arguments"}: ${i.message}`);
  throw new MetaToolInputError(`Invalid arguments for ${tool}: ${problems.join("; ")}`);
}

/** A JSON answer as text (for every client) and as structured content (for clients that read it). */
function answer(value: Record<string, unknown>): MetaToolResult {
  return { content: [{ type: "text", text: JSON.stringify(value, null, 2) }], structuredContent: value };
}

function describeServer(server: CatalogServer, ctx: MetaToolContext) {
  return { id: server.id, name: server.name, status: server.status, available: server.available, ...usableCounts(server, ctx.principal, ctx.policies) };
}

const readOnly = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };

const auditFilterProperties = {
  consumer: { type: "string", description: "Only this consumer's calls" },
  server: { type: "string", description: "Only calls to this server" },
  tool: { type: "string", description: "Only calls of this tool or prompt (its upstream name), or this resource URI" },
  status: { type: "string", enum: [...AUDIT_STATUSES], description: "Only calls with this outcome" },
  from: { type: ["string", "number"], description: "From this time on (ISO 8601 or epoch milliseconds), inclusive" },
  to: { type: ["string", "number"], description: "Before this time (ISO 8601 or epoch milliseconds)" },
};

const tools: MetaTool[] = [
  {
    definition: {
      name: "list_tools",
      title: "List tools",
      description: "Lists the tools you may call through this gateway (optionally of one server), with the server that serves each.",
      inputSchema: { type: "object", properties: { server: { type: "string", description: "Only this server's tools" } }, additionalProperties: false },
      annotations: readOnly,
    },
    async run(args, ctx) {
      const { server } = parsed(listToolsArguments, args, "list_tools");
      const visible = visibleCatalog(ctx.catalog, ctx.principal, ctx.policies).tools;
      const listed = visible
        .filter((t) => server === undefined || t.serverId === server)
        .map((t) => ({ name: t.name, server: t.serverId, description: t.definition.description ?? null }));
      return answer({ tools: listed });
    },
  },
  {
    definition: {
      name: "list_servers",
      title: "List servers",
      description: "Lists the MCP servers whose tools, prompts or resources you may use, with their status.",
      inputSchema: { type: "object", properties: {}, additionalProperties: false },
      annotations: readOnly,
    },
    async run(args, ctx) {
      parsed(noArguments, args, "list_servers");
      const servers = ctx.catalog.servers.filter((s) => serverVisible(s, ctx.principal, ctx.policies)).map((s) => describeServer(s, ctx));
      return answer({ servers });
    },
  },
  {
    definition: {
      name: "server_status",
      title: "Server status",
      description: "The health of one MCP server you use: status, whether it takes calls now, and what of it you may use.",
      inputSchema: {
        type: "object",
        properties: { server: { type: "string", description: "The server id, as list_servers shows it" } },
        required: ["server"],
        additionalProperties: false,
      },
      annotations: readOnly,
    },
    async run(args, ctx) {
      const { server: id } = parsed(serverStatusArguments, args, "server_status");
      const server = ctx.catalog.server(id);
      // A server of another tenant, or one the caller may use nothing of, is indistinguishable from no server.
      if (!server || !serverVisible(server, ctx.principal, ctx.policies)) {
        throw new MetaToolInputError(`Unknown server "${id.slice(0, 200)}"; list_servers shows the servers you use`);
      }
      const withheld = ctx.catalog.conflicts.filter((c) => c.serverId === id).length;
      return answer({ ...describeServer(server, ctx), registeredAt: new Date(server.registeredAt).toISOString(), withheldByNameConflicts: withheld });
    },
  },
  {
    definition: {
      name: "usage",
      title: "Usage",
      description:
        "Your calls through this gateway and what they cost, grouped by tool, server, hour (or, for administrators, consumer), for a period (default: this month so far). Administrators see the whole organisation's usage, or one consumer's.",
      inputSchema: {
        type: "object",
        properties: {
          from: auditFilterProperties.from,
          to: auditFilterProperties.to,
          by: { type: "string", enum: [...USAGE_GROUPS], description: "How to group (default tool)" },
          consumer: { type: "string", description: "Administrators: only this consumer's usage" },
        },
        additionalProperties: false,
      },
      annotations: readOnly,
    },
    async run(args, ctx) {
      const params = parsed(usageArguments, args, "usage");
      const admin = ctx.principal.roles.includes(ADMIN_ROLE);
      // A consumer's own usage only, whatever it asks; administrators may see anyone's of their tenant.
      if (!admin && params.consumer !== undefined && params.consumer !== ctx.principal.consumer) {
        throw new MetaToolInputError("Invalid arguments for usage: consumer: only administrators may see another consumer's usage");
      }
      if (!admin && params.by === "consumer") throw new MetaToolInputError("Invalid arguments for usage: by: only administrators may group by consumer");
      const usage = await ctx.usage({ ...params, consumer: admin ? params.consumer : ctx.principal.consumer });
      if (!usage.ok) throw new MetaToolInputError(`Invalid arguments for usage: ${usage.error}`);
      return answer({ ...usage.report });
    },
  },
  {
    definition: {
      name: "audit_log",
      title: "Audit log",
      description:
        "Your organisation's audit trail of tool calls through this gateway, newest first: who called what, when, from where, the outcome, the deciding policy rule, and the redacted arguments and result. For administrators.",
      inputSchema: {
        type: "object",
        properties: {
          ...auditFilterProperties,
          limit: { type: "integer", minimum: 1, maximum: AUDIT_LOG_TOOL_MAX, description: "Entries per page (default 20)" },
          cursor: { type: "string", description: "nextCursor of the previous page" },
        },
        additionalProperties: false,
      },
      annotations: readOnly,
    },
    adminOnly: true,
    async run(args, ctx) {
      const { limit, cursor, ...query } = parsed(auditLogArguments, args, "audit_log");
      try {
        return answer(await ctx.audit.entries(query, { limit, cursor }));
      } catch (error) {
        if (error instanceof AuditCursorError) throw new MetaToolInputError(`Invalid arguments for audit_log: cursor: ${error.message}`);
        throw error;
      }
    },
  },
  {
    definition: {
      name: "audit_stats",
      title: "Audit statistics",
      description: "Counts of audited calls by outcome, server, tool and consumer, and latency percentiles, optionally filtered. For administrators.",
      inputSchema: { type: "object", properties: auditFilterProperties, additionalProperties: false },
      annotations: readOnly,
    },
    adminOnly: true,
    async run(args, ctx) {
      return answer({ ...(await ctx.audit.stats(parsed(auditStatsArguments, args, "audit_stats"))) });
    },
  },
  {
    definition: {
      name: "audit_verify",
      title: "Verify the audit chain",
      description:
        "Recomputes your organisation's audit hash chain from storage and checks it against the live head and the signed checkpoints; reports the first bad entry and why. For administrators.",
      inputSchema: { type: "object", properties: {}, additionalProperties: false },
      annotations: readOnly,
    },
    adminOnly: true,
    async run(args, ctx) {
      parsed(noArguments, args, "audit_verify");
      return answer({ ...(await ctx.audit.verify()) });
    },
  },
  {
    definition: {
      name: "call",
      title: "Call a tool",
      description:
        "Calls any tool you may use by its name as tools/list (or list_tools) shows it, with JSON arguments, exactly as a direct tools/call would (the same policy decides).",
      inputSchema: {
        type: "object",
        properties: {
          tool: { type: "string", description: "The tool's name, e.g. crm__search" },
          arguments: { type: "object", description: "The tool's arguments", additionalProperties: true },
        },
        required: ["tool"],
        additionalProperties: false,
      },
      annotations: { openWorldHint: true },
    },
    async run(args, ctx) {
      const { tool, arguments: toolArgs } = parsed(callArguments, args, "call");
      if (tool === "call") throw new MetaToolInputError("call cannot call itself; name the tool you want to call");
      return ctx.callTool(tool, toolArgs);
    },
  },
];

const byName = new Map(tools.map((t) => [t.definition.name, t]));

/** The meta-tool of an exposed name, if it is one. Meta-tools keep their names before any upstream bare name. */
export function metaTool(name: string): MetaTool | undefined {
  return byName.get(name);
}

/** The meta-tools' definitions the caller may use, for tools/list. */
export function visibleMetaTools(principal: PolicyPrincipal, policies: CompiledPolicies): MetaTool["definition"][] {
  return tools.filter((t) => mayUseMetaTool(t, principal) && policies.visible(principal, metaSubject(t.definition.name))).map((t) => t.definition);
}

/** The role gate of {@link MetaTool.adminOnly} tools (policy is checked separately). */
export function mayUseMetaTool(tool: MetaTool, principal: PolicyPrincipal): boolean {
  return !tool.adminOnly || principal.roles.includes(ADMIN_ROLE);
}

export function metaSubject(name: string) {
  return { server: GATEWAY_SERVER_ID, kind: "tool" as const, name };
}
