/**
 * @module The Worker: the Hono app and its routes, and the Durable Object classes it exports.
 *
 *   /mcp      agents (Streamable HTTP MCP): origin → authenticate → body limit → MCP handler → Connector DO
 *   /t/<tenant>/mcp  the same, addressed to one tenant: its OAuth protected resource (MCP authorization)
 *   /.well-known/oauth-protected-resource/t/<tenant>/mcp  that resource's metadata (RFC 9728)
 *   /connect  connectors (WebSocket, dialled out from the customer's hosts) → Connector DO
 *   /admin/v1 administrators and the mcp-gateway CLI (admin key or platform token) → D1, Connector DO
 *   /openapi.json  the admin API's OpenAPI 3.1 description
 *   /metrics  Prometheus scrape of usage (admin key: its tenant; platform token: all, or ?tenant=) → D1
 *   /healthz  liveness
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { ADMIN_BASE, adminApp } from "./admin/app.ts";
import { requireAdmin } from "./admin/auth.ts";
import { AdminError, adminErrorResponse } from "./admin/errors.ts";
import { acceptConnector } from "./connectors/route.ts";
import { authenticateCaller, hostGuard, mcpBodyLimit, originGuard, type GatewayContext } from "./http/guards.ts";
import { METADATA_ROUTES, metadataPreflight, serveProtectedResourceMetadata, serveSharedEndpointMetadata } from "./http/protected-resource.ts";
import { isTenantResourcePath, TENANT_RESOURCE_ROUTE } from "./auth/oauth.ts";
import { JsonRpcErrorCode } from "./link/errors.ts";
import { log } from "./log.ts";
import { jsonRpcErrorResponse } from "./mcp/errors.ts";
import { serveMcp } from "./mcp/route.ts";
import { serveMetrics } from "./metrics/route.ts";

export { AuditLogDurableObject } from "./audit/durable-object.ts";
export { ConnectorDurableObject } from "./connectors/durable-object.ts";
export { RateLimiterDurableObject } from "./ratelimit/durable-object.ts";

const app = new Hono<GatewayContext>();

app.get("/healthz", (c) => c.json({ ok: true }));
app.all("/mcp", originGuard, authenticateCaller, mcpBodyLimit, serveMcp);
app.all(TENANT_RESOURCE_ROUTE, originGuard, authenticateCaller, mcpBodyLimit, serveMcp);
app.get(METADATA_ROUTES.tenant, hostGuard, serveProtectedResourceMetadata);
for (const path of METADATA_ROUTES.shared) app.get(path, hostGuard, serveSharedEndpointMetadata);
app.on("OPTIONS", [METADATA_ROUTES.tenant, ...METADATA_ROUTES.shared], metadataPreflight);
app.get("/connect", acceptConnector);
app.get("/metrics", requireAdmin, serveMetrics);
app.route("/", adminApp());

app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  if (path.startsWith(`${ADMIN_BASE}/`)) return adminErrorResponse(c, new AdminError("not_found", `No admin route ${c.req.method} ${path}; see /openapi.json`));
  return c.json({ error: `no route for ${c.req.method} ${path}; MCP clients use /mcp` }, 404);
});
app.onError((error, c) => {
  if (error instanceof AdminError) return adminErrorResponse(c, error);
  // Hono's own refusals of a request (the validator's malformed JSON, an undeclared content type) are the caller's
  // error, not ours: in the admin API's shape with its code.
  if (error instanceof HTTPException && error.status < 500 && new URL(c.req.url).pathname.startsWith(`${ADMIN_BASE}/`)) {
    return adminErrorResponse(c, new AdminError("bad_request", `${error.message || "The request is malformed"}; see /openapi.json`));
  }
  // A bug, not an expected failure: log it structured and answer without internals, in the shape the caller reads.
  const path = new URL(c.req.url).pathname;
  const requestId = crypto.randomUUID();
  log({ event: "worker.error", path, requestId, detail: error.message }, "error");
  const message = `Internal error; the gateway logged it as ${requestId}`;
  return path === "/mcp" || isTenantResourcePath(path) ? jsonRpcErrorResponse(500, JsonRpcErrorCode.InternalError, message) : c.json({ error: message }, 500);
});

export default app;
