/**
 * @module gateway.yaml: the seed's configuration schema (auth, servers, policies, audit, metering, rateLimit,
 * ipFilter) validated with zod, with messages that name the path of the bad key.
 *
 * Platform-free: the connector reads `servers:` from it, `npm start` reads `tenant:` and `auth.keys` from it to seed
 * the local gateway. Unknown keys are errors, so a typo never silently disables a setting.
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { EDGE_CALL_DEADLINE_MS, serverIdSchema } from "../link/protocol.ts";
import { exposedPrefix } from "../mcp/namespacing.ts";

const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/, "must be 1-128 characters of A-Z a-z 0-9 _ . : @ -");

/** Environment variable names as POSIX shells accept them. */
const envNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name");

export const serverConfigSchema = z.strictObject({
  id: serverIdSchema,
  name: z.string().min(1).max(256).optional(),
  command: z.string().min(1),
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
export type ServerConfig = z.infer<typeof serverConfigSchema>;

const sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, "must be a lowercase hex SHA-256 digest");

export const apiKeyConfigSchema = z
  .strictObject({
    id: idSchema,
    /** The seed's form: the key itself. Hashed on load; never stored or sent anywhere in plaintext. */
    key: z.string().min(16, "must be at least 16 characters").optional(),
    /** The digest of a key shown once and not kept (what `npm start` writes for its demo key). */
    keyHash: sha256HexSchema.optional(),
    name: z.string().min(1).max(256),
    consumerId: idSchema,
    roles: z.array(z.string().min(1).max(64)).default([]),
    enabled: z.boolean().default(true),
    /** ISO 8601 date-time after which the key is refused. */
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .refine((k) => (k.key === undefined) !== (k.keyHash === undefined), {
    message: "give exactly one of key or keyHash",
  });
export type ApiKeyConfig = z.infer<typeof apiKeyConfigSchema>;

const ruleSchema = z.strictObject({
  server: z.string().optional(),
  tool: z.string().optional(),
  action: z.enum(["allow", "deny"]),
  conditions: z.array(z.record(z.string(), z.unknown())).default([]),
});

const policySchema = z.strictObject({
  id: idSchema,
  name: z.string().optional(),
  roles: z.array(z.string()).default([]),
  rules: z.array(ruleSchema).default([]),
});

export const gatewayConfigSchema = z.strictObject({
  /** The tenant this file describes (one gateway serves many; `npm start` uses this one). */
  tenant: idSchema.default("default"),
  auth: z
    .strictObject({
      type: z.enum(["api-key", "jwt", "oidc"]).default("api-key"),
      keys: z.array(apiKeyConfigSchema).default([]),
    })
    .default({ type: "api-key", keys: [] }),
  servers: z.array(serverConfigSchema).default([]),
  policies: z.array(policySchema).default([]),
  audit: z
    .strictObject({
      enabled: z.boolean().default(true),
      storage: z.string().optional(),
      path: z.string().optional(),
      hashChain: z.boolean().default(true),
    })
    .optional(),
  metering: z
    .strictObject({
      enabled: z.boolean().default(true),
      dimensions: z.array(z.enum(["calls", "latency", "errors"])).default(["calls", "latency", "errors"]),
    })
    .optional(),
  rateLimit: z
    .strictObject({
      enabled: z.boolean().default(true),
      defaultPerMinute: z.number().int().positive().default(60),
    })
    .optional(),
  ipFilter: z
    .strictObject({
      allow: z.array(z.string()).default([]),
      deny: z.array(z.string()).default([]),
    })
    .optional(),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export type ConfigResult = { ok: true; config: GatewayConfig } | { ok: false; errors: string[] };

/** Parses and validates gateway.yaml text. Errors name the path of the bad key, e.g. `servers[1].timeout: ...`. */
export function parseGatewayConfig(text: string): ConfigResult {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (error) {
    return { ok: false, errors: [`not valid YAML: ${(error as Error).message}`] };
  }
  const parsed = gatewayConfigSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, errors: parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`) };
  }
  const errors = crossChecks(parsed.data);
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config: parsed.data };
}

/** Rules no single key can express: unique ids, and names agents would find ambiguous. */
function crossChecks(config: GatewayConfig): string[] {
  const errors: string[] = [];
  const serverIds = new Map<string, number>();
  const prefixes = new Map<string, number>();
  config.servers.forEach((server, i) => {
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
  const keyIds = new Map<string, number>();
  config.auth.keys.forEach((key, i) => {
    const same = keyIds.get(key.id);
    if (same !== undefined) errors.push(`auth.keys[${i}].id: "${key.id}" is already used by auth.keys[${same}]`);
    keyIds.set(key.id, i);
  });
  return errors;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(top level)";
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}
