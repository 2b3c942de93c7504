/**
 * @module Who is calling: the principal an authenticated request acts as, and the pure rules that decide whether a
 * stored API key may be used.
 */

/** The identity every pipeline step works with once a bearer credential has been accepted. */
export interface Principal {
  tenant: string;
  consumer: string;
  keyId: string;
  roles: string[];
  /** A JWT caller's verified claims (policy conditions may read them as `${principal.claims.<path>}`); absent for API keys. */
  claims?: Readonly<Record<string, unknown>>;
}

/** The stored facts about a key that decide whether it may be used. */
export interface StoredKey {
  enabled: boolean;
  /** Epoch milliseconds of an administrator's revocation, or null. */
  revokedAt?: number | null;
  /** Epoch milliseconds, or null for a key that never expires. */
  expiresAt: number | null;
}

/**
 * `rotated`: the presented key is the one a rotation replaced and its grace period has ended (or there was none
 * left: rotating again ends the older grace).
 */
export type KeyRefusal = "unknown" | "revoked" | "disabled" | "expired" | "rotated";

/** Why a key is refused, or undefined when it is usable at `now`. */
export function keyRefusal(key: StoredKey, now: number): KeyRefusal | undefined {
  if (key.revokedAt != null) return "revoked";
  if (!key.enabled) return "disabled";
  if (key.expiresAt !== null && key.expiresAt <= now) return "expired";
  return undefined;
}

/** How often, at most, an accepted key's `last_used_at` is written: once a minute per key, not on every call. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** Whether an accepted use at `now` should be written down: never written, or written a minute or more ago. */
export function lastUseIsStale(lastUsedAt: number | null, now: number): boolean {
  return lastUsedAt === null || now - lastUsedAt >= LAST_USED_RESOLUTION_MS;
}

/** Longest rotation grace the admin API accepts: 7 days. */
export const MAX_ROTATION_GRACE_SECONDS = 7 * 24 * 60 * 60;

export type KeyStatus = "active" | "grace" | "expired" | "revoked" | "disabled";

/**
 * What a key list shows: the refusal a use at `now` would meet, else `grace` while a rotated-out secret still
 * works (`previousExpiresAt` in the future), else `active`.
 */
export function keyStatus(key: StoredKey & { previousExpiresAt: number | null }, now: number): KeyStatus {
  const refusal = keyRefusal(key, now);
  if (refusal === "revoked" || refusal === "disabled" || refusal === "expired") return refusal;
  return key.previousExpiresAt !== null && key.previousExpiresAt > now ? "grace" : "active";
}
