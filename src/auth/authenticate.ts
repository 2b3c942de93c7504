/**
 * @module Bearer authentication against D1: API keys for agents, connector tokens for connectors. Both are looked
 * up by SHA-256 digest and the digest compared again in constant time.
 */
import { and, eq } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { apiKeys, connectors } from "../db/schema.ts";
import { keyRefusal, type KeyRefusal, type Principal } from "./principal.ts";
import { bearerCredential, constantTimeEqual, sha256Hex } from "./secrets.ts";

/** A refused credential that still names its key (revoked, disabled, expired): enough to audit the attempt. */
export type IdentifiedRefusal = { tenant: string; consumer: string; keyId: string };

export type Authentication =
  | { ok: true; principal: Principal }
  | { ok: false; refusal: KeyRefusal | "missing"; identified?: IdentifiedRefusal };

/** Authenticates an agent's `Authorization` header into a principal. */
export async function authenticateApiKey(db: Database, authorization: string | null, now: number): Promise<Authentication> {
  const credential = bearerCredential(authorization);
  if (credential === undefined) return { ok: false, refusal: "missing" };
  const digest = await sha256Hex(credential);
  const row = await db.select().from(apiKeys).where(eq(apiKeys.keyHash, digest)).get();
  if (!row || !constantTimeEqual(row.keyHash, digest)) return { ok: false, refusal: "unknown" };
  const refusal = keyRefusal(row, now);
  if (refusal) return { ok: false, refusal, identified: { tenant: row.tenantId, consumer: row.consumerId, keyId: row.id } };
  return { ok: true, principal: { tenant: row.tenantId, consumer: row.consumerId, keyId: row.id, roles: row.roles } };
}

export interface ConnectorIdentity {
  tenant: string;
  connector: string;
}

/** Authenticates a connector's token; undefined when missing, unknown or disabled. */
export async function authenticateConnector(db: Database, authorization: string | null): Promise<ConnectorIdentity | undefined> {
  const credential = bearerCredential(authorization);
  if (credential === undefined) return undefined;
  const digest = await sha256Hex(credential);
  const row = await db
    .select()
    .from(connectors)
    .where(and(eq(connectors.tokenHash, digest), eq(connectors.enabled, true)))
    .get();
  if (!row || !constantTimeEqual(row.tokenHash, digest)) return undefined;
  return { tenant: row.tenantId, connector: row.id };
}
