/**
 * @module The servers table: written from what connectors report, read to build a tenant's catalog.
 */
import { and, eq, sql, type AnyColumn, type SQL } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { servers } from "../db/schema.ts";
import type { ServerCatalog, ServerReport } from "../link/protocol.ts";
import { buildCatalog, describeConflicts, type CatalogServer } from "../mcp/catalog.ts";

/** A server of the tenant with the connector that serves it. */
export interface RegisteredServer extends CatalogServer {
  connectorId: string;
}

/** Every enabled server of the tenant, available or not: names stay claimed by their server while it is down. */
export async function tenantServers(db: Database, tenant: string): Promise<RegisteredServer[]> {
  const rows = await db
    .select()
    .from(servers)
    .where(and(eq(servers.tenantId, tenant), eq(servers.enabled, true)))
    .all();
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    prefix: row.prefix ?? undefined,
    registeredAt: row.registeredAt,
    available: row.status === "healthy",
    status: row.status,
    catalog: row.catalog as ServerCatalog,
    connectorId: row.connectorId,
  }));
}

/**
 * A stamp of the tenant's enabled server set that moves whenever any of its rows is written (every writer bumps
 * `version`) or a server appears, disappears or is enabled or disabled: one cheap indexed aggregate instead of
 * reading every catalog.
 */
export async function tenantServersStamp(db: Database, tenant: string): Promise<string> {
  const row = await db.get<{ stamp: string }>(sql`SELECT ${serversStampOf(sql`${tenant}`)} AS stamp`);
  return String(row?.stamp ?? "");
}

/**
 * The stamp of {@link tenantServersStamp} as a scalar subquery, for the tenant a column of another query names: the
 * API-key lookup reads it in the same query (src/auth/authenticate.ts), so a call costs one D1 round trip for its key
 * and its catalog's freshness instead of two. Both read the stamp through this one expression, so they agree.
 */
export function serversStampOf(tenant: SQL | AnyColumn): SQL<string> {
  return sql<string>`(SELECT count(*) || ':' || coalesce(sum(${servers.version}), 0) || ':' || coalesce(max(${servers.updatedAt}), 0) FROM ${servers} WHERE ${servers.tenantId} = ${tenant} AND ${servers.enabled} = 1)`;
}

const bump = { version: sql`${servers.version} + 1` };

export interface SyncOutcome {
  /** Reported servers whose id another connector of the tenant owns: not registered. */
  refused: { serverId: string; ownedBy: string }[];
  /** This connector's servers that have names withheld, with the sentence that says why. */
  conflicts: { serverId: string; note: string }[];
}

/**
 * Records a connector's merged server reports: upserts reported servers, marks its servers that no replica reports
 * any more as disconnected, and refreshes every tenant server's name-conflict note.
 *
 * A server id belongs to the first connector that reported it, for good: a second connector reporting the same id
 * (even while the owner is disconnected, as after every deploy) is refused, or whichever reconnected first would
 * receive the other's calls and their arguments. Moving a server between connectors is an administrative act.
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
    if (row && row.connectorId !== connector) {
      refused.push({ serverId: report.id, ownedBy: row.connectorId });
      continue;
    }
    reported.add(report.id);
    // A server that is not up reports an empty catalog when its connector has just started (nothing initialised
    // yet): it keeps the catalog it last served, so its names stay claimed and a call to them is "not available
    // right now" (-32091), not "unknown tool" (-32602), while the connector restarts.
    // Only a server on its way up or in trouble: a stopped one (disabled in the connector's file) lets its names go.
    const keepCatalog = row !== undefined && (report.health === "starting" || report.health === "unhealthy") && isEmptyCatalog(report.catalog);
    const values = {
      name: report.name,
      prefix: report.prefix ?? null,
      status: report.health,
      statusDetail: report.detail ?? null,
      ...(keepCatalog ? {} : { catalog: report.catalog }),
      updatedAt: now,
    };
    writes.push(
      db
        .insert(servers)
        .values({ tenantId: tenant, id: report.id, connectorId: connector, registeredAt: now, catalog: report.catalog, ...values })
        .onConflictDoUpdate({ target: [servers.tenantId, servers.id], set: { ...values, ...bump } }),
    );
  }
  for (const row of existing) {
    if (row.connectorId === connector && !reported.has(row.id) && row.status !== "disconnected") {
      writes.push(
        db
          .update(servers)
          .set({ status: "disconnected", statusDetail: `connector "${connector}" is not connected or no longer runs it`, updatedAt: now, ...bump })
          .where(and(eq(servers.tenantId, tenant), eq(servers.id, row.id))),
      );
    }
  }
  if (writes.length > 0) await db.batch(writes as [(typeof writes)[number], ...typeof writes]);
  const notes = await refreshConflicts(db, tenant);
  const conflicts = [...notes].flatMap(([serverId, note]) => (reported.has(serverId) && note ? [{ serverId, note }] : []));
  return { refused, conflicts };
}

function isEmptyCatalog(catalog: ServerCatalog): boolean {
  return catalog.tools.length + catalog.resources.length + catalog.resourceTemplates.length + catalog.prompts.length === 0;
}

/** Recomputes which names each server of the tenant is denied because an older server holds them. */
async function refreshConflicts(db: Database, tenant: string): Promise<Map<string, string | null>> {
  const registered = await tenantServers(db, tenant);
  const { conflicts } = buildCatalog(registered);
  const rows = await db.select({ id: servers.id, conflicts: servers.conflicts }).from(servers).where(eq(servers.tenantId, tenant)).all();
  const notes = new Map<string, string | null>();
  const writes = [];
  for (const row of rows) {
    const note = describeConflicts(conflicts, row.id) ?? null;
    notes.set(row.id, note);
    if (note !== row.conflicts) {
      writes.push(db.update(servers).set({ conflicts: note, ...bump }).where(and(eq(servers.tenantId, tenant), eq(servers.id, row.id))));
    }
  }
  if (writes.length > 0) await db.batch(writes as [(typeof writes)[number], ...typeof writes]);
  return notes;
}
