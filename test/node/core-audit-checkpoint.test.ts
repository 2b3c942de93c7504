import { createPublicKey, verify as nodeVerify } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type AuditCheckpoint,
  auditCheckpointSchema,
  CHECKPOINT_DOMAIN,
  checkpointMessage,
  decodeBase64Url,
  decodePublicKey,
  encodeBase64Url,
  generateCheckpointKeys,
  publicKeyFromPrivate,
  publicKeyId,
  signCheckpoint,
  verifyCheckpoint,
} from "../../src/audit/checkpoint.ts";
import { OTHER_PUBLIC_KEY, PRIVATE_KEY, PUBLIC_KEY } from "./core-audit-fixtures.ts";

const BODY = { tenant: "acme", seq: 1, hash: "cf66865994b0c5942a628b0afb3ceb8c33b08a93f347e4e13fd3aa8751594940", time: 1767225601000 };
/** The golden checkpoint of docs/audit-chain.md (checked with Python's `cryptography` when it was written). */
const GOLDEN_SIGNATURE = "UsPCweDEExYQggVW6VyUMkpSHGJcnXcS300CwVm9IfgnOQcS8-bYP7L73T0LUWXtLwLUwlw2GY2aPWfP_BYlAw";

/** node:crypto's Ed25519, fed the raw public key through a JWK: an implementation independent of @noble/curves. */
function nodeVerifies(checkpoint: AuditCheckpoint, publicKey: string): boolean {
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: publicKey }, format: "jwk" });
  return nodeVerify(null, checkpointMessage(checkpoint), key, Buffer.from(checkpoint.signature, "base64url"));
}

describe("checkpoint signatures", () => {
  it("signs the domain prefix + canonical JSON of {hash, seq, tenant, time}: the golden vector", () => {
    expect(new TextDecoder().decode(checkpointMessage(BODY))).toBe(
      'mcp-gateway audit checkpoint v1\n{"hash":"cf66865994b0c5942a628b0afb3ceb8c33b08a93f347e4e13fd3aa8751594940","seq":1,"tenant":"acme","time":1767225601000}',
    );
    const checkpoint = signCheckpoint(BODY, PRIVATE_KEY);
    expect(checkpoint).toEqual({ ...BODY, keyId: "65b60673d6ed884b", signature: GOLDEN_SIGNATURE });
    expect(PUBLIC_KEY).toBe("ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ");
    expect(verifyCheckpoint(checkpoint, PUBLIC_KEY)).toBe(true);
    expect(nodeVerifies(checkpoint, PUBLIC_KEY)).toBe(true);
    expect(auditCheckpointSchema.parse(checkpoint)).toEqual(checkpoint);
  });

  it("verifies fresh keys both ways with node:crypto", () => {
    const keys = generateCheckpointKeys();
    expect(keys.privateKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(keys.publicKey).toBe(publicKeyFromPrivate(keys.privateKey));
    expect(keys.keyId).toBe(publicKeyId(keys.publicKey));
    const checkpoint = signCheckpoint({ ...BODY, seq: 99 }, keys.privateKey);
    expect(verifyCheckpoint(checkpoint, keys.publicKey)).toBe(true);
    expect(nodeVerifies(checkpoint, keys.publicKey)).toBe(true);
    expect(generateCheckpointKeys().privateKey).not.toBe(keys.privateKey);
  });

  it("fails under any other key", () => {
    const checkpoint = signCheckpoint(BODY, PRIVATE_KEY);
    expect(verifyCheckpoint(checkpoint, OTHER_PUBLIC_KEY)).toBe(false);
    expect(verifyCheckpoint(checkpoint, generateCheckpointKeys().publicKey)).toBe(false);
  });

  it("fails when any signed field changes, and ignores the unsigned key hint", () => {
    const checkpoint = signCheckpoint(BODY, PRIVATE_KEY);
    const edits: Partial<AuditCheckpoint>[] = [
      { tenant: "acme2" },
      { seq: 2 },
      { hash: `${BODY.hash.slice(0, -1)}1` },
      { time: BODY.time + 1 },
    ];
    for (const edit of edits) {
      const edited = { ...checkpoint, ...edit };
      expect(verifyCheckpoint(edited, PUBLIC_KEY), JSON.stringify(edit)).toBe(false);
      expect(nodeVerifies(edited, PUBLIC_KEY), JSON.stringify(edit)).toBe(false);
    }
    expect(verifyCheckpoint({ ...checkpoint, keyId: "0000000000000000" }, PUBLIC_KEY)).toBe(true);
  });

  it("fails for forged, truncated or non-canonical signatures without throwing", () => {
    const checkpoint = signCheckpoint(BODY, PRIVATE_KEY);
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    for (const signature of [flip(GOLDEN_SIGNATURE, 0), flip(GOLDEN_SIGNATURE, 40), GOLDEN_SIGNATURE.slice(0, 85), "", "!".repeat(86), "A".repeat(86), `${GOLDEN_SIGNATURE.slice(0, 85)}R`]) {
      expect(verifyCheckpoint({ ...checkpoint, signature }, PUBLIC_KEY), signature).toBe(false);
    }
  });

  it("cannot be replayed as a signature over an entry hash or another message", () => {
    const checkpoint = signCheckpoint(BODY, PRIVATE_KEY);
    const bare = new TextEncoder().encode(JSON.stringify({ hash: BODY.hash, seq: 1, tenant: "acme", time: BODY.time }));
    expect(new TextDecoder().decode(checkpointMessage(BODY)).startsWith(CHECKPOINT_DOMAIN)).toBe(true);
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: PUBLIC_KEY }, format: "jwk" });
    expect(nodeVerify(null, bare, key, Buffer.from(checkpoint.signature, "base64url"))).toBe(false);
  });

  it("refuses malformed bodies and keys", () => {
    expect(() => signCheckpoint({ ...BODY, seq: -1 }, PRIVATE_KEY)).toThrow(/seq/);
    expect(() => signCheckpoint({ ...BODY, hash: "abc" }, PRIVATE_KEY)).toThrow(/hash/);
    expect(() => signCheckpoint({ ...BODY, seq: 0 }, PRIVATE_KEY)).toThrow(/genesis/);
    expect(signCheckpoint({ ...BODY, seq: 0, hash: "0".repeat(64) }, PRIVATE_KEY).seq).toBe(0);
    expect(() => signCheckpoint(BODY, "short")).toThrow(/private key/);
    expect(() => verifyCheckpoint(signCheckpoint(BODY, PRIVATE_KEY), "not-a-key")).toThrow(/public key/);
    expect(() => decodePublicKey(encodeBase64Url(new Uint8Array(31)))).toThrow(/32-byte/);
  });
});

describe("base64url", () => {
  it("round-trips every length and refuses padding, other alphabets and non-canonical forms", () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
      const text = encodeBase64Url(bytes);
      expect(text).toBe(Buffer.from(bytes).toString("base64url"));
      expect(decodeBase64Url(text)).toEqual(bytes);
    }
    expect(decodeBase64Url("AQ==")).toBeUndefined();
    expect(decodeBase64Url("a+/b")).toBeUndefined();
    expect(decodeBase64Url("AR")).toBeUndefined(); // canonical is "AQ"
    expect(decodeBase64Url("A")).toBeUndefined();
  });
});
