/**
 * @module The gateway as an OAuth 2.1 resource server (MCP authorization, 2025-11-25): where a tenant's resource
 * lives, what its protected resource metadata says (RFC 9728), the bearer challenges (RFC 6750 §3 with the
 * `resource_metadata` parameter of RFC 9728 §5.1), and which scopes a token carries. Pure: the routes and the
 * authentication middleware (src/http/protected-resource.ts, src/http/guards.ts) are the shells.
 *
 * Why per-tenant resources: many tenants share one gateway, each with its own authorization servers. A client
 * reads the metadata before it has a token, so the metadata must be answerable from the URL alone; and a token's
 * audience (RFC 8707) must bind it to one tenant. `/t/<tenant>/mcp` does both: its metadata lives at
 * `/.well-known/oauth-protected-resource/t/<tenant>/mcp` (RFC 9728 §3.1's path-suffixed form), and a token minted
 * for it is useless at any other tenant's resource.
 */
import { ID_PATTERN } from "../ids.ts";
import type { OAuthConfig } from "./oauth-schema.ts";

/** RFC 9728 §3: the well-known prefix a resource's path is appended to. */
export const PROTECTED_RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource";

/** The path of a tenant's MCP endpoint as an OAuth protected resource (tenant ids are path-safe as they are). */
export function tenantResourcePath(tenant: string): string {
  return `/t/${tenant}/mcp`;
}

/** The Hono route of a tenant's MCP endpoint, and the same shape as a pattern for a request's path. */
export const TENANT_RESOURCE_ROUTE = "/t/:tenant/mcp";
const TENANT_RESOURCE_PATH = /^\/t\/([^/]+)\/mcp$/;

/** The tenant a `/t/<tenant>/mcp` path segment names, or undefined when the segment is not a tenant id. */
export function tenantOfResourcePath(segment: string): string | undefined {
  return ID_PATTERN.test(segment) ? segment : undefined;
}

/** Whether a request path is a tenant's MCP endpoint. */
export function isTenantResourcePath(path: string): boolean {
  return TENANT_RESOURCE_PATH.test(path);
}

/**
 * The tenant whose OAuth resource URL `audience` is (any origin: `https://gw.example/t/acme/mcp` → `acme`), or
 * undefined for any other audience. A tenant may name only its own resource as a JWT audience.
 */
export function resourceTenantOf(audience: string): string | undefined {
  if (!URL.canParse(audience)) return undefined;
  const url = new URL(audience);
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  const segment = TENANT_RESOURCE_PATH.exec(url.pathname)?.[1];
  if (segment === undefined) return undefined;
  // Percent-decoded as the router decodes it, so `/t/ac%6De/mcp` is acme's too.
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return segment;
  }
  return decoded;
}

/**
 * The gateway's public origin: `PUBLIC_URL` when the operator set it (recommended: it pins the audience tokens must
 * carry), else the request's own origin, which Cloudflare's routing (and ALLOWED_HOSTS) pin to the gateway's hosts.
 * Lower-case scheme and host, no trailing slash (the MCP spec's canonical form). Undefined for a PUBLIC_URL that is
 * not an http(s) origin: OAuth is then unavailable rather than bound to a guess.
 */
export function publicOrigin(publicUrl: string | undefined, requestUrl: string): string | undefined {
  const configured = publicUrl?.trim();
  if (configured) {
    if (!URL.canParse(configured)) return undefined;
    const url = new URL(configured);
    if ((url.protocol !== "https:" && url.protocol !== "http:") || url.pathname !== "/" || url.search || url.hash || url.username || url.password) return undefined;
    return url.origin;
  }
  return new URL(requestUrl).origin;
}

/** Where a tenant's resource and its metadata are, seen from one public origin. */
export interface ResourceLocation {
  /** The canonical resource URL: what the metadata names and what a token's `aud` must contain. */
  resource: string;
  /** The URL of its protected resource metadata (the `resource_metadata` of challenges). */
  metadataUrl: string;
}

export function tenantResource(origin: string, tenant: string): ResourceLocation {
  const path = tenantResourcePath(tenant);
  return { resource: `${origin}${path}`, metadataUrl: `${origin}${PROTECTED_RESOURCE_METADATA_PATH}${path}` };
}

/** RFC 9728 §2: the tenant's protected resource metadata. Only what is configured; tokens only in the header. */
export function protectedResourceMetadata(oauth: OAuthConfig, resource: string): Record<string, unknown> {
  return {
    resource,
    authorization_servers: oauth.authorizationServers.map((server) => server.issuer),
    ...(oauth.scopesSupported.length > 0 ? { scopes_supported: oauth.scopesSupported } : {}),
    bearer_methods_supported: ["header"],
    ...(oauth.resourceName !== undefined ? { resource_name: oauth.resourceName } : {}),
  };
}

/** The scope a challenge asks for: the required scopes, else everything supported (MCP: "scope" SHOULD be sent). */
export function challengeScope(oauth: OAuthConfig): string | undefined {
  const scopes = oauth.requiredScopes.length > 0 ? oauth.requiredScopes : oauth.scopesSupported;
  return scopes.length > 0 ? scopes.join(" ") : undefined;
}

export interface BearerChallenge {
  /** RFC 6750 §3.1; absent when the request carried no credential at all. */
  error?: "invalid_request" | "invalid_token" | "insufficient_scope";
  description?: string;
  /** RFC 9728 §5.1. */
  resourceMetadata?: string;
  scope?: string;
}

/**
 * A quoted-string value within RFC 6750 §3's characters (%x20-21 / %x23-5B / %x5D-7E): quotes and backslashes become
 * `'`, line breaks a space, anything else outside (non-ASCII claim names a tenant configured, controls) `?` — a
 * header that cannot be encoded would turn a refusal into a 500.
 */
function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, "'").replace(/[\r\n]+/g, " ").replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, "?")}"`;
}

/** The WWW-Authenticate value of a refusal: `Bearer realm="mcp-gateway"` and the parameters that apply. */
export function bearerChallenge(challenge: BearerChallenge = {}): string {
  const parameters: [string, string | undefined][] = [
    ["realm", "mcp-gateway"],
    ["resource_metadata", challenge.resourceMetadata],
    ["scope", challenge.scope],
    ["error", challenge.error],
    ["error_description", challenge.description],
  ];
  return `Bearer ${parameters
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([name, value]) => `${name}=${quoted(value)}`)
    .join(", ")}`;
}

/**
 * The scopes a verified token grants: RFC 9068 / RFC 8693's space-separated `scope`, or the `scp` claim some
 * providers use (an array, or a string). Anything else grants nothing.
 */
export function tokenScopes(claims: Readonly<Record<string, unknown>>): Set<string> {
  const granted = new Set<string>();
  for (const value of [claims.scope, claims.scp]) {
    if (typeof value === "string") value.split(" ").filter(Boolean).forEach((s) => granted.add(s));
    else if (Array.isArray(value)) value.filter((s): s is string => typeof s === "string" && s.length > 0).forEach((s) => granted.add(s));
  }
  return granted;
}

/** The required scopes a token lacks (empty: it may proceed). */
export function missingScopes(required: readonly string[], granted: ReadonlySet<string>): string[] {
  return required.filter((scope) => !granted.has(scope));
}
