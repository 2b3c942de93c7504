import { readdirSync, readFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { parseGatewayConfig, type GatewayConfig } from "../../src/config/schema.ts";
import { literal, seedStatements, type SeedConnector } from "../../src/config/seed.ts";
import { API_KEY_ID_TAKEN } from "../../src/config/apply.ts";

const connector: SeedConnector = { id: "local", name: "Local connector", tokenHash: "c".repeat(64) };
const PLAINTEXT = "gw_your_key_here_0123456789";
const HASHED = "ab".repeat(32);

function config(yaml: string): GatewayConfig {
  const result = parseGatewayConfig(yaml);
  if (!result.ok) throw new Error(result.errors.join("; "));
  return result.config;
}

const twoKeys = config(`
tenant: acme
auth:
  keys:
    - { id: key-1, key: ${PLAINTEXT}, name: "Production Agent", consumerId: agent-prod, roles: [reader, writer] }
    - { id: key-2, keyHash: ${HASHED}, name: "O'Brien'); DROP TABLE api_keys;--", consumerId: agent-prod, enabled: false, expiresAt: "2030-01-01T00:00:00Z" }
policies:
  - { id: reader-policy, roles: [reader, writer], rules: [{ tool: "get_*", action: allow }] }
`);

function freshDatabase(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  const dir = new URL("../../migrations/", import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    for (const statement of readFileSync(new URL(file, dir), "utf8").split("--> statement-breakpoint")) {
      if (statement.trim()) db.exec(statement);
    }
  }
  return db;
}

function keys(db: DatabaseSync): unknown[] {
  return db
    .prepare("SELECT tenant_id, id, consumer_id, name, key_hash, roles, enabled, expires_at FROM api_keys ORDER BY tenant_id, id")
    .all()
    .map((row) => ({ ...row }));
}

describe("literal", () => {
  it("doubles single quotes so text cannot break out of the literal", () => {
    expect(literal("O'Brien'); DROP TABLE x;--")).toBe("'O''Brien''); DROP TABLE x;--'");
  });

  it("writes numbers and NULL as they are", () => {
    expect(literal(42)).toBe("42");
    expect(literal(-1.5)).toBe("-1.5");
    expect(literal(null)).toBe("NULL");
    expect(literal("")).toBe("''");
  });

  it("refuses text containing NUL", () => {
    expect(() => literal("a\u0000b")).toThrow(/NUL/);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])("refuses the non-finite number %s", (value) => {
    expect(() => literal(value)).toThrow(/finite/);
  });
});

describe("seedStatements", () => {
  it("stores the sha256 of a plaintext key and never the key itself", async () => {
    const sql = await seedStatements(twoKeys, connector);
    expect(sql).not.toContain(PLAINTEXT);
    expect(sql).toContain(`'${await sha256Hex(PLAINTEXT)}'`);
  });

  it("passes a keyHash through unchanged", async () => {
    expect(await seedStatements(twoKeys, connector)).toContain(`'${HASHED}'`);
  });

  it("escapes quotes in names", async () => {
    expect(await seedStatements(twoKeys, connector)).toContain("'O''Brien''); DROP TABLE api_keys;--'");
  });

  it("deletes only the keys the file itself owns and no longer lists", async () => {
    expect(await seedStatements(twoKeys, connector)).toContain(
      `DELETE FROM api_keys WHERE tenant_id = 'acme' AND source = 'config' AND id NOT IN (SELECT value FROM json_each('["key-1","key-2"]'));`,
    );
  });

  it("writes one statement per line, each ending with a semicolon", async () => {
    const lines = (await seedStatements(twoKeys, connector)).trimEnd().split("\n");
    // API-key guard, tenant, one consumer (shared by both keys), delete, two keys, the tenant's jwt_issuers delete,
    // published config, connector
    expect(lines).toHaveLength(9);
    for (const line of lines) expect(line).toMatch(/;$/);
  });
});

describe("seedStatements against SQLite with the real migration", () => {
  it("creates the tenant, consumer, keys and connector with the right column values", async () => {
    const db = freshDatabase();
    db.exec(await seedStatements(twoKeys, connector));

    expect(db.prepare("SELECT id, name FROM tenants").all().map((r) => ({ ...r }))).toEqual([{ id: "acme", name: "acme" }]);
    expect(db.prepare("SELECT tenant_id, id FROM consumers").all().map((r) => ({ ...r }))).toEqual([
      { tenant_id: "acme", id: "agent-prod" },
    ]);
    expect(keys(db)).toEqual([
      {
        tenant_id: "acme",
        id: "key-1",
        consumer_id: "agent-prod",
        name: "Production Agent",
        key_hash: await sha256Hex(PLAINTEXT),
        roles: '["reader","writer"]',
        enabled: 1,
        expires_at: null,
      },
      {
        tenant_id: "acme",
        id: "key-2",
        consumer_id: "agent-prod",
        name: "O'Brien'); DROP TABLE api_keys;--",
        key_hash: HASHED,
        roles: "[]",
        enabled: 0,
        expires_at: Date.UTC(2030, 0, 1),
      },
    ]);
    expect(db.prepare("SELECT tenant_id, id, name, token_hash, enabled FROM connectors").all().map((r) => ({ ...r }))).toEqual([
      { tenant_id: "acme", id: "local", name: "Local connector", token_hash: "c".repeat(64), enabled: 1 },
    ]);
  });

  it("is idempotent: running it twice leaves the same rows", async () => {
    const db = freshDatabase();
    const sql = await seedStatements(twoKeys, connector);
    db.exec(sql);
    const once = keys(db);
    db.exec(sql);
    expect(keys(db)).toEqual(once);
    expect(db.prepare("SELECT count(*) AS n FROM connectors").get()).toEqual({ n: 1 });
  });

  it("updates changed keys and deletes dropped ones without touching other tenants", async () => {
    const db = freshDatabase();
    db.exec(await seedStatements(twoKeys, connector));
    db.exec(
      await seedStatements(
        config(`tenant: other\nauth:\n  keys:\n    - { id: key-1, keyHash: ${"e".repeat(64)}, name: Other, consumerId: c }\n`),
        { id: "local", name: "Other connector", tokenHash: "d".repeat(64) },
      ),
    );
    db.exec(
      await seedStatements(
        config(`tenant: acme\nauth:\n  keys:\n    - { id: key-1, key: ${PLAINTEXT}, name: Renamed, consumerId: agent-prod, roles: [admin] }\n`),
        connector,
      ),
    );
    expect(keys(db)).toMatchObject([
      { tenant_id: "acme", id: "key-1", name: "Renamed", roles: '["admin"]', enabled: 1 },
      { tenant_id: "other", id: "key-1", name: "Other" },
    ]);
  });

  it("refuses, changing nothing, a file that lists the id of a key created through the admin API", async () => {
    const db = freshDatabase();
    db.exec(await seedStatements(twoKeys, connector));
    db.exec(`INSERT INTO api_keys (tenant_id, id, consumer_id, name, key_hash, source) VALUES ('acme', 'api-key', 'agent-prod', 'made by the API', '${"f".repeat(64)}', 'api')`);
    const before = keys(db);
    const takeover = config(`tenant: acme\nauth:\n  keys:\n    - { id: api-key, keyHash: ${"b".repeat(64)}, name: Mine now, consumerId: agent-prod }\n`);
    db.exec("BEGIN");
    const sql = await seedStatements(takeover, connector);
    expect(() => db.exec(sql)).toThrow(API_KEY_ID_TAKEN);
    db.exec("ROLLBACK");
    expect(keys(db)).toEqual(before);
  });

  it("leaves keys created through the admin API alone, and bumps the config version on every apply", async () => {
    const db = freshDatabase();
    db.exec(await seedStatements(twoKeys, connector));
    db.exec(`INSERT INTO api_keys (tenant_id, id, consumer_id, name, key_hash, source) VALUES ('acme', 'api-key', 'agent-prod', 'made by the API', '${"f".repeat(64)}', 'api')`);
    db.exec(await seedStatements(config("tenant: acme\n"), connector));
    expect(keys(db).map((k) => (k as { id: string }).id)).toEqual(["api-key"]);
    expect(db.prepare("SELECT config_version FROM tenants WHERE id = 'acme'").get()).toEqual({ config_version: 2 });
  });

  it("publishes the file without any server's command, args, env or cwd", async () => {
    const db = freshDatabase();
    const withServer = config(
      `tenant: acme\nservers:\n  - { id: crm, command: /opt/secret-bin, args: [--token, s3cr3t-arg], env: { API_TOKEN: s3cr3t-env }, cwd: /srv/private, prefix: kb }\n`,
    );
    db.exec(await seedStatements(withServer, connector, "9".repeat(64)));
    const row = db.prepare("SELECT config, config_digest FROM tenants WHERE id = 'acme'").get() as { config: string; config_digest: string };
    expect(row.config_digest).toBe("9".repeat(64));
    expect(JSON.parse(row.config).servers).toEqual([{ id: "crm", prefix: "kb", enabled: true, timeout: 60_000 }]);
    for (const secret of ["secret-bin", "s3cr3t-arg", "s3cr3t-env", "/srv/private", "API_TOKEN"]) expect(row.config).not.toContain(secret);
  });

  it("deletes every key of the tenant when the file lists none", async () => {
    const db = freshDatabase();
    db.exec(await seedStatements(twoKeys, connector));
    db.exec(await seedStatements(config("tenant: acme\n"), connector));
    expect(keys(db)).toEqual([]);
  });

  // Regression: with the DELETE after the INSERTs, a renamed key tripped the UNIQUE index on key_hash.
  it("lets a key's id be renamed while keeping the same key", async () => {
    const db = freshDatabase();
    db.exec(await seedStatements(twoKeys, connector));
    const renamed = config(`tenant: acme\nauth:\n  keys:\n    - { id: prod, key: ${PLAINTEXT}, name: P, consumerId: agent-prod }\n`);
    db.exec(await seedStatements(renamed, connector));
    expect(keys(db)).toMatchObject([{ id: "prod", key_hash: await sha256Hex(PLAINTEXT) }]);
  });
});
