/**
 * @module Applying a gateway.yaml through the admin API: parse and validate it exactly as the CLI and the
 * connector do, then write it in one D1 batch (a transaction: all or nothing) that bumps the tenant's config
 * version. Every isolate picks the new version up within CONFIG_RECHECK_MS.
 */
import { eq } from "drizzle-orm";
import { sha256Hex } from "../auth/secrets.ts";
import { API_KEY_ID_TAKEN, JWT_ISSUER_TAKEN, configApplyStatements } from "../config/apply.ts";
import { publishConfig } from "../config/publish.ts";
import { utf8Length } from "../link/protocol.ts";
import { parseGatewayConfig, type GatewayConfig } from "../config/schema.ts";

/** The published config is stored in one D1 value (limit 2 MB). */
export const MAX_PUBLISHED_BYTES = 1_500_000;
import type { Database } from "../db/client.ts";
import { tenants } from "../db/schema.ts";
import { log } from "../log.ts";
import { AdminError } from "./errors.ts";

export interface ValidatedConfig {
  config: GatewayConfig;
  digest: string;
  summary: { keys: number; policies: number; servers: number };
}

/** The request body (YAML, or its JSON form) validated, or a 422 listing every problem with its path. */
export async function validatedConfig(text: string): Promise<ValidatedConfig> {
  // The CLI sends the file without what stays on the host (edgeDocument); a full file is accepted as well.
  const parsed = parseGatewayConfig(text, { for: "edge" });
  if (!parsed.ok && parsed.kind === "syntax") throw new AdminError("bad_request", "The body is not YAML (or JSON)", parsed.errors);
  if (!parsed.ok) throw new AdminError("invalid_config", `gateway.yaml is not valid (${parsed.errors.length} problem${parsed.errors.length > 1 ? "s" : ""})`, parsed.errors);
  const { config } = parsed;
  // D1 holds at most 2 MB in one value; defaults make the stored form somewhat larger than the text.
  if (utf8Length(JSON.stringify(publishConfig(config))) > MAX_PUBLISHED_BYTES) {
    throw new AdminError("too_large", `The configuration is too large to store (over ${MAX_PUBLISHED_BYTES} bytes once published); split policies or shorten them`);
  }
  return {
    config,
    digest: await sha256Hex(text),
    summary: { keys: config.auth.keys.length, policies: config.policies.length, servers: config.servers.length },
  };
}

export async function applyConfig(d1: D1Database, validated: ValidatedConfig, now: number): Promise<number> {
  const statements = await configApplyStatements(validated.config, { digest: validated.digest, now });
  let results: D1Result[];
  try {
    results = await d1.batch(statements.map((s) => d1.prepare(s.sql).bind(...s.params)));
  } catch (error) {
    const message = (error as Error).message;
    log({ event: "config.apply_failed", tenant: validated.config.tenant, detail: message }, "warn");
    if (message.includes(API_KEY_ID_TAKEN)) {
      throw new AdminError("conflict", "A key id in this file belongs to a key created through the admin API; give the file's key another id");
    }
    if (message.includes(JWT_ISSUER_TAKEN)) {
      // Which tenant holds the pair is not this caller's business either.
      throw new AdminError("conflict", "A JWT issuer and audience in this file (auth.jwt.issuers) already belong to another tenant; use an audience of your own");
    }
    if (/UNIQUE constraint failed: api_keys\.key_hash/.test(message)) {
      // Another key (of this or another tenant) has that digest; which one is not this caller's business.
      throw new AdminError("conflict", "A key in this file is already in use by another key; generate a new key for it");
    }
    throw error;
  }
  const version = (results.at(-1)?.results[0] as { config_version?: number } | undefined)?.config_version;
  if (typeof version !== "number") throw new Error("config apply returned no version");
  log({ event: "config.applied", tenant: validated.config.tenant, version });
  return version;
}

export async function appliedConfig(db: Database, tenant: string) {
  const row = await db
    .select({ config: tenants.config, version: tenants.configVersion, digest: tenants.configDigest, appliedAt: tenants.configAppliedAt })
    .from(tenants)
    .where(eq(tenants.id, tenant))
    .get();
  if (!row?.config) throw new AdminError("not_found", "No gateway.yaml has been applied to this tenant yet; use mcp-gateway config apply FILE");
  return {
    tenant,
    version: row.version,
    digest: row.digest,
    appliedAt: row.appliedAt === null ? null : new Date(row.appliedAt).toISOString(),
    config: row.config as unknown as Record<string, unknown>,
  };
}

/** The tenant's applied policies, read fresh (a key is being created against them). */
export async function appliedPolicies(db: Database, tenant: string) {
  const row = await db.select({ config: tenants.config }).from(tenants).where(eq(tenants.id, tenant)).get();
  return row?.config?.policies ?? [];
}
