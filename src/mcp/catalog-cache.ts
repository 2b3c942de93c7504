/**
 * @module A per-isolate cache of each tenant's aggregated catalog, keyed by the servers table's stamp: every call
 * pays one small aggregate query (none of its own when the API-key lookup read the stamp along), and the catalogs
 * are read and aggregated again only when a connector has changed something or an applied config has enabled or
 * disabled a server.
 */
import { tenantServers, tenantServersStamp } from "../connectors/server-registry.ts";
import type { TenantConfig } from "../config/tenant-config.ts";
import type { Database } from "../db/client.ts";
import { buildCatalog, type AggregatedCatalog } from "./catalog.ts";

export interface TenantCatalog {
  catalog: AggregatedCatalog;
  /** Which connector serves each server. */
  connectorOf: Map<string, string>;
}

/** Isolates are recycled often; this only bounds memory for an isolate that serves very many tenants. */
const MAX_TENANTS = 500;
const cache = new Map<string, { stamp: string; value: TenantCatalog }>();

/**
 * @param config the tenant's applied configuration: servers it disables are left out (as if no connector reported
 *   them), and its version is part of the stamp.
 * @param serversStamp the tenant's servers stamp if this request already read it (tenantServersStamp's value).
 */
export async function tenantCatalog(
  db: Database,
  tenant: string,
  config: Pick<TenantConfig, "version" | "disabledServers">,
  serversStamp?: string,
): Promise<TenantCatalog> {
  const stamp = `${serversStamp ?? (await tenantServersStamp(db, tenant))}:c${config.version}`;
  const hit = cache.get(tenant);
  if (hit && hit.stamp === stamp) return hit.value;
  // A write landing between the stamp and this read is cached under the older stamp, so the next call re-reads.
  const servers = (await tenantServers(db, tenant)).filter((s) => !config.disabledServers.has(s.id));
  const value = { catalog: buildCatalog(servers), connectorOf: new Map(servers.map((s) => [s.id, s.connectorId])) };
  cache.delete(tenant);
  cache.set(tenant, { stamp, value });
  if (cache.size > MAX_TENANTS) cache.delete(cache.keys().next().value as string);
  return value;
}
