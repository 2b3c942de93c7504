// The mcp-gateway CLI's pure parts: argv and env into an invocation (usage errors, help, connection), and each
// command into the admin API request docs/admin-api.md describes.
import { describe, expect, it } from "vitest";
import { DEFAULT_URL, USAGE, helpFor, parseCli, parseExpiry, parseRoles, type CliParse, type Invocation } from "../../connector/cli/args.ts";
import { requestFor, requestUrl } from "../../connector/cli/requests.ts";

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

describe("parseCli: help and version", () => {
  it("prints the overview for --help, -h, help and nothing else", () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) expect(parseCli(argv, {})).toEqual({ kind: "help", text: USAGE });
    for (const name of ["init", "config validate", "config apply", "keys list", "keys create", "keys revoke", "keys rotate", "servers list", "connectors create", "connectors list", "connectors revoke", "whoami"]) {
      expect(USAGE).toContain(`  ${name} `);
    }
    expect(USAGE).toContain("Exit status: 0 done, 1 the gateway refused or could not be reached, 2 a usage error");
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
    expect(requestFor({ kind: "servers list" })).toEqual({ method: "GET", path: "/admin/v1/servers" });
    expect(requestFor({ kind: "connectors list" })).toEqual({ method: "GET", path: "/admin/v1/connectors" });
    expect(requestFor({ kind: "connectors create", id: "edge-1", name: undefined }).body!.text).toBe('{"id":"edge-1"}');
    expect(requestFor({ kind: "connectors revoke", id: "edge-1" })).toEqual({ method: "DELETE", path: "/admin/v1/connectors/edge-1" });
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
