/**
 * @module Signed checkpoints (decision D4, docs/audit-chain.md): an Ed25519 signature over a tenant's head at a
 * moment, `(tenant, seq, hash, time)`. Whoever holds the public key can then tell that no entry up to `seq` was
 * removed or rewritten, even with every hash recomputed. @noble/curves: synchronous, no Node built-ins.
 *
 * The signed message is the UTF-8 bytes of {@link CHECKPOINT_DOMAIN} followed by the RFC 8785 canonical JSON of
 * `{hash, seq, tenant, time}`. Keys are base64url (no padding) of the raw 32-byte Ed25519 secret seed and public
 * key (RFC 8032); signatures are base64url of the 64-byte signature; a key's id is the first 16 hex characters of the
 * SHA-256 of the raw public key.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { z } from "zod";
import { canonicalJson } from "./chain.ts";
import { GENESIS_HASH, HEX64_PATTERN } from "./entry.ts";

/** Domain separation: a checkpoint signature can never be mistaken for a signature over anything else. */
export const CHECKPOINT_DOMAIN = "mcp-gateway audit checkpoint v1\n";

/** What is signed. */
export interface CheckpointBody {
  tenant: string;
  /** The seq of the entry whose hash this is; 0 (with the genesis hash) attests an empty chain. */
  seq: number;
  hash: string;
  /** Epoch milliseconds when the checkpoint was signed. */
  time: number;
}

export interface AuditCheckpoint extends CheckpointBody {
  /** {@link publicKeyId} of the signing key: a hint for picking the key, not itself signed. */
  keyId: string;
  /** base64url of the 64-byte Ed25519 signature over {@link checkpointMessage}. */
  signature: string;
}

export interface CheckpointKeys {
  /** base64url of the 32-byte secret seed: a Worker secret, never stored or logged. */
  privateKey: string;
  /** base64url of the 32-byte public key: given to auditors. */
  publicKey: string;
  keyId: string;
}

const safeInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const hex64 = z.string().regex(HEX64_PATTERN, "must be 64 lowercase hex characters (SHA-256)");
export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export const checkpointBodySchema = z.strictObject({ tenant: z.string().min(1), seq: safeInt, hash: hex64, time: safeInt });

export const auditCheckpointSchema = z.strictObject({
  ...checkpointBodySchema.shape,
  keyId: z.string().regex(KEY_ID_PATTERN, "must be 16 lowercase hex characters"),
  signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/, "must be base64url of 64 bytes"),
});

/** base64url without padding. */
export function encodeBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i] as number);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url without padding, strictly: only the canonical encoding of some bytes is accepted. */
export function decodeBase64Url(text: string): Uint8Array | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  let binary: string;
  try {
    binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    return undefined;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return encodeBase64Url(bytes) === text ? bytes : undefined;
}

function keyBytes(key: string | Uint8Array, what: string): Uint8Array {
  const bytes = typeof key === "string" ? decodeBase64Url(key.trim()) : key;
  if (!bytes || bytes.length !== 32) throw new TypeError(`the ${what} must be base64url of a raw 32-byte Ed25519 key`);
  return bytes;
}

/** Decodes and checks a public key once (for verifying many checkpoints). Throws a TypeError when malformed. */
export function decodePublicKey(publicKey: string | Uint8Array): Uint8Array {
  const bytes = keyBytes(publicKey, "public key");
  if (!ed25519.utils.isValidPublicKey(bytes, false)) throw new TypeError("the public key is not a valid Ed25519 point");
  return bytes;
}

/** A key's id: the first 16 lowercase hex characters of SHA-256 of the raw 32-byte public key. */
export function publicKeyId(publicKey: string | Uint8Array): string {
  return bytesToHex(sha256(keyBytes(publicKey, "public key"))).slice(0, 16);
}

/** The public key (base64url) of a private key (base64url seed). */
export function publicKeyFromPrivate(privateKey: string | Uint8Array): string {
  return encodeBase64Url(ed25519.getPublicKey(keyBytes(privateKey, "private key")));
}

/** A fresh key pair from the platform's CSPRNG (crypto.getRandomValues). */
export function generateCheckpointKeys(): CheckpointKeys {
  const seed = ed25519.utils.randomSecretKey();
  const publicKey = ed25519.getPublicKey(seed);
  return { privateKey: encodeBase64Url(seed), publicKey: encodeBase64Url(publicKey), keyId: publicKeyId(publicKey) };
}

/** The exact bytes signed: UTF-8 of CHECKPOINT_DOMAIN + JCS({hash, seq, tenant, time}). */
export function checkpointMessage(body: CheckpointBody): Uint8Array {
  const { tenant, seq, hash, time } = body;
  return utf8ToBytes(CHECKPOINT_DOMAIN + canonicalJson({ tenant, seq, hash, time }));
}

/**
 * Signs a tenant's head. Throws a TypeError for a malformed body (seq and time integers ≥ 0, hash 64 lowercase hex,
 * seq 0 only with the genesis hash) or key.
 */
export function signCheckpoint(body: CheckpointBody, privateKey: string | Uint8Array): AuditCheckpoint {
  const parsed = checkpointBodySchema.safeParse({ tenant: body.tenant, seq: body.seq, hash: body.hash, time: body.time });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TypeError(`invalid checkpoint ${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
  }
  if (parsed.data.seq === 0 && parsed.data.hash !== GENESIS_HASH) throw new TypeError("invalid checkpoint: seq 0 is the genesis, whose hash is 64 zeros");
  const seed = keyBytes(privateKey, "private key");
  const signature = ed25519.sign(checkpointMessage(parsed.data), seed);
  return { ...parsed.data, keyId: publicKeyId(ed25519.getPublicKey(seed)), signature: encodeBase64Url(signature) };
}

/**
 * True when `checkpoint.signature` is a valid Ed25519 signature (RFC 8032, strict: no ZIP-215 leniency) by
 * `publicKey` over its body. False for any malformed signature; throws a TypeError only for a malformed public key.
 * `keyId` is not consulted: a wrong hint cannot make a good signature fail or a bad one pass.
 */
export function verifyCheckpoint(checkpoint: AuditCheckpoint, publicKey: string | Uint8Array): boolean {
  const key = typeof publicKey === "string" ? decodePublicKey(publicKey) : publicKey;
  const signature = typeof checkpoint.signature === "string" ? decodeBase64Url(checkpoint.signature) : undefined;
  if (!signature || signature.length !== 64) return false;
  let message: Uint8Array;
  try {
    message = checkpointMessage(checkpoint);
  } catch {
    return false;
  }
  try {
    return ed25519.verify(signature, message, key, { zip215: false });
  } catch {
    return false;
  }
}
