// The whole mcp-gateway CLI: runCli in-process against a node:http stand-in for the admin API (docs/admin-api.md),
// init and config validate on real files, failures and their exit codes, and the installed bin as a process.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../connector/cli/main.ts";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { parseGatewayConfig } from "../../src/config/schema.ts";
import { closeServer, listenOnLoopback } from "./loopback-server.ts";

const BIN = fileURLToPath(new URL("../../connector/bin/mcp-gateway.mjs", import.meta.url));
const TENANT_ADMIN = "gw_tenant_admin_key_for_tests";
const PLATFORM = "platform_token_for_tests";
const READER = "gw_reader_key_for_tests";

type Recorded = { method: string; path: string; query: URLSearchParams; headers: IncomingMessage["headers"]; body: string };

/** Answers like the admin API: tenant admin of "acme", the platform token for any tenant named by ?tenant=. */
class FakeAdminApi {
  readonly requests: Recorded[] = [];
  /** Overrides every answer, for broken gateways and proxies. */
  raw: { status: number; contentType: string; body: string } | undefined;
  private readonly server: Server;
  private readonly keys = new Map<string, Record<string, unknown>>([
    ["agent-key", { id: "agent-key", name: "Agent", consumerId: "agent-1", roles: ["reader"], enabled: true, expiresAt: null, createdAt: "2026-01-01T00:00:00.000Z", source: "config" }],
  ]);
  private readonly connectors = new Map<string, Record<string, unknown>>();
  private version = 2;
  url = "";

  constructor() {
    this.server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (t: string) => (body += t));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://x");
        this.requests.push({ method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers, body });
        if (this.raw) {
          res.writeHead(this.raw.status, { "content-type": this.raw.contentType }).end(this.raw.body);
          return;
        }
        const [status, answer] = this.answer(req.method ?? "", url, req.headers, body);
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(answer));
      });
    });
  }

  async start(): Promise<void> {
    this.url = await listenOnLoopback(this.server);
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private answer(method: string, url: URL, headers: IncomingMessage["headers"], body: string): [number, unknown] {
    const error = (status: number, code: string, message: string, details?: string[]) => [status, { error: { code, message, ...(details ? { details } : {}) } }] as [number, unknown];
    const credential = /^Bearer (.+)$/.exec(headers.authorization ?? "")?.[1];
    if (credential !== TENANT_ADMIN && credential !== PLATFORM && credential !== READER) return error(401, "unauthenticated", "no or refused credential");
    if (credential === READER) return error(403, "forbidden", "this key does not have the admin role");
    const path = url.pathname;
    const isConfigPut = method === "PUT" && path === "/admin/v1/config";
    const tenant = credential === PLATFORM ? url.searchParams.get("tenant") : "acme";
    if (credential === PLATFORM && !tenant && !isConfigPut && path !== "/admin/v1/whoami") return error(400, "bad_request", "the platform token needs ?tenant=ID");
    if (credential === TENANT_ADMIN && url.searchParams.has("tenant") && url.searchParams.get("tenant") !== "acme") return error(403, "forbidden", "not your tenant");

    if (method === "GET" && path === "/admin/v1/whoami") {
      return credential === PLATFORM
        ? [200, { tenant, consumer: null, keyId: null, roles: [], platformAdmin: true }]
        : [200, { tenant: "acme", consumer: "admin", keyId: "admin-key", roles: ["admin"], platformAdmin: false }];
    }
    if (isConfigPut) {
      if (headers["content-type"] !== "application/json") return error(400, "bad_request", `expected application/json, got ${headers["content-type"]}`);
      if (body.includes("refuse-me")) return error(422, "invalid_config", "gateway.yaml failed validation", ["servers[0].id: refused by the gateway", "tenant: also refused"]);
      const parsed = parseGatewayConfig(body, { for: "edge" });
      if (!parsed.ok) return error(422, "invalid_config", "gateway.yaml failed validation", parsed.errors);
      this.version += 1;
      const { config } = parsed;
      return [200, { tenant: config.tenant, version: this.version, digest: "d".repeat(64), appliedAt: "2026-06-01T00:00:00.000Z", summary: { keys: config.auth.keys.length, policies: config.policies.length, servers: config.servers.length } }];
    }
    if (method === "GET" && path === "/admin/v1/keys") return [200, { keys: [...this.keys.values()] }];
    if (method === "POST" && path === "/admin/v1/keys") {
      const input = JSON.parse(body) as Record<string, unknown>;
      if (headers["content-type"] !== "application/json") return error(400, "bad_request", "expected JSON");
      const id = (input.id as string | undefined) ?? `key-${this.keys.size + 1}`;
      if (this.keys.has(id)) return error(409, "conflict", `a key with id "${id}" already exists`);
      const key = { id, name: input.name, consumerId: input.consumerId, roles: input.roles, enabled: true, expiresAt: input.expiresAt ?? null, createdAt: "2026-06-01T00:00:00.000Z", source: "api" };
      this.keys.set(id, key);
      return [201, { key: "gw_new_secret_shown_once", ...key }];
    }
    const keyMatch = /^\/admin\/v1\/keys\/([^/]+)(\/rotate)?$/.exec(path);
    if (keyMatch) {
      const id = decodeURIComponent(keyMatch[1]!);
      const key = this.keys.get(id);
      if (!key) return error(404, "not_found", `no key "${id}"`);
      if (method === "DELETE" && !keyMatch[2]) return [200, { id, enabled: false }];
      if (method === "POST" && keyMatch[2]) {
        const grace = body === "" ? 0 : ((JSON.parse(body) as { graceSeconds?: number }).graceSeconds ?? 0);
        const previousExpiresAt = grace > 0 ? new Date(Date.parse("2026-06-01T00:00:00.000Z") + grace * 1000).toISOString() : null;
        return [200, { key: "gw_rotated_secret_shown_once", ...key, status: grace > 0 ? "grace" : "active", previousExpiresAt }];
      }
    }
    if (method === "GET" && path === "/admin/v1/servers") {
      return [200, { servers: [{ id: "everything", name: "Everything", connectorId: "edge-1", prefix: null, enabled: true, declared: true, status: "healthy", detail: null, tools: 11, prompts: 3, resources: 7, conflicts: [], updatedAt: "2026-06-01T00:00:00.000Z" }] }];
    }
    if (method === "GET" && path === "/admin/v1/connectors") return [200, { connectors: [...this.connectors.values()] }];
    if (method === "POST" && path === "/admin/v1/connectors") {
      const input = JSON.parse(body) as { id: string; name?: string };
      if (this.connectors.has(input.id)) return error(409, "conflict", `a connector with id "${input.id}" already exists`);
      const connector = { id: input.id, name: input.name ?? null, enabled: true, createdAt: "2026-06-01T00:00:00.000Z" };
      this.connectors.set(input.id, connector);
      return [201, { ...connector, token: "gwc_connector_token_shown_once" }];
    }
    const connectorMatch = /^\/admin\/v1\/connectors\/([^/]+)$/.exec(path);
    if (connectorMatch && method === "DELETE") {
      const id = decodeURIComponent(connectorMatch[1]!);
      return this.connectors.has(id) ? [200, { id, enabled: false }] : error(404, "not_found", `no connector "${id}"`);
    }
    return error(404, "not_found", "no such route");
  }
}

type Run = { code: number; stdout: string; stderr: string };

async function cli(argv: string[], env: Record<string, string> = {}, cwd?: string): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, env, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), ...(cwd ? { cwd } : {}), timeoutMs: 5_000 });
  return { code, stdout, stderr };
}

let api: FakeAdminApi;
let dir: string;
let env: Record<string, string>;
beforeEach(async () => {
  api = new FakeAdminApi();
  await api.start();
  dir = mkdtempSync(join(tmpdir(), "mcp-gateway-cli-"));
  env = { MCP_GATEWAY_URL: api.url, MCP_GATEWAY_ADMIN_KEY: TENANT_ADMIN };
});
afterEach(async () => {
  await api.close();
});

const VALID = `# my comment, which must survive
tenant: acme
auth:
  keys:
    - { id: k1, keyHash: "${"a".repeat(64)}", name: "Agent", consumerId: agent-1, roles: [reader] }
servers:
  - { id: everything, command: node }
policies:
  - id: reader-policy
    roles: [reader]
    rules:
      - { tool: "get_*", action: allow }
`;

describe("init", () => {
  it("writes a file that config validate accepts, holding only digests of the keys it prints once", async () => {
    const result = await cli(["init", "gateway.yaml"], {}, dir);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    const keys = [...result.stdout.matchAll(/^ {4}(gw_[A-Za-z0-9_-]{43})$/gm)].map((m) => m[1]!);
    expect(keys).toHaveLength(2);
    expect(new Set(keys).size).toBe(2);
    for (const key of keys) expect(result.stdout.split(key)).toHaveLength(2);
    expect(result.stdout).toContain("cannot be shown again");

    const text = readFileSync(join(dir, "gateway.yaml"), "utf8");
    for (const key of keys) {
      expect(text).not.toContain(key);
      expect(text).toContain(`keyHash: ${await sha256Hex(key)}`);
    }
    expect(text).not.toMatch(/gw_[A-Za-z0-9_-]{20,}/);
    expect(text).toMatch(/^# gateway\.yaml/);

    const parsed = parseGatewayConfig(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.config.auth.keys.map((k) => [k.id, k.roles])).toEqual([["agent-key", ["reader", "writer"]], ["admin-key", ["admin"]]]);
    expect(parsed.config.policies.map((p) => p.id)).toEqual(["reader-policy", "writer-policy", "admin-policy"]);
    expect(parsed.config.servers.map((s) => s.id)).toEqual(["everything"]);

    const validate = await cli(["config", "validate", "gateway.yaml"], {}, dir);
    expect(validate).toEqual({ code: 0, stdout: "gateway.yaml is valid: tenant default, 2 keys, 3 policies, 1 server\n", stderr: "" });
  });

  it("defaults to ./gateway.yaml, takes --tenant, and prints the keys as JSON with --json", async () => {
    const result = await cli(["init", "--tenant", "acme", "--json"], {}, dir);
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as { file: string; tenant: string; keys: { id: string; key: string }[] };
    expect(out).toMatchObject({ file: "./gateway.yaml", tenant: "acme" });
    expect(out.keys.map((k) => k.id)).toEqual(["agent-key", "admin-key"]);
    const text = readFileSync(join(dir, "gateway.yaml"), "utf8");
    expect(text).toContain("\ntenant: acme\n");
    for (const k of out.keys) expect(text).toContain(await sha256Hex(k.key));
  });

  it("refuses to overwrite an existing file (exit 2) unless --force", async () => {
    writeFileSync(join(dir, "gateway.yaml"), "# mine\n");
    const refused = await cli(["init"], {}, dir);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toBe("mcp-gateway: ./gateway.yaml exists; pass --force to replace it (its keys stop working once a new file is applied)\n");
    expect(readFileSync(join(dir, "gateway.yaml"), "utf8")).toBe("# mine\n");

    const forced = await cli(["init", "--force"], {}, dir);
    expect(forced.code).toBe(0);
    expect(readFileSync(join(dir, "gateway.yaml"), "utf8")).toContain("keyHash:");
  });

  it("quotes a tenant that YAML would read as another type", async () => {
    expect((await cli(["init", "--tenant", "1234"], {}, dir)).code).toBe(0);
    const parsed = parseGatewayConfig(readFileSync(join(dir, "gateway.yaml"), "utf8"));
    expect(parsed.ok && parsed.config.tenant).toBe("1234");
  });

  it("refuses a tenant the schema does not accept, writing nothing and printing no key", async () => {
    const result = await cli(["init", "--tenant", "bad tenant\nauth: x"], {}, dir);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^mcp-gateway: cannot write \.\/gateway\.yaml: tenant: /);
    expect(existsSync(join(dir, "gateway.yaml"))).toBe(false);
  });
});

describe("config validate", () => {
  it("prints the summary, or JSON like the admin API's validate answer", async () => {
    writeFileSync(join(dir, "g.yaml"), VALID);
    expect(await cli(["config", "validate", join(dir, "g.yaml")])).toEqual({
      code: 0,
      stdout: `${join(dir, "g.yaml")} is valid: tenant acme, 1 key, 1 policy, 1 server\n`,
      stderr: "",
    });
    const json = await cli(["config", "validate", "g.yaml", "--json"], {}, dir);
    expect(JSON.parse(json.stdout)).toEqual({ ok: true, tenant: "acme", summary: { keys: 1, policies: 1, servers: 1 } });
  });

  it("prints every error with the file and the key's path, exit 2", async () => {
    writeFileSync(join(dir, "bad.yaml"), "tenant: acme\nservers:\n  - { id: a, command: node, timeout: 5 }\n  - { id: a, command: node }\nbogus: 1\n");
    const result = await cli(["config", "validate", "bad.yaml"], {}, dir);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    const lines = result.stderr.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line).toMatch(/^mcp-gateway: bad\.yaml: /);
    expect(result.stderr).toContain("servers[0].timeout");
  });

  it("a missing file is exit 2 with its name", async () => {
    expect(await cli(["config", "validate", "nope.yaml"], {}, dir)).toEqual({ code: 2, stdout: "", stderr: "mcp-gateway: cannot read nope.yaml: no such file or directory\n" });
  });
});

describe("config apply", () => {
  it("PUTs the file's edge document (no server command, args, env; keys as digests) with the admin key, prints the version, never rewrites the file", async () => {
    const file = join(dir, "g.yaml");
    const plaintext = "gw_plaintext_key_in_the_seed_form_0123";
    const withSecrets = VALID.replace("{ id: everything, command: node }", "{ id: everything, command: /opt/bin/crm, args: [--token, arg-secret], env: { TOKEN: env-secret }, cwd: /srv/crm }").replace(
      "auth:\n  keys:\n",
      `auth:\n  keys:\n    - { id: k0, key: ${plaintext}, name: "Seed", consumerId: agent-0, roles: [reader] }\n`,
    );
    writeFileSync(file, withSecrets);
    const result = await cli(["config", "apply", file], env);
    expect(result).toEqual({ code: 0, stdout: `applied ${file} to tenant acme: version 3\n`, stderr: "" });
    expect(api.requests).toHaveLength(1);
    const request = api.requests[0]!;
    expect(request).toMatchObject({ method: "PUT", path: "/admin/v1/config" });
    for (const secret of [plaintext, "/opt/bin/crm", "arg-secret", "env-secret", "TOKEN", "/srv/crm"]) expect(request.body).not.toContain(secret);
    const sent = JSON.parse(request.body);
    expect(sent.servers).toEqual([{ id: "everything", enabled: true, timeout: 60_000 }]);
    expect(sent.auth.keys.map((k: { id: string; keyHash: string }) => [k.id, k.keyHash])).toEqual([
      ["k0", await sha256Hex(plaintext)],
      ["k1", "a".repeat(64)],
    ]);
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.headers.authorization).toBe(`Bearer ${TENANT_ADMIN}`);
    expect(request.query.has("tenant")).toBe(false);
    expect(readFileSync(file, "utf8")).toBe(withSecrets);
  });

  it("--json prints the gateway's answer", async () => {
    writeFileSync(join(dir, "g.yaml"), VALID);
    const result = await cli(["config", "apply", "g.yaml", "--json"], env, dir);
    expect(JSON.parse(result.stdout)).toMatchObject({ tenant: "acme", version: 3, summary: { keys: 1, policies: 1, servers: 1 } });
  });

  it("an invalid file is exit 2 with the path-named errors, and no request is sent", async () => {
    writeFileSync(join(dir, "bad.yaml"), "tenant: acme\npolicies:\n  - id: p\n    rules: [{ action: maybe }]\n");
    const result = await cli(["config", "apply", "bad.yaml"], env, dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^mcp-gateway: bad\.yaml: policies\[0\]\.rules\[0\]\.action: /m);
    expect(api.requests).toEqual([]);
  });

  it("the gateway's invalid_config details are printed after the file's name, exit 1", async () => {
    writeFileSync(join(dir, "g.yaml"), VALID.replace("{ id: everything, command: node }", "{ id: everything, name: refuse-me, command: node }"));
    const result = await cli(["config", "apply", "g.yaml"], env, dir);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      [
        "mcp-gateway: the gateway refused: invalid_config (HTTP 422): gateway.yaml failed validation",
        "mcp-gateway: g.yaml: servers[0].id: refused by the gateway",
        "mcp-gateway: g.yaml: tenant: also refused",
        "",
      ].join("\n"),
    );
  });

  it("with the platform token: sends ?tenant= when it matches the file, refuses (exit 2) a different one", async () => {
    writeFileSync(join(dir, "g.yaml"), VALID);
    const platformEnv = { ...env, MCP_GATEWAY_ADMIN_KEY: PLATFORM };
    expect((await cli(["config", "apply", "g.yaml", "--tenant", "acme"], platformEnv, dir)).code).toBe(0);
    expect(api.requests[0]!.query.get("tenant")).toBe("acme");
    const other = await cli(["config", "apply", "g.yaml", "--tenant", "globex"], platformEnv, dir);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("g.yaml describes tenant acme, not globex");
    expect(api.requests).toHaveLength(1);
  });
});

describe("keys", () => {
  it("list: a table, or the API's JSON body with --json", async () => {
    const table = await cli(["keys", "list"], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+CONSUMER\s+ROLES\s+STATUS/);
    expect(table.stdout).toMatch(/agent-key\s+Agent\s+agent-1\s+reader\s+active\s+never\s+never\s+config/);
    const json = await cli(["keys", "list", "--json"], env);
    expect(JSON.parse(json.stdout)).toEqual({ keys: [expect.objectContaining({ id: "agent-key", source: "config" })] });
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /admin/v1/keys", "GET /admin/v1/keys"]);
  });

  it("create sends the documented body and prints the key once with the warning", async () => {
    const result = await cli(["keys", "create", "My Agent", "agent-2", "reader,writer", "--expires", "2027-01-31T00:00:00Z", "--id", "k2"], env);
    expect(result.code).toBe(0);
    expect(JSON.parse(api.requests[0]!.body)).toEqual({ name: "My Agent", consumerId: "agent-2", roles: ["reader", "writer"], expiresAt: "2027-01-31T00:00:00.000Z", id: "k2" });
    expect(api.requests[0]!.headers["content-type"]).toBe("application/json");
    expect(result.stdout.split("gw_new_secret_shown_once")).toHaveLength(2);
    expect(result.stdout).toContain("cannot be shown again");
    expect(result.stdout).toContain('created key k2 "My Agent" for consumer agent-2, roles reader,writer');
  });

  it("create with an id that exists is the gateway's conflict, exit 1", async () => {
    const result = await cli(["keys", "create", "x", "c", "reader", "--id", "agent-key"], env);
    expect(result).toEqual({ code: 1, stdout: "", stderr: 'mcp-gateway: the gateway refused: conflict (HTTP 409): a key with id "agent-key" already exists\n' });
  });

  it("revoke and rotate; an unknown id is not_found, exit 1", async () => {
    expect(await cli(["keys", "revoke", "agent-key"], env)).toEqual({ code: 0, stdout: "revoked key agent-key: it stops working at once\n", stderr: "" });
    const rotated = await cli(["keys", "rotate", "agent-key"], env);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain("\n    gw_rotated_secret_shown_once\n");
    expect((await cli(["keys", "rotate", "agent-key", "--json"], env)).stdout).toContain('"key": "gw_rotated_secret_shown_once"');
    const unknown = await cli(["keys", "revoke", "nope"], env);
    expect(unknown).toEqual({ code: 1, stdout: "", stderr: 'mcp-gateway: the gateway refused: not_found (HTTP 404): no key "nope"\n' });
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "DELETE /admin/v1/keys/agent-key",
      "POST /admin/v1/keys/agent-key/rotate",
      "POST /admin/v1/keys/agent-key/rotate",
      "DELETE /admin/v1/keys/nope",
    ]);
    expect(rotated.stdout).toContain("rotated key agent-key: its previous secret stopped working");
    expect(api.requests[1]!.body).toBe("");
  });

  it("rotate --grace sends graceSeconds and says until when the old key works; a bad --grace is a usage error", async () => {
    const rotated = await cli(["keys", "rotate", "agent-key", "--grace", "1h"], env);
    expect(rotated.code).toBe(0);
    expect(JSON.parse(api.requests[0]!.body)).toEqual({ graceSeconds: 3600 });
    expect(api.requests[0]!.headers["content-type"]).toBe("application/json");
    expect(rotated.stdout).toContain("rotated key agent-key: its previous secret keeps working until 2026-06-01 01:00 UTC");
    expect(rotated.stdout).toContain("\n    gw_rotated_secret_shown_once\n");
    const bad = await cli(["keys", "rotate", "agent-key", "--grace", "8d"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--grace may be at most 7d");
    expect(api.requests).toHaveLength(1);
  });
});

describe("servers and connectors", () => {
  it("servers list", async () => {
    const result = await cli(["servers", "list"], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/everything\s+Everything\s+healthy\s+edge-1\s+11\s+yes\s+yes/);
  });

  it("connectors create prints the token once and how to run the connector; list and revoke", async () => {
    const created = await cli(["connectors", "create", "edge-1", "--name", "Edge one"], env);
    expect(created.code).toBe(0);
    expect(JSON.parse(api.requests[0]!.body)).toEqual({ id: "edge-1", name: "Edge one" });
    expect(created.stdout.split("gwc_connector_token_shown_once")).toHaveLength(2);
    expect(created.stdout).toContain(`mcp-gateway-connector --config gateway.yaml --url ${api.url}`);
    expect((await cli(["connectors", "list"], env)).stdout).toMatch(/edge-1\s+Edge one\s+enabled/);
    expect((await cli(["connectors", "revoke", "edge-1"], env)).stdout).toBe("revoked connector edge-1: its token stops working and its links are closed\n");
    expect((await cli(["connectors", "create", "edge-1"], env)).code).toBe(1);
  });
});

describe("credentials and tenants", () => {
  it("whoami for a tenant admin; the platform token sends ?tenant= on every request", async () => {
    expect((await cli(["whoami"], env)).stdout).toContain("tenant          acme");
    const platformEnv = { ...env, MCP_GATEWAY_ADMIN_KEY: PLATFORM, MCP_GATEWAY_TENANT: "globex" };
    expect((await cli(["whoami"], platformEnv)).stdout).toContain("tenant          globex");
    expect((await cli(["keys", "list"], platformEnv)).code).toBe(0);
    expect(api.requests.slice(1).map((r) => r.query.get("tenant"))).toEqual(["globex", "globex"]);
    expect(api.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${TENANT_ADMIN}`, `Bearer ${PLATFORM}`, `Bearer ${PLATFORM}`]);
  });

  it("the platform token without a tenant gets the gateway's bad_request, exit 1", async () => {
    const result = await cli(["keys", "list"], { ...env, MCP_GATEWAY_ADMIN_KEY: PLATFORM });
    expect(result).toEqual({ code: 1, stdout: "", stderr: "mcp-gateway: the gateway refused: bad_request (HTTP 400): the platform token needs ?tenant=ID\n" });
  });

  it("a refused key is 401 with a hint, a non-admin key 403; the key is never printed", async () => {
    const refused = await cli(["keys", "list", "--admin-key", "gw_wrong_key_value"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("unauthenticated (HTTP 401): no or refused credential (check MCP_GATEWAY_ADMIN_KEY or --admin-key)");
    expect(refused.stderr).toContain("--admin-key is visible to every user");
    expect(refused.stderr + refused.stdout).not.toContain("gw_wrong_key_value");
    const reader = await cli(["keys", "list"], { ...env, MCP_GATEWAY_ADMIN_KEY: READER });
    expect(reader).toEqual({ code: 1, stdout: "", stderr: "mcp-gateway: the gateway refused: forbidden (HTTP 403): this key does not have the admin role\n" });
  });

  it("a gateway that echoes the admin key does not get it printed", async () => {
    api.raw = { status: 500, contentType: "application/json", body: JSON.stringify({ error: { code: "internal", message: `bad key ${TENANT_ADMIN}` } }) };
    const result = await cli(["whoami"], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("mcp-gateway: the gateway failed: internal (HTTP 500): bad key [admin key]\n");
  });

  it("no admin key is a usage error (exit 2) and sends nothing", async () => {
    const result = await cli(["keys", "list"], { MCP_GATEWAY_URL: api.url });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^mcp-gateway: no admin key: set MCP_GATEWAY_ADMIN_KEY \(or pass --admin-key\)\n\nUsage: mcp-gateway keys list/);
    expect(api.requests).toEqual([]);
  });
});

describe("failures", () => {
  it("connection refused: exit 1, the URL named, no stack trace", async () => {
    const closed = new FakeAdminApi();
    await closed.start();
    const url = closed.url;
    await closed.close();
    const result = await cli(["keys", "list"], { ...env, MCP_GATEWAY_URL: url });
    expect(result).toEqual({ code: 1, stdout: "", stderr: `mcp-gateway: cannot reach the gateway at ${url}/admin/v1/keys: connection refused (is the gateway running there?)\n` });
  });

  it("a non-JSON answer (a proxy's 502 page) names the status, exit 1", async () => {
    api.raw = { status: 502, contentType: "text/html", body: "<html>Bad Gateway</html>" };
    const result = await cli(["servers", "list"], env);
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `mcp-gateway: unexpected answer from ${api.url}/admin/v1/servers: HTTP 502: the answer is not JSON (text/html); is this the gateway's URL?\n`,
    });
  });

  it("a redirect is not followed (it could carry the key elsewhere)", async () => {
    api.raw = { status: 301, contentType: "text/plain", body: "" };
    const result = await cli(["whoami"], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("HTTP 301: redirected");
    expect(api.requests).toHaveLength(1);
  });

  it("a gateway that does not answer in time", async () => {
    const silent = createServer(() => {});
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      let stderr = "";
      const code = await runCli(["whoami"], { ...env, MCP_GATEWAY_URL: url }, { stdout: () => {}, stderr: (t) => (stderr += t), timeoutMs: 200 });
      expect(code).toBe(1);
      expect(stderr).toBe(`mcp-gateway: cannot reach the gateway at ${url}/admin/v1/whoami: no answer within 200 ms\n`);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it("usage errors are exit 2 with the command's usage on stderr", async () => {
    const result = await cli(["keys", "create", "bot", "--bogus"], env);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^mcp-gateway: Unknown option '--bogus'/);
    expect(result.stderr).toContain("Usage: mcp-gateway");
    expect(api.requests).toEqual([]);
  });
});

describe("the installed bin", () => {
  function bin(args: string[], childEnv: Record<string, string>, cwd: string): Promise<Run> {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? "", ...childEnv }, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    return new Promise((resolve) => child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr })));
  }

  it("runs init, apply and list as a process, with exit codes", async () => {
    const init = await bin(["init"], {}, dir);
    expect(init.code).toBe(0);
    expect(existsSync(join(dir, "gateway.yaml"))).toBe(true);
    const apply = await bin(["config", "apply", "gateway.yaml"], env, dir);
    expect(apply).toEqual({ code: 0, stdout: "applied gateway.yaml to tenant default: version 3\n", stderr: "" });
    const list = await bin(["keys", "list", "--json"], env, dir);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toHaveProperty("keys");
    const usage = await bin(["nope"], env, dir);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('unknown command "nope"');
    expect((await bin(["--version"], {}, dir)).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
