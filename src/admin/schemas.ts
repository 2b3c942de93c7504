/**
 * @module The admin API's request and response shapes: zod schemas that validate requests and generate the
 * OpenAPI 3.1 document (`/openapi.json`), so the description can never drift from what is enforced.
 */
import { z } from "@hono/zod-openapi";
import { MAX_ROTATION_GRACE_SECONDS } from "../auth/principal.ts";
import { ID_PATTERN, ID_RULE } from "../ids.ts";
import { ipFilterSchema } from "../auth/ip-filter.ts";
import { SERVER_ID_PATTERN } from "../link/protocol.ts";
import { AUDIT_STATUSES } from "../audit/entry.ts";
import { AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, auditQueryShape } from "../audit/store.ts";
import { MONTH_PATTERN, USAGE_GROUPS } from "../metering/usage-store.ts";

const id = z.string().regex(ID_PATTERN, ID_RULE);
const isoTime = z.iso.datetime({ offset: true });
const role = z.string().min(1).max(64);

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(["bad_request", "unauthenticated", "forbidden", "not_found", "conflict", "too_large", "invalid_config"]),
      message: z.string(),
      details: z.array(z.string()).optional(),
    }),
  })
  .openapi("Error");

export const WhoAmI = z
  .object({
    tenant: z.string().nullable(),
    consumer: z.string().nullable(),
    keyId: z.string().nullable(),
    roles: z.array(z.string()),
    platformAdmin: z.boolean(),
  })
  .openapi("WhoAmI");

const ConfigSummary = z.object({ keys: z.number().int(), policies: z.number().int(), servers: z.number().int() });

export const ConfigValidation = z.object({ ok: z.literal(true), tenant: z.string(), summary: ConfigSummary }).openapi("ConfigValidation");

export const ConfigApplied = z
  .object({ tenant: z.string(), version: z.number().int(), digest: z.string(), appliedAt: isoTime, summary: ConfigSummary })
  .openapi("ConfigApplied");

export const AppliedConfig = z
  .object({
    tenant: z.string(),
    version: z.number().int(),
    digest: z.string().nullable(),
    appliedAt: isoTime.nullable(),
    config: z.record(z.string(), z.unknown()).openapi({ description: "The published config: servers without command, args, env or cwd" }),
  })
  .openapi("AppliedConfig");

export const ApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    consumerId: z.string(),
    roles: z.array(z.string()),
    enabled: z.boolean(),
    expiresAt: isoTime.nullable(),
    createdAt: isoTime,
    revokedAt: isoTime.nullable(),
    source: z.enum(["config", "api"]),
    status: z.enum(["active", "grace", "expired", "revoked", "disabled"]).openapi({
      description: "At the time of the answer: revoked, disabled or expired (refused), grace (a rotated-out secret still works too) or active",
    }),
    lastUsedAt: isoTime.nullable().openapi({ description: "Last accepted use on /mcp, to the minute (written at most once a minute per key); null when never used" }),
    previousExpiresAt: isoTime.nullable().openapi({ description: "Until when the secret a rotation replaced still works; null when no grace is running" }),
  })
  .openapi("ApiKey");

export const ApiKeyWithSecret = ApiKey.extend({ key: z.string().openapi({ description: "The key itself: shown this once, stored only as its SHA-256 digest" }) }).openapi(
  "ApiKeyWithSecret",
);

export const KeyList = z.object({ keys: z.array(ApiKey) }).openapi("KeyList");

export const CreateKey = z
  .strictObject({
    name: z.string().min(1).max(256),
    consumerId: id,
    roles: z.array(role).max(64).default([]),
    expiresAt: isoTime.optional(),
    id: id.optional(),
    ipFilter: ipFilterSchema
      .optional()
      .openapi({ description: "The key's own CIDR allow and deny lists, checked on CF-Connecting-IP together with the tenant's ipFilter" }),
  })
  .openapi("CreateKey");

export const RotateKey = z
  .strictObject({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_ROTATION_GRACE_SECONDS)
      .default(0)
      .openapi({ description: "How long the current secret keeps working next to the new one: 0 (default) stops it at once; at most 604800 (7 days)" }),
  })
  .openapi("RotateKey");

export const Revoked = z.object({ id: z.string(), enabled: z.literal(false) }).openapi("Revoked");

export const Server = z
  .object({
    id: z.string(),
    name: z.string(),
    connectorId: z.string().nullable(),
    prefix: z.string().nullable(),
    enabled: z.boolean(),
    declared: z.boolean().openapi({ description: "Listed in the applied gateway.yaml" }),
    status: z.string(),
    detail: z.string().nullable(),
    tools: z.number().int(),
    prompts: z.number().int(),
    resources: z.number().int(),
    conflicts: z.string().nullable(),
    updatedAt: isoTime.nullable(),
  })
  .openapi("Server");

export const ServerList = z.object({ servers: z.array(Server) }).openapi("ServerList");

export const Connector = z.object({ id: z.string(), name: z.string(), enabled: z.boolean(), createdAt: isoTime }).openapi("Connector");

export const ConnectorWithToken = Connector.extend({
  token: z.string().openapi({ description: "The connector token: shown this once, stored only as its SHA-256 digest" }),
}).openapi("ConnectorWithToken");

export const ConnectorList = z.object({ connectors: z.array(Connector) }).openapi("ConnectorList");

export const CreateConnector = z
  .strictObject({
    id: z.string().regex(SERVER_ID_PATTERN, "must be 1-64 characters of A-Z a-z 0-9 _ . - (no __, no trailing _)"),
    name: z.string().min(1).max(256).optional(),
  })
  .openapi("CreateConnector");

export const IdParam = z.object({ id: id.openapi({ param: { name: "id", in: "path" } }) });

export const TenantQuery = z.object({
  tenant: id.optional().openapi({ param: { name: "tenant", in: "query" }, description: "Required with the platform admin token" }),
});

// ---------------------------------------------------------------------------------------------------------------
// Audit (docs/admin-api.md, docs/audit-chain.md)

const seqParam = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** The filters of entries and stats: unknown query parameters are refused (a typo must not widen the answer). */
export const AuditStatsQuery = z.strictObject({
  ...TenantQuery.shape,
  ...auditQueryShape,
  from: auditQueryShape.from.openapi({ description: "ISO 8601 (Z or an offset) or epoch milliseconds; inclusive" }),
  to: auditQueryShape.to.openapi({ description: "ISO 8601 (Z or an offset) or epoch milliseconds; exclusive" }),
});

export const AuditEntriesQuery = z.strictObject({
  ...AuditStatsQuery.shape,
  limit: z.coerce.number().int().min(1).max(AUDIT_PAGE_MAX).default(AUDIT_PAGE_DEFAULT).openapi({ description: `Entries per page, 1-${AUDIT_PAGE_MAX}` }),
  cursor: z.string().min(1).max(128).optional().openapi({ description: "The previous page's nextCursor" }),
});

export const AuditExportQuery = z
  .strictObject({
    ...TenantQuery.shape,
    format: z.enum(["jsonl", "csv"]).default("jsonl"),
    fromSeq: seqParam.optional().openapi({ description: "JSONL: snapped down to the nearest checkpointed seq before it, so the file verifies on its own" }),
    toSeq: seqParam.optional(),
  })
  .refine((q) => q.fromSeq === undefined || q.toSeq === undefined || q.fromSeq <= q.toSeq, { message: "fromSeq must not be after toSeq", path: ["toSeq"] });

export const AuditVerifyBody = z.strictObject({ fromSeq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional() }).openapi("AuditVerifyRequest");

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const ChainHeadSchema = z.object({ seq: z.number().int(), hash: hex64 }).openapi("AuditChainHead");

export const AuditEntrySchema = z
  .object({
    seq: z.number().int(),
    timestamp: z.number().int().openapi({ description: "Epoch milliseconds" }),
    tenant: z.string(),
    consumer: z.string().nullable(),
    keyId: z.string().nullable(),
    clientIp: z.string().nullable(),
    requestId: z.string(),
    sessionId: z.string().nullable(),
    server: z.string().nullable(),
    method: z.string(),
    tool: z.string().nullable(),
    arguments: z.any().openapi({ description: "The redacted arguments (any JSON)" }),
    result: z.any().openapi({ description: "The redacted, possibly truncated result (any JSON)" }),
    resultDigest: hex64.nullable(),
    status: z.enum(AUDIT_STATUSES),
    errorCode: z.number().int().nullable(),
    errorMessage: z.string().nullable(),
    latencyMs: z.number().int(),
    ruleId: z.string().nullable(),
    requestBytes: z.number().int(),
    responseBytes: z.number().int(),
    prevHash: hex64,
    hash: hex64,
  })
  .openapi("AuditEntry");

export const AuditEntryPage = z
  .object({ entries: z.array(AuditEntrySchema), nextCursor: z.string().nullable().openapi({ description: "Send back as ?cursor= for the next page; null on the last" }) })
  .openapi("AuditEntryPage");

const counted = { count: z.number().int() };
export const AuditStatsSchema = z
  .object({
    total: z.number().int(),
    byStatus: z.object(Object.fromEntries(AUDIT_STATUSES.map((s) => [s, z.number().int()])) as Record<(typeof AUDIT_STATUSES)[number], z.ZodNumber>),
    byServer: z.array(z.object({ server: z.string().nullable(), ...counted })),
    byTool: z.array(z.object({ server: z.string().nullable(), tool: z.string().nullable(), ...counted })),
    byConsumer: z.array(z.object({ consumer: z.string().nullable(), ...counted })),
    latencyMs: z.object({ p50: z.number().int(), p95: z.number().int(), p99: z.number().int(), max: z.number().int() }).nullable(),
  })
  .openapi("AuditStats");

const CheckpointSchema = z
  .object({ tenant: z.string(), seq: z.number().int(), hash: hex64, time: z.number().int(), keyId: z.string(), signature: z.string() })
  .openapi("AuditCheckpoint");

export const AuditHeadSchema = z
  .object({
    tenant: z.string(),
    head: ChainHeadSchema,
    shippedSeq: z.number().int().openapi({ description: "The last seq D1 holds" }),
    failureMode: z.enum(["closed", "open"]),
    checkpoint: CheckpointSchema.nullable(),
    publicKey: z.string().nullable().openapi({ description: "base64url Ed25519 public key that verifies checkpoints; null without a signing key" }),
    keyId: z.string().nullable(),
  })
  .openapi("AuditHead");

export const AuditVerifyLine = z
  .union([
    z.object({ type: z.literal("progress"), verified: z.number().int(), total: z.number().int() }),
    z.object({
      type: z.literal("result"),
      ok: z.literal(true),
      entries: z.number().int(),
      checkpoints: z.number().int(),
      firstSeq: z.number().int().nullable(),
      head: ChainHeadSchema,
      lastCheckpoint: ChainHeadSchema.nullable(),
      uncheckpointed: z.number().int(),
    }),
    z.object({
      type: z.literal("result"),
      ok: z.literal(false),
      failure: z.object({ seq: z.number().int().nullable(), reason: z.string(), message: z.string() }),
      entries: z.number().int(),
      checkpoints: z.number().int(),
    }),
  ])
  .openapi("AuditVerifyLine", { description: "One line of the NDJSON stream: progress lines, then one result line" });

// ---------------------------------------------------------------------------------------------------------------
// Usage, cost and chargeback (docs/admin-api.md, src/metering/)

const usageTime = (description: string) => auditQueryShape.from.openapi({ description });
const monthParam = z.string().regex(MONTH_PATTERN, "must be a calendar month YYYY-MM (UTC)");

export const UsageQuery = z.strictObject({
  ...TenantQuery.shape,
  consumer: id.optional().openapi({ description: "Only this consumer's usage" }),
  from: usageTime("ISO 8601 or epoch ms, rounded down to its UTC hour; default the start of the current month").optional(),
  to: usageTime("ISO 8601 or epoch ms, rounded up to the next UTC hour (exclusive); default the end of the current hour").optional(),
  by: z.enum(USAGE_GROUPS).default("consumer").openapi({ description: "One row per consumer, server, (server, tool) or UTC hour" }),
});

const periodShape = {
  period: monthParam.optional().openapi({ description: "A calendar month, e.g. 2026-11 (instead of from and to)" }),
  from: usageTime("ISO 8601 or epoch ms, rounded down to its UTC hour").optional(),
  to: usageTime("ISO 8601 or epoch ms, rounded up to the next UTC hour (exclusive)").optional(),
};

export const ChargebackQuery = z
  .strictObject({ ...TenantQuery.shape, ...periodShape, format: z.enum(["json", "csv"]).default("json") })
  .refine((q) => q.period === undefined || (q.from === undefined && q.to === undefined), { message: "give period, or from and to, not both", path: ["period"] });

export const StripeQuery = z.strictObject({
  ...TenantQuery.shape,
  period: monthParam.openapi({ description: "The calendar month (it must have ended), e.g. 2026-11" }),
});

const LatencySummary = z.object({
  sum: z.number().int(),
  count: z.number().int().openapi({ description: "Calls in the latency histogram" }),
  p50: z.number().int().nullable(),
  p95: z.number().int().nullable(),
  p99: z.number().int().nullable(),
});

const usageCounts = {
  calls: z.number().int(),
  ok: z.number().int(),
  errors: z.number().int(),
  denied: z.number().int(),
  limited: z.number().int(),
  unknown: z.number().int(),
  unauthenticated: z.number().int(),
  billableCalls: z.number().int().openapi({ description: "ok + errors: the calls that reached their server, which perCall prices" }),
  latencyMs: LatencySummary.openapi({ description: "Percentiles: the upper bound of the histogram bucket (null: no calls, or over 30 s)" }),
  requestBytes: z.number().int(),
  responseBytes: z.number().int(),
  bytes: z.number().int(),
  cost: z.number().openapi({ description: "In the tenant's currency, exact to six decimals" }),
};

export const UsageReportSchema = z
  .object({
    tenant: z.string(),
    from: isoTime,
    to: isoTime,
    by: z.enum(USAGE_GROUPS),
    consumer: z.string().nullable(),
    currency: z.string(),
    rows: z.array(
      z.object({
        consumer: z.string().nullable().optional(),
        server: z.string().nullable().optional(),
        tool: z.string().nullable().optional(),
        hour: isoTime.optional(),
        ...usageCounts,
      }),
    ),
    totals: z.object(usageCounts),
  })
  .openapi("UsageReport");

const ChargebackPeriod = z.object({ from: isoTime, to: isoTime, month: z.string().nullable() });

export const ChargebackSchema = z
  .object({
    tenant: z.string(),
    period: ChargebackPeriod,
    complete: z.boolean().openapi({ description: "false while the period has not ended" }),
    currency: z.string(),
    consumers: z.array(z.object({ consumer: z.string(), calls: z.number().int(), billableCalls: z.number().int(), bytes: z.number().int(), cost: z.number() })),
    totals: z.object({ calls: z.number().int(), billableCalls: z.number().int(), bytes: z.number().int(), cost: z.number() }),
  })
  .openapi("Chargeback");

const StripeMeterEventSchema = z
  .object({
    event_name: z.string(),
    payload: z.object({ stripe_customer_id: z.string(), value: z.string() }),
    timestamp: z.number().int().openapi({ description: "Epoch seconds: the period's last second" }),
    identifier: z.string().openapi({ description: "Deterministic per (tenant, consumer, period, event name): Stripe's idempotency identifier" }),
  })
  .openapi("StripeMeterEvent");

export const StripeReportSchema = z
  .object({
    tenant: z.string(),
    period: ChargebackPeriod,
    eventName: z.string(),
    value: z.enum(["cost", "calls"]),
    currency: z.string(),
    sending: z.boolean().openapi({ description: "STRIPE_API_KEY is set" }),
    events: z.array(z.object({ consumer: z.string(), identifier: z.string(), sentAt: isoTime.nullable(), event: StripeMeterEventSchema })),
    sent: z.array(z.string()),
    alreadySent: z.array(z.string()),
    unmapped: z.array(z.string()).openapi({ description: "Consumers with usage but no Stripe customer in metering.stripe.customers" }),
    failed: z.array(z.object({ consumer: z.string(), identifier: z.string(), status: z.number().int().nullable(), message: z.string() })),
    unsent: z.array(z.string()).openapi({ description: "Not attempted: no STRIPE_API_KEY, or left for the next attempt" }),
  })
  .openapi("StripeMeterEventReport");
