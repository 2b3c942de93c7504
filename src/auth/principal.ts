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
}

/** The stored facts about a key that decide whether it may be used. */
export interface StoredKey {
  enabled: boolean;
  /** Epoch milliseconds of an administrator's revocation, or null. */
  revokedAt?: number | null;
  /** Epoch milliseconds, or null for a key that never expires. */
  expiresAt: number | null;
}

export type KeyRefusal = "unknown" | "revoked" | "disabled" | "expired";

/** Why a key is refused, or undefined when it is usable at `now`. */
export function keyRefusal(key: StoredKey, now: number): KeyRefusal | undefined {
  if (key.revokedAt != null) return "revoked";
  if (!key.enabled) return "disabled";
  if (key.expiresAt !== null && key.expiresAt <= now) return "expired";
  return undefined;
}
