/**
 * @module What of a gateway.yaml reaches the edge: everything except a server's command, args, env and cwd (which
 * only the connector on the customer's host reads) and the keys themselves (stored as digests in `api_keys`).
 *
 * Pure: the admin API stores the published form in `tenants.config`; the Worker compiles its policies from it.
 * {@link edgeDocument} is what the CLI sends the admin API in the first place, so what stays on the host never
 * even travels.
 */
import { sha256Hex } from "../auth/secrets.ts";
import type { PolicyConfig } from "../policy/schema.ts";
import type { GatewayConfig } from "./schema.ts";

/** A server as the edge knows it from the file: identity, naming and whether the operator enabled it. */
export interface PublishedServer {
  id: string;
  name?: string | undefined;
  prefix?: string | undefined;
  enabled: boolean;
  timeout: number;
}

export interface PublishedConfig {
  tenant: string;
  authType: GatewayConfig["auth"]["type"];
  /** The JWT issuers the tenant accepts: no secret (an HS256 secret is a Worker secret the entry only names). */
  jwt?: NonNullable<GatewayConfig["auth"]["jwt"]>;
  /** The tenant's OAuth authorization servers and scopes (nothing secret). */
  oauth?: NonNullable<GatewayConfig["auth"]["oauth"]>;
  servers: PublishedServer[];
  policies: PolicyConfig[];
  audit?: GatewayConfig["audit"];
  metering?: GatewayConfig["metering"];
  rateLimit?: GatewayConfig["rateLimit"];
  ipFilter?: GatewayConfig["ipFilter"];
  redaction?: GatewayConfig["redaction"];
}

export function publishConfig(config: GatewayConfig): PublishedConfig {
  return {
    tenant: config.tenant,
    authType: config.auth.type,
    ...(config.auth.jwt ? { jwt: config.auth.jwt } : {}),
    ...(config.auth.oauth ? { oauth: config.auth.oauth } : {}),
    // Built field by field, not by omitting: a key added to the server schema later stays on the host by default.
    servers: config.servers.map((s) => ({ id: s.id, name: s.name, prefix: s.prefix, enabled: s.enabled, timeout: s.timeout })),
    policies: config.policies,
    ...(config.audit ? { audit: config.audit } : {}),
    ...(config.metering ? { metering: config.metering } : {}),
    ...(config.rateLimit ? { rateLimit: config.rateLimit } : {}),
    ...(config.ipFilter ? { ipFilter: config.ipFilter } : {}),
    ...(config.redaction ? { redaction: config.redaction } : {}),
  };
}

/**
 * A gateway.yaml as the edge needs to receive it, as a JSON document the admin API validates like the file: servers
 * without command, args, env or cwd, and every key as its digest (a seed-style plaintext `key:` is hashed here, on
 * the operator's machine).
 */
export async function edgeDocument(config: GatewayConfig): Promise<Record<string, unknown>> {
  const keys = await Promise.all(
    config.auth.keys.map(async ({ key, keyHash, ...rest }) => ({ ...rest, keyHash: keyHash ?? (await sha256Hex(key as string)) })),
  );
  const { servers, policies, ...published } = publishConfig(config);
  const { authType, jwt, oauth, ...sections } = published;
  return { ...sections, auth: { type: authType, keys, ...(jwt ? { jwt } : {}), ...(oauth ? { oauth } : {}) }, servers, policies };
}
