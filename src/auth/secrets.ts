/**
 * @module Secrets the gateway issues (API keys, connector tokens): generation, SHA-256 digests and constant-time
 * comparison. Pure (Web Crypto only), shared by the Worker, the connector tooling and `npm start`.
 *
 * Only digests are ever stored (decision D5). A lookup by digest finds the row; the digest is compared again in
 * constant time so a timing side channel cannot confirm a guessed prefix through any code path.
 */

/** API keys carry the seed's `gw_` prefix so they are recognisable in a secret scanner. */
export const API_KEY_PREFIX = "gw_";
/** Connector tokens look different from API keys so one is never mistaken for the other. */
export const CONNECTOR_TOKEN_PREFIX = "gwc_";

/** Longest bearer credential we hash; anything longer is refused before doing work on it. */
export const MAX_CREDENTIAL_LENGTH = 512;

/** A new random secret: prefix + 32 random bytes, base64url. */
export function generateSecret(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return prefix + base64url(bytes);
}

/** Lowercase hex SHA-256 of the UTF-8 text. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return toHex(new Uint8Array(digest));
}

/** Compares two strings in time that depends only on their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  const length = Math.max(a.length, b.length);
  let difference = a.length ^ b.length;
  for (let i = 0; i < length; i++) {
    difference |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  }
  return difference === 0;
}

/** The credential of an `Authorization: Bearer <credential>` header, or undefined when absent or malformed. */
export function bearerCredential(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(header);
  const credential = match?.[1];
  return credential && credential.length <= MAX_CREDENTIAL_LENGTH ? credential : undefined;
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}
