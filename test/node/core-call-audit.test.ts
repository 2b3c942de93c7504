// What one audited call stores (src/mcp/call-audit.ts): the audit plan applies to the stored name as well as to the
// payloads, so a resource URI carrying a credential never reaches the chain in clear.
import { describe, expect, it } from "vitest";
import { CallAudit } from "../../src/mcp/call-audit.ts";
import { compileRedaction } from "../../src/redact/engine.ts";

const ORIGIN = { tenant: "acme", consumer: "agent-1", keyId: "key-1", clientIp: null, requestId: "req-1", sessionId: null };
const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";

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
