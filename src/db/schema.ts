/**
 * @module The D1 schema (drizzle): the gateway's configuration store. SQL migrations in migrations/ are generated
 * from this file with `npm run db:generate`; every table and column is described in docs/storage.md.
 *
 * Secrets are never stored: API keys and connector tokens are kept as SHA-256 digests only.
 */
import { sql } from "drizzle-orm";
import { foreignKey, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { PublishedConfig } from "../config/publish.ts";
import { LATENCY_BUCKET_COUNT } from "../metering/histogram.ts";

const createdAt = () =>
  integer("created_at", { mode: "number" })
    .notNull()
    .default(sql`(unixepoch('subsec') * 1000)`);

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: createdAt(),
  /**
   * The tenant's applied gateway.yaml as published to the edge (JSON of {@link PublishedConfig}): policies, server
   * declarations without command/args/env/cwd, and the other sections. NULL until a file is applied: no policy
   * then, so every call is denied (default deny).
   */
  config: text("config", { mode: "json" }).$type<PublishedConfig>(),
  /** Bumped by every apply; the Worker's per-isolate policy cache re-reads the config when it moves. */
  configVersion: integer("config_version", { mode: "number" }).notNull().default(0),
  /** SHA-256 hex of the applied file's text, so an operator can tell which file is live. */
  configDigest: text("config_digest"),
  /** Epoch milliseconds of the last apply. */
  configAppliedAt: integer("config_applied_at", { mode: "number" }),
});

/** An agent or application that calls tools; the unit of limits, usage and audit. */
export const consumers = sqliteTable(
  "consumers",
  {
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: text("id").notNull(),
    name: text("name").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").notNull(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    consumerId: text("consumer_id").notNull(),
    name: text("name").notNull(),
    /** Lowercase hex SHA-256 of the whole key; the key itself is shown once and never stored. */
    keyHash: text("key_hash").notNull(),
    /** JSON array of role names. */
    roles: text("roles", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    /** Epoch milliseconds; null = never expires. */
    expiresAt: integer("expires_at", { mode: "number" }),
    /**
     * `config`: listed in the applied gateway.yaml, which stays its source of truth (an apply rewrites or deletes
     * it). `api`: created through the admin API; applying a file never touches it.
     */
    source: text("source", { enum: ["config", "api"] }).notNull().default("api"),
    /**
     * Epoch milliseconds of an administrator's revocation, or null. A revoked key stays revoked whatever an apply
     * of a file listing it says, for as long as the file keeps the same digest: a leaked key never comes back by a
     * re-apply; giving the key a new digest in the file issues a new key.
     */
    revokedAt: integer("revoked_at", { mode: "number" }),
    createdAt: createdAt(),
    /**
     * Rotation grace: the digest of the key this one replaced, which keeps working until `previous_expires_at`
     * (epoch ms). NULL when there is no grace running.
     */
    previousKeyHash: text("previous_key_hash"),
    previousExpiresAt: integer("previous_expires_at", { mode: "number" }),
    /** Epoch ms of the key's last accepted use, written at most once a minute per key (not on every call). */
    lastUsedAt: integer("last_used_at", { mode: "number" }),
    /** JSON `{allow: string[], deny: string[]}` of CIDRs for this key (on top of the tenant's ipFilter), or NULL. */
    ipFilter: text("ip_filter", { mode: "json" }).$type<{ allow: string[]; deny: string[] }>(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex("api_keys_key_hash").on(t.keyHash),
    uniqueIndex("api_keys_previous_key_hash").on(t.previousKeyHash),
    foreignKey({ columns: [t.tenantId, t.consumerId], foreignColumns: [consumers.tenantId, consumers.id] }).onDelete("cascade"),
  ],
);

/** A connector process group (one id, any number of replicas) dialling in for one tenant. */
export const connectors = sqliteTable(
  "connectors",
  {
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: text("id").notNull(),
    name: text("name").notNull(),
    /** Lowercase hex SHA-256 of the connector token. */
    tokenHash: text("token_hash").notNull(),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] }), uniqueIndex("connectors_token_hash").on(t.tokenHash)],
);

/**
 * An MCP server as its connector last reported it. The connector owns command, args and env (they never reach the
 * edge); the edge keeps identity, naming, health and the catalog agents are shown.
 */
export const servers = sqliteTable(
  "servers",
  {
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: text("id").notNull(),
    connectorId: text("connector_id").notNull(),
    name: text("name").notNull(),
    /** null = names are `<id>__<name>`; "" = bare upstream names; else `<prefix>__<name>`. */
    prefix: text("prefix"),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    /** starting | healthy | unhealthy | stopped | disconnected */
    status: text("status").notNull().default("disconnected"),
    /** Why the server is not healthy, as its connector reported it (crash loop, failed start). */
    statusDetail: text("status_detail"),
    /** Which of its tools/prompts/resources are withheld because an older server already has the name, and why. */
    conflicts: text("conflicts"),
    /** JSON ServerCatalog (tools, resources, resourceTemplates, prompts) as last reported. */
    catalog: text("catalog", { mode: "json" }).notNull().default(sql`'{"tools":[],"resources":[],"resourceTemplates":[],"prompts":[]}'`),
    /**
     * Bumped by every write to the row: with the row count it stamps a tenant's server set, so a Worker isolate can
     * keep the tenant's catalog and re-read it only when the stamp moves. Every writer must bump it.
     */
    version: integer("version", { mode: "number" }).notNull().default(0),
    /** First time any connector reported this server: older servers keep their names when names clash. */
    registeredAt: integer("registered_at", { mode: "number" }).notNull(),
    updatedAt: integer("updated_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] }), index("servers_connector").on(t.tenantId, t.connectorId)],
);

/**
 * The D1 copy of every tenant's audit chain (docs/audit-chain.md), shipped in batches from the tenant's AuditLog
 * Durable Object, which alone writes the chain; `INSERT OR IGNORE` on (tenant, seq) makes a re-shipped batch
 * harmless. Column for field: every hashed field is stored as written, `arguments` and `result` as JSON text.
 * Queries, stats, exports and verification read this table; nothing but pruning (retention) ever deletes from it.
 */
export const auditEntries = sqliteTable(
  "audit_entries",
  {
    tenantId: text("tenant_id").notNull(),
    seq: integer("seq", { mode: "number" }).notNull(),
    timestamp: integer("timestamp", { mode: "number" }).notNull(),
    consumer: text("consumer"),
    keyId: text("key_id"),
    clientIp: text("client_ip"),
    requestId: text("request_id").notNull(),
    sessionId: text("session_id"),
    server: text("server"),
    method: text("method").notNull(),
    tool: text("tool"),
    /** JSON text of the redacted arguments (`null` as the JSON text "null"). */
    arguments: text("arguments").notNull(),
    /** JSON text of the redacted, possibly truncated result. */
    result: text("result").notNull(),
    resultDigest: text("result_digest"),
    status: text("status").notNull(),
    errorCode: integer("error_code", { mode: "number" }),
    errorMessage: text("error_message"),
    latencyMs: integer("latency_ms", { mode: "number" }).notNull(),
    ruleId: text("rule_id"),
    /** UTF-8 bytes of the call's params as the agent sent them (metering). */
    requestBytes: integer("request_bytes", { mode: "number" }).notNull().default(0),
    /** UTF-8 bytes of the result or error as the agent received it (metering). */
    responseBytes: integer("response_bytes", { mode: "number" }).notNull().default(0),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.seq] }),
    index("audit_entries_time").on(t.tenantId, t.timestamp),
    index("audit_entries_consumer").on(t.tenantId, t.consumer, t.timestamp),
    index("audit_entries_tool").on(t.tenantId, t.server, t.tool, t.timestamp),
    index("audit_entries_status").on(t.tenantId, t.status, t.timestamp),
  ],
);

/** Signed checkpoints of the audit chains (src/audit/checkpoint.ts), shipped with the entries. */
export const auditCheckpoints = sqliteTable(
  "audit_checkpoints",
  {
    tenantId: text("tenant_id").notNull(),
    seq: integer("seq", { mode: "number" }).notNull(),
    hash: text("hash").notNull(),
    /** Epoch milliseconds of the signature. */
    time: integer("time", { mode: "number" }).notNull(),
    keyId: text("key_id").notNull(),
    signature: text("signature").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.seq, t.keyId] })],
);

/** One latency-bucket count column per bucket of src/metering/histogram.ts (`latency_bucket_0` … `_12`). */
const latencyBucketColumns = Object.fromEntries(
  Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => [`latencyBucket${i}`, integer(`latency_bucket_${i}`, { mode: "number" }).notNull().default(0)]),
) as Record<`latencyBucket${number}`, ReturnType<typeof integer>>;

/**
 * Usage per tenant, consumer, server, tool and UTC hour: a projection of the audit chain, folded from the very
 * entries the AuditLog object ships to D1, in the same D1 batch (so usage always equals what the audit log says).
 * Absent consumer/server/tool are stored as "" (a primary key column cannot be NULL in a useful way).
 */
export const usageHourly = sqliteTable(
  "usage_hourly",
  {
    tenantId: text("tenant_id").notNull(),
    /** Epoch milliseconds of the UTC hour's start. */
    hour: integer("hour", { mode: "number" }).notNull(),
    consumer: text("consumer").notNull(),
    server: text("server").notNull(),
    tool: text("tool").notNull(),
    calls: integer("calls", { mode: "number" }).notNull().default(0),
    ok: integer("ok", { mode: "number" }).notNull().default(0),
    errors: integer("errors", { mode: "number" }).notNull().default(0),
    denied: integer("denied", { mode: "number" }).notNull().default(0),
    limited: integer("limited", { mode: "number" }).notNull().default(0),
    unknown: integer("unknown", { mode: "number" }).notNull().default(0),
    unauthenticated: integer("unauthenticated", { mode: "number" }).notNull().default(0),
    latencySumMs: integer("latency_sum_ms", { mode: "number" }).notNull().default(0),
    requestBytes: integer("request_bytes", { mode: "number" }).notNull().default(0),
    responseBytes: integer("response_bytes", { mode: "number" }).notNull().default(0),
    ...latencyBucketColumns,
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.hour, t.consumer, t.server, t.tool] }), index("usage_hourly_consumer").on(t.tenantId, t.consumer, t.hour)],
);

/** How far each tenant's chain has been folded into usage_hourly: a re-shipped batch is not counted twice. */
export const usageCursor = sqliteTable("usage_cursor", {
  tenantId: text("tenant_id").primaryKey(),
  /** The last seq folded. */
  seq: integer("seq", { mode: "number" }).notNull(),
});

/**
 * Stripe Billing meter events the gateway has built for a tenant's chargeback (src/metering/stripe.ts), one per
 * (consumer, period, event name): `identifier` is Stripe's idempotency identifier, so an event is sent at most once
 * whatever retries happen; `sent_at` is set once Stripe accepted it.
 */
export const stripeMeterEvents = sqliteTable("stripe_meter_events", {
  identifier: text("identifier").primaryKey(),
  tenantId: text("tenant_id").notNull(),
  /** The event as sent: {event_name, payload: {stripe_customer_id, value}, timestamp, identifier}. */
  event: text("event", { mode: "json" }).notNull(),
  createdAt: createdAt(),
  /** Epoch ms when Stripe accepted it; null until then. */
  sentAt: integer("sent_at", { mode: "number" }),
});

/**
 * Which tenant a JWT belongs to: each tenant's gateway.yaml `auth.jwt.issuers` entries, written by config apply.
 * An (issuer, audience) pair belongs to one tenant at most, so a token's own `iss` and `aud` name its tenant.
 */
export const jwtIssuers = sqliteTable(
  "jwt_issuers",
  {
    issuer: text("issuer").notNull(),
    audience: text("audience").notNull(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
  },
  (t) => [primaryKey({ columns: [t.issuer, t.audience] }), index("jwt_issuers_tenant").on(t.tenantId)],
);
