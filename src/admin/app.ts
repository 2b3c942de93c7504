/**
 * @module The admin API (`/admin/v1`) and its OpenAPI 3.1 description (`/openapi.json`), generated from the zod
 * schemas that validate the requests. Every route is tenant-scoped by {@link requireAdmin}; the handlers are thin
 * calls into keys.ts, connectors.ts, servers.ts and config.ts. The contract is written down in docs/admin-api.md.
 */
import { OpenAPIHono, createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { database } from "../db/client.ts";
import { auditHead, auditStatsOf, exportResponse, listAuditEntries, NDJSON, verifyStream } from "./audit.ts";
import { adminTenant, requireAdmin, type AdminContext } from "./auth.ts";
import { appliedConfig, appliedPolicies, applyConfig, validatedConfig } from "./config.ts";
import { createConnector, listConnectors, revokeConnector } from "./connectors.ts";
import { AdminError } from "./errors.ts";
import { createKey, listKeys, revokeKey, rotateKey } from "./keys.ts";
import {
  ApiKeyWithSecret,
  AppliedConfig,
  AuditEntriesQuery,
  AuditEntryPage,
  AuditExportQuery,
  AuditHeadSchema,
  AuditStatsQuery,
  AuditStatsSchema,
  AuditVerifyBody,
  AuditVerifyLine,
  ChargebackQuery,
  ChargebackSchema,
  ConfigApplied,
  ConfigValidation,
  ConnectorList,
  ConnectorWithToken,
  CreateConnector,
  CreateKey,
  ErrorBody,
  IdParam,
  KeyList,
  Revoked,
  RotateKey,
  ServerList,
  StripeQuery,
  StripeReportSchema,
  TenantQuery,
  UsageQuery,
  UsageReportSchema,
  WhoAmI,
} from "./schemas.ts";
import { listServers } from "./servers.ts";
import { chargebackOf, stripeEventsOf, usageOf } from "./usage.ts";

export const ADMIN_BASE = "/admin/v1";
/** Admin bodies are configuration files, not payloads. */
export const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

const errors = {
  400: { description: "Malformed request", content: { "application/json": { schema: ErrorBody } } },
  401: { description: "No or refused credential", content: { "application/json": { schema: ErrorBody } } },
  403: { description: "Not an admin of this tenant", content: { "application/json": { schema: ErrorBody } } },
} as const;
const notFound = { 404: { description: "No such item", content: { "application/json": { schema: ErrorBody } } } } as const;
const conflict = { 409: { description: "The id or key is already in use", content: { "application/json": { schema: ErrorBody } } } } as const;
const invalidConfig = { 422: { description: "gateway.yaml failed validation; details name each path", content: { "application/json": { schema: ErrorBody } } } } as const;

const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

const configBody = {
  required: true,
  description: "gateway.yaml as text (application/yaml), or the same document as JSON",
  content: { "application/yaml": { schema: z.string() }, "application/json": { schema: z.record(z.string(), z.unknown()) } },
} as const;

function route<R extends RouteConfig>(config: R): R {
  return { ...config, path: `${ADMIN_BASE}${config.path}`, security: [{ bearer: [] }], request: { query: TenantQuery, ...config.request } };
}

const routes = {
  whoami: route({ method: "get", path: "/whoami", summary: "Who the credential is and which tenant it administers", responses: { 200: json(WhoAmI, "The caller"), ...errors } }),
  validateConfig: route({
    method: "post",
    path: "/config/validate",
    summary: "Validate a gateway.yaml without applying it",
    request: { body: configBody },
    responses: { 200: json(ConfigValidation, "Valid"), ...errors, ...invalidConfig },
  }),
  applyConfig: route({
    method: "put",
    path: "/config",
    summary: "Apply a gateway.yaml atomically and bump the tenant's config version",
    request: { body: configBody },
    responses: { 200: json(ConfigApplied, "Applied"), ...errors, ...conflict, ...invalidConfig },
  }),
  getConfig: route({ method: "get", path: "/config", summary: "The applied config (without server commands, args or env)", responses: { 200: json(AppliedConfig, "The applied config"), ...errors, ...notFound } }),
  listKeys: route({ method: "get", path: "/keys", summary: "List API keys (never a key or its digest)", responses: { 200: json(KeyList, "The tenant's keys"), ...errors } }),
  createKey: route({
    method: "post",
    path: "/keys",
    summary: "Create an API key; the key is in the answer once",
    request: { body: { required: true, content: { "application/json": { schema: CreateKey } } } },
    responses: { 201: json(ApiKeyWithSecret, "Created"), ...errors, ...conflict },
  }),
  revokeKey: route({ method: "delete", path: "/keys/{id}", summary: "Revoke a key at once", request: { params: IdParam }, responses: { 200: json(Revoked, "Revoked"), ...errors, ...notFound } }),
  rotateKey: route({
    method: "post",
    path: "/keys/{id}/rotate",
    summary: "Give a key a new secret; the old one stops at once or after the optional graceSeconds",
    request: { params: IdParam, body: { required: false, content: { "application/json": { schema: RotateKey } } } },
    responses: { 200: json(ApiKeyWithSecret, "Rotated"), ...errors, ...notFound, ...conflict },
  }),
  listServers: route({ method: "get", path: "/servers", summary: "Servers reported by connectors and declared in gateway.yaml", responses: { 200: json(ServerList, "The tenant's servers"), ...errors } }),
  listConnectors: route({ method: "get", path: "/connectors", summary: "List connectors", responses: { 200: json(ConnectorList, "The tenant's connectors"), ...errors } }),
  createConnector: route({
    method: "post",
    path: "/connectors",
    summary: "Register a connector; its token is in the answer once",
    request: { body: { required: true, content: { "application/json": { schema: CreateConnector } } } },
    responses: { 201: json(ConnectorWithToken, "Created"), ...errors, ...conflict },
  }),
  revokeConnector: route({
    method: "delete",
    path: "/connectors/{id}",
    summary: "Revoke a connector's token and close its live links",
    request: { params: IdParam },
    responses: { 200: json(Revoked, "Revoked"), ...errors, ...notFound },
  }),
  auditEntries: route({
    method: "get",
    path: "/audit/entries",
    summary: "The tenant's audit entries, newest first, filtered and paged (keyset cursor)",
    request: { query: AuditEntriesQuery },
    responses: { 200: json(AuditEntryPage, "One page of entries"), ...errors },
  }),
  auditStats: route({
    method: "get",
    path: "/audit/stats",
    summary: "Counts by status, server, tool and consumer, and latency percentiles, of the matching entries",
    request: { query: AuditStatsQuery },
    responses: { 200: json(AuditStatsSchema, "The stats"), ...errors },
  }),
  auditHead: route({
    method: "get",
    path: "/audit/head",
    summary: "The AuditLog Durable Object's live head, shipping progress, latest checkpoint and public key",
    responses: { 200: json(AuditHeadSchema, "The head"), ...errors },
  }),
  auditVerify: route({
    method: "post",
    path: "/audit/verify",
    summary: "Verify the D1 copy of the chain against the live head and the signed checkpoints (streamed NDJSON)",
    request: { body: { required: false, content: { "application/json": { schema: AuditVerifyBody } } } },
    responses: {
      200: { description: "Progress lines, then one result line", content: { [NDJSON]: { schema: AuditVerifyLine } } },
      ...errors,
    },
  }),
  auditExport: route({
    method: "get",
    path: "/audit/export",
    summary: "Export the chain: JSONL verifiable offline (docs/audit-chain.md) or CSV for people (streamed)",
    request: { query: AuditExportQuery },
    responses: {
      200: {
        description: "The export",
        content: { [NDJSON]: { schema: z.string().openapi({ description: "JSONL export lines" }) }, "text/csv": { schema: z.string().openapi({ description: "CSV rows" }) } },
      },
      ...errors,
    },
  }),
  usage: route({
    method: "get",
    path: "/usage",
    summary: "Usage and cost in whole UTC hours, grouped by consumer, server, tool or hour",
    request: { query: UsageQuery },
    responses: { 200: json(UsageReportSchema, "The usage"), ...errors },
  }),
  chargeback: route({
    method: "get",
    path: "/usage/chargeback",
    summary: "Each consumer's calls and cost for a month or a period (JSON or CSV)",
    request: { query: ChargebackQuery },
    responses: {
      200: {
        description: "The chargeback",
        content: { "application/json": { schema: ChargebackSchema }, "text/csv": { schema: z.string().openapi({ description: "CSV rows" }) } },
      },
      ...errors,
    },
  }),
  stripe: route({
    method: "post",
    path: "/usage/stripe",
    summary: "Build, record and (with STRIPE_API_KEY) send a month's Stripe meter events, each exactly once",
    request: { query: StripeQuery },
    responses: { 200: json(StripeReportSchema, "The events and what was sent"), ...errors },
  }),
};

/**
 * A streamed answer in a route whose typed answers are JSON: @hono/zod-openapi types only JSON and text bodies, so
 * the NDJSON/CSV stream is handed over as it is.
 */
const streamed = (response: Response) => response as never;

/**
 * The config body as text, YAML or JSON alike (JSON is YAML, so one parser reads both). Hono caches the body, so
 * this works after the route's validator has read a JSON body; other content types never get here.
 */
function configText(c: { req: { text(): Promise<string> } }): Promise<string> {
  return c.req.text();
}

export function adminApp(): OpenAPIHono<AdminContext> {
  const app = new OpenAPIHono<AdminContext>({
    // zod's verdict on a request, in the API's own error shape.
    defaultHook: (result) => {
      if (!result.success) {
        throw new AdminError(
          "bad_request",
          "The request does not match the API",
          result.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`),
        );
      }
    },
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "An API key with the admin role of its tenant, or the platform admin token",
  });
  app.use(`${ADMIN_BASE}/*`, bodyLimit({ maxSize: MAX_ADMIN_BODY_BYTES, onError: () => { throw new AdminError("too_large", `Request body exceeds ${MAX_ADMIN_BODY_BYTES} bytes`); } }));
  app.use(`${ADMIN_BASE}/*`, requireAdmin);

  app.openapi(routes.whoami, (c) => c.json(c.get("admin"), 200));

  app.openapi(routes.validateConfig, async (c) => {
    const validated = await validatedConfig(await configText(c));
    const admin = c.get("admin");
    assertMayAdminister(admin, validated.config.tenant);
    return c.json({ ok: true as const, tenant: validated.config.tenant, summary: validated.summary }, 200);
  });

  app.openapi(routes.applyConfig, async (c) => {
    const validated = await validatedConfig(await configText(c));
    assertMayAdminister(c.get("admin"), validated.config.tenant);
    const now = Date.now();
    const version = await applyConfig(c.env.DB, validated, now);
    return c.json({ tenant: validated.config.tenant, version, digest: validated.digest, appliedAt: new Date(now).toISOString(), summary: validated.summary }, 200);
  });

  app.openapi(routes.getConfig, async (c) => c.json(await appliedConfig(database(c.env.DB), adminTenant(c.get("admin"))), 200));

  app.openapi(routes.listKeys, async (c) => c.json({ keys: await listKeys(database(c.env.DB), adminTenant(c.get("admin"))) }, 200));

  app.openapi(routes.createKey, async (c) => {
    const tenant = adminTenant(c.get("admin"));
    const db = database(c.env.DB);
    return c.json(await createKey(db, tenant, c.req.valid("json"), await appliedPolicies(db, tenant)), 201);
  });

  app.openapi(routes.revokeKey, async (c) => c.json(await revokeKey(database(c.env.DB), adminTenant(c.get("admin")), c.req.valid("param").id), 200));

  app.openapi(routes.rotateKey, async (c) =>
    c.json(await rotateKey(database(c.env.DB), adminTenant(c.get("admin")), c.req.valid("param").id, c.req.valid("json").graceSeconds ?? 0), 200),
  );

  app.openapi(routes.listServers, async (c) => c.json({ servers: await listServers(database(c.env.DB), adminTenant(c.get("admin"))) }, 200));

  app.openapi(routes.listConnectors, async (c) => c.json({ connectors: await listConnectors(database(c.env.DB), adminTenant(c.get("admin"))) }, 200));

  app.openapi(routes.createConnector, async (c) => c.json(await createConnector(database(c.env.DB), adminTenant(c.get("admin")), c.req.valid("json")), 201));

  app.openapi(routes.revokeConnector, async (c) =>
    c.json(await revokeConnector(c.env, database(c.env.DB), adminTenant(c.get("admin")), c.req.valid("param").id), 200),
  );

  app.openapi(routes.auditEntries, async (c) => {
    const { tenant: _tenant, limit, cursor, ...query } = c.req.valid("query");
    return c.json(await listAuditEntries(c.env, adminTenant(c.get("admin")), query, { limit, cursor }), 200);
  });

  app.openapi(routes.auditStats, async (c) => {
    const { tenant: _tenant, ...query } = c.req.valid("query");
    return c.json(await auditStatsOf(c.env, adminTenant(c.get("admin")), query), 200);
  });

  app.openapi(routes.auditHead, async (c) => c.json(await auditHead(c.env, adminTenant(c.get("admin"))), 200));

  app.openapi(routes.auditVerify, (c) => {
    const tenant = adminTenant(c.get("admin"));
    const { response, run } = verifyStream(c.env, tenant, c.req.valid("json").fromSeq);
    c.executionCtx.waitUntil(run);
    return streamed(response);
  });

  app.openapi(routes.auditExport, async (c) => {
    const { format, fromSeq, toSeq } = c.req.valid("query");
    return streamed(await exportResponse(c.env, adminTenant(c.get("admin")), { format, fromSeq, toSeq }));
  });

  app.openapi(routes.usage, async (c) => {
    const { tenant: _tenant, ...query } = c.req.valid("query");
    return c.json(await usageOf(c.env, adminTenant(c.get("admin")), query), 200);
  });

  app.openapi(routes.chargeback, async (c) => {
    const { tenant: _tenant, ...query } = c.req.valid("query");
    const answer = await chargebackOf(c.env, adminTenant(c.get("admin")), query);
    return answer instanceof Response ? streamed(answer) : c.json(answer, 200);
  });

  app.openapi(routes.stripe, async (c) => c.json(await stripeEventsOf(c.env, adminTenant(c.get("admin")), c.req.valid("query").period), 200));

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "mcp-gateway admin API", version: "1", description: "Administer one tenant of an mcp-gateway: configuration, API keys, servers, connectors, audit trail, usage and chargeback." },
  });
  return app;
}

/** A tenant admin applies only its own tenant's file; the platform admin any (and `?tenant=`, if given, must agree). */
function assertMayAdminister(admin: AdminContext["Variables"]["admin"], fileTenant: string): void {
  if (admin.platformAdmin) {
    if (admin.tenant !== null && admin.tenant !== fileTenant) {
      throw new AdminError("bad_request", `The file describes tenant "${fileTenant}" but ?tenant= names "${admin.tenant}"`);
    }
    return;
  }
  if (admin.tenant !== fileTenant) throw new AdminError("forbidden", `This key administers its own tenant only; the file describes another tenant ("tenant:" in the file)`);
}
