/**
 * @module The servers table: written from what connectors report, read to build a tenant's catalog.
 */
import { and, eq } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { servers } from "../db/schema.ts";
import type { ServerCatalog, ServerReport } from "../link/protocol.ts";
import { buildCatalog, describeConflicts, type CatalogServer } from "../mcp/catalog.ts";

/** A server an agent can use right now, with the connector that serves it. */
export interface AvailableServer extends CatalogServer {
  connectorId: string;
}

/** A server the tenant has that cannot take calls now, and why. */
export interface UnavailableServer {
  id: string;
  prefix?: string | undefined;
  status: string;
  detail?: string | undefined;
}

/** The tenant's enabled servers: those reported healthy (its catalog) and the others (to explain a failed call). */
export async function tenantServers(db: Database, tenant: string): Promise<{ available: AvailableServer[]; unavailable: UnavailableServer[] }> {
  const rows = await db
    .select()
    .from(servers)
    .where(and(eq(servers.tenantId, tenant), eq(servers.enabled, true)))
    .all();
  const available = rows.filter((row) => row.status === "healthy").map(toAvailable);
  const unavailable = rows
    .filter((row) => row.status !== "healthy")
    .map((row) => ({ id: row.id, prefix: row.prefix ?? undefined, status: row.status, detail: row.statusDetail ?? undefined }));
  return { available, unavailable };
}

/** Servers that are enabled and reported healthy, for the tenant's catalog. */
export async function availableServers(db: Database, tenant: string): Promise<AvailableServer[]> {
  return (await tenantServers(db, tenant)).available;
}

function toAvailable(row: typeof servers.$inferSelect): AvailableServer {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix ?? undefined,
    registeredAt: row.registeredAt,
    catalog: row.catalog as ServerCatalog,
    connectorId: row.connectorId,
  };
}

export interface SyncOutcome {
  /** Reported servers whose id another connector of the tenant already serves: not registered. */
  refused: { serverId: string; ownedBy: string }[];
}

/**
 * Records a connector's merged server reports: upserts reported servers, marks its servers that no replica reports
 * any more as disconnected, and refreshes every tenant server's name-conflict note.
 */
export async function syncConnectorServers(
  db: Database,
  tenant: string,
  connector: string,
  reports: readonly ServerReport[],
  now: number,
): Promise<SyncOutcome> {
  const existing = await db.select().from(servers).where(eq(servers.tenantId, tenant)).all();
  const byId = new Map(existing.map((row) => [row.id, row]));
  const refused: SyncOutcome["refused"] = [];
  const writes = [];
  const reported = new Set<string>();

  for (const report of reports) {
    const row = byId.get(report.id);
    if (row && row.connectorId !== connector && row.status !== "disconnected") {
      refused.push({ serverId: report.id, ownedBy: row.connectorId });
      continue;
    }
    reported.add(report.id);
    const values = {
      connectorId: connector,
      name: report.name,
      prefix: report.prefix ?? null,
      status: report.health,
      statusDetail: report.detail ?? null,
      catalog: report.catalog,
      updatedAt: now,
    };
    writes.push(
      db
        .insert(servers)
        .values({ tenantId: tenant, id: report.id, registeredAt: now, ...values })
        .onConflictDoUpdate({ target: [servers.tenantId, servers.id], set: values }),
    );
  }
  for (const row of existing) {
    if (row.connectorId === connector && !reported.has(row.id) && row.status !== "disconnected") {
      writes.push(
        db
          .update(servers)
          .set({ status: "disconnected", statusDetail: `connector "${connector}" is not connected or no longer runs it`, updatedAt: now })
          .where(and(eq(servers.tenantId, tenant), eq(servers.id, row.id))),
      );
    }
  }
  if (writes.length > 0) await db.batch(writes as [(typeof writes)[number], ...typeof writes]);
  await refreshConflicts(db, tenant);
  return { refused };
}

/** Recomputes which names each server of the tenant is denied because an older server holds them. */
async function refreshConflicts(db: Database, tenant: string): Promise<void> {
  const available = await availableServers(db, tenant);
  const { conflicts } = buildCatalog(available);
  const rows = await db.select({ id: servers.id, conflicts: servers.conflicts }).from(servers).where(eq(servers.tenantId, tenant)).all();
  const writes = [];
  for (const row of rows) {
    const note = describeConflicts(conflicts, row.id) ?? null;
    if (note !== row.conflicts) {
      writes.push(db.update(servers).set({ conflicts: note }).where(and(eq(servers.tenantId, tenant), eq(servers.id, row.id))));
    }
  }
  if (writes.length > 0) await db.batch(writes as [(typeof writes)[number], ...typeof writes]);
}
