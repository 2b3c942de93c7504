/**
 * @module gateway.yaml: the seed's configuration schema (auth, servers, policies, audit, metering, rateLimit,
 * ipFilter) validated with zod, with messages that name the path of the bad key.
 *
 * Platform-free: the admin API, the CLI (and `npm start`, before the Worker is up) validate the whole file with it;
 * the connector reads only `tenant` and `servers:`, through ./server-schema.ts, which this schema uses too. Unknown keys are errors, so a typo never silently disables a setting; references
 * between sections (roles, servers, ids) are checked too, so a typo never silently grants or denies.
 */
import { idSchema } from "../ids.ts";
import { ipFilterSchema } from "../auth/ip-filter.ts";
import { jwtAuthSchema } from "../auth/jwt-schema.ts";
import { resourceTenantOf } from "../auth/oauth.ts";
import { oauthSchema } from "../auth/oauth-schema.ts";
import { z } from "zod";
import { GATEWAY_SERVER_ID } from "../link/protocol.ts";
import { isGlobPattern } from "../policy/glob.ts";
import { defaultRuleId, policySchema } from "../policy/schema.ts";
import { redactionSchema } from "../redact/schema.ts";
import { meteringSchema } from "../metering/schema.ts";
import { rateLimitSchema } from "../ratelimit/schema.ts";
import { describeIssue, missingCommands, parseConfigYaml, serverChecks, serverConfigSchema } from "./server-schema.ts";

export { GATEWAY_SERVER_ID };
// The servers: entries live in server-schema.ts, which the connector loads without the rest of this schema.
export { hostServers, serverConfigSchema, type DeclaredServer, type ServerConfig } from "./server-schema.ts";

/** The role that may use the admin API (/admin/v1) for its tenant; needs no policy. */
export const ADMIN_ROLE = "admin";


/** Hosts a webhook may reach over plain http (local development); anything else needs https. */
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** An audit webhook's URL: https, or http to a loopback host only. */
export const auditWebhookUrlSchema = z
  .string()
  .max(2048)
  .refine((text) => {
    if (!URL.canParse(text)) return false;
    const url = new URL(text);
    return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname));
  }, "must be an https:// URL (http:// only for localhost, 127.0.0.1 or [::1])");

/** An audit object key prefix (audit.r2, audit.s3): keys are `<prefix><tenant>/<start>-<end>.jsonl`. */
const auditObjectPrefixSchema = z
  .string()
  .max(256)
  .regex(/^[^\u0000-\u001f\u007f\\]*$/, "must not contain control characters or backslashes")
  .refine((p) => !p.startsWith("/"), "must not start with /")
  // Keys are <prefix><tenant>/…: a prefix not ending in "/" could make one tenant's keys another's ("audit/ac" + "me").
  .refine((p) => p === "" || p.endsWith("/"), "must be empty or end with /");

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
    /** This key's own CIDR allow and deny lists, checked on top of the tenant's `ipFilter`. */
    ipFilter: ipFilterSchema.optional(),
  })
  .refine((k) => (k.key === undefined) !== (k.keyHash === undefined), {
    message: "give exactly one of key or keyHash",
  });
export type ApiKeyConfig = z.infer<typeof apiKeyConfigSchema>;

export const gatewayConfigSchema = z.strictObject({
  /** The tenant this file describes (one gateway serves many; `npm start` uses this one). */
  tenant: idSchema.default("default"),
  auth: z
    .strictObject({
      type: z.enum(["api-key", "jwt", "oidc"]).default("api-key"),
      keys: z.array(apiKeyConfigSchema).default([]),
      /** Identity providers whose bearer JWTs are accepted on /mcp next to the keys (src/auth/jwt-schema.ts). */
      jwt: jwtAuthSchema.optional(),
      /** The tenant as an OAuth protected resource at /t/<tenant>/mcp (MCP authorization; src/auth/oauth-schema.ts). */
      oauth: oauthSchema.optional(),
    })
    .default({ type: "api-key", keys: [] }),
  servers: z.array(serverConfigSchema).default([]),
  policies: z.array(policySchema).default([]),
  /** The tenant's audit chain (docs/audit-chain.md). The seed's `storage` and `path` are accepted and unused: the chain lives in the tenant's AuditLog Durable Object and D1. */
  audit: z
    .strictObject({
      enabled: z.boolean().default(true),
      storage: z.string().optional(),
      path: z.string().optional(),
      hashChain: z.literal(true, { error: "the hash chain cannot be turned off: it is what makes the audit log tamper-evident" }).default(true),
      /** `closed`: a call whose entry cannot be written fails (its result is withheld); `open`: it proceeds, logged. */
      failureMode: z.enum(["closed", "open"]).default("closed"),
      /** Days of entries kept in D1; absent = kept for ever. Pruning keeps the chain verifiable from a checkpoint. */
      retentionDays: z.number().int().min(1).max(36_500).optional(),
      /** Each chain batch POSTed, signed, to a receiver (docs/audit-chain.md, "Delivery: webhook, R2 and S3"). */
      webhook: z
        .strictObject({
          url: auditWebhookUrlSchema,
          /** Entries per POST. */
          batchSize: z.number().int().min(1).max(1000).default(100),
        })
        .optional(),
      /** One verifiable JSONL object per checkpoint interval in the Worker's AUDIT_BUCKET R2 binding. */
      r2: z
        .strictObject({
          /** Object keys are `<prefix><tenant>/<start>-<end>.jsonl`. */
          prefix: auditObjectPrefixSchema.default("audit/"),
        })
        .optional(),
      /**
       * The R2 sink's objects (same keys, same bytes) PUT to a bucket of any S3-compatible store, signed with AWS
       * Signature V4 under the Worker secrets AUDIT_S3_ACCESS_KEY_ID and AUDIT_S3_SECRET_ACCESS_KEY.
       */
      s3: z
        .strictObject({
          /** The API's base URL, e.g. https://<account>.r2.cloudflarestorage.com or https://s3.eu-west-1.amazonaws.com. */
          endpoint: auditWebhookUrlSchema.refine((text) => {
            const url = new URL(text);
            return url.search === "" && url.hash === "" && url.username === "" && url.password === "";
          }, "must have no query, fragment or credentials (the credentials are the Worker secrets AUDIT_S3_ACCESS_KEY_ID and AUDIT_S3_SECRET_ACCESS_KEY)"),
          bucket: z
            .string()
            .regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, "must be 3-63 characters of a-z 0-9 . _ -, starting and ending with a letter or digit"),
          /** The SigV4 signing region; "auto" suits R2's S3 API, AWS wants the bucket's region. */
          region: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 _ -").default("auto"),
          /** Object keys are `<prefix><tenant>/<start>-<end>.jsonl`, as in R2. */
          prefix: auditObjectPrefixSchema
            .refine((p) => !p.split("/").some((segment) => segment === "." || segment === ".."), "must not have a . or .. path segment (a URL would resolve it away)")
            .default("audit/"),
          /** `<endpoint>/<bucket>/<key>` (true, the default) or `<bucket>.<endpoint host>/<key>` (virtual-host style). */
          pathStyle: z.boolean().default(true),
        })
        .optional(),
    })
    .optional(),
  /** Usage metering, the price table and the Stripe meter of the chargeback (src/metering/schema.ts). */
  metering: meteringSchema.optional(),
  /** Token buckets and quotas per consumer (src/ratelimit/schema.ts). */
  rateLimit: rateLimitSchema.optional(),
  /** CIDR allow and deny lists checked against CF-Connecting-IP for every key of the tenant (src/auth/ip-filter.ts). */
  ipFilter: ipFilterSchema.optional(),
  /** Personal data and secrets rewritten in requests, responses and the audit copy (src/redact/schema.ts). */
  redaction: redactionSchema.optional(),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/** `syntax`: the text is not YAML at all (a malformed request); `invalid`: YAML that breaks the schema's rules. */
export type ConfigResult = { ok: true; config: GatewayConfig } | { ok: false; kind: "syntax" | "invalid"; errors: string[] };

export interface ParseOptions {
  /**
   * `host` (default): the whole file, as the CLI and `npm start` read it; every server needs its `command`.
   * `edge`: what the admin API receives, which by design lacks what stays on the host (commands, args, env, cwd).
   */
  for?: "host" | "edge";
}

/** Parses and validates gateway.yaml text. Errors name the path of the bad key, e.g. `servers[1].timeout: ...`. */
export function parseGatewayConfig(text: string, options: ParseOptions = {}): ConfigResult {
  const yaml = parseConfigYaml(text);
  if (!yaml.ok) return yaml;
  const parsed = gatewayConfigSchema.safeParse(yaml.raw, { reportInput: true });
  if (!parsed.success) return { ok: false, kind: "invalid", errors: parsed.error.issues.map(describeIssue) };
  const errors = crossChecks(parsed.data);
  if (options.for !== "edge") errors.unshift(...missingCommands(parsed.data.servers));
  return errors.length > 0 ? { ok: false, kind: "invalid", errors } : { ok: true, config: parsed.data };
}

/** Rules no single key can express: unique ids, and names agents would find ambiguous. */
function crossChecks(config: GatewayConfig): string[] {
  const errors = serverChecks(config.servers);
  const keyIds = new Map<string, number>();
  const keyHashes = new Map<string, number>();
  config.auth.keys.forEach((key, i) => {
    const same = keyIds.get(key.id);
    if (same !== undefined) errors.push(`auth.keys[${i}].id: "${key.id}" is already used by auth.keys[${same}]`);
    keyIds.set(key.id, i);
    if (key.keyHash !== undefined) {
      const sameHash = keyHashes.get(key.keyHash);
      if (sameHash !== undefined) errors.push(`auth.keys[${i}].keyHash: the same key as auth.keys[${sameHash}]`);
      keyHashes.set(key.keyHash, i);
    }
  });
  errors.push(...policyChecks(config), ...authChecks(config));
  return errors;
}

/**
 * Policies against the rest of the file: unique policy and rule ids, rules naming servers the file declares (a
 * literal name; globs may match servers that report later), and keys holding only roles some policy grants — a
 * misspelt role would otherwise silently leave a key with nothing (or a policy with nobody).
 */
function policyChecks(config: GatewayConfig): string[] {
  const errors: string[] = [];
  const declared = new Set([GATEWAY_SERVER_ID, ...config.servers.map((s) => s.id)]);
  const policyIds = new Map<string, number>();
  const ruleIds = new Map<string, string>();
  config.policies.forEach((policy, p) => {
    const same = policyIds.get(policy.id);
    if (same !== undefined) errors.push(`policies[${p}].id: "${policy.id}" is already used by policies[${same}]`);
    policyIds.set(policy.id, p);
    errors.push(...deadAllows(policy, `policies[${p}]`));
    policy.rules.forEach((rule, r) => {
      const path = `policies[${p}].rules[${r}]`;
      const id = rule.id ?? defaultRuleId(policy.id, r);
      const sameRule = ruleIds.get(id);
      if (sameRule !== undefined) errors.push(`${path}.id: "${id}" is already the id of ${sameRule}`);
      ruleIds.set(id, path);
      if (rule.server !== undefined && !isGlobPattern(rule.server) && !declared.has(rule.server)) {
        errors.push(`${path}.server: no server "${rule.server}" in servers (declared: ${[...declared].join(", ")})`);
      }
    });
  });
  const known = [...new Set([ADMIN_ROLE, ...config.policies.flatMap((p) => p.roles)])].join(", ");
  config.auth.keys.forEach((key, k) => {
    const ungranted = new Set(ungrantedRoles(key.roles, config.policies));
    key.roles.forEach((role, r) => {
      if (ungranted.has(role)) errors.push(`auth.keys[${k}].roles[${r}]: no policy grants the role "${role}" (roles in policies: ${known})`);
    });
  });
  return errors;
}

/** Token issuers against the tenant: its own secrets, its own resource, and one role per issuer. */
function authChecks(config: GatewayConfig): string[] {
  const errors: string[] = [];
  // A tenant's HS256 secret is its own: the name carries the tenant, so no file can name another tenant's secret
  // and accept the tokens that tenant's issuer mints.
  const secretPrefix = jwtSecretPrefix(config.tenant);
  const oauthIssuers = new Map((config.auth.oauth?.authorizationServers ?? []).map((server, i) => [server.issuer, i]));
  config.auth.jwt?.issuers.forEach((issuer, i) => {
    if (issuer.hs256SecretEnv !== undefined && !issuer.hs256SecretEnv.startsWith(secretPrefix)) {
      errors.push(`auth.jwt.issuers[${i}].hs256SecretEnv: must begin with ${secretPrefix} (this tenant's secrets), e.g. ${secretPrefix}SECRET`);
    }
    // Tokens minted for another tenant's OAuth resource must never become this tenant's callers.
    const named = resourceTenantOf(issuer.audience);
    if (named !== undefined && named !== config.tenant) {
      errors.push(`auth.jwt.issuers[${i}].audience: is the OAuth resource of another tenant (/t/${named}/mcp); a tenant may name only its own`);
    }
    // One issuer, one way of checking its tokens: at /t/<tenant>/mcp an authorization server's tokens must be minted
    // for the resource and carry the required scopes, which a plain issuer entry would let them skip at /mcp.
    const asServer = oauthIssuers.get(issuer.issuer);
    if (asServer !== undefined) {
      errors.push(`auth.jwt.issuers[${i}].issuer: is also auth.oauth.authorizationServers[${asServer}]; list an issuer in one of the two`);
    }
  });
  return errors;
}

/** How the names of a tenant's HS256 Worker secrets begin: `JWT_`, the tenant id in capitals (`-` as `_`), `_`. */
export function jwtSecretPrefix(tenant: string): string {
  return `JWT_${tenant.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_`;
}

/** The roles no policy grants (`admin` needs none; a policy for "*" grants every role): a key holding one is an error. */
export function ungrantedRoles(roles: readonly string[], policies: readonly { roles: readonly string[] }[]): string[] {
  const granted = new Set(policies.flatMap((p) => p.roles));
  if (granted.has("*")) return [];
  return roles.filter((role) => role !== ADMIN_ROLE && !granted.has(role));
}

/**
 * The seed's reader policy ended with `{tool: "*", action: deny}` after its allows, relying on first-match. Deny
 * overrides allow here, so such a rule would silently make the policy's own allow rules dead and its callers able
 * to do nothing. Default deny already refuses what no rule allows, so the rule is refused with that explanation.
 */
function deadAllows(policy: GatewayConfig["policies"][number], path: string): string[] {
  const everything = (glob: string | undefined) => glob === undefined || glob === "*";
  const errors: string[] = [];
  policy.rules.forEach((deny, d) => {
    if (deny.action !== "deny" || deny.conditions.length > 0 || !everything(deny.server)) return;
    const kind = deny.tool !== undefined ? "tool" : deny.prompt !== undefined ? "prompt" : deny.resource !== undefined ? "resource" : undefined;
    if (kind !== undefined && !everything(deny.tool ?? deny.prompt ?? deny.resource)) return;
    const dead = policy.rules
      .map((rule, a) => ({ rule, a }))
      .filter(({ rule }) => rule.action === "allow" && (kind === undefined || rule[kind] !== undefined || (rule.tool === undefined && rule.prompt === undefined && rule.resource === undefined)))
      .map(({ a }) => `rules[${a}]`);
    if (dead.length === 0) return;
    errors.push(
      `${path}.rules[${d}]: this deny covers every ${kind ?? "item"} and deny overrides allow, so it would cancel ${dead.join(", ")} of the same policy; remove it (anything no rule allows is denied already)`,
    );
  });
  return errors;
}
