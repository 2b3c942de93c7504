// The mcp-gateway CLI's output: tables, sentences, --json, and one line per failure (pure).
import { describe, expect, it } from "vitest";
import { networkReason, streamLines } from "../../connector/cli/admin-client.ts";
import {
  appliedText,
  auditLogTable,
  auditStatsText,
  bytesText,
  exportSummaryText,
  progressBar,
  verifyText,
  connectorCreatedText,
  connectorsTable,
  failureLines,
  jsonOutput,
  keyCreatedText,
  keyRotatedText,
  keysTable,
  serversTable,
  table,
  time,
  validText,
  visible,
  whoamiText,
} from "../../connector/cli/output.ts";

const NOW = Date.parse("2026-06-01T00:00:00Z");

describe("tables", () => {
  it("are borderless columns two spaces apart, no trailing spaces", () => {
    expect(table(["ID", "NAME"], [["a", "first"], ["longer-id", "x"]])).toBe("ID         NAME\na          first\nlonger-id  x");
  });

  it("make control characters visible, so a name cannot rewrite the terminal", () => {
    expect(visible("ok\x1b[2Jgone\nnext\u009b")).toBe("ok\\x1b[2Jgone\\x0anext\\x9b");
    expect(table(["NAME"], [["evil\x1b[31m"]])).toBe("NAME\nevil\\x1b[31m");
  });

  it("keys: status from enabled and expiry; never a key column", () => {
    const out = keysTable(
      {
        keys: [
          { id: "k1", name: "Agent", consumerId: "agent-1", roles: ["reader", "writer"], enabled: true, expiresAt: null, createdAt: "2026-01-02T03:04:05.000Z", source: "config" },
          { id: "k2", name: "Old", consumerId: "agent-2", roles: [], enabled: true, expiresAt: "2026-05-01T00:00:00Z", createdAt: "2026-01-02T03:04:05Z", source: "api" },
          { id: "k3", name: "Gone", consumerId: "agent-3", roles: ["admin"], enabled: false, expiresAt: "2027-01-01T00:00:00Z", createdAt: null, source: "api" },
        ],
      },
      NOW,
    );
    const lines = out.split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+CONSUMER\s+ROLES\s+STATUS\s+EXPIRES\s+LAST USED\s+SOURCE\s+CREATED$/);
    expect(lines[1]).toMatch(/^k1\s+Agent\s+agent-1\s+reader,writer\s+active\s+never\s+never\s+config\s+2026-01-02 03:04 UTC$/);
    expect(lines[2]).toMatch(/^k2\s+Old\s+agent-2\s+-\s+expired\s+2026-05-01 00:00 UTC\s+never\s+api/);
    expect(lines[3]).toMatch(/^k3\s+Gone\s+agent-3\s+admin\s+disabled\s+2027-01-01 00:00 UTC\s+never\s+api\s+-$/);
    expect(keysTable({ keys: [] }, NOW)).toBe("no API keys");
  });

  it("keys: the gateway's status, a grace with the time the old key stops, revoked apart from disabled, last use", () => {
    const base = { consumerId: "c", roles: ["reader"], enabled: true, expiresAt: null, createdAt: "2026-01-02T03:04:05.000Z", source: "api", revokedAt: null, previousExpiresAt: null, lastUsedAt: null };
    const lines = keysTable(
      {
        keys: [
          { ...base, id: "g1", name: "Grace", status: "grace", previousExpiresAt: "2099-01-01T10:00:00.000Z", lastUsedAt: "2026-01-03T04:05:00.000Z" },
          { ...base, id: "r1", name: "Revoked", status: "revoked", enabled: false, revokedAt: "2026-01-03T00:00:00.000Z" },
          { ...base, id: "e1", name: "Expired", status: "expired", expiresAt: "2026-01-04T00:00:00.000Z" },
          // An older gateway without status: worked out from the fields.
          { ...base, id: "o1", name: "Old", status: undefined, enabled: false, revokedAt: "2026-01-03T00:00:00.000Z" },
          { ...base, id: "o2", name: "OldGrace", status: undefined, previousExpiresAt: "2099-01-01T10:00:00.000Z" },
        ],
      },
      NOW,
    ).split("\n");
    expect(lines[1]).toMatch(/^g1\s+Grace\s+c\s+reader\s+grace: old key until 2099-01-01 10:00 UTC\s+never\s+2026-01-03 04:05 UTC\s+api/);
    expect(lines[2]).toMatch(/^r1\s+Revoked\s+c\s+reader\s+revoked\s+never\s+never\s+api/);
    expect(lines[3]).toMatch(/^e1\s+Expired\s+c\s+reader\s+expired\s+2026-01-04 00:00 UTC\s+never/);
    expect(lines[4]).toMatch(/^o1\s+Old\s+c\s+reader\s+revoked\s/);
    expect(lines[5]).toMatch(/^o2\s+OldGrace\s+c\s+reader\s+grace: old key until 2099-01-01 10:00 UTC\s/);
  });

  it("servers: status, connector, tools count, declared and enabled, and why not healthy", () => {
    const out = serversTable({
      servers: [
        { id: "everything", name: "Everything", connectorId: "edge-1", prefix: null, enabled: true, declared: true, status: "healthy", detail: null, tools: 11, prompts: 3, resources: 7, conflicts: [], updatedAt: "2026-01-01T00:00:00Z" },
        { id: "crm", name: null, connectorId: "edge-2", enabled: false, declared: false, status: "unhealthy", detail: "crashed 5 times within 60 s", tools: [{ name: "a" }, { name: "b" }], conflicts: ["search"] },
      ],
    });
    const lines = out.split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+CONNECTOR\s+TOOLS\s+DECLARED\s+ENABLED\s+DETAIL$/);
    expect(lines[1]).toMatch(/^everything\s+Everything\s+healthy\s+edge-1\s+11\s+yes\s+yes$/);
    expect(lines[2]).toMatch(/^crm\s+-\s+unhealthy\s+edge-2\s+2\s+no\s+no\s+crashed 5 times within 60 s; 1 name withheld \(conflict\)$/);
    expect(serversTable({ servers: [] })).toContain("no servers");
  });

  it("connectors: enabled or revoked", () => {
    const out = connectorsTable({ connectors: [{ id: "edge-1", name: "Edge", enabled: true, createdAt: "2026-01-02T03:04:05Z" }, { id: "old", name: null, enabled: false, createdAt: null }] });
    expect(out.split("\n")).toEqual(["ID      NAME  STATUS   CREATED", "edge-1  Edge  enabled  2026-01-02 03:04 UTC", "old     -     revoked  -"]);
  });

  it("time() keeps text it cannot read as it is", () => {
    expect(time("2026-01-31T12:34:56.789Z")).toBe("2026-01-31 12:34 UTC");
    expect(time("soon")).toBe("soon");
    expect(time(null, "never")).toBe("never");
  });
});

describe("sentences", () => {
  it("whoami: a tenant admin, and the platform token without a tenant", () => {
    expect(whoamiText({ tenant: "acme", consumer: "admin", keyId: "admin-key", roles: ["admin"], platformAdmin: false })).toBe(
      "tenant          acme\nconsumer        admin\nkey             admin-key\nroles           admin\nplatform admin  no",
    );
    expect(whoamiText({ tenant: null, consumer: null, keyId: null, roles: [], platformAdmin: true })).toContain("(none: pass --tenant ID to administer one)");
  });

  it("a created or rotated key is on its own line, with the warning that it is shown once", () => {
    const created = keyCreatedText({ key: "gw_secret", id: "k1", name: "bot", consumerId: "c1", roles: ["reader"], enabled: true, expiresAt: "2027-01-01T00:00:00Z" });
    expect(created.split("\n")).toContain("    gw_secret");
    expect(created).toContain('created key k1 "bot" for consumer c1, roles reader, expires 2027-01-01 00:00 UTC');
    expect(created).toContain("shown only once and cannot be shown again");
    expect(keyRotatedText({ key: "gw_new", id: "k1", previousExpiresAt: "2026-06-01T01:00:00.000Z" })).toContain("its previous secret keeps working until 2026-06-01 01:00 UTC");
    const rotated = keyRotatedText({ key: "gw_new", id: "k1" });
    expect(rotated.split("\n")).toContain("    gw_new");
    expect(rotated).toContain("cannot be shown again");
  });

  it("a created connector shows its token once and how to run the connector", () => {
    const out = connectorCreatedText({ id: "edge-1", name: null, enabled: true, createdAt: "x", token: "gwc_token" }, "https://gw.example");
    expect(out.split("gwc_token")).toHaveLength(2);
    expect(out).toContain("MCP_GATEWAY_CONNECTOR_TOKEN=<the token above> mcp-gateway-connector --config gateway.yaml --url https://gw.example");
  });

  it("validate and apply", () => {
    expect(validText("g.yaml", { tenant: "acme", keys: 1, policies: 3, servers: 2 })).toBe("g.yaml is valid: tenant acme, 1 key, 3 policies, 2 servers");
    expect(validText("g.yaml", { tenant: "acme", keys: 0, policies: 1, servers: 1 })).toBe("g.yaml is valid: tenant acme, 0 keys, 1 policy, 1 server");
    expect(appliedText("g.yaml", { tenant: "acme", version: 4 })).toBe("applied g.yaml to tenant acme: version 4");
  });

  it("--json is the answer as it came", () => {
    const body = { keys: [{ id: "k1", roles: ["a"] }], extra: null };
    expect(JSON.parse(jsonOutput(body))).toEqual(body);
  });
});

describe("failures", () => {
  it("a refusal names the code, status and message; invalid_config details are named after the file", () => {
    const failure = {
      kind: "refused" as const,
      url: "http://gw/admin/v1/config",
      status: 422,
      error: { code: "invalid_config", message: "gateway.yaml failed validation", details: ["policies[2].rules[0].action: bad", "tenant: bad"] },
    };
    expect(failureLines(failure, "g.yaml")).toEqual([
      "the gateway refused: invalid_config (HTTP 422): gateway.yaml failed validation",
      "g.yaml: policies[2].rules[0].action: bad",
      "g.yaml: tenant: bad",
    ]);
    expect(failureLines({ ...failure, error: { ...failure.error, details: ["x"] } })[1]).toBe("  x");
  });

  it("a 401 says where the key comes from; network and unexpected answers name the URL", () => {
    expect(failureLines({ kind: "refused", url: "u", status: 401, error: { code: "unauthenticated", message: "refused", details: [] } })).toEqual([
      "the gateway refused: unauthenticated (HTTP 401): refused (check MCP_GATEWAY_ADMIN_KEY or --admin-key)",
    ]);
    expect(failureLines({ kind: "network", url: "http://127.0.0.1:9/admin/v1/keys", reason: "connection refused" })).toEqual([
      "cannot reach the gateway at http://127.0.0.1:9/admin/v1/keys: connection refused",
    ]);
    expect(failureLines({ kind: "unexpected", url: "http://gw/x", status: 502, reason: "the answer is not JSON" })).toEqual([
      "unexpected answer from http://gw/x: HTTP 502: the answer is not JSON",
    ]);
  });

  it("networkReason reads undici's cause codes and timeouts", () => {
    const fetchFailed = (code: string) => Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error(code), { code }) });
    expect(networkReason(fetchFailed("ECONNREFUSED"), 30_000)).toBe("connection refused (is the gateway running there?)");
    expect(networkReason(fetchFailed("ENOTFOUND"), 30_000)).toBe("the host name does not resolve");
    expect(networkReason(fetchFailed("CERT_HAS_EXPIRED"), 30_000)).toBe("TLS failed (CERT_HAS_EXPIRED)");
    expect(networkReason(new DOMException("timed out", "TimeoutError"), 30_000)).toBe("no answer within 30 s");
  });
});

describe("audit output", () => {
  const entry = { seq: 41, timestamp: Date.parse("2026-05-31T10:00:00.123Z"), consumer: "agent-1", server: "crm", method: "tools/call", tool: "get_customer", status: "denied", latencyMs: 7, ruleId: "crm.rules[1]" };

  it("audit log: ISO times, the method where there is no tool, dashes for nulls, control characters visible", () => {
    expect(auditLogTable([entry, { ...entry, seq: 40, tool: null, method: "initialize", server: null, ruleId: null, consumer: "evil\x1b[2J" }])).toBe(
      [
        "TIME                      SEQ  CONSUMER     SERVER  TOOL          STATUS  LATENCY  RULE",
        "2026-05-31T10:00:00.123Z  41   agent-1      crm     get_customer  denied  7 ms     crm.rules[1]",
        "2026-05-31T10:00:00.123Z  40   evil\\x1b[2J  -       initialize    denied  7 ms     -",
      ].join("\n"),
    );
    expect(auditLogTable([])).toBe("no audit entries match");
  });

  it("audit stats: summary, then the top tables, cut at 10 rows with a pointer to --json", () => {
    const byServer = Array.from({ length: 12 }, (_, i) => ({ server: `s${i}`, count: 100 - i }));
    const text = auditStatsText({ total: 12_345, byStatus: { ok: 12_000, denied: 345 }, byServer, byTool: [], byConsumer: [{ consumer: "c", count: 12_345 }], latencyMs: null });
    expect(text.split("\n").slice(0, 3)).toEqual(["entries  12,345", "status   ok 12,000  denied 345", "latency  -"]);
    expect(text).toContain("s9      91\n(2 more; --json lists them)");
    expect(text).not.toContain("s10");
    expect(text).not.toContain("TOOL");
    expect(text).toMatch(/CONSUMER\s+COUNT\nc\s+12,345$/);
    expect(auditStatsText({ total: 0 })).toBe("no audit entries match");
  });

  it("verifyText: a failure leads with the seq and reason; an offline success says what to keep", () => {
    const failed = { ok: false, failure: { seq: 9, reason: "broken-link", message: "seq 9's prevHash is not the hash of seq 8", line: 11 }, entries: 8, checkpoints: 2 };
    expect(verifyText(failed, "a.jsonl")).toBe(
      "FAILED  the audit export a.jsonl does not verify at seq 9: broken-link\n  seq 9's prevHash is not the hash of seq 8\n  line 11 of a.jsonl; 8 entries and 2 checkpoints verified before it",
    );
    expect(verifyText({ ok: false, failure: { seq: null, reason: "key-mismatch", message: "m" }, entries: 0, checkpoints: 0 })).toMatch(
      /^FAILED {2}the gateway's audit chain does not verify: key-mismatch\n/,
    );
    const hash = "f".repeat(64);
    const ok = verifyText({ ok: true, entries: 1, checkpoints: 0, firstSeq: 1, head: { seq: 1, hash }, lastCheckpoint: null, uncheckpointed: 1 }, "b.jsonl");
    expect(ok).toContain("OK  the audit export b.jsonl verifies: 1 entry (seq 1-1), 0 signed checkpoints");
    expect(ok).toContain("No signed checkpoint: the export only vouches for itself");
    expect(ok).toContain(`--head 1:${hash}`);
    const partly = verifyText({ ok: true, entries: 5, checkpoints: 1, firstSeq: 1, head: { seq: 5, hash }, lastCheckpoint: { seq: 4, hash }, uncheckpointed: 1 }, "c.jsonl");
    expect(partly).toContain("The last 1 entry have no checkpoint yet");
  });

  it("progress bars, sizes and the export summary", () => {
    expect(progressBar(0.5, "half", 10)).toBe("[#####-----]  50%  half");
    expect(progressBar(2, "over", 4)).toBe("[####] 100%  over");
    expect(progressBar(undefined, "12 entries")).toBe("12 entries");
    expect([bytesText(1023), bytesText(1536), bytesText(50 * 1024 * 1024), bytesText(3 * 1024 ** 3)]).toEqual(["1023 B", "1.5 KB", "50 MB", "3.0 GB"]);
    const header = { type: "header", tenant: "acme", start: { seq: 100, hash: "0" }, head: { seq: 250, hash: "1" } };
    expect(exportSummaryText("a.jsonl", "jsonl", 2048, 152, header)).toBe(
      "wrote a.jsonl: 152 lines, 2.0 KB; tenant acme, entries 101-250\nverify it offline: mcp-gateway audit verify --file a.jsonl --public-key KEY",
    );
    expect(exportSummaryText("a.csv", "csv", 10, 1, undefined)).toBe("wrote a.csv: 1 line, 10 B");
  });

  it("streamLines splits chunks into lines across chunk and UTF-8 boundaries, and caps a line's length", async () => {
    const bytes = new TextEncoder().encode("a☕\nbc\n\nlast");
    async function* chunks(size: number) {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    }
    for (const size of [1, 2, 3, 100]) {
      const lines: string[] = [];
      for await (const line of streamLines(chunks(size), "u")) lines.push(line);
      expect(lines).toEqual(["a☕", "bc", "", "last"]);
    }
    const long = async () => {
      for await (const _ of streamLines(chunks(1), "u", 3)) void _;
    };
    await expect(long()).rejects.toThrow("longer than 3 characters");
  });
});
