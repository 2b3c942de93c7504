/**
 * @module A per-isolate cache of each tenant's aggregated catalog, keyed by the servers table's stamp: every call
 * pays one small aggregate query, and the catalogs are read and aggregated again only when a connector (or, later,
 * an administrator) has changed something.
 */
import { tenantServers, tenantServersStamp } from "../connectors/server-registry.ts";
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

export async function tenantCatalog(db: Database, tenant: string): Promise<TenantCatalog> {
  const stamp = await tenantServersStamp(db, tenant);
  const hit = cache.get(tenant);
  if (hit && hit.stamp === stamp) return hit.value;
  // A write landing between the stamp and this read is cached under the older stamp, so the next call re-reads.
  const servers = await tenantServers(db, tenant);
  const value = { catalog: buildCatalog(servers), connectorOf: new Map(servers.map((s) => [s.id, s.connectorId])) };
  cache.delete(tenant);
  cache.set(tenant, { stamp, value });
  if (cache.size > MAX_TENANTS) cache.delete(cache.keys().next().value as string);
  return value;
}
