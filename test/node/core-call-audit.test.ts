// What one audited call stores (src/mcp/call-audit.ts): the audit plan applies to the stored name as well as to the
// payloads, so a resource URI carrying a credential never reaches the chain in clear; and it is bounded, so no agent
// can make an entry too large for D1 or Durable Object storage.
import { describe, expect, it } from "vitest";
import { canonicalJson, sha256Hex } from "../../src/audit/chain.ts";
import { toAuditJson } from "../../src/audit/entry.ts";
import { bounded, CallAudit, MAX_AUDIT_NAME_CHARS, MAX_AUDIT_PAYLOAD_CHARS, MAX_AUDIT_SESSION_ID_CHARS } from "../../src/mcp/call-audit.ts";
import { compileRedaction, redactJson } from "../../src/redact/engine.ts";
import { clip, prefix } from "../../src/text.ts";

const ORIGIN = { tenant: "acme", consumer: "agent-1", keyId: "key-1", clientIp: null, requestId: "req-1", sessionId: null };
const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";
/** Whether `text` has no lone surrogate (String.prototype.isWellFormed, past this project's TypeScript lib). */
const wellFormed = (text: string) => !/\p{Surrogate}/u.test(text);

describe("CallAudit", () => {
  it("redacts a resource URI with the audit plan (the secrets floor every tenant has)", () => {
    const audit = new CallAudit("resources/read", ORIGIN, 1_000);
    audit.server = "files";
    audit.tool = `s3://bucket/report.csv?X-Amz-Credential=${AWS_KEY}`;
    audit.target = { server: "files", name: audit.tool };
    const fields = audit.fields({ ok: true, result: { contents: [] } }, compileRedaction(undefined), () => undefined, 1_005);
    expect(fields.tool).not.toContain(AWS_KEY);
    expect(fields.tool).toContain("s3://bucket/report.csv");
  });

  it("keeps a tool's name as it is when nothing in it is sensitive", () => {
    const audit = new CallAudit("tools/call", ORIGIN, 1_000);
    audit.server = "crm";
    audit.tool = "get_customer";
    const fields = audit.fields({ ok: true, result: { content: [] } }, compileRedaction(undefined), () => undefined, 1_001);
    expect(fields.tool).toBe("get_customer");
  });
});

describe("CallAudit never fails to make an entry", () => {
  it("a lone surrogate in the payloads (an upstream's, or a cut a rule made) is stored replaced, not thrown", () => {
    const audit = new CallAudit("tools/call", ORIGIN, 1_000);
    audit.server = "crm";
    audit.tool = "echo";
    audit.arguments = { text: "half \ud83d" };
    const fields = audit.fields({ ok: true, result: { content: [{ type: "text", text: "\ude00 back" }] } }, compileRedaction(undefined), () => undefined, 1_001);
    expect(fields.arguments).toEqual({ text: "half \ufffd" });
    expect(JSON.stringify(fields.result)).toContain("\ufffd back");
    expect(fields.resultDigest).toMatch(/^[0-9a-f]{64}$/);
    // What a redaction hands on is normalised again before it is hashed (canonical JSON refuses lone surrogates).
    const normalised = bounded({ t: "\ud83d" });
    expect(normalised.stored).toEqual({ t: "\ufffd" });
    expect(normalised.digest()).toBe(sha256Hex(canonicalJson({ t: "\ufffd" })));
  });
});

describe("CallAudit bounds: whatever the agent sends, an entry stays small", () => {
  const redaction = compileRedaction(undefined);
  const noHash = () => undefined;

  it("clips a long name (after redaction) and a long session id", () => {
    const audit = new CallAudit("tools/call", { ...ORIGIN, sessionId: "s".repeat(100_000) }, 1_000);
    audit.tool = `crm__${"e".repeat(3 * 1024 * 1024)}`;
    const fields = audit.fields({ ok: false, error: new Error("x") }, redaction, noHash, 1_001);
    expect(fields.tool).toHaveLength(MAX_AUDIT_NAME_CHARS);
    expect(fields.tool?.startsWith("crm__eee")).toBe(true);
    expect(fields.tool?.endsWith("…")).toBe(true);
    expect(fields.sessionId).toHaveLength(MAX_AUDIT_SESSION_ID_CHARS);
  });

  it("keeps names and session ids within the bounds as they are", () => {
    const audit = new CallAudit("tools/call", { ...ORIGIN, sessionId: "session-1" }, 1_000);
    audit.tool = "t".repeat(MAX_AUDIT_NAME_CHARS);
    const fields = audit.fields({ ok: true, result: {} }, redaction, noHash, 1_001);
    expect(fields.tool).toBe("t".repeat(MAX_AUDIT_NAME_CHARS));
    expect(fields.sessionId).toBe("session-1");
  });

  it("stores arguments longer than the bound as a marker with the digest of the whole redacted arguments", () => {
    const audit = new CallAudit("tools/call", ORIGIN, 1_000);
    audit.tool = "crm__echo";
    // The secret sits past the preview: the digest is of the redacted whole, so it must not be of the raw text.
    const args = { text: "x".repeat(1024 * 1024), key: AWS_KEY };
    audit.arguments = args;
    const fields = audit.fields({ ok: true, result: {} }, redaction, noHash, 1_001);
    const marker = fields.arguments as Record<string, unknown>;
    expect(Object.keys(marker).sort()).toEqual(["chars", "preview", "sha256", "truncated"]);
    expect(marker.truncated).toBe(true);
    expect(marker.preview).toHaveLength(MAX_AUDIT_PAYLOAD_CHARS);
    expect(String(marker.preview).startsWith('{"key":')).toBe(true);
    expect(JSON.stringify(marker)).not.toContain(AWS_KEY);
    // The digest and length are of the redacted whole's canonical JSON.
    const redacted = redactJson(redaction.plan("audit", { server: "", name: "crm__echo" })!, toAuditJson(args), noHash).value;
    expect(JSON.stringify(redacted)).not.toContain(AWS_KEY);
    expect(marker.chars).toBe(canonicalJson(redacted).length);
    expect(marker.sha256).toBe(sha256Hex(canonicalJson(redacted)));
    expect(marker.sha256).not.toBe(sha256Hex(canonicalJson(args)));
  });

  it("keeps arguments up to the bound whole, and a result past it as the same marker next to its digest", () => {
    const audit = new CallAudit("tools/call", ORIGIN, 1_000);
    audit.tool = "crm__echo";
    const fits = { t: "a".repeat(MAX_AUDIT_PAYLOAD_CHARS - '{"t":""}'.length) };
    expect(canonicalJson(fits)).toHaveLength(MAX_AUDIT_PAYLOAD_CHARS);
    audit.arguments = fits;
    const result = { content: [{ type: "text", text: "r".repeat(MAX_AUDIT_PAYLOAD_CHARS) }] };
    const fields = audit.fields({ ok: true, result }, redaction, noHash, 1_001);
    expect(fields.arguments).toEqual(fits);
    expect(fields.resultDigest).toBe(sha256Hex(canonicalJson(result)));
    expect(fields.result).toEqual({ truncated: true, chars: canonicalJson(result).length, sha256: fields.resultDigest, preview: canonicalJson(result).slice(0, MAX_AUDIT_PAYLOAD_CHARS) });
  });

  it("never cuts a preview or a name between the halves of a surrogate pair", () => {
    const audit = new CallAudit("tools/call", ORIGIN, 1_000);
    // '{"tt":"' is 7 units and 😀 is 2, so the cut at 16,384 units falls just after a high surrogate; likewise the
    // name's at 1,023 (then the ellipsis).
    audit.arguments = { tt: "😀".repeat(MAX_AUDIT_PAYLOAD_CHARS) };
    audit.tool = `xy${"😀".repeat(MAX_AUDIT_NAME_CHARS)}`;
    const fields = audit.fields({ ok: true, result: {} }, redaction, noHash, 1_001);
    const preview = (fields.arguments as { preview: string }).preview;
    expect(preview).toHaveLength(MAX_AUDIT_PAYLOAD_CHARS - 1);
    expect(wellFormed(preview)).toBe(true);
    expect(wellFormed(fields.tool ?? "")).toBe(true);
    expect(fields.tool).toHaveLength(MAX_AUDIT_NAME_CHARS - 1);
  });

  it("bounded: the value itself when short, the marker when long; the digest of the whole either way", () => {
    const small = bounded({ a: 1 });
    expect(small.stored).toEqual({ a: 1 });
    expect(small.digest()).toBe(sha256Hex('{"a":1}'));
    const long = "z".repeat(MAX_AUDIT_PAYLOAD_CHARS);
    const cut = bounded(long);
    expect(cut.stored).toEqual({ truncated: true, chars: long.length + 2, sha256: sha256Hex(`"${long}"`), preview: `"${long}`.slice(0, MAX_AUDIT_PAYLOAD_CHARS) });
    expect(cut.digest()).toBe(sha256Hex(`"${long}"`));
  });
});

describe("clip and prefix (src/text.ts)", () => {
  it("cut to the bound with an ellipsis, never leaving half a surrogate pair", () => {
    expect(clip("abcdef", 4)).toBe("abc…");
    expect(clip("abc", 3)).toBe("abc");
    expect(clip("a😀b", 3)).toBe("a…");
    expect(prefix("a😀b", 2)).toBe("a");
    expect(prefix("a😀b", 3)).toBe("a😀");
    expect(prefix("abc", 10)).toBe("abc");
  });
});
