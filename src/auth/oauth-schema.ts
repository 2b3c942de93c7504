/**
 * @module gateway.yaml `auth.oauth`: the tenant as an OAuth 2.1 protected resource in the MCP authorization spec's
 * sense (2025-11-25; RFC 9728, RFC 8707). MCP clients find the tenant's authorization servers in the metadata the
 * gateway publishes for the tenant's resource URL (`/t/<tenant>/mcp`, src/auth/oauth.ts), obtain an access token
 * for that resource there, and present it as a bearer token.
 *
 * An authorization server here is a JWT issuer (src/auth/jwt-schema.ts) whose audience is not configured: it is
 * always the tenant's canonical resource URL, so a token minted for another resource (another tenant, another MCP
 * server) is refused. Only asymmetric algorithms: the gateway never shares a secret with an authorization server.
 * Platform-free (zod only).
 */
import { z } from "zod";
import { checkIssuerFields, isSecureOrLoopbackUrl, JWT_ASYMMETRIC_ALGORITHMS, jwtIssuerFields } from "./jwt-schema.ts";

/** An OAuth scope token (RFC 6749 §3.3: printable ASCII except space, `"` and `\`). */
const scopeSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be an OAuth scope: printable ASCII without spaces, " or \\');

export const oauthAuthorizationServerSchema = jwtIssuerFields
  .omit({ audience: true, hs256SecretEnv: true })
  .extend({
    /** The issuer identifier clients are sent to (the metadata's authorization_servers): an https URL. */
    issuer: z
      .string()
      .min(1)
      .max(2048)
      .refine(isSecureOrLoopbackUrl, "must be an https:// URL (http:// only for localhost, 127.0.0.1 or [::1])"),
    algorithms: z.array(z.enum(JWT_ASYMMETRIC_ALGORITHMS)).min(1).default(["RS256"]),
  })
  .superRefine(checkIssuerFields);
export type OAuthAuthorizationServerConfig = z.infer<typeof oauthAuthorizationServerSchema>;

export const oauthSchema = z
  .strictObject({
    /** Listed in this order in the protected resource metadata; a token's `iss` picks its entry. */
    authorizationServers: z.array(oauthAuthorizationServerSchema).min(1).max(20),
    /** The metadata's `scopes_supported`: what a client may ask for. */
    scopesSupported: z.array(scopeSchema).max(100).default([]),
    /** Scopes every token must carry; a token without one is answered 403 `insufficient_scope`. */
    requiredScopes: z.array(scopeSchema).max(100).default([]),
    /** The metadata's `resource_name`, shown by clients that ask their user to consent. */
    resourceName: z.string().min(1).max(200).optional(),
  })
  .superRefine((oauth, ctx) => {
    const seen = new Map<string, number>();
    oauth.authorizationServers.forEach((server, i) => {
      const same = seen.get(server.issuer);
      if (same !== undefined) ctx.addIssue({ code: "custom", path: ["authorizationServers", i, "issuer"], message: `the same issuer as authorizationServers[${same}]` });
      seen.set(server.issuer, i);
    });
    const supported = new Set(oauth.scopesSupported);
    oauth.requiredScopes.forEach((scope, i) => {
      if (supported.size > 0 && !supported.has(scope)) {
        ctx.addIssue({ code: "custom", path: ["requiredScopes", i], message: `"${scope}" is not in scopesSupported; a client could never ask for it` });
      }
    });
  });
export type OAuthConfig = z.infer<typeof oauthSchema>;
