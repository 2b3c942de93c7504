/**
 * The redaction engine as a pure function: rule selection (direction, server, tool; the audit copy's floor), field
 * paths, the four actions, MCP result shapes kept valid, binary content untouched or replaced, keyed hashing per
 * tenant, and hostile input (deep nesting, prototype keys).
 */
import { describe, expect, it } from "vitest";
import { compileRedaction, MAX_REDACTION_DEPTH, redactArguments, redactResult, redactText, type Hasher } from "../../src/redact/engine.ts";
import { tenantHasher } from "../../src/redact/hash.ts";
import { parseFieldPath, pathMatches } from "../../src/redact/paths.ts";
import { redactionSchema } from "../../src/redact/schema.ts";

const SSN = "123-45-6789";
const CARD = "4111 1111 1111 1111";
const noKey: Hasher = () => undefined;
const hasher = tenantHasher("test-secret", "acme");

function compiled(rules: unknown[]) {
  return compileRedaction(redactionSchema.parse({ rules }));
}

function plan(rules: unknown[], direction: "request" | "response" | "audit" = "response", server = "ehr", name = "get_patient") {
  const found = compiled(rules).plan(direction, { server, name });
  if (!found) throw new Error("expected a plan");
  return found;
}

describe("field paths", () => {
  it.each([
    ["patient.ssn", ["patient", "ssn"], true],
    ["patient.ssn", ["ssn"], false],
    ["patient.ssn", ["patient", "ssn", "x"], false],
    ["*.password", ["user", "password"], true],
    ["*.password", ["password"], false],
    ["**.password", ["password"], true],
    ["**.password", ["a", "b", 3, "password"], true],
    ["items[*].card", ["items", 2, "card"], true],
    ["items[*].card", ["items", "x", "card"], false],
    ["items[0].card", ["items", 1, "card"], false],
    ['a["odd key"]', ["a", "odd key"], true],
    ["**", ["anything", 1], true],
  ] as const)("%s against %j is %s", (path, location, expected) => {
    const parsed = parseFieldPath(path);
    if (!parsed.ok) throw new Error(parsed.error);
    expect(pathMatches(parsed.segments, location)).toBe(expected);
  });

  it.each(["", "a..b", "a[", "a[x]", "[-1]", "a b", "x".repeat(300)])("refuses %j", (path) => {
    expect(parseFieldPath(path).ok).toBe(false);
  });
});

describe("which rules apply", () => {
  const rules = [
    { id: "ehr-out", servers: ["ehr*"], directions: ["response"], detectors: ["ssn"] },
    { id: "cards-in", tools: ["pay_*"], directions: ["request"], detectors: ["card"] },
  ];

  it("by direction, server glob and tool glob; none applying is no plan at all", () => {
    const c = compiled(rules);
    expect(c.plan("response", { server: "ehr-eu", name: "get_patient" })?.ruleIds).toEqual(["ehr-out"]);
    expect(c.plan("request", { server: "ehr-eu", name: "get_patient" })).toBeUndefined();
    expect(c.plan("request", { server: "billing", name: "pay_invoice" })?.ruleIds).toEqual(["cards-in"]);
    expect(c.plan("response", { server: "crm", name: "get_patient" })).toBeUndefined();
  });

  it("the audit copy gets every response rule and the secrets floor, whatever the file says", () => {
    const audit = compiled(rules).plan("audit", { server: "ehr", name: "x" });
    expect(audit?.ruleIds).toEqual(["ehr-out", "gateway:audit-secrets"]);
    expect([...(audit?.detectors.keys() ?? [])].sort()).toEqual(["secret", "ssn"]);
    expect(compiled([]).plan("audit", { server: "any", name: "x" })?.detectors.get("secret")).toBe("mask");
  });

  it("merges rules, the action that reveals less winning", () => {
    const merged = plan([
      { detectors: ["card"], action: "partial" },
      { detectors: ["card"], action: "hash" },
      { detectors: ["email"], action: "hash" },
      { detectors: ["email"], action: "mask" },
    ]);
    expect(merged.detectors.get("card")).toBe("hash");
    expect(merged.detectors.get("email")).toBe("mask");
  });
});

describe("actions", () => {
  it("mask, partial, hash and drop on detector findings inside text", () => {
    const text = `ssn ${SSN} card ${CARD}.`;
    expect(redactText(plan([{ detectors: ["ssn", "card"] }]), text, hasher).value).toBe("ssn [REDACTED:ssn] card [REDACTED:card].");
    expect(redactText(plan([{ detectors: ["ssn"], action: "partial" }]), text, hasher).value).toBe(`ssn ***-**-6789 card ${CARD}.`);
    expect(redactText(plan([{ detectors: ["ssn"], action: "drop" }]), text, hasher).value).toBe(`ssn  card ${CARD}.`);
    const hashed = redactText(plan([{ detectors: ["ssn"], action: "hash" }]), text, hasher).value;
    expect(hashed).toMatch(/^ssn \[HASH:ssn:[0-9a-f]{16}\] card /);
  });

  it("hash correlates equal values within a tenant, not across tenants, and masks without a key (fail closed)", () => {
    const p = plan([{ detectors: ["ssn"], action: "hash" }]);
    const a1 = redactText(p, SSN, tenantHasher("k", "a")).value;
    expect(redactText(p, `x ${SSN}`, tenantHasher("k", "a")).value).toBe(`x ${a1}`);
    expect(redactText(p, SSN, tenantHasher("k", "b")).value).not.toBe(a1);
    expect(redactText(p, SSN, noKey).value).toBe("[REDACTED:ssn]");
  });

  it("field rules take the whole value: mask, partial (last four), hash, drop (keys and array items)", () => {
    const args = { patient: { ssn: SSN, name: "Jane" }, user: { password: "hunter2" }, items: [{ card: "4111111111111111" }, { card: 12345678 }], tags: ["a", "b"] };
    const p = plan([
      {
        fields: [
          { path: "patient.ssn", action: "mask" },
          { path: "*.password", action: "drop" },
          { path: "items[*].card", action: "partial" },
          { path: "tags[1]", action: "drop" },
        ],
      },
    ]);
    const out = redactArguments(p, args, hasher);
    expect(out.value).toEqual({ patient: { ssn: "[REDACTED:field]", name: "Jane" }, user: {}, items: [{ card: "************1111" }, { card: "****5678" }], tags: ["a"] });
    expect(out.redactions).toBe(5);
    expect(args.user.password).toBe("hunter2"); // the input is never mutated
  });

  it("partial keeps the last four code points, never half an emoji", () => {
    const out = redactArguments(plan([{ fields: [{ path: "card", action: "partial" }] }]), { card: "x😀abc" }, hasher);
    expect(out.value).toEqual({ card: "*😀abc" });
  });
});

describe("MCP result shapes", () => {
  const p = () => plan([{ detectors: ["ssn", "email"], fields: [{ path: "patient.ssn", action: "mask" }] }]);

  it("tools/call: text (JSON text field by field), structured content, images and embedded resources", () => {
    const image = { type: "image", data: "iVBORw0KGgo=", mimeType: "image/png" };
    const result = {
      content: [
        { type: "text", text: `mail jane@example.com, ssn ${SSN}` },
        { type: "text", text: JSON.stringify({ patient: { ssn: "not-a-number-shape", name: "Jane" } }) },
        image,
        { type: "resource", resource: { uri: "ehr://r/1", mimeType: "text/plain", text: `ssn ${SSN}` } },
        { type: "resource", resource: { uri: "ehr://r/2", mimeType: "application/pdf", blob: "JVBERi0x" } },
      ],
      structuredContent: { patient: { ssn: SSN, email: "jane@example.com" } },
      isError: false,
    };
    const out = redactResult(p(), "tools/call", result, hasher).value as typeof result;
    expect(out.content[0]).toEqual({ type: "text", text: "mail [REDACTED:email], ssn [REDACTED:ssn]" });
    expect(JSON.parse((out.content[1] as { text: string }).text)).toEqual({ patient: { ssn: "[REDACTED:field]", name: "Jane" } });
    expect(out.content[2]).toBe(image);
    expect(out.content[3]).toEqual({ type: "resource", resource: { uri: "ehr://r/1", mimeType: "text/plain", text: "ssn [REDACTED:ssn]" } });
    expect(out.content[4]).toEqual(result.content[4]);
    expect(out.structuredContent).toEqual({ patient: { ssn: "[REDACTED:field]", email: "[REDACTED:email]" } });
    expect(out.isError).toBe(false);
  });

  it("binary: drop replaces images, audio and blobs with text blocks that keep the result valid", () => {
    const dropping = plan([{ detectors: ["ssn"], binary: "drop" }]);
    const out = redactResult(
      dropping,
      "tools/call",
      { content: [{ type: "audio", data: "AAAA", mimeType: "audio/wav" }, { type: "resource", resource: { uri: "x://1", blob: "AAAA", mimeType: "application/pdf" } }] },
      hasher,
    ).value;
    expect(out.content).toEqual([
      { type: "text", text: "[REDACTED:audio]" },
      { type: "resource", resource: { uri: "x://1", mimeType: "text/plain", text: "[REDACTED:blob]" } },
    ]);
  });

  it("prompts/get messages, resources/read contents and completion values", () => {
    expect(redactResult(p(), "prompts/get", { description: `for ${SSN}`, messages: [{ role: "user", content: { type: "text", text: SSN } }] }, hasher).value).toEqual({
      description: "for [REDACTED:ssn]",
      messages: [{ role: "user", content: { type: "text", text: "[REDACTED:ssn]" } }],
    });
    expect(redactResult(p(), "resources/read", { contents: [{ uri: "ehr://1", text: SSN }] }, hasher).value).toEqual({ contents: [{ uri: "ehr://1", text: "[REDACTED:ssn]" }] });
    expect(redactResult(p(), "completion/complete", { completion: { values: ["jane@example.com", "ok"], hasMore: false } }, hasher).value).toEqual({
      completion: { values: ["[REDACTED:email]", "ok"], hasMore: false },
    });
  });
});

describe("hostile input", () => {
  it("replaces what lies deeper than the depth limit instead of walking it", () => {
    let deep: unknown = SSN;
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    const out = JSON.stringify(redactArguments(plan([{ detectors: ["ssn"] }]), deep, hasher).value);
    expect(out).toContain("[REDACTED:too-deep]");
    expect(out).not.toContain(SSN);
    expect(out.split('{"d":').length - 1).toBe(MAX_REDACTION_DEPTH);
  });

  it("keeps a __proto__ key a plain key and never touches the prototype", () => {
    const args = JSON.parse(`{"__proto__": {"polluted": "${SSN}"}, "a": 1}`);
    const out = redactArguments(plan([{ detectors: ["ssn"] }]), args, hasher).value as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, "__proto__")).toBe(true);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":"[REDACTED:ssn]"},"a":1}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("what the review found", () => {
  it("reads a value with its key as context, and scans keys", () => {
    const p = plan([{ detectors: ["ssn", "email"] }]);
    expect(redactArguments(p, { ssn: "123456789", other: "123456789" }, hasher).value).toEqual({ ssn: "[REDACTED:ssn]", other: "123456789" });
    expect(redactArguments(p, { byEmail: { "jane@example.com": 1 } }, hasher).value).toEqual({ byEmail: { "[REDACTED:email]": 1 } });
  });

  it("scans every part of a message but the keys that type and route it: _meta, follow-up input requests, titles", () => {
    const p = plan([{ detectors: ["ssn", "ip"] }]);
    const result = {
      content: [{ type: "resource_link", uri: "https://203.0.113.7/r", name: "record", description: `for ${SSN}` }],
      _meta: { progressToken: "123-45-6789", note: `re ${SSN}` },
      inputRequests: { ask: { method: "elicitation/create", params: { message: `confirm ${SSN}` } } },
    };
    const out = redactResult(p, "tools/call", result, hasher).value;
    expect(out).toEqual({
      content: [{ type: "resource_link", uri: "https://203.0.113.7/r", name: "record", description: "for [REDACTED:ssn]" }],
      _meta: { progressToken: "123-45-6789", note: "re [REDACTED:ssn]" },
      inputRequests: { ask: { method: "elicitation/create", params: { message: "confirm [REDACTED:ssn]" } } },
    });
  });

  it("anchors field paths in payloads only, so a rule for an argument called name or level never breaks the message", () => {
    const p = plan([{ fields: [{ path: "name", action: "drop" }, { path: "level", action: "mask" }] }]);
    const link = { content: [{ type: "resource_link", uri: "x://1", name: "record" }] };
    expect(redactResult(p, "tools/call", link, hasher).value).toEqual(link);
    expect(redactResult(p, "notifications/message", { level: "info", data: { name: "Jane", level: 3 } }, hasher).value).toEqual({
      level: "info",
      data: { level: "[REDACTED:field]" },
    });
  });

  it("keeps a JSON text block as it was, large numbers and layout included, when nothing in it is rewritten", () => {
    const text = '{\n  "id": 12345678901234567890,\n  "name": "Jane"\n}';
    const p = plan([{ fields: [{ path: "patient.ssn", action: "mask" }] }]);
    expect(redactResult(p, "tools/call", { content: [{ type: "text", text }] }, hasher).value).toEqual({ content: [{ type: "text", text }] });
  });

  it("takes the least revealing action when several field paths match one value", () => {
    const p = plan([{ fields: [{ path: "**.ssn", action: "partial" }, { path: "patient.ssn", action: "drop" }] }]);
    expect(redactArguments(p, { patient: { ssn: SSN, name: "Jane" } }, hasher).value).toEqual({ patient: { name: "Jane" } });
  });

  it("hashes one value to one tag whatever its formatting", () => {
    const p = plan([{ detectors: ["ssn", "email"], action: "hash" }]);
    const [a, b] = [redactText(p, "123-45-6789", hasher).value, redactText(p, "123 45 6789", hasher).value];
    expect(a).toBe(b);
    expect(redactText(p, "Jane@Example.com", hasher).value).toBe(redactText(p, "jane@example.com", hasher).value);
  });

  it("matches ** paths in time linear in the payload (state carried down, not re-run from the root)", () => {
    const wide = { rows: Array.from({ length: 2_000 }, (_, i) => ({ a: { b: { c: { d: { password: `p${i}`, keep: i } } } } })) };
    const p = plan([{ fields: Array.from({ length: 10 }, (_, i) => ({ path: `**.x${i}`, action: "mask" })).concat([{ path: "**.password", action: "drop" }]) }]);
    const out = redactArguments(p, wide, hasher);
    expect(out.redactions).toBe(2_000);
    expect(JSON.stringify(out.value)).not.toContain("password");
  });
});
