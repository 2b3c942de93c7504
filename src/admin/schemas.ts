/**
 * @module The admin API's request and response shapes: zod schemas that validate requests and generate the
 * OpenAPI 3.1 document (`/openapi.json`), so the description can never drift from what is enforced.
 */
import { z } from "@hono/zod-openapi";
import { ID_PATTERN, ID_RULE } from "../ids.ts";
import { SERVER_ID_PATTERN } from "../link/protocol.ts";

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
  })
  .openapi("CreateKey");

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
