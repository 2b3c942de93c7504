/**
 * @module Bearer authentication against D1: API keys for agents, connector tokens for connectors. Both are looked
 * up by SHA-256 digest and the digest compared again in constant time. An API key is also found by the digest a
 * rotation replaced (`previous_key_hash`), which works as the same key until `previous_expires_at`. A stored digest
 * presented as the credential is hashed again, so it can never match a row.
 */
import { and, eq, getTableColumns, isNull, lt, or, sql } from "drizzle-orm";
import { serversStampOf } from "../connectors/server-registry.ts";
import type { Database } from "../db/client.ts";
import { apiKeys, connectors } from "../db/schema.ts";
import type { IpFilterLists } from "./ip-filter.ts";
import { keyRefusal, LAST_USED_RESOLUTION_MS, type KeyRefusal, type Principal } from "./principal.ts";
import { bearerCredential, constantTimeEqual, sha256Hex } from "./secrets.ts";

/** A refused credential that still names its key (revoked, disabled, expired): enough to audit the attempt. */
export type IdentifiedRefusal = { tenant: string; consumer: string; keyId: string };

export type Authentication =
  | {
      ok: true;
      principal: Principal;
      /** The row's `last_used_at` as read for this authentication: the caller decides from it whether to write. */
      lastUsedAt: number | null;
      /** The key's own CIDR lists (`api_keys.ip_filter`), or null: the /mcp guard checks them with the tenant's. */
      ipFilter: IpFilterLists | null;
      /**
       * The stamp of the key's tenant's servers (src/connectors/server-registry.ts), read in the same query: the
       * catalog cache takes it instead of asking D1 again, so a call makes one D1 round trip, not two.
       */
      serversStamp: string;
    }
  | { ok: false; refusal: KeyRefusal | "missing"; identified?: IdentifiedRefusal };

/**
 * The key lookup of every call, built into SQL once per client rather than on each call (drizzle's query building
 * was ≈ 0.5 ms of a call's CPU in workerd's profile). Prepared statements are per client, as clients are per binding.
 */
const keyLookups = new WeakMap<Database, ReturnType<typeof prepareKeyLookup>>();

function prepareKeyLookup(db: Database) {
  const digest = sql.placeholder("digest");
  return db
    .select({ ...getTableColumns(apiKeys), serversStamp: serversStampOf(apiKeys.tenantId) })
    .from(apiKeys)
    .where(or(eq(apiKeys.keyHash, digest), eq(apiKeys.previousKeyHash, digest)))
    .limit(2)
    .prepare();
}

function keyLookup(db: Database) {
  let prepared = keyLookups.get(db);
  if (!prepared) {
    prepared = prepareKeyLookup(db);
    keyLookups.set(db, prepared);
  }
  return prepared;
}

/** Authenticates an agent's `Authorization` header into a principal. */
export async function authenticateApiKey(db: Database, authorization: string | null, now: number): Promise<Authentication> {
  const credential = bearerCredential(authorization);
  if (credential === undefined) return { ok: false, refusal: "missing" };
  const digest = await sha256Hex(credential);
  // One indexed lookup finds the key by its current digest or by the digest a rotation replaced (both unique).
  // A current digest wins should both ever match (a file key given another key's rotated-out digest).
  const rows = await keyLookup(db).all({ digest });
  const row = rows.find((r) => constantTimeEqual(r.keyHash, digest)) ?? rows.find((r) => r.previousKeyHash !== null && constantTimeEqual(r.previousKeyHash, digest));
  if (!row) return { ok: false, refusal: "unknown" };
  const identified = { tenant: row.tenantId, consumer: row.consumerId, keyId: row.id };
  const refusal = keyRefusal(row, now);
  if (refusal) return { ok: false, refusal, identified };
  // The rotated-out secret acts as the same key, only while its grace lasts.
  const current = constantTimeEqual(row.keyHash, digest);
  if (!current && !(row.previousExpiresAt !== null && row.previousExpiresAt > now)) return { ok: false, refusal: "rotated", identified };
  return { ok: true, principal: { tenant: row.tenantId, consumer: row.consumerId, keyId: row.id, roles: row.roles }, lastUsedAt: row.lastUsedAt, ipFilter: row.ipFilter ?? null, serversStamp: String(row.serversStamp) };
}

/**
 * Writes an accepted key's last use, unless another request wrote it within the last minute (the condition keeps
 * concurrent isolates from each writing). Callers only invoke it when the row they read was stale.
 */
export async function recordKeyUse(db: Database, principal: Pick<Principal, "tenant" | "keyId">, now: number): Promise<void> {
  await db
    .update(apiKeys)
    .set({ lastUsedAt: now })
    .where(
      and(
        eq(apiKeys.tenantId, principal.tenant),
        eq(apiKeys.id, principal.keyId),
        or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, now - LAST_USED_RESOLUTION_MS)),
      ),
    )
    .run();
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
