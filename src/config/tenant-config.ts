/**
 * @module A per-isolate cache of each tenant's applied configuration, with its policies compiled once per config
 * version. A version is re-checked at most every {@link CONFIG_RECHECK_MS} per tenant and isolate, so an apply
 * takes effect everywhere within that bound (plus the time D1 takes to replicate the write) with no redeploy,
 * and most calls pay no query for it at all.
 */
import { eq } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { tenants } from "../db/schema.ts";
import { compilePolicies, type CompiledPolicies } from "../policy/engine.ts";
import type { PolicyConfig } from "../policy/schema.ts";
import { compileRedaction, type CompiledRedaction } from "../redact/engine.ts";
import type { PublishedConfig } from "./publish.ts";
import { GATEWAY_AUDIT_TOOLS, GATEWAY_DISCOVERY_TOOLS } from "../mcp/namespacing.ts";
import { ADMIN_ROLE, GATEWAY_SERVER_ID } from "./schema.ts";

/** How stale a tenant's configuration may be in one isolate (documented in the README). */
export const CONFIG_RECHECK_MS = 1_000;

/** The gateway's discovery tools and `call` are for every caller; a tenant's deny rule still overrides this. */
export const GATEWAY_BUILTIN_POLICY: PolicyConfig = {
  id: "gateway-builtin",
  name: "The gateway's own discovery tools, for every caller",
  roles: ["*"],
  rules: [{ server: GATEWAY_SERVER_ID, tool: `{${GATEWAY_DISCOVERY_TOOLS.join(",")}}`, action: "allow", conditions: [] }],
};

/** The audit tools are for the tenant's administrators; a tenant may grant them to other roles (say, auditors). */
export const GATEWAY_BUILTIN_AUDIT_POLICY: PolicyConfig = {
  id: "gateway-builtin-audit",
  name: "The gateway's audit tools, for administrators",
  roles: [ADMIN_ROLE],
  rules: [{ server: GATEWAY_SERVER_ID, tool: `{${GATEWAY_AUDIT_TOOLS.join(",")}}`, action: "allow", conditions: [] }],
};

export interface TenantConfig {
  /** 0 = no file applied yet: no policy, so everything but the built-in tools is denied. */
  version: number;
  published: PublishedConfig | null;
  policies: CompiledPolicies;
  /** Servers the applied file declares with `enabled: false`: hidden and refused whatever their connector says. */
  disabledServers: ReadonlySet<string>;
  /** The file's redaction rules (plus the audit baseline every tenant has). */
  redaction: CompiledRedaction;
}

const MAX_TENANTS = 500;
const cache = new Map<string, { value: TenantConfig; checkedAt: number }>();

export async function tenantConfig(db: Database, tenant: string, now: number = Date.now()): Promise<TenantConfig> {
  const hit = cache.get(tenant);
  if (hit && now - hit.checkedAt < CONFIG_RECHECK_MS) return hit.value;
  const version = await db.select({ version: tenants.configVersion }).from(tenants).where(eq(tenants.id, tenant)).get();
  if (hit && hit.value.version === (version?.version ?? 0)) {
    hit.checkedAt = now;
    return hit.value;
  }
  const row = await db
    .select({ version: tenants.configVersion, config: tenants.config })
    .from(tenants)
    .where(eq(tenants.id, tenant))
    .get();
  const value = compileTenantConfig(row?.version ?? 0, row?.config ?? null);
  // A tenant that does not exist is not remembered: unauthenticated requests can name any tenant (an OAuth resource's
  // URL and metadata), and made-up names must not push real tenants out of the cache.
  if (!row) return value;
  cache.delete(tenant);
  cache.set(tenant, { value, checkedAt: now });
  if (cache.size > MAX_TENANTS) cache.delete(cache.keys().next().value as string);
  return value;
}

/** Pure: a published config as the pipeline uses it. */
export function compileTenantConfig(version: number, published: PublishedConfig | null): TenantConfig {
  return {
    version,
    published,
    policies: compilePolicies([...(published?.policies ?? []), GATEWAY_BUILTIN_POLICY, GATEWAY_BUILTIN_AUDIT_POLICY]),
    disabledServers: new Set((published?.servers ?? []).filter((s) => !s.enabled).map((s) => s.id)),
    redaction: compileRedaction(published?.redaction),
  };
}

/** For tests: forget every cached tenant. */
export function clearTenantConfigCache(): void {
  cache.clear();
}
