/**
 * @module Bearer JWTs from a tenant's identity providers (gateway.yaml `auth.jwt.issuers`), verified with jose.
 *
 * The token's unverified `iss` and `aud` are read only to find its tenant (`jwt_issuers`: an (issuer, audience)
 * pair belongs to one tenant); everything else is decided by the verification against that tenant's issuer entry:
 * signature with the issuer's JWKS (src/auth/jwks.ts) or, only when configured, an HS256 secret; algorithms pinned
 * (never `none`, never an HS token against an RS/EC key set or the reverse); `iss` exact; `aud` containing the
 * configured audience; `exp` required; `nbf` honoured; the issuer's clock skew. Claims then become a principal like
 * an API key's. Tokens are never logged; refusals carry stable messages (they are also the WWW-Authenticate
 * error_description).
 */
import { jwtSecretPrefix } from "../config/schema.ts";
import { eq } from "drizzle-orm";
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from "jose";
import { tenantConfig } from "../config/tenant-config.ts";
import type { Database } from "../db/client.ts";
import { jwtIssuers } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { issuerKeys, JwksUnavailableError } from "./jwks.ts";
import type { JwtIssuerConfig } from "./jwt-schema.ts";
import { resourceTenantOf } from "./oauth.ts";
import type { OAuthConfig } from "./oauth-schema.ts";
import type { Principal } from "./principal.ts";

/** Longest bearer JWT accepted (identity providers' tokens with many claims run to a few KB). */
export const MAX_JWT_LENGTH = 16_384;

/** Three base64url segments (the third empty for an unsecured `alg: none` token, which is refused as such). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Whether a bearer credential is a JWT (API keys never contain a dot). */
export function looksLikeJwt(credential: string): boolean {
  return JWT_SHAPE.test(credential);
}

export type JwtRefusal =
  | "malformed"
  | "unknown_issuer"
  | "wrong_audience"
  | "ambiguous_audience"
  | "algorithm"
  | "bad_signature"
  | "unknown_key"
  | "keys_unavailable"
  | "expired"
  | "not_yet_valid"
  | "missing_exp"
  | "claims"
  | "consumer"
  | "roles"
  | "email"
  | "misconfigured";

export type JwtAuthentication =
  | { ok: true; principal: Principal }
  | { ok: false; refusal: JwtRefusal; message: string; tenant?: string };

type JwtRefused = Extract<JwtAuthentication, { ok: false }>;

function refuse(refusal: JwtRefusal, message: string, tenant?: string): JwtRefused {
  return { ok: false, refusal, message, ...(tenant !== undefined ? { tenant } : {}) };
}

/** The value at a dotted path of the claims (`realm_access.roles`), or undefined. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  let value: unknown = claims;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Roles from the claim: absent = none; an array of strings or a space-separated string; anything else refused. */
export function rolesFromClaim(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value) && value.every((role) => typeof role === "string")) return value.filter((role) => role.length > 0);
  return undefined;
}

/** The token's unverified issuer and audiences: only ever used to pick the configuration it is verified against. */
function unverifiedClaims(token: string): { iss: unknown; audiences: string[] } | JwtRefused {
  if (token.length > MAX_JWT_LENGTH) return refuse("malformed", `The bearer token is longer than ${MAX_JWT_LENGTH} characters`);
  let unverified: JWTPayload;
  try {
    decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    return refuse("malformed", "The bearer token is not a well-formed JWT");
  }
  const aud = unverified.aud;
  return { iss: unverified.iss, audiences: typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === "string") : [] };
}

/** Authenticates a bearer JWT into a principal of the tenant its (iss, aud) names. */
export async function authenticateJwt(db: Database, env: Env, token: string): Promise<JwtAuthentication> {
  const unverified = unverifiedClaims(token);
  if ("ok" in unverified) return unverified;
  const { iss, audiences } = unverified;
  if (typeof iss !== "string" || iss.length === 0) return refuse("unknown_issuer", "The token has no issuer (iss)");
  const rows = await db.select().from(jwtIssuers).where(eq(jwtIssuers.issuer, iss)).all();
  if (rows.length === 0) return refuse("unknown_issuer", "The token's issuer (iss) is not configured for any tenant");
  const matching = rows.filter((row) => audiences.includes(row.audience));
  if (matching.length === 0) return refuse("wrong_audience", "The token's audience (aud) is not one this gateway accepts for its issuer");
  if (new Set(matching.map((row) => row.tenantId)).size > 1) {
    return refuse("ambiguous_audience", "The token's audiences name more than one tenant; ask the identity provider for a token with one audience");
  }
  const tenant = (matching[0] as (typeof matching)[number]).tenantId;
  // A token minted for another tenant's OAuth resource is that tenant's, whatever issuer entry matches it here (apply
  // refuses such audiences; this also covers an entry written before that check existed).
  if (audiences.some((aud) => { const named = resourceTenantOf(aud); return named !== undefined && named !== tenant; })) {
    return refuse("wrong_audience", "The token was minted for another tenant's resource (aud)");
  }
  const issuers = (await tenantConfig(db, tenant)).published?.jwt?.issuers ?? [];
  const issuer = issuers.find((entry) => entry.issuer === iss && matching.some((row) => row.audience === entry.audience));
  // The pair was just applied and this isolate's config is a moment behind: as good as not configured yet.
  if (!issuer) return refuse("unknown_issuer", "The token's issuer (iss) is not configured for any tenant");
  return verifyForIssuer(env, token, issuer, tenant);
}

/**
 * Authenticates an OAuth access token presented at a tenant's resource (`/t/<tenant>/mcp`): issued by one of the
 * tenant's authorization servers (its `iss` picks the entry) for exactly this resource (`aud`, RFC 8707). The
 * tenant comes from the URL, so `jwt_issuers` is not consulted. Undefined when the token is not an access token of
 * these authorization servers (another issuer, or no JWT at all): the caller checks it another way.
 */
export async function authenticateOAuthToken(env: Env, token: string, tenant: string, oauth: OAuthConfig, resource: string): Promise<JwtAuthentication | undefined> {
  const unverified = unverifiedClaims(token);
  if ("ok" in unverified) return undefined;
  const server = oauth.authorizationServers.find((entry) => entry.issuer === unverified.iss);
  if (!server) return undefined;
  const outcome = await verifyForIssuer(env, token, { ...server, audience: resource }, tenant);
  // Said for this resource: the token was minted for another one (RFC 8707 audience binding).
  if (!outcome.ok && outcome.refusal === "wrong_audience") return refuse("wrong_audience", "The token was not issued for this resource (aud)", tenant);
  return outcome;
}

async function verifyForIssuer(env: Env, token: string, issuer: JwtIssuerConfig, tenant: string): Promise<JwtAuthentication> {
  const options = {
    algorithms: issuer.algorithms,
    issuer: issuer.issuer,
    audience: issuer.audience,
    clockTolerance: issuer.clockSkewSeconds,
    requiredClaims: ["exp"],
  };
  let payload: JWTPayload;
  try {
    if (issuer.hs256SecretEnv !== undefined) {
      // Only this tenant's secrets (config apply refuses others; checked again here, where the secret is read).
      const secret = issuer.hs256SecretEnv.startsWith(jwtSecretPrefix(tenant)) ? (env as unknown as Record<string, unknown>)[issuer.hs256SecretEnv] : undefined;
      if (typeof secret !== "string" || secret.length === 0) {
        return refuse("misconfigured", "The token's issuer cannot be verified: its HS256 secret is not set on the gateway", tenant);
      }
      ({ payload } = await jwtVerify(token, new TextEncoder().encode(secret), options));
    } else {
      ({ payload } = await jwtVerify(token, issuerKeys(issuer), options));
    }
  } catch (error) {
    return verificationRefusal(error, tenant);
  }
  return principalFromClaims(payload, issuer, tenant);
}

function verificationRefusal(error: unknown, tenant: string): JwtAuthentication {
  if (error instanceof JwksUnavailableError) {
    return refuse("keys_unavailable", `The token's issuer's signing keys are unavailable (${error.message}); retry shortly`, tenant);
  }
  if (error instanceof errors.JWTExpired) return refuse("expired", "The token has expired (exp)", tenant);
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "exp") return refuse("missing_exp", "The token has no expiry (exp)", tenant);
    if (error.claim === "nbf") return refuse("not_yet_valid", "The token is not valid yet (nbf)", tenant);
    if (error.claim === "aud") return refuse("wrong_audience", "The token's audience (aud) is not one this gateway accepts for its issuer", tenant);
    if (error.claim === "iss") return refuse("unknown_issuer", "The token's issuer (iss) is not configured for any tenant", tenant);
    if (error.claim === "iat") return refuse("claims", "The token's issued-at time (iat) is not valid", tenant);
    return refuse("claims", "The token's claims are not valid", tenant);
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return refuse("algorithm", "The token's algorithm (alg) is not allowed for its issuer", tenant);
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return refuse("unknown_key", "The token's signing key (kid) is not in its issuer's key set", tenant);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return refuse("bad_signature", "The token's signature is not valid", tenant);
  return refuse("malformed", "The bearer token is not a well-formed JWT", tenant);
}

function principalFromClaims(claims: JWTPayload, issuer: JwtIssuerConfig, tenant: string): JwtAuthentication {
  const rawConsumer = claimAt(claims, issuer.consumerIdField);
  const consumer = typeof rawConsumer === "number" && Number.isSafeInteger(rawConsumer) ? String(rawConsumer) : rawConsumer;
  if (typeof consumer !== "string" || consumer.length === 0 || consumer.length > 256) {
    return refuse("consumer", `The token has no usable ${issuer.consumerIdField} claim naming the consumer`, tenant);
  }
  if (typeof claims.sub !== "string" || claims.sub.length === 0 || claims.sub.length > 256) {
    return refuse("consumer", "The token has no subject (sub)", tenant);
  }
  const roles = rolesFromClaim(claimAt(claims, issuer.rolesField));
  if (!roles) return refuse("roles", `The token's ${issuer.rolesField} claim must be an array of strings or a space-separated string`, tenant);
  if (issuer.allowedEmailDomains) {
    const email = claims.email;
    const domain = typeof email === "string" && email.includes("@") ? email.slice(email.lastIndexOf("@") + 1).toLowerCase() : undefined;
    if (domain === undefined || !issuer.allowedEmailDomains.includes(domain)) {
      return refuse("email", "The token's email is not in a domain this tenant allows", tenant);
    }
    if (claims.email_verified !== true) return refuse("email", "The token's email is not verified (email_verified)", tenant);
  }
  return { ok: true, principal: { tenant, consumer, keyId: `jwt:${claims.sub}`, roles, claims } };
}
