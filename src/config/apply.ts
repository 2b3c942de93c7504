/**
 * @module The D1 statements that make a gateway.yaml true for its tenant, as one all-or-nothing batch: the tenant,
 * the consumers its keys name, its keys (the file is the source of truth for the keys it lists, marked
 * `source = 'config'`; keys created through the admin API are never touched), and the published config with a
 * bumped version.
 *
 * Pure, with `?` parameters: the admin API binds them and runs them with `D1Database.batch` (a transaction);
 * `npm start` and `npm run provision` inline them as literals for `wrangler d1 execute --file` (seed.ts).
 */
import { sha256Hex } from "../auth/secrets.ts";
import { publishConfig } from "./publish.ts";
import type { GatewayConfig } from "./schema.ts";

export type SqlValue = string | number | null;

/** The database's error when the guard statement fires: the file lists the id of a key created through the admin API. */
export const API_KEY_ID_TAKEN = "NOT NULL constraint failed: tenants.id";

/**
 * The database's error when the file names an (issuer, audience) pair another tenant already has: the pair is
 * `jwt_issuers`' primary key, so the insert fails and rolls the whole batch back; the caller maps it to a conflict.
 */
export const JWT_ISSUER_TAKEN = "UNIQUE constraint failed: jwt_issuers.issuer, jwt_issuers.audience";

export interface Statement {
  sql: string;
  params: SqlValue[];
}

export interface ApplyOptions {
  /** SHA-256 hex of the file's text, or null when it is not known. */
  digest: string | null;
  /** Epoch milliseconds of the apply. */
  now: number;
}

/**
 * The statements of one apply. The last one returns the tenant's new `config_version` (RETURNING), so the batch's
 * last result says which version went live.
 */
export async function configApplyStatements(config: GatewayConfig, options: ApplyOptions): Promise<Statement[]> {
  const tenant = config.tenant;
  const keyIds = JSON.stringify(config.auth.keys.map((k) => k.id));
  const statements: Statement[] = [
    // A file may not take over a key created through the admin API (its holder would be locked out): SQL has no
    // conditional abort outside triggers, so this inserts a row that violates tenants.id's NOT NULL exactly when
    // the file lists such an id, which fails and rolls back the whole batch; the caller maps it to a conflict.
    {
      sql: "INSERT INTO tenants (id, name) SELECT NULL, ? WHERE EXISTS (SELECT 1 FROM api_keys WHERE tenant_id = ? AND source = 'api' AND id IN (SELECT value FROM json_each(?)))",
      params: ["a file key id taken by an API key", tenant, keyIds],
    },
    { sql: "INSERT INTO tenants (id, name) VALUES (?, ?) ON CONFLICT(id) DO NOTHING", params: [tenant, tenant] },
  ];
  for (const consumer of new Set(config.auth.keys.map((k) => k.consumerId))) {
    statements.push({
      sql: "INSERT INTO consumers (tenant_id, id, name) VALUES (?, ?, ?) ON CONFLICT(tenant_id, id) DO NOTHING",
      params: [tenant, consumer, consumer],
    });
  }
  // Delete first: a key renamed in the file keeps its digest, which is unique. One JSON parameter, because D1
  // binds at most 100 parameters per statement.
  statements.push({
    sql: "DELETE FROM api_keys WHERE tenant_id = ? AND source = 'config' AND id NOT IN (SELECT value FROM json_each(?))",
    params: [tenant, keyIds],
  });
  for (const key of config.auth.keys) {
    statements.push({
      sql:
        "INSERT INTO api_keys (tenant_id, id, consumer_id, name, key_hash, roles, enabled, expires_at, ip_filter, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'config') " +
        "ON CONFLICT(tenant_id, id) DO UPDATE SET consumer_id = excluded.consumer_id, name = excluded.name, key_hash = excluded.key_hash, " +
        "roles = excluded.roles, expires_at = excluded.expires_at, ip_filter = excluded.ip_filter, source = 'config', " +
        // An administrator's revocation outlives re-applies of the same digest; a new digest is a new key.
        "enabled = CASE WHEN api_keys.revoked_at IS NOT NULL AND api_keys.key_hash = excluded.key_hash THEN 0 ELSE excluded.enabled END, " +
        "revoked_at = CASE WHEN api_keys.key_hash = excluded.key_hash THEN api_keys.revoked_at ELSE NULL END",
      params: [
        tenant,
        key.id,
        key.consumerId,
        key.name,
        key.keyHash ?? (await sha256Hex(key.key as string)),
        JSON.stringify(key.roles),
        key.enabled ? 1 : 0,
        key.expiresAt ? Date.parse(key.expiresAt) : null,
        // The key's own CIDR lists as `{allow, deny}` JSON; NULL (no lists of its own) when the file gives none.
        key.ipFilter ? JSON.stringify({ allow: key.ipFilter.allow, deny: key.ipFilter.deny }) : null,
      ],
    });
  }
  // The tenant's JWT issuers: which tenant a token's (iss, aud) names. Its own rows go first, so only a pair held by
  // another tenant can collide with the inserts.
  statements.push({ sql: "DELETE FROM jwt_issuers WHERE tenant_id = ?", params: [tenant] });
  for (const issuer of config.auth.jwt?.issuers ?? []) {
    statements.push({ sql: "INSERT INTO jwt_issuers (issuer, audience, tenant_id) VALUES (?, ?, ?)", params: [issuer.issuer, issuer.audience, tenant] });
  }
  statements.push({
    sql: "UPDATE tenants SET config = ?, config_version = config_version + 1, config_digest = ?, config_applied_at = ? WHERE id = ? RETURNING config_version",
    params: [JSON.stringify(publishConfig(config)), options.digest, options.now, tenant],
  });
  return statements;
}
