/**
 * @module The tenant's servers as an administrator sees them: what connectors report (with the health detail
 * agents never see) merged with what the applied gateway.yaml declares, so a declared server no connector serves
 * yet shows up as "not connected".
 */
import { eq } from "drizzle-orm";
import type { PublishedServer } from "../config/publish.ts";
import type { Database } from "../db/client.ts";
import { servers, tenants } from "../db/schema.ts";
import type { ServerCatalog } from "../link/protocol.ts";

export async function listServers(db: Database, tenant: string) {
  const [rows, tenantRow] = await Promise.all([
    db.select().from(servers).where(eq(servers.tenantId, tenant)).orderBy(servers.id).all(),
    db.select({ config: tenants.config }).from(tenants).where(eq(tenants.id, tenant)).get(),
  ]);
  const declared = new Map<string, PublishedServer>((tenantRow?.config?.servers ?? []).map((s) => [s.id, s]));
  const reported = rows.map((row) => {
    const declaration = declared.get(row.id);
    const catalog = row.catalog as ServerCatalog;
    return {
      id: row.id,
      name: row.name,
      connectorId: row.connectorId,
      prefix: row.prefix,
      enabled: row.enabled && (declaration?.enabled ?? true),
      declared: declaration !== undefined,
      status: row.status,
      detail: row.statusDetail,
      tools: catalog.tools.length,
      prompts: catalog.prompts.length,
      resources: catalog.resources.length + catalog.resourceTemplates.length,
      conflicts: row.conflicts,
      updatedAt: new Date(row.updatedAt).toISOString(),
    };
  });
  const seen = new Set(rows.map((r) => r.id));
  const waiting = [...declared.values()]
    .filter((s) => !seen.has(s.id))
    .map((s) => ({
      id: s.id,
      name: s.name ?? s.id,
      connectorId: null,
      prefix: s.prefix ?? null,
      enabled: s.enabled,
      declared: true,
      status: "not connected",
      detail: "declared in gateway.yaml; no connector has reported it yet",
      tools: 0,
      prompts: 0,
      resources: 0,
      conflicts: null,
      updatedAt: null,
    }));
  return [...reported, ...waiting].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
