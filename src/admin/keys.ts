/**
 * @module API key lifecycle through the admin API: list (never a key or its digest), create (the key shown once),
 * revoke (at once: keys are looked up on every call; a revoked key of gateway.yaml stays revoked across applies of
 * the same digest; a rotation grace ends with it), rotate (a new secret for the same key id; the old secret keeps
 * working for `graceSeconds`, default 0 = stops at once; rotating again during a grace ends the older secret).
 */
import { and, eq } from "drizzle-orm";
import { keyStatus, MAX_ROTATION_GRACE_SECONDS } from "../auth/principal.ts";
import { API_KEY_PREFIX, generateSecret, sha256Hex } from "../auth/secrets.ts";
import { ungrantedRoles } from "../config/schema.ts";
import type { Database } from "../db/client.ts";
import { apiKeys, consumers, tenants } from "../db/schema.ts";
import { AdminError, insertOnce } from "./errors.ts";

type KeyRow = typeof apiKeys.$inferSelect;

const iso = (time: number | null) => (time === null ? null : new Date(time).toISOString());

/** A key as the admin API shows it: never the key or a digest (current or rotated-out). */
export function describeKey(row: KeyRow, now = Date.now()) {
  // A grace that has ended is history, not news: it shows as null.
  const previousExpiresAt = row.previousExpiresAt !== null && row.previousExpiresAt > now ? row.previousExpiresAt : null;
  return {
    id: row.id,
    name: row.name,
    consumerId: row.consumerId,
    roles: row.roles,
    enabled: row.enabled,
    expiresAt: row.expiresAt === null ? null : new Date(row.expiresAt).toISOString(),
    createdAt: new Date(row.createdAt).toISOString(),
    revokedAt: row.revokedAt === null ? null : new Date(row.revokedAt).toISOString(),
    source: row.source,
    status: keyStatus({ ...row, previousExpiresAt }, now),
    lastUsedAt: iso(row.lastUsedAt),
    previousExpiresAt: iso(previousExpiresAt),
  };
}

export async function listKeys(db: Database, tenant: string) {
  const rows = await db.select().from(apiKeys).where(eq(apiKeys.tenantId, tenant)).orderBy(apiKeys.id).all();
  const now = Date.now();
  return rows.map((row) => describeKey(row, now));
}

export interface NewKey {
  name: string;
  consumerId: string;
  roles: string[];
  expiresAt?: string | undefined;
  id?: string | undefined;
  /** The key's own CIDR lists (`api_keys.ip_filter`); none when absent or both empty. */
  ipFilter?: { allow: string[]; deny: string[] } | undefined;
}

/** Creates a key; a role none of the tenant's applied `policies` grants is refused, as in gateway.yaml. */
export async function createKey(db: Database, tenant: string, request: NewKey, policies: readonly { roles: readonly string[] }[]) {
  const unknown = ungrantedRoles(request.roles, policies);
  if (unknown.length > 0) {
    throw new AdminError("bad_request", `No policy of this tenant grants the role${unknown.length > 1 ? "s" : ""} ${unknown.map((r) => `"${r}"`).join(", ")}; apply a config that does first`);
  }
  const expiresAt = request.expiresAt === undefined ? null : Date.parse(request.expiresAt);
  if (expiresAt !== null && expiresAt <= Date.now()) throw new AdminError("bad_request", "expiresAt is in the past");
  const id = request.id ?? `key-${crypto.randomUUID().slice(0, 8)}`;
  const key = generateSecret(API_KEY_PREFIX);
  const exists = await db.select({ id: apiKeys.id }).from(apiKeys).where(and(eq(apiKeys.tenantId, tenant), eq(apiKeys.id, id))).get();
  if (exists) throw new AdminError("conflict", `A key with id "${id}" already exists; choose another id or rotate that key`);
  // The tenant row exists for every tenant an admin key belongs to; the platform token may name a new one.
  await insertOnce(`A key with id "${id}" already exists; choose another id or rotate that key`, db.batch([
    db.insert(tenants).values({ id: tenant, name: tenant }).onConflictDoNothing(),
    db.insert(consumers).values({ tenantId: tenant, id: request.consumerId, name: request.consumerId }).onConflictDoNothing(),
    db.insert(apiKeys).values({
      tenantId: tenant,
      id,
      consumerId: request.consumerId,
      name: request.name,
      keyHash: await sha256Hex(key),
      roles: request.roles,
      enabled: true,
      expiresAt,
      ipFilter: request.ipFilter && (request.ipFilter.allow.length > 0 || request.ipFilter.deny.length > 0) ? request.ipFilter : null,
      source: "api",
    }),
  ]));
  const row = await db.select().from(apiKeys).where(and(eq(apiKeys.tenantId, tenant), eq(apiKeys.id, id))).get();
  return { ...describeKey(row as KeyRow), key };
}

export async function revokeKey(db: Database, tenant: string, id: string) {
  // Revocation also ends a rotation grace: neither the current nor the rotated-out secret works afterwards.
  const row = await db
    .update(apiKeys)
    .set({ enabled: false, revokedAt: Date.now(), previousKeyHash: null, previousExpiresAt: null })
    .where(and(eq(apiKeys.tenantId, tenant), eq(apiKeys.id, id)))
    .returning({ id: apiKeys.id })
    .get();
  if (!row) throw new AdminError("not_found", `No key "${id}" in this tenant`);
  return { id: row.id, enabled: false as const };
}

/**
 * A new secret for the key. With `graceSeconds` > 0 the current secret keeps working as the same key until then
 * (the answer's `previousExpiresAt`); a secret an earlier rotation kept alive stops now, since only one previous
 * digest is kept. A config key is refused: gateway.yaml is its source of truth.
 */
export async function rotateKey(db: Database, tenant: string, id: string, graceSeconds = 0) {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_ROTATION_GRACE_SECONDS) {
    throw new AdminError("bad_request", `graceSeconds must be a whole number from 0 to ${MAX_ROTATION_GRACE_SECONDS} (7 days)`);
  }
  const row = await db.select().from(apiKeys).where(and(eq(apiKeys.tenantId, tenant), eq(apiKeys.id, id))).get();
  if (!row) throw new AdminError("not_found", `No key "${id}" in this tenant`);
  if (row.source === "config") {
    throw new AdminError("conflict", `Key "${id}" is defined in gateway.yaml, which would restore it on the next apply; replace its keyHash there and apply the file`);
  }
  const key = generateSecret(API_KEY_PREFIX);
  const now = Date.now();
  const grace = graceSeconds > 0 ? { previousKeyHash: row.keyHash, previousExpiresAt: now + graceSeconds * 1000 } : { previousKeyHash: null, previousExpiresAt: null };
  const updated = await db
    .update(apiKeys)
    .set({ keyHash: await sha256Hex(key), ...grace })
    .where(and(eq(apiKeys.tenantId, tenant), eq(apiKeys.id, id)))
    .returning()
    .get();
  return { ...describeKey(updated as KeyRow, now), key };
}
