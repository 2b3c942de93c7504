/**
 * @module The D1 statements that make a gateway.yaml's tenant, consumers and API keys (and one connector) true in
 * a local database: what `npm start` and the end-to-end tests run through `wrangler d1 execute`.
 *
 * Keys given in the seed's plaintext form are hashed here; only digests reach the database (decision D5). The file
 * is the source of truth for its tenant: keys it no longer lists are deleted.
 */
import { sha256Hex } from "../auth/secrets.ts";
import type { GatewayConfig } from "./schema.ts";

export interface SeedConnector {
  id: string;
  name: string;
  /** SHA-256 hex of the connector token (the token itself stays with the connector process). */
  tokenHash: string;
}

/** SQL text, one statement per line, with every value inlined as an escaped literal. */
export async function seedStatements(config: GatewayConfig, connector: SeedConnector): Promise<string> {
  const tenant = config.tenant;
  const lines: string[] = [];
  const insert = (table: string, row: Record<string, SqlValue>, conflict: string) => {
    const columns = Object.keys(row);
    lines.push(
      `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map((c) => literal(row[c] ?? null)).join(", ")}) ${conflict};`,
    );
  };

  insert("tenants", { id: tenant, name: tenant }, "ON CONFLICT(id) DO NOTHING");
  const consumers = new Set(config.auth.keys.map((k) => k.consumerId));
  for (const consumer of consumers) {
    insert("consumers", { tenant_id: tenant, id: consumer, name: consumer }, "ON CONFLICT(tenant_id, id) DO NOTHING");
  }
  // Delete first: a key renamed in the file keeps its digest, which is unique.
  const keyIds = config.auth.keys.map((k) => literal(k.id)).join(", ");
  lines.push(`DELETE FROM api_keys WHERE tenant_id = ${literal(tenant)}${keyIds ? ` AND id NOT IN (${keyIds})` : ""};`);
  for (const key of config.auth.keys) {
    const keyHash = key.keyHash ?? (await sha256Hex(key.key as string));
    insert(
      "api_keys",
      {
        tenant_id: tenant,
        id: key.id,
        consumer_id: key.consumerId,
        name: key.name,
        key_hash: keyHash,
        roles: JSON.stringify(key.roles),
        enabled: key.enabled ? 1 : 0,
        expires_at: key.expiresAt ? Date.parse(key.expiresAt) : null,
      },
      "ON CONFLICT(tenant_id, id) DO UPDATE SET consumer_id = excluded.consumer_id, name = excluded.name, key_hash = excluded.key_hash, roles = excluded.roles, enabled = excluded.enabled, expires_at = excluded.expires_at",
    );
  }
  insert(
    "connectors",
    { tenant_id: tenant, id: connector.id, name: connector.name, token_hash: connector.tokenHash, enabled: 1 },
    "ON CONFLICT(tenant_id, id) DO UPDATE SET name = excluded.name, token_hash = excluded.token_hash, enabled = 1",
  );
  return lines.join("\n") + "\n";
}

type SqlValue = string | number | null;

/** An SQLite literal: numbers as they are, text single-quoted with quotes doubled, NUL refused. */
export function literal(value: SqlValue): string {
  if (value === null) return "NULL";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  if (value.includes("\u0000")) throw new Error("text with a NUL character cannot be stored");
  return `'${value.replace(/'/g, "''")}'`;
}
