// The mcp-gateway CLI's pure parts: argv and env into an invocation (usage errors, help, connection), and each
// command into the admin API request docs/admin-api.md describes.
import { describe, expect, it } from "vitest";
import { DEFAULT_URL, USAGE, helpFor, parseCli, parseCount, parseExpiry, parseHead, parseRoles, parseTime, type CliParse, type Invocation } from "../../connector/cli/args.ts";
import { auditEntriesRequest, requestFor, requestUrl } from "../../connector/cli/requests.ts";
import { PUBLIC_KEY } from "./core-audit-fixtures.ts";

const ENV = { MCP_GATEWAY_ADMIN_KEY: "gw_admin_key_for_tests" };

function run(parse: CliParse): Invocation {
  if (parse.kind !== "run") throw new Error(`expected a run, got ${JSON.stringify(parse)}`);
  return parse.invocation;
}
function usageErrors(parse: CliParse): string[] {
  if (parse.kind !== "usage") throw new Error(`expected a usage error, got ${JSON.stringify(parse)}`);
  return parse.errors;
}

describe("parseCli: commands", () => {
  it("reads the seed's keys create line: NAME CONSUMER ROLES", () => {
    const { command, json } = run(parseCli(["keys", "create", "My Agent", "agent-1", "reader,writer"], ENV));
    expect(command).toEqual({ kind: "keys create", name: "My Agent", consumerId: "agent-1", roles: ["reader", "writer"], expiresAt: undefined, id: undefined });
    expect(json).toBe(false);
  });

  it("takes flags before or after the command words, and normalises --expires to UTC", () => {
    const { command, json } = run(parseCli(["--json", "keys", "create", "bot", "c1", "reader", "--expires", "2027-01-31", "--id", "k9"], ENV));
    expect(command).toMatchObject({ kind: "keys create", expiresAt: "2027-01-31T00:00:00.000Z", id: "k9" });
    expect(json).toBe(true);
  });

  it("maps every command to its kind and arguments", () => {
    expect(run(parseCli(["init"], {})).command).toEqual({ kind: "init", file: "./gateway.yaml", force: false, tenant: "default" });
    expect(run(parseCli(["init", "x.yaml", "--force", "--tenant", "acme"], {})).command).toEqual({ kind: "init", file: "x.yaml", force: true, tenant: "acme" });
    expect(run(parseCli(["config", "validate", "g.yaml"], {})).command).toEqual({ kind: "config validate", file: "g.yaml" });
    expect(run(parseCli(["config", "apply", "g.yaml"], ENV)).command).toEqual({ kind: "config apply", file: "g.yaml" });
    expect(run(parseCli(["keys", "list"], ENV)).command).toEqual({ kind: "keys list" });
    expect(run(parseCli(["keys", "revoke", "key-123"], ENV)).command).toEqual({ kind: "keys revoke", id: "key-123" });
    expect(run(parseCli(["keys", "rotate", "key-123"], ENV)).command).toEqual({ kind: "keys rotate", id: "key-123" });
    for (const [grace, seconds] of [["0", 0], ["90", 90], ["90s", 90], ["30m", 1800], ["1h", 3600], ["7d", 604_800]] as const) {
      expect(run(parseCli(["keys", "rotate", "key-123", "--grace", grace], ENV)).command).toEqual({ kind: "keys rotate", id: "key-123", graceSeconds: seconds });
    }
    expect(run(parseCli(["servers", "list"], ENV)).command).toEqual({ kind: "servers list" });
    expect(run(parseCli(["connectors", "create", "edge-1", "--name", "Edge"], ENV)).command).toEqual({ kind: "connectors create", id: "edge-1", name: "Edge" });
    expect(run(parseCli(["connectors", "list"], ENV)).command).toEqual({ kind: "connectors list" });
    expect(run(parseCli(["connectors", "revoke", "edge-1"], ENV)).command).toEqual({ kind: "connectors revoke", id: "edge-1" });
    expect(run(parseCli(["whoami"], ENV)).command).toEqual({ kind: "whoami" });
  });

  it("needs no connection for the local commands", () => {
    expect(run(parseCli(["config", "validate", "g.yaml"], {})).connection).toBeUndefined();
    expect(run(parseCli(["init"], {})).connection).toBeUndefined();
  });
});

describe("parseCli: connection", () => {
  it("defaults the URL, takes the key and tenant from the environment", () => {
    expect(run(parseCli(["whoami"], { ...ENV, MCP_GATEWAY_TENANT: "acme" })).connection).toEqual({
      url: DEFAULT_URL,
      adminKey: "gw_admin_key_for_tests",
      tenant: "acme",
    });
  });

  it("prefers flags to the environment, and warns that --admin-key shows in the process list", () => {
    const inv = run(
      parseCli(["whoami", "--url", "https://gw.example", "--admin-key", "gw_flag_key_123", "--tenant", "t2"], { ...ENV, MCP_GATEWAY_URL: "http://other", MCP_GATEWAY_TENANT: "t1" }),
    );
    expect(inv.connection).toEqual({ url: "https://gw.example", adminKey: "gw_flag_key_123", tenant: "t2" });
    expect(inv.warnings.join("\n")).toContain("MCP_GATEWAY_ADMIN_KEY");
    expect(inv.warnings.join("\n")).not.toContain("gw_flag_key_123");
  });

  it("warns when the admin key would cross the network unencrypted, but not for loopback", () => {
    expect(run(parseCli(["whoami", "--url", "http://gw.example.com"], ENV)).warnings.join()).toContain("clear text");
    expect(run(parseCli(["whoami", "--url", "http://127.0.0.1:8787"], ENV)).warnings).toEqual([]);
    expect(run(parseCli(["whoami", "--url", "http://localhost:8787"], ENV)).warnings).toEqual([]);
  });

  it("refuses a remote command without an admin key, and bad URLs", () => {
    expect(usageErrors(parseCli(["keys", "list"], {}))).toEqual(["no admin key: set MCP_GATEWAY_ADMIN_KEY (or pass --admin-key)"]);
    expect(usageErrors(parseCli(["keys", "list"], { MCP_GATEWAY_ADMIN_KEY: "gw_ünïcode key" }))).toEqual(["the admin key must be 1-512 printable ASCII characters without spaces"]);
    expect(run(parseCli(["keys", "list"], { MCP_GATEWAY_ADMIN_KEY: " gw_pasted_with_space \n" })).connection?.adminKey).toBe("gw_pasted_with_space");
    expect(usageErrors(parseCli(["keys", "list", "--url", "gw.example"], ENV))[0]).toContain("not a valid URL");
    expect(usageErrors(parseCli(["keys", "list", "--url", "ftp://gw.example"], ENV))[0]).toContain("https:// or http://");
    expect(usageErrors(parseCli(["keys", "list", "--url", "https://u:p@gw.example"], ENV))[0]).toContain("must not contain credentials");
  });
});

describe("parseCli: usage errors", () => {
  it("refuses unknown flags (strict), and flags of another command", () => {
    expect(usageErrors(parseCli(["keys", "list", "--bogus"], ENV))[0]).toMatch(/Unknown option '--bogus'/);
    expect(usageErrors(parseCli(["keys", "list", "--force"], ENV))).toEqual(['--force is not an option of "mcp-gateway keys list"']);
    expect(usageErrors(parseCli(["whoami", "--expires", "2027-01-01"], ENV))).toEqual(['--expires is not an option of "mcp-gateway whoami"']);
    expect(usageErrors(parseCli(["keys", "revoke", "k1", "--grace", "1h"], ENV))).toEqual(['--grace is not an option of "mcp-gateway keys revoke"']);
  });

  it("keys rotate --grace: a duration up to 7d", () => {
    for (const grace of ["1w", "1.5h", "", "h", "1 h", "soon"]) {
      expect(usageErrors(parseCli(["keys", "rotate", "k1", "--grace", grace], ENV))).toEqual([`--grace must be a duration such as 90s, 30m, 1h or 7d, got "${grace}"`]);
    }
    expect(usageErrors(parseCli(["keys", "rotate", "k1", "--grace", "604801"], ENV))).toEqual(['--grace may be at most 7d (604800s), got "604801"']);
    expect(usageErrors(parseCli(["keys", "rotate", "..", "--grace", "8d"], ENV))).toHaveLength(2);
    expect(helpFor(["keys", "rotate"])).toContain("--grace DURATION");
  });

  it("names missing and extra arguments", () => {
    expect(usageErrors(parseCli(["keys", "create", "bot"], ENV))).toEqual(["missing CONSUMER ROLES"]);
    expect(usageErrors(parseCli(["keys", "revoke"], ENV))).toEqual(["missing ID"]);
    expect(usageErrors(parseCli(["config", "validate"], {}))).toEqual(["missing FILE"]);
    expect(usageErrors(parseCli(["keys", "list", "extra"], ENV))).toEqual(['unexpected argument "extra"']);
    expect(usageErrors(parseCli(["init", "a.yaml", "b.yaml"], {}))).toEqual(['unexpected argument "b.yaml"']);
  });

  it("names unknown commands and groups without a subcommand", () => {
    expect(usageErrors(parseCli(["serve"], ENV))).toEqual(['unknown command "serve"']);
    expect(usageErrors(parseCli(["keys", "delete", "k1"], ENV))).toEqual(['unknown command "keys delete"']);
    const group = parseCli(["keys"], ENV);
    expect(usageErrors(group)).toEqual(['"keys" needs a subcommand']);
    expect(group.kind === "usage" && group.usage).toContain("mcp-gateway keys create NAME CONSUMER ROLES");
    expect(usageErrors(parseCli([], ENV))).toEqual(["no command given"]);
  });

  it("checks values: roles, expiry, ids", () => {
    expect(usageErrors(parseCli(["keys", "create", "bot", "c1", " , "], ENV))[0]).toContain("ROLES must name at least one role");
    expect(usageErrors(parseCli(["keys", "create", "bot", "c1", "reader", "--expires", "next week"], ENV))[0]).toContain("not an ISO 8601");
    expect(usageErrors(parseCli(["keys", "revoke", ".."], ENV))).toEqual(['ID ".." is not an id']);
    expect(usageErrors(parseCli(["connectors", "create", "edge", "--name", ""], ENV))).toEqual(["--name must not be empty"]);
  });
});

describe("parseCli: audit", () => {
  const NOW = Date.parse("2026-06-01T12:00:00.000Z");
  const HASH = "ab".repeat(32);

  it("audit log: --limit N and --limit=N alike, default 50, filters checked", () => {
    expect(run(parseCli(["audit", "log", "--limit", "20"], ENV, NOW)).command).toEqual({ kind: "audit log", filters: {}, limit: 20 });
    expect(run(parseCli(["audit", "log", "--limit=20"], ENV, NOW)).command).toEqual({ kind: "audit log", filters: {}, limit: 20 });
    expect(run(parseCli(["audit", "log"], ENV, NOW)).command).toEqual({ kind: "audit log", filters: {}, limit: 50 });
    expect(run(parseCli(["audit", "log", "--limit", "10000"], ENV, NOW)).command).toMatchObject({ limit: 10_000 });
    const filtered = run(parseCli(["audit", "log", "--consumer", "agent-1", "--server", "crm", "--tool", "get_*", "--status", "unauthenticated"], ENV, NOW));
    expect(filtered.command).toEqual({ kind: "audit log", filters: { consumer: "agent-1", server: "crm", tool: "get_*", status: "unauthenticated" }, limit: 50 });
    expect(filtered.connection?.adminKey).toBe("gw_admin_key_for_tests");
  });

  it("audit log: a bad limit or status is a usage error", () => {
    for (const bad of ["0", "-1", "1.5", "ten", "10001", ""]) {
      expect(usageErrors(parseCli(["audit", "log", `--limit=${bad}`], ENV, NOW))).toEqual([`--limit must be an integer from 1 to 10,000, not "${bad}"`]);
    }
    expect(usageErrors(parseCli(["audit", "log", "--limit"], ENV, NOW))[0]).toMatch(/argument missing/);
    expect(usageErrors(parseCli(["audit", "log", "--status", "OK"], ENV, NOW))).toEqual(['--status must be one of ok, error, denied, limited, unknown, unauthenticated, not "OK"']);
    expect(usageErrors(parseCli(["audit", "log", "--consumer", " "], ENV, NOW))).toEqual(["--consumer must not be empty"]);
    expect(usageErrors(parseCli(["audit", "stats", "--limit", "5"], ENV, NOW))).toEqual(['--limit is not an option of "mcp-gateway audit stats"']);
  });

  it("relative times count back from now; ISO times are normalised to UTC", () => {
    const times = (from: string, to?: string) => run(parseCli(["audit", "stats", "--from", from, ...(to ? ["--to", to] : [])], ENV, NOW)).command;
    expect(times("1h")).toEqual({ kind: "audit stats", filters: { from: "2026-06-01T11:00:00.000Z" } });
    expect(times("30m", "10s")).toEqual({ kind: "audit stats", filters: { from: "2026-06-01T11:30:00.000Z", to: "2026-06-01T11:59:50.000Z" } });
    expect(times("7d")).toMatchObject({ filters: { from: "2026-05-25T12:00:00.000Z" } });
    expect(times("2w")).toMatchObject({ filters: { from: "2026-05-18T12:00:00.000Z" } });
    expect(times("2026-05-31", "2026-05-31T14:00:00+02:00")).toMatchObject({ filters: { from: "2026-05-31T00:00:00.000Z", to: "2026-05-31T12:00:00.000Z" } });
    expect(parseTime("--from", "1H", NOW)).toEqual({ ok: true, iso: "2026-06-01T11:00:00.000Z" });
  });

  it("a bad time, or --from not before --to, is a usage error", () => {
    for (const bad of ["yesterday", "1y", "-1h", "1.5h", "1700000000000", "2026-13-01", "h"]) {
      expect(usageErrors(parseCli(["audit", "log", `--from=${bad}`], ENV, NOW))[0]).toContain(`--from "${bad}" is neither an ISO 8601`);
    }
    expect(usageErrors(parseCli(["audit", "log", "--from", "999999999w"], ENV, NOW))).toEqual(['--from "999999999w" is too long ago']);
    expect(usageErrors(parseCli(["audit", "log", "--from", "1h", "--to", "2h"], ENV, NOW))[0]).toContain("must be before --to");
  });

  it("audit verify: remote without --file (a connection needed), offline with it (no URL, no key, no env)", () => {
    const remote = run(parseCli(["audit", "verify"], ENV, NOW));
    expect(remote.command).toEqual({ kind: "audit verify", offline: undefined });
    expect(remote.connection).toBeDefined();
    expect(usageErrors(parseCli(["audit", "verify"], {}, NOW))).toEqual(["no admin key: set MCP_GATEWAY_ADMIN_KEY (or pass --admin-key)"]);

    const offline = run(parseCli(["audit", "verify", "--file", "export.jsonl", "--public-key", PUBLIC_KEY, "--head", `12:${HASH.toUpperCase()}`], {}, NOW));
    expect(offline.command).toEqual({ kind: "audit verify", offline: { file: "export.jsonl", publicKeys: [PUBLIC_KEY], expectedHead: { seq: 12, hash: HASH } } });
    expect(offline.connection).toBeUndefined();
    expect(offline.warnings).toEqual([]);
    // The environment's gateway settings are simply not used; a bad URL there does not matter.
    expect(run(parseCli(["audit", "verify", "--file", "e.jsonl", "--public-key", PUBLIC_KEY], { MCP_GATEWAY_URL: "ftp://nope" }, NOW)).connection).toBeUndefined();
    expect(run(parseCli(["audit", "verify", "--file", "e.jsonl", "--public-key", PUBLIC_KEY, "--public-key", PUBLIC_KEY], {}, NOW)).command).toMatchObject({
      offline: { publicKeys: [PUBLIC_KEY, PUBLIC_KEY] },
    });
  });

  it("audit verify: --file without --public-key, a malformed key or head, and connection flags with --file are usage errors", () => {
    expect(usageErrors(parseCli(["audit", "verify", "--file", "e.jsonl"], {}, NOW))[0]).toMatch(/^--file needs --public-key KEY/);
    expect(usageErrors(parseCli(["audit", "verify", "--file", "e.jsonl", "--public-key", "abc"], {}, NOW))).toEqual(["--public-key: the public key must be base64url of a raw 32-byte Ed25519 key"]);
    expect(usageErrors(parseCli(["audit", "verify", "--file", "e.jsonl", "--public-key", PUBLIC_KEY, "--head", "12"], {}, NOW))[0]).toMatch(/^--head must be SEQ:HASH/);
    expect(usageErrors(parseCli(["audit", "verify", "--file", "e.jsonl", "--public-key", PUBLIC_KEY, "--admin-key", "gw_x_12345678", "--tenant", "t"], {}, NOW))).toEqual([
      "--file verifies offline: --admin-key, --tenant are not used",
    ]);
    expect(usageErrors(parseCli(["audit", "verify", "--head", `1:${HASH}`], ENV, NOW))[0]).toMatch(/^--head goes with --file/);
    expect(usageErrors(parseCli(["audit", "verify", "--limit", "3"], ENV, NOW))).toEqual(['--limit is not an option of "mcp-gateway audit verify"']);
  });

  it("audit export: format, out and seq range", () => {
    expect(run(parseCli(["audit", "export"], ENV, NOW)).command).toEqual({ kind: "audit export", format: "jsonl", out: undefined, fromSeq: undefined, toSeq: undefined });
    expect(run(parseCli(["audit", "export", "--format=csv", "--out", "a.csv", "--from-seq", "5", "--to-seq", "9"], ENV, NOW)).command).toEqual({
      kind: "audit export",
      format: "csv",
      out: "a.csv",
      fromSeq: 5,
      toSeq: 9,
    });
    expect(usageErrors(parseCli(["audit", "export", "--format", "json"], ENV, NOW))).toEqual(['--format must be jsonl or csv, not "json"']);
    expect(usageErrors(parseCli(["audit", "export", "--from-seq", "0"], ENV, NOW))).toEqual(['--from-seq must be an integer ≥ 1, not "0"']);
    expect(usageErrors(parseCli(["audit", "export", "--from-seq", "9", "--to-seq", "5"], ENV, NOW))).toEqual(["--from-seq 9 is after --to-seq 5"]);
  });

  it("the audit group has help, and a bare audit needs a subcommand", () => {
    expect(helpFor(["audit"])).toContain("mcp-gateway audit verify [--file FILE] [--public-key KEY] [--head SEQ:HASH] [--json]");
    expect(usageErrors(parseCli(["audit"], ENV, NOW))).toEqual(['"audit" needs a subcommand']);
    const help = parseCli(["audit", "log", "--help"], {}, NOW);
    expect(help.kind === "help" && help.text).toContain("--limit N         print at most N entries (default 50, at most 10,000)");
  });

  it("parseCount and parseHead", () => {
    expect(parseCount("--n", " 7 ", 1, 10)).toEqual({ ok: true, value: 7 });
    expect(parseCount("--n", "99999999999999999", 1, Number.MAX_SAFE_INTEGER).ok).toBe(false);
    expect(parseHead(`0:${"0".repeat(64)}`)).toEqual({ ok: true, head: { seq: 0, hash: "0".repeat(64) } });
    expect(parseHead(`1:${"a".repeat(63)}`).ok).toBe(false);
  });
});

describe("parseCli: help and version", () => {
  it("prints the overview for --help, -h, help and nothing else", () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) expect(parseCli(argv, {})).toEqual({ kind: "help", text: USAGE });
    for (const name of ["init", "config validate", "config apply", "keys list", "keys create", "keys revoke", "keys rotate", "servers list", "connectors create", "connectors list", "connectors revoke", "whoami", "audit log", "audit stats", "audit verify", "audit export"]) {
      expect(USAGE).toContain(`  ${name} `);
    }
    expect(USAGE).toContain("Exit status: 0 done, 1 the gateway refused or could not be reached (or an audit chain does not verify), 2 a usage\nerror");
  });

  it("prints one command's help for help CMD and CMD --help, even without credentials", () => {
    const help = parseCli(["help", "keys", "create"], {});
    expect(help).toEqual(parseCli(["keys", "create", "--help"], {}));
    expect(help.kind === "help" && help.text).toContain("Usage: mcp-gateway keys create NAME CONSUMER ROLES [--expires TIME] [--id ID] [--json]");
    expect(helpFor(["keys"])).toContain("mcp-gateway keys rotate ID");
    expect(parseCli(["keys", "--help"], {})).toEqual({ kind: "help", text: helpFor(["keys"]) });
    expect(usageErrors(parseCli(["help", "nope"], {}))).toEqual(['no help for "nope": unknown command']);
  });

  it("prints the version for --version and -V", () => {
    expect(parseCli(["--version"], {})).toEqual({ kind: "version" });
    expect(parseCli(["-V"], {})).toEqual({ kind: "version" });
  });
});

describe("values", () => {
  it("parseRoles trims, drops empties and repeats", () => {
    expect(parseRoles("reader, writer,,reader")).toEqual(["reader", "writer"]);
  });

  it("parseExpiry accepts ISO dates and date-times with offsets, nothing else", () => {
    expect(parseExpiry("2027-01-31T12:00:00+02:00")).toEqual({ ok: true, iso: "2027-01-31T10:00:00.000Z" });
    expect(parseExpiry("2027-01-31T12:00Z")).toEqual({ ok: true, iso: "2027-01-31T12:00:00.000Z" });
    for (const bad of ["31/01/2027", "2027-13-45", "tomorrow", "1700000000"]) expect(parseExpiry(bad).ok).toBe(false);
  });
});

describe("requestFor", () => {
  it("maps each remote command to the documented method, path and body", () => {
    expect(requestFor({ kind: "whoami" })).toEqual({ method: "GET", path: "/admin/v1/whoami" });
    expect(requestFor({ kind: "keys list" })).toEqual({ method: "GET", path: "/admin/v1/keys" });
    expect(requestFor({ kind: "keys create", name: "bot", consumerId: "c1", roles: ["reader"], expiresAt: undefined, id: undefined })).toEqual({
      method: "POST",
      path: "/admin/v1/keys",
      body: { contentType: "application/json", text: '{"name":"bot","consumerId":"c1","roles":["reader"]}' },
    });
    const withOptional = requestFor({ kind: "keys create", name: "bot", consumerId: "c1", roles: ["r"], expiresAt: "2027-01-01T00:00:00.000Z", id: "k1" });
    expect(JSON.parse(withOptional.body!.text)).toEqual({ name: "bot", consumerId: "c1", roles: ["r"], expiresAt: "2027-01-01T00:00:00.000Z", id: "k1" });
    expect(requestFor({ kind: "keys revoke", id: "k/1?x" })).toEqual({ method: "DELETE", path: "/admin/v1/keys/k%2F1%3Fx" });
    expect(requestFor({ kind: "keys rotate", id: "k1" })).toEqual({ method: "POST", path: "/admin/v1/keys/k1/rotate" });
    expect(requestFor({ kind: "keys rotate", id: "k1", graceSeconds: 3600 })).toEqual({
      method: "POST",
      path: "/admin/v1/keys/k1/rotate",
      body: { contentType: "application/json", text: '{"graceSeconds":3600}' },
    });
    expect(requestFor({ kind: "servers list" })).toEqual({ method: "GET", path: "/admin/v1/servers" });
    expect(requestFor({ kind: "connectors list" })).toEqual({ method: "GET", path: "/admin/v1/connectors" });
    expect(requestFor({ kind: "connectors create", id: "edge-1", name: undefined }).body!.text).toBe('{"id":"edge-1"}');
    expect(requestFor({ kind: "connectors revoke", id: "edge-1" })).toEqual({ method: "DELETE", path: "/admin/v1/connectors/edge-1" });
  });

  it("maps the audit commands to their requests, filters and paging as query parameters", () => {
    const filters = { consumer: "a b", status: "ok" as const, from: "2026-06-01T00:00:00.000Z" };
    expect(requestFor({ kind: "audit stats", filters })).toEqual({
      method: "GET",
      path: "/admin/v1/audit/stats",
      query: [["consumer", "a b"], ["status", "ok"], ["from", "2026-06-01T00:00:00.000Z"]],
    });
    expect(requestFor({ kind: "audit verify", offline: undefined })).toEqual({ method: "POST", path: "/admin/v1/audit/verify" });
    expect(requestFor({ kind: "audit export", format: "csv", out: undefined, fromSeq: 3, toSeq: undefined })).toEqual({
      method: "GET",
      path: "/admin/v1/audit/export",
      query: [["format", "csv"], ["fromSeq", "3"]],
    });
    expect(auditEntriesRequest({}, 1200, undefined).query).toEqual([["limit", "500"]]);
    expect(auditEntriesRequest({ tool: "t" }, 7, "c/1=").query).toEqual([["tool", "t"], ["limit", "7"], ["cursor", "c/1="]]);
    expect(requestUrl("https://gw.example/edge", "/admin/v1/audit/entries", "acme", [["tool", "a b&c"], ["cursor", "x/y="]])).toBe(
      "https://gw.example/edge/admin/v1/audit/entries?tool=a%20b%26c&cursor=x%2Fy%3D&tenant=acme",
    );
  });

  it("sends the config's edge document as JSON", () => {
    const text = '{"tenant":"acme"}';
    expect(requestFor({ kind: "config apply", file: "g.yaml" }, text)).toEqual({ method: "PUT", path: "/admin/v1/config", body: { contentType: "application/json", text } });
  });

  it("requestUrl keeps the base path and adds ?tenant=", () => {
    expect(requestUrl("http://127.0.0.1:8787", "/admin/v1/keys", undefined)).toBe("http://127.0.0.1:8787/admin/v1/keys");
    expect(requestUrl("https://gw.example/edge/", "/admin/v1/keys", "a b&c")).toBe("https://gw.example/edge/admin/v1/keys?tenant=a%20b%26c");
    expect(requestUrl("https://gw.example/?x=1#y", "/admin/v1/whoami", "t")).toBe("https://gw.example/admin/v1/whoami?tenant=t");
  });
});

describe("a public key that begins with a dash", () => {
  it("is read when written --public-key=KEY (a base64url key starts with '-' one time in 64)", async () => {
    const { encodeBase64Url, publicKeyFromPrivate } = await import("../../src/audit/checkpoint.ts");
    // Search a seed whose public key starts with "-".
    let key = "";
    for (let i = 0; !key.startsWith("-"); i++) key = publicKeyFromPrivate(encodeBase64Url(Uint8Array.from({ length: 32 }, (_, j) => (i * 31 + j) & 255)));
    const parsed = parseCli(["audit", "verify", "--file", "e.jsonl", `--public-key=${key}`], {}, Date.now());
    expect(parsed.kind).toBe("run");
  });
});
