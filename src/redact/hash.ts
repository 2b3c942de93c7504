/**
 * @module The keyed hash of the `hash` redaction action: HMAC-SHA256 under a per-tenant key derived from the
 * Worker secret REDACTION_HMAC_KEY, so equal values correlate within a tenant and never across tenants, and a
 * leaked audit copy cannot be reversed offline. It is no protection against a caller who can have chosen values
 * hashed through a tool (a hash oracle): for low-entropy data an administrator should prefer mask or partial.
 * Synchronous (@noble/hashes) so the engine stays a plain function.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { Hasher } from "./engine.ts";

/** A tenant's hasher; without a secret it hashes nothing, and the engine masks instead (fail closed). */
export function tenantHasher(secret: string | undefined, tenant: string): Hasher {
  if (!secret) return () => undefined;
  const key = hmac(sha256, utf8ToBytes(secret), utf8ToBytes(`mcp-gateway redaction v1 tenant:${tenant}`));
  return (text) => bytesToHex(hmac(sha256, key, utf8ToBytes(text)));
}
