/**
 * Applying gateway.yaml through PUT /admin/v1/config inside workerd: validation errors named by path with nothing
 * changed, atomic refusal of a key digest already in use, version bumps, the file as the source of truth for the
 * keys it lists (and only those), what of the file reaches D1 (never a server's command, args, env or cwd), and
 * the hot reload of policies and server switches on /mcp within the config recheck interval.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { sha256Hex } from "../../src/auth/secrets.ts";
import {
  adminCall,
  answerEveryRpc,
  echoServer,
  FakeConnector,
  keyEntry,
  mcpAnswer,
  mcpPost,
  PLATFORM_TOKEN,
  rpcRequest,
  seedTenant,
  seedTenantWithAdmin,
} from "./fixtures.ts";

const ADMIN = "/admin/v1";
const secret = () => `gw_${crypto.randomUUID().replace(/-/g, "")}`;
const tool = (name: string, args: Record<string, unknown> = {}) => rpcRequest("tools/call", { name, arguments: args });

const ALLOW_READERS = { id: "readers", roles: ["reader"], rules: [{ id: "readers-all", action: "allow" }] };

/** A seeded tenant (version 1) with a consumer key, an admin key and a connector serving `servers`. */
async function tenant(options: { servers?: unknown[]; policies?: unknown[]; connected?: ReturnType<typeof echoServer>[] } = {}) {
  const seeded = await seedTenantWithAdmin({
    ...(options.servers ? { servers: options.servers } : {}),
    ...(options.policies ? { policies: options.policies } : {}),
  });
  const { consumerKey, adminKey } = seeded;
  let connector: FakeConnector | undefined;
  if (options.connected) {
    connector = await FakeConnector.connect(seeded.connectorToken);
    await connector.hello(options.connected);
  }
  const adminEntry = await keyEntry("admin", adminKey, ["admin"]);
  const consumerEntry = await keyEntry("consumer", consumerKey, ["reader"]);
  /** This tenant's gateway.yaml: the two seeded keys (so the admin keeps access) unless `keys` replaces the consumer's. */
  const file = (parts: { keys?: unknown[]; policies?: unknown[]; servers?: unknown[] } = {}) =>
    stringify({
      tenant: seeded.tenant,
      auth: { keys: [adminEntry, ...(parts.keys ?? [consumerEntry])] },
      servers: parts.servers ?? [],
      policies: parts.policies ?? [ALLOW_READERS],
    });
  return { ...seeded, consumerKey, adminKey, connector, file, consumerEntry };
}

type Tenant = Awaited<ReturnType<typeof tenant>>;

const apply = (t: Tenant, text: string) => adminCall("PUT", `${ADMIN}/config`, t.adminKey, text);

/** What an apply could change: the applied config and the keys, as the admin API shows them. */
async function snapshot(t: Tenant) {
  const config = await adminCall("GET", `${ADMIN}/config`, t.adminKey);
  const keys = await adminCall("GET", `${ADMIN}/keys`, t.adminKey);
  expect([config.status, keys.status]).toEqual([200, 200]);
  const hashes = await env.DB.prepare("SELECT id, key_hash, enabled, roles FROM api_keys WHERE tenant_id = ? ORDER BY id").bind(t.tenant).all();
  return { config: config.body, keys: keys.body, rows: hashes.results };
}

async function mcpStatus(apiKey: string): Promise<number> {
  const response = await mcpPost(rpcRequest("tools/list"), apiKey);
  await response.body?.cancel();
  return response.status;
}

describe("an invalid file is refused with 422 naming each path, and changes nothing", () => {
  const invalid: { label: string; change: (t: Tenant) => string; detail: string | RegExp }[] = [
    {
      label: "a rule action that is not allow or deny",
      change: (t) => t.file({ policies: [{ id: "readers", roles: ["reader"], rules: [{ action: "permit" }] }] }),
      detail: 'policies[0].rules[0].action: expected "allow" | "deny", got "permit"',
    },
    {
      label: "an unknown top-level key",
      change: (t) => `${t.file()}polices: []\n`,
      detail: '(top level): unknown key "polices"',
    },
    {
      label: "a rule naming a server the file does not declare",
      change: (t) => t.file({ policies: [{ id: "readers", roles: ["reader"], rules: [{ server: "ghost", action: "allow" }] }] }),
      detail: /^policies\[0\]\.rules\[0\]\.server: no server "ghost" in servers/,
    },
    {
      label: "a key with a role no policy grants",
      change: (t) => t.file({ keys: [{ ...t.consumerEntry, roles: ["raeder"] }] }),
      detail: /^auth\.keys\[1\]\.roles\[0\]: no policy grants the role "raeder"/,
    },
    {
      label: "a server taking the gateway's reserved id",
      change: (t) => t.file({ servers: [{ id: "gateway", command: "node" }] }),
      detail: /^servers\[0\]\.id: "gateway" is reserved/,
    },
    {
      label: "a server timeout of the wrong type",
      change: (t) => t.file({ servers: [{ id: "crm", command: "node", timeout: "soon" }] }),
      detail: "servers[0].timeout: expected number, got a string",
    },
  ];

  it.each(invalid)("$label", async ({ change, detail }) => {
    const t = await tenant();
    const before = await snapshot(t);
    const answer = await apply(t, change(t));
    expect(answer.status).toBe(422);
    expect(answer.body.error.code).toBe("invalid_config");
    expect(answer.body.error.details).toContainEqual(typeof detail === "string" ? detail : expect.stringMatching(detail));
    expect(await snapshot(t)).toEqual(before);
    expect(before.config.version).toBe(1);
    expect(await mcpStatus(t.consumerKey)).toBe(200);
    // Validation alone says the same.
    const validated = await adminCall("POST", `${ADMIN}/config/validate`, t.adminKey, change(t));
    expect(validated.status).toBe(422);
    expect(validated.body.error.details).toEqual(answer.body.error.details);
  });

  it("a malformed key is named by path and never echoed", async () => {
    const t = await tenant();
    const before = await snapshot(t);
    const answer = await apply(t, t.file({ keys: [{ id: "short", key: "gw_tooShortKey", name: "s", consumerId: "agent-1", roles: ["reader"] }] }));
    expect(answer.status).toBe(422);
    expect(answer.body.error.details).toContain("auth.keys[1].key: must be at least 16 characters");
    expect(answer.text).not.toContain("gw_tooShortKey");
    expect(await snapshot(t)).toEqual(before);
  });
});

describe("a key digest already in use is refused with 409, atomically", () => {
  it.each(["key", "keyHash"] as const)("another tenant's key given as %s: nothing of this tenant changes", async (form) => {
    const other = await tenant();
    const t = await tenant();
    const api = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { id: "api-made", name: "api", consumerId: "agent-1", roles: ["reader"] });
    expect(api.status).toBe(201);
    const before = await snapshot(t);
    const stolen = form === "key" ? { key: other.consumerKey } : { keyHash: await sha256Hex(other.consumerKey) };
    // The file would also drop the consumer key, add a new one and replace the policies: all or nothing.
    const answer = await apply(
      t,
      t.file({
        keys: [
          { id: "fresh", key: secret(), name: "fresh", consumerId: "agent-2", roles: ["writer"] },
          { id: "stolen", ...stolen, name: "stolen", consumerId: "agent-3", roles: ["writer"] },
        ],
        policies: [{ id: "writers", roles: ["writer"], rules: [{ action: "deny" }] }],
      }),
    );
    expect(answer.status).toBe(409);
    expect(answer.body.error.code).toBe("conflict");
    expect(answer.text).not.toContain(other.tenant);
    expect(await snapshot(t)).toEqual(before);
    expect(await mcpStatus(t.consumerKey)).toBe(200);
    expect(await mcpStatus(api.body.key)).toBe(200);
    const owners = await env.DB.prepare("SELECT tenant_id, id FROM api_keys WHERE key_hash = ?").bind(await sha256Hex(other.consumerKey)).all();
    expect(owners.results).toEqual([{ tenant_id: other.tenant, id: "consumer" }]);
    expect(await mcpStatus(other.consumerKey)).toBe(200);
  });
});

describe("a valid file", () => {
  it("bumps the version on every apply (1, 2, 3) and answers with the file's digest", async () => {
    const id = `fresh-${crypto.randomUUID().slice(0, 8)}`;
    const texts = [1, 2, 3].map((n) => stringify({ tenant: id, policies: [{ id: `p${n}`, roles: ["reader"], rules: [{ action: "allow" }] }] }));
    for (const [i, text] of texts.entries()) {
      const answer = await adminCall("PUT", `${ADMIN}/config`, PLATFORM_TOKEN, text);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({
        tenant: id,
        version: i + 1,
        digest: await sha256Hex(text),
        appliedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        summary: { keys: 0, policies: 1, servers: 0 },
      });
    }
    const config = await adminCall("GET", `${ADMIN}/config?tenant=${id}`, PLATFORM_TOKEN);
    expect(config.body).toMatchObject({ tenant: id, version: 3, digest: await sha256Hex(texts[2] as string) });
    expect(config.body.config.policies.map((p: { id: string }) => p.id)).toEqual(["p3"]);
  });

  it("a tenant admin's apply continues the seeded version", async () => {
    const t = await tenant();
    expect((await apply(t, t.file())).body.version).toBe(2);
    expect((await apply(t, t.file())).body.version).toBe(3);
    expect((await adminCall("GET", `${ADMIN}/config`, t.adminKey)).body.version).toBe(3);
  });

  it("validate answers ok with the summary and applies nothing", async () => {
    const t = await tenant();
    const answer = await adminCall("POST", `${ADMIN}/config/validate`, t.adminKey, t.file({ policies: [], keys: [] }));
    expect(answer).toMatchObject({ status: 200, body: { ok: true, tenant: t.tenant, summary: { keys: 1, policies: 0, servers: 0 } } });
    expect((await adminCall("GET", `${ADMIN}/config`, t.adminKey)).body.version).toBe(1);
    expect(await mcpStatus(t.consumerKey)).toBe(200);
  });

  it("is accepted as JSON too (docs/admin-api.md: gateway.yaml text or its JSON)", async () => {
    const t = await tenant();
    const document = { tenant: t.tenant, auth: { keys: [{ id: "admin", keyHash: await sha256Hex(t.adminKey), name: "admin", consumerId: "agent-1", roles: ["admin"] }] } };
    const validated = await adminCall("POST", `${ADMIN}/config/validate`, t.adminKey, document);
    expect(validated.status).toBe(200);
    const applied = await adminCall("PUT", `${ADMIN}/config`, t.adminKey, document);
    expect(applied.status).toBe(200);
    expect(applied.body.version).toBe(2);
  });

  it("deletes config-sourced keys the file no longer lists, leaves API-created keys alone, and restores the keys it lists", async () => {
    const t = await tenant();
    const api = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { id: "api-made", name: "api", consumerId: "agent-9", roles: ["reader"] });
    expect(api.status).toBe(201);
    const freshKey = secret();
    const fresh = { id: "fresh", key: freshKey, name: "fresh", consumerId: "agent-2", roles: ["reader"] };
    const applied = await apply(t, t.file({ keys: [fresh] }));
    expect(applied.status).toBe(200);
    const keys = (await adminCall("GET", `${ADMIN}/keys`, t.adminKey)).body.keys;
    expect(keys.map((k: { id: string; source: string; enabled: boolean }) => [k.id, k.source, k.enabled])).toEqual([
      ["admin", "config", true],
      ["api-made", "api", true],
      ["fresh", "config", true],
    ]);
    expect(await mcpStatus(t.consumerKey)).toBe(401);
    expect(await mcpStatus(api.body.key)).toBe(200);
    expect(await mcpStatus(freshKey)).toBe(200);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM api_keys WHERE tenant_id = ? AND id = 'consumer'").bind(t.tenant).first("n")).toBe(0);

    // A revocation outlives re-applies of the same file: a leaked key never comes back because someone applied
    // the unchanged file again. A new digest for the same id in the file is a new key, and works.
    expect((await adminCall("DELETE", `${ADMIN}/keys/fresh`, t.adminKey)).status).toBe(200);
    expect(await mcpStatus(freshKey)).toBe(401);
    expect((await apply(t, t.file({ keys: [fresh] }))).status).toBe(200);
    expect(await mcpStatus(freshKey)).toBe(401);
    const reissuedKey = secret();
    expect((await apply(t, t.file({ keys: [{ ...fresh, key: reissuedKey }] }))).status).toBe(200);
    expect(await mcpStatus(reissuedKey)).toBe(200);
    expect(await mcpStatus(freshKey)).toBe(401);
    expect(await mcpStatus(api.body.key)).toBe(200);
  });
});

describe("API-created keys are never touched by an apply", () => {
  it("a file listing an API-created key's id is refused with 409, and that key keeps its secret and source", async () => {
    const t = await tenant();
    const api = await adminCall("POST", `${ADMIN}/keys`, t.adminKey, { id: "ci-bot", name: "CI bot", consumerId: "ci", roles: ["reader"] });
    expect(api.status).toBe(201);
    const before = await snapshot(t);
    const answer = await apply(t, t.file({ keys: [t.consumerEntry, { id: "ci-bot", key: secret(), name: "taken over", consumerId: "agent-1", roles: ["reader"] }] }));
    expect(answer.status).toBe(409);
    expect(answer.body.error.code).toBe("conflict");
    expect(await snapshot(t)).toEqual(before);
    expect(await mcpStatus(api.body.key)).toBe(200);
  });
});

describe("what reaches the edge", () => {
  const SECRETS = ["sk_live_9f8e7d6c5b4a3210", "/opt/crm/bin/crm-server", "--token-file=/etc/crm/private-token", "/srv/crm-private-dir", "CRM_API_TOKEN"];

  it("GET config and D1 hold no server command, args, env or cwd", async () => {
    const t = await tenant();
    const text = t.file({
      servers: [
        {
          id: "crm",
          name: "CRM",
          command: "/opt/crm/bin/crm-server",
          args: ["--token-file=/etc/crm/private-token"],
          env: { CRM_API_TOKEN: "sk_live_9f8e7d6c5b4a3210" },
          cwd: "/srv/crm-private-dir",
          timeout: 5000,
          prefix: "c",
        },
      ],
    });
    const applied = await apply(t, text);
    expect(applied.status).toBe(200);
    const validated = await adminCall("POST", `${ADMIN}/config/validate`, t.adminKey, text);
    const config = await adminCall("GET", `${ADMIN}/config`, t.adminKey);
    expect(config.body.config.servers).toEqual([{ id: "crm", name: "CRM", prefix: "c", enabled: true, timeout: 5000 }]);
    const servers = await adminCall("GET", `${ADMIN}/servers`, t.adminKey);
    const tables = (await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all()).results.map(
      (r) => r.name as string,
    );
    expect(tables).toEqual(expect.arrayContaining(["tenants", "api_keys", "connectors", "servers", "consumers"]));
    const dump = JSON.stringify(await Promise.all(tables.map((name) => env.DB.prepare(`SELECT * FROM "${name}"`).all())));
    for (const value of SECRETS) {
      expect(dump, value).not.toContain(value);
      for (const answer of [applied, validated, config, servers]) expect(answer.text, value).not.toContain(value);
    }
  });
});

describe("hot reload on /mcp", () => {
  it("a new policy takes effect within the recheck interval, naming its rule", async () => {
    const t = await tenant({
      servers: [{ id: "crm", command: "node" }],
      policies: [{ id: "crm-users", roles: ["reader"], rules: [{ id: "allow-echo", server: "crm", tool: "echo", action: "allow" }] }],
      connected: [echoServer("crm")],
    });
    const stop = answerEveryRpc(t.connector as FakeConnector, { content: [{ type: "text", text: "relayed" }] });
    const allowed = await mcpAnswer(tool("crm__echo"), t.consumerKey);
    expect(allowed.result.content[0].text).toBe("relayed");

    const applied = await apply(
      t,
      t.file({
        servers: [{ id: "crm", command: "node" }],
        policies: [
          { id: "crm-users", roles: ["reader"], rules: [{ id: "allow-echo", server: "crm", tool: "echo", action: "allow" }] },
          { id: "lockdown", roles: ["reader"], rules: [{ id: "no-echo", server: "crm", tool: "echo", action: "deny" }] },
        ],
      }),
    );
    expect(applied.status).toBe(200);
    await expect.poll(async () => (await mcpAnswer(tool("crm__echo"), t.consumerKey)).error?.data, { timeout: 5000, interval: 100 }).toEqual({
      ruleId: "no-echo",
      policyId: "lockdown",
    });
    const denied = await mcpAnswer(tool("crm__echo"), t.consumerKey);
    expect(denied.error.code).toBe(-32003);
    expect(denied.error.message).toContain("no-echo");
    const listed = await mcpAnswer(rpcRequest("tools/list"), t.consumerKey);
    expect(listed.result.tools.map((x: { name: string }) => x.name)).not.toContain("crm__echo");
    stop();
  });

  it("a server declared enabled: false disappears from every listing and its calls fail", async () => {
    const servers = [
      { id: "crm", command: "node" },
      { id: "docs", command: "node" },
    ];
    const t = await tenant({ servers, connected: [echoServer("crm"), echoServer("docs")] });
    const connector = t.connector as FakeConnector;
    const names = async () => (await mcpAnswer(rpcRequest("tools/list"), t.consumerKey)).result.tools.map((x: { name: string }) => x.name);
    expect(await names()).toEqual(expect.arrayContaining(["crm__echo", "docs__echo"]));

    expect((await apply(t, t.file({ servers: [{ id: "crm", command: "node", enabled: false }, servers[1]] }))).status).toBe(200);
    await expect.poll(names, { timeout: 5000, interval: 100 }).not.toContain("crm__echo");
    expect(await names()).toContain("docs__echo");
    const prompts = await mcpAnswer(rpcRequest("prompts/list"), t.consumerKey);
    expect(prompts.result.prompts.map((p: { name: string }) => p.name)).toEqual(["docs__greet"]);
    const resources = await mcpAnswer(rpcRequest("resources/list"), t.consumerKey);
    expect(resources.result.resources.map((r: { uri: string }) => r.uri)).toEqual(["docs://readme"]);

    for (const request of [
      tool("crm__echo"),
      rpcRequest("prompts/get", { name: "crm__greet" }),
      rpcRequest("resources/read", { uri: "crm://readme" }),
      tool("call", { tool: "crm__echo" }),
    ]) {
      const answer = await mcpAnswer(request, t.consumerKey);
      expect(answer.error?.code, JSON.stringify(request)).toBe(-32602);
    }
    const status = await mcpAnswer(tool("server_status", { server: "crm" }), t.consumerKey);
    expect(status.error?.code).toBe(-32602);
    expect(connector.frames.filter((f) => f.type === "rpc")).toEqual([]);
    const listed = await adminCall("GET", `${ADMIN}/servers`, t.adminKey);
    expect(listed.body.servers.find((s: { id: string }) => s.id === "crm")).toMatchObject({ enabled: false, declared: true });
  });
});
