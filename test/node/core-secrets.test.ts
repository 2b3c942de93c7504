import { describe, expect, it } from "vitest";
import { keyRefusal } from "../../src/auth/principal.ts";
import {
  API_KEY_PREFIX,
  bearerCredential,
  CONNECTOR_TOKEN_PREFIX,
  constantTimeEqual,
  generateSecret,
  MAX_CREDENTIAL_LENGTH,
  sha256Hex,
} from "../../src/auth/secrets.ts";

describe("generateSecret", () => {
  it("starts with the given prefix followed by 43 base64url characters (32 bytes)", () => {
    const key = generateSecret(API_KEY_PREFIX);
    expect(key).toMatch(/^gw_[A-Za-z0-9_-]{43}$/);
    expect(generateSecret(CONNECTOR_TOKEN_PREFIX)).toMatch(/^gwc_[A-Za-z0-9_-]{43}$/);
  });

  it("never repeats itself", () => {
    const secrets = new Set(Array.from({ length: 1000 }, () => generateSecret("gw_")));
    expect(secrets.size).toBe(1000);
  });
});

describe("sha256Hex", () => {
  it("matches the FIPS 180-2 test vectors", async () => {
    expect(await sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(await sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });

  it("hashes the UTF-8 encoding of the text, not Latin-1 or UTF-16", async () => {
    // "é" is the two bytes c3 a9 in UTF-8; sha256 of the single byte e9 would be de2e331d...
    expect(await sha256Hex("é")).toBe("4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c");
  });

  it("returns 64 lowercase hex characters", async () => {
    expect(await sha256Hex("gw_your_key_here_0123456789")).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("constantTimeEqual", () => {
  it("is true for equal strings, including two empty ones", () => {
    expect(constantTimeEqual("abc123", "abc123")).toBe(true);
    expect(constantTimeEqual("", "")).toBe(true);
  });

  it("is false for strings that differ in one character anywhere", () => {
    expect(constantTimeEqual("abc123", "abc124")).toBe(false);
    expect(constantTimeEqual("abc123", "Xbc123")).toBe(false);
  });

  it("is false for strings of different lengths, even when one is a prefix of the other", () => {
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(constantTimeEqual("abcd", "abc")).toBe(false);
    expect(constantTimeEqual("", "a")).toBe(false);
    expect(constantTimeEqual("a", "")).toBe(false);
  });

  it("is false when a trailing NUL pads the shorter string", () => {
    expect(constantTimeEqual("abc", "abc\u0000")).toBe(false);
  });
});

describe("bearerCredential", () => {
  it("extracts the credential of a Bearer header", () => {
    expect(bearerCredential("Bearer gw_abc")).toBe("gw_abc");
  });

  it("accepts the scheme in any case", () => {
    expect(bearerCredential("bearer gw_abc")).toBe("gw_abc");
    expect(bearerCredential("BEARER gw_abc")).toBe("gw_abc");
    expect(bearerCredential("bEaReR gw_abc")).toBe("gw_abc");
  });

  it("tolerates extra blanks between scheme and credential and after it", () => {
    expect(bearerCredential("Bearer   gw_abc")).toBe("gw_abc");
    expect(bearerCredential("Bearer\tgw_abc \t")).toBe("gw_abc");
  });

  it("returns undefined for a missing header", () => {
    expect(bearerCredential(undefined)).toBeUndefined();
    expect(bearerCredential(null)).toBeUndefined();
    expect(bearerCredential("")).toBeUndefined();
  });

  it("returns undefined for other schemes or no credential", () => {
    expect(bearerCredential("Basic dXNlcjpwYXNz")).toBeUndefined();
    expect(bearerCredential("gw_abc")).toBeUndefined();
    expect(bearerCredential("Bearer")).toBeUndefined();
    expect(bearerCredential("Bearer ")).toBeUndefined();
    expect(bearerCredential("Bearergw_abc")).toBeUndefined();
    expect(bearerCredential(" Bearer gw_abc")).toBeUndefined();
  });

  it("refuses a credential with a space inside", () => {
    expect(bearerCredential("Bearer gw_abc def")).toBeUndefined();
  });

  it("refuses control characters and non-ASCII in the credential", () => {
    expect(bearerCredential("Bearer gw_abc\u0000")).toBeUndefined();
    expect(bearerCredential("Bearer gw_a\nbc")).toBeUndefined();
    expect(bearerCredential("Bearer gw_abc\r\nX-Injected: 1")).toBeUndefined();
    expect(bearerCredential("Bearer gw_\u007f")).toBeUndefined();
    expect(bearerCredential("Bearer gw_é")).toBeUndefined();
  });

  it("accepts a credential of exactly MAX_CREDENTIAL_LENGTH and refuses one longer", () => {
    expect(MAX_CREDENTIAL_LENGTH).toBe(512);
    const longest = "a".repeat(MAX_CREDENTIAL_LENGTH);
    expect(bearerCredential(`Bearer ${longest}`)).toBe(longest);
    expect(bearerCredential(`Bearer ${longest}a`)).toBeUndefined();
  });
});

describe("keyRefusal", () => {
  const now = 1_750_000_000_000;

  it.each([
    { enabled: true, expiresAt: null, expected: undefined },
    { enabled: true, expiresAt: now + 1, expected: undefined },
    { enabled: true, expiresAt: now, expected: "expired" },
    { enabled: true, expiresAt: now - 1, expected: "expired" },
    { enabled: false, expiresAt: null, expected: "disabled" },
    { enabled: false, expiresAt: now + 1, expected: "disabled" },
    { enabled: false, expiresAt: now, expected: "disabled" },
    { enabled: false, expiresAt: now - 1, expected: "disabled" },
  ])("enabled=$enabled expiresAt=$expiresAt → $expected", ({ enabled, expiresAt, expected }) => {
    expect(keyRefusal({ enabled, expiresAt }, now)).toBe(expected);
  });
});
