/**
 * @module Connector registration through the admin API: a connector id with a token shown once (stored as its
 * digest), listing, and revocation, which also closes the connector's live links.
 */
import { and, eq } from "drizzle-orm";
import { CONNECTOR_TOKEN_PREFIX, generateSecret, sha256Hex } from "../auth/secrets.ts";
import { connectorObjectName } from "../connectors/connector-api.ts";
import type { Database } from "../db/client.ts";
import { connectors, tenants } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { log } from "../log.ts";
import { AdminError, insertOnce } from "./errors.ts";

type ConnectorRow = typeof connectors.$inferSelect;

function describeConnector(row: ConnectorRow) {
  return { id: row.id, name: row.name, enabled: row.enabled, createdAt: new Date(row.createdAt).toISOString() };
}

export async function listConnectors(db: Database, tenant: string) {
  const rows = await db.select().from(connectors).where(eq(connectors.tenantId, tenant)).orderBy(connectors.id).all();
  return rows.map(describeConnector);
}

export async function createConnector(db: Database, tenant: string, request: { id: string; name?: string | undefined }) {
  const exists = await db.select({ id: connectors.id }).from(connectors).where(and(eq(connectors.tenantId, tenant), eq(connectors.id, request.id))).get();
  if (exists) throw new AdminError("conflict", `A connector with id "${request.id}" already exists; choose another id`);
  const token = generateSecret(CONNECTOR_TOKEN_PREFIX);
  await insertOnce(`A connector with id "${request.id}" already exists; choose another id`, db.batch([
    db.insert(tenants).values({ id: tenant, name: tenant }).onConflictDoNothing(),
    db.insert(connectors).values({ tenantId: tenant, id: request.id, name: request.name ?? request.id, tokenHash: await sha256Hex(token), enabled: true }),
  ]));
  const row = await db.select().from(connectors).where(and(eq(connectors.tenantId, tenant), eq(connectors.id, request.id))).get();
  return { ...describeConnector(row as ConnectorRow), token };
}

export async function revokeConnector(env: Env, db: Database, tenant: string, id: string) {
  const row = await db
    .update(connectors)
    .set({ enabled: false })
    .where(and(eq(connectors.tenantId, tenant), eq(connectors.id, id)))
    .returning({ id: connectors.id })
    .get();
  if (!row) throw new AdminError("not_found", `No connector "${id}" in this tenant`);
  const closed = await env.CONNECTOR.getByName(connectorObjectName(tenant, id)).revoke();
  log({ event: "connector.revoked", tenant, connector: id, linksClosed: closed });
  return { id: row.id, enabled: false as const };
}
