/**
 * @module GET /.well-known/oauth-protected-resource/t/<tenant>/mcp: a tenant's OAuth protected resource metadata
 * (RFC 9728 §3, the path-suffixed form for the resource `/t/<tenant>/mcp`), read by MCP clients before they have a
 * token. Public by design, so it says only what the tenant configured for clients to see (authorization servers,
 * scopes, name) and answers an unknown tenant exactly as a tenant without OAuth: 404.
 *
 * The gateway's shared endpoint `/mcp` has no metadata of its own (its callers' tenants are known only from their
 * credentials); its well-known URLs answer 404 naming the per-tenant form.
 */
import type { Context } from "hono";
import {
  protectedResourceMetadata,
  PROTECTED_RESOURCE_METADATA_PATH,
  publicOrigin,
  TENANT_RESOURCE_ROUTE,
  tenantOfResourcePath,
  tenantResource,
  type ResourceLocation,
} from "../auth/oauth.ts";
import type { OAuthConfig } from "../auth/oauth-schema.ts";
import { tenantConfig } from "../config/tenant-config.ts";
import { database, type Database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { log } from "../log.ts";
import type { GatewayContext } from "./guards.ts";

/** Browser-based MCP clients read the metadata cross-origin; it is public and carries no credential. */
const PUBLIC_HEADERS = { "access-control-allow-origin": "*", "cache-control": "public, max-age=60" };

const NOT_AN_OAUTH_RESOURCE = "No OAuth protected resource here: a tenant whose gateway.yaml has auth.oauth is the resource <origin>/t/<tenant>/mcp, with its metadata at <origin>/.well-known/oauth-protected-resource/t/<tenant>/mcp";

/** A tenant's OAuth protected resource: its `auth.oauth` and where it is. */
export interface TenantOAuthResource {
  tenant: string;
  config: OAuthConfig;
  location: ResourceLocation;
}

let reportedBadPublicUrl = false;

/**
 * The tenant's OAuth resource as seen from this request, or undefined when the tenant has none (no `auth.oauth`, no
 * such tenant, or a PUBLIC_URL that is not an origin: then OAuth is off rather than bound to a guess). Throws when the
 * tenant's configuration cannot be read; callers answer 503.
 */
export async function tenantOAuthResource(env: Env, db: Database, tenant: string, requestUrl: string): Promise<TenantOAuthResource | undefined> {
  const config = (await tenantConfig(db, tenant)).published?.oauth;
  if (!config) return undefined;
  const origin = publicOrigin(env.PUBLIC_URL, requestUrl);
  if (origin === undefined) {
    // Said once per isolate: every OAuth request would otherwise repeat it.
    if (!reportedBadPublicUrl) log({ event: "oauth.unavailable", detail: "PUBLIC_URL is not an http(s) origin; OAuth resources are off" }, "error");
    reportedBadPublicUrl = true;
    return undefined;
  }
  return { tenant, config, location: tenantResource(origin, tenant) };
}

export async function serveProtectedResourceMetadata(c: Context<GatewayContext>): Promise<Response> {
  const tenant = tenantOfResourcePath(c.req.param("tenant") ?? "");
  let resource: TenantOAuthResource | undefined;
  try {
    resource = tenant === undefined ? undefined : await tenantOAuthResource(c.env, database(c.env.DB), tenant, c.req.url);
  } catch (error) {
    log({ event: "oauth.metadata_unavailable", tenant, detail: (error as Error).message, status: 503 }, "error");
    return c.json({ error: "The resource's metadata could not be read; retry shortly" }, 503, { ...PUBLIC_HEADERS, "cache-control": "no-store", "retry-after": "5" });
  }
  if (!resource) return c.json({ error: NOT_AN_OAUTH_RESOURCE }, 404, PUBLIC_HEADERS);
  return c.json(protectedResourceMetadata(resource.config, resource.location.resource), 200, PUBLIC_HEADERS);
}

/** The well-known URLs of `/mcp` itself (and the bare one): 404 naming the per-tenant resources. */
export function serveSharedEndpointMetadata(c: Context<GatewayContext>): Response {
  return c.json({ error: NOT_AN_OAUTH_RESOURCE }, 404, PUBLIC_HEADERS);
}

/** CORS preflight for the metadata (a browser asks before a cross-origin GET with headers). */
export function metadataPreflight(): Response {
  return new Response(null, {
    status: 204,
    headers: { "access-control-allow-origin": "*", "access-control-allow-methods": "GET", "access-control-allow-headers": "mcp-protocol-version", "access-control-max-age": "86400" },
  });
}

export const METADATA_ROUTES = {
  tenant: `${PROTECTED_RESOURCE_METADATA_PATH}${TENANT_RESOURCE_ROUTE}`,
  shared: [PROTECTED_RESOURCE_METADATA_PATH, `${PROTECTED_RESOURCE_METADATA_PATH}/mcp`],
} as const;
