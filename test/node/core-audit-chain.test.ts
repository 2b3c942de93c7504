import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import { describe, expect, it } from "vitest";
import {
  appendEntry,
  canonicalJson,
  computeEntryHash,
  digestJson,
  entryCanonicalJson,
  entryHashInput,
  GENESIS_HEAD,
  HASHED_FIELDS,
  headOf,
  sha256Hex,
} from "../../src/audit/chain.ts";
import { AUDIT_ENTRY_FIELDS, type AuditEntry, auditEntrySchema, DEPTH_MARKER, GENESIS_HASH, toAuditJson } from "../../src/audit/entry.ts";
import { buildChain, fields, TENANT } from "./core-audit-fixtures.ts";

/** The hash definition, re-implemented with node:crypto and the canonicalize package on the whole object. */
function referenceHash(entry: AuditEntry): string {
  const { hash: _hash, prevHash, ...rest } = entry;
  return createHash("sha256")
    .update(Buffer.from(prevHash + (canonicalize(rest) as string), "utf8"))
    .digest("hex");
}

/** The golden vector of docs/audit-chain.md (also re-checked with Python's hashlib when it was written). */
const GOLDEN_FIELDS = {
  timestamp: 1767225600000,
  tenant: "acme",
  consumer: "agent-1",
  keyId: "key_01",
  clientIp: "203.0.113.7",
  requestId: "req-1",
  sessionId: null,
  server: "crm",
  method: "tools/call",
  tool: "get_customer",
  arguments: { id: "c-42", note: "café €" },
  result: { content: [{ type: "text", text: "ok" }] },
  resultDigest: null,
  status: "ok",
  errorCode: null,
  errorMessage: null,
  latencyMs: 87,
  ruleId: "crm.rules[0]",
  // {"name":"crm__get_customer","arguments":{"id":"c-42","note":"café €"}} and the result above, as UTF-8 JSON.
  requestBytes: 73,
  responseBytes: 41,
} as const;
const GOLDEN_HASH = "cf66865994b0c5942a628b0afb3ceb8c33b08a93f347e4e13fd3aa8751594940";
const GOLDEN_INPUT =
  '0000000000000000000000000000000000000000000000000000000000000000{"arguments":{"id":"c-42","note":"café €"},"clientIp":"203.0.113.7","consumer":"agent-1","errorCode":null,"errorMessage":null,"keyId":"key_01","latencyMs":87,"method":"tools/call","requestBytes":73,"requestId":"req-1","responseBytes":41,"result":{"content":[{"text":"ok","type":"text"}]},"resultDigest":null,"ruleId":"crm.rules[0]","seq":1,"server":"crm","sessionId":null,"status":"ok","tenant":"acme","timestamp":1767225600000,"tool":"get_customer"}';

describe("canonical JSON (RFC 8785)", () => {
  it("matches the RFC 8785 §3.2.2 example: numbers, string escapes, literals", () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(input)).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  });

  it("sorts keys by UTF-16 code units (RFC 8785 §3.2.3), not by code points or locale", () => {
    const input = JSON.parse('{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}');
    // Read the key order off the text: JSON.parse would put the integer-like "1" first again.
    const keys = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) => JSON.parse(`"${m[1]}"`));
    expect(keys).toEqual(["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"]);
  });

  it("serialises numbers as ECMAScript does: 1e21, 1e-7, -0, integers without fraction", () => {
    expect(canonicalJson([1e21, 1e20, 1e-7, 0.1 + 0.2, -0, 1.0, 100, 5e-324, 2 ** 53])).toBe(
      "[1e+21,100000000000000000000,1e-7,0.30000000000000004,0,1,100,5e-324,9007199254740992]",
    );
  });

  it("does not depend on key order, at any depth", () => {
    const a = { b: 1, a: { y: [1, { q: 1, p: 2 }], x: "é" }, "😀": null };
    const b = { "😀": null, a: { x: "é", y: [1, { p: 2, q: 1 }] }, b: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    const one = appendEntry(null, fields(1, { arguments: a }));
    const two = appendEntry(null, fields(1, { arguments: b }));
    expect(one.hash).toBe(two.hash);
    expect(appendEntry(null, fields(1, { arguments: { ...a, b: 2 } })).hash).not.toBe(one.hash);
  });

  it("refuses what JCS cannot represent", () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(TypeError);
    expect(() => canonicalJson({ a: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    expect(() => canonicalJson("\ud800")).toThrow(TypeError);
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
  });
});

describe("the entry hash", () => {
  it("is SHA-256 over UTF-8(prevHash ‖ JCS(every field but prevHash and hash)): the golden vector", () => {
    const entry = appendEntry(null, GOLDEN_FIELDS);
    expect(entryHashInput(entry)).toBe(GOLDEN_INPUT);
    expect(entry.hash).toBe(GOLDEN_HASH);
    expect(referenceHash(entry)).toBe(GOLDEN_HASH);
  });

  it("covers exactly the 21 fields other than prevHash and hash, sorted", () => {
    expect(HASHED_FIELDS).toHaveLength(21);
    expect(new Set(HASHED_FIELDS)).toEqual(new Set(AUDIT_ENTRY_FIELDS.filter((f) => f !== "prevHash" && f !== "hash")));
    expect([...HASHED_FIELDS]).toEqual([...HASHED_FIELDS].sort());
  });

  it("lays out the top level exactly as canonicalize does for the whole object, on a varied corpus", () => {
    const weird = ["", "\u2028\u2029", '"quote" \\ back', "\u0000\u001f\u007f", "😀🏳️‍🌈", "\ufb33\u20ac", "a".repeat(5000)];
    const entries = buildChain(60, null, (i) =>
      fields(i, {
        tool: weird[i % weird.length] ?? null,
        errorMessage: weird[(i + 3) % weird.length] ?? null,
        arguments: { [weird[i % weird.length] as string]: [i, -i, i / 3, 1e21 * i, true, null, { z: weird[(i + 1) % weird.length] }] },
      }),
    );
    for (const entry of entries) {
      const { hash: _h, prevHash: _p, ...rest } = entry;
      expect(entryCanonicalJson(entry)).toBe(canonicalize(rest));
      expect(entry.hash).toBe(referenceHash(entry));
    }
  });

  it("ignores fields that are not entry fields (an export line's type)", () => {
    const [entry] = buildChain(1) as [AuditEntry];
    expect(computeEntryHash({ ...entry, type: "entry" } as AuditEntry)).toBe(entry.hash);
  });

  it("changes with every hashed field and with prevHash", () => {
    const [entry] = buildChain(1) as [AuditEntry];
    const seen = new Set([entry.hash]);
    for (const field of [...HASHED_FIELDS, "prevHash" as const]) {
      const edited = { ...entry } as Record<string, unknown>;
      const value = edited[field];
      edited[field] = typeof value === "number" ? value + 1 : typeof value === "string" ? `${value}x` : value === null ? "x" : { edited: true };
      const hash = computeEntryHash(edited as unknown as AuditEntry);
      expect(seen.has(hash), field).toBe(false);
      seen.add(hash);
    }
  });
});

describe("appendEntry", () => {
  it("starts at seq 1 on the genesis hash and links each entry to the previous one", () => {
    const [first, second, third] = buildChain(3) as [AuditEntry, AuditEntry, AuditEntry];
    expect(first.seq).toBe(1);
    expect(first.prevHash).toBe(GENESIS_HASH);
    expect(GENESIS_HASH).toBe("0".repeat(64));
    expect(second.seq).toBe(2);
    expect(second.prevHash).toBe(first.hash);
    expect(third.prevHash).toBe(second.hash);
    expect(appendEntry(GENESIS_HEAD, fields(1)).hash).toBe(first.hash);
    expect(appendEntry(headOf(second), fields(3)).hash).toBe(third.hash);
  });

  it("is pure: same head and fields, same entry; the input is not modified", () => {
    const input = fields(7);
    const snapshot = structuredClone(input);
    expect(appendEntry({ seq: 41, hash: "f".repeat(64) }, input)).toEqual(appendEntry({ seq: 41, hash: "f".repeat(64) }, input));
    expect(input).toEqual(snapshot);
  });

  it("returns every field, in the documented order, and the entry parses with the schema", () => {
    const entry = appendEntry(null, fields(1));
    expect(Object.keys(entry)).toEqual([...AUDIT_ENTRY_FIELDS]);
    expect(auditEntrySchema.parse(JSON.parse(JSON.stringify(entry)))).toEqual(entry);
  });

  it("normalises payloads into plain JSON that survives a JSON round trip with the same hash", () => {
    const proto = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    const entry = appendEntry(
      null,
      fields(1, {
        arguments: { when: new Date(0), missing: undefined, fn: () => 1, list: [undefined, Number.NaN, -0, 10n], proto, lone: "cut \ud83d" } as never,
        errorMessage: "truncated \udc00 here",
      }),
    );
    expect(entry.arguments).toEqual({ when: "1970-01-01T00:00:00.000Z", list: [null, null, 0, "10"], proto, lone: "cut \ufffd" });
    expect(Object.keys((entry.arguments as Record<string, Record<string, unknown>>).proto as object)).toEqual(["__proto__", "ok"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(entry.errorMessage).toBe("truncated \ufffd here");
    const reparsed = JSON.parse(JSON.stringify(entry)) as AuditEntry;
    expect(computeEntryHash(reparsed)).toBe(entry.hash);
  });

  it("caps nesting and survives cycles", () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < 10_000; i++) deep = [deep];
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const entry = appendEntry(null, fields(1, { arguments: deep as never, result: cyclic as never }));
    expect(JSON.stringify(entry.arguments)).toContain(DEPTH_MARKER);
    expect(JSON.stringify(entry.result)).toContain(DEPTH_MARKER);
    expect(computeEntryHash(JSON.parse(JSON.stringify(entry)))).toBe(entry.hash);
  });

  it("refuses malformed heads and fields with a TypeError naming the problem", () => {
    expect(() => appendEntry({ seq: 0, hash: "a".repeat(64) }, fields(1))).toThrow(/genesis/);
    expect(() => appendEntry({ seq: 1.5, hash: "a".repeat(64) }, fields(1))).toThrow(/head/);
    expect(() => appendEntry({ seq: 3, hash: "A".repeat(64) }, fields(1))).toThrow(/head/);
    expect(() => appendEntry(null, fields(1, { latencyMs: 1.5 }))).toThrow(/latencyMs/);
    expect(() => appendEntry(null, fields(1, { requestBytes: -1 }))).toThrow(/requestBytes/);
    expect(() => appendEntry(null, fields(1, { responseBytes: 2.5 }))).toThrow(/responseBytes/);
    expect(() => appendEntry(null, fields(1, { timestamp: -1 }))).toThrow(/timestamp/);
    expect(() => appendEntry(null, fields(1, { status: "fine" as never }))).toThrow(/status/);
    expect(() => appendEntry(null, fields(1, { resultDigest: "xyz" }))).toThrow(/resultDigest/);
    expect(() => appendEntry(null, fields(1, { tenant: "" }))).toThrow(/tenant/);
    const { ruleId: _r, ...missing } = fields(1);
    expect(() => appendEntry(null, missing as never)).toThrow(/ruleId/);
    expect(() => appendEntry(null, { ...fields(1), extra: 1 } as never)).toThrow(TypeError);
  });

  it("keeps the tenant given", () => {
    expect(appendEntry(null, fields(1)).tenant).toBe(TENANT);
  });
});

describe("digestJson", () => {
  it("is the SHA-256 of the canonical JSON, independent of key order", () => {
    const result = { content: [{ type: "text", text: "x".repeat(100_000) }], isError: false };
    const expected = createHash("sha256").update(canonicalize(result) as string).digest("hex");
    expect(digestJson(result)).toBe(expected);
    expect(digestJson({ isError: false, content: [{ text: "x".repeat(100_000), type: "text" }] })).toBe(expected);
    expect(digestJson({ ...result, isError: true })).not.toBe(expected);
  });

  it("normalises like toAuditJson, so it never throws on data", () => {
    expect(digestJson({ a: "\ud800" })).toBe(digestJson(toAuditJson({ a: "\ufffd" })));
  });
});

describe("sha256Hex", () => {
  it("equals node:crypto for short, long, huge and non-ASCII input", () => {
    const inputs = ["", "abc", "é😀\u2028", "x".repeat(16 * 1024), "€".repeat(6_000), "y".repeat(400_000), "z".repeat(2_000_000), "short again"];
    for (const input of inputs) expect(sha256Hex(input), `${input.length} chars`).toBe(createHash("sha256").update(input, "utf8").digest("hex"));
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
