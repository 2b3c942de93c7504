/**
 * @module Request guards in front of /mcp, as Hono middleware: browser Origin and Host checks (DNS-rebinding
 * protection, which the MCP SDK deliberately leaves to the host), the body size limit, and bearer authentication.
 */
import { originValidationResponse, validateHostHeader } from "@modelcontextprotocol/server";
import { createMiddleware } from "hono/factory";
import { bodyLimit } from "hono/body-limit";
import { auditRefusal } from "../audit/append.ts";
import { ipFilterFor, type CompiledIpFilter, type IpFilterLists } from "../auth/ip-filter.ts";
import { authenticateApiKey, recordKeyUse } from "../auth/authenticate.ts";
import { authenticateJwt, authenticateOAuthToken, looksLikeJwt, type JwtAuthentication } from "../auth/jwt.ts";
import { bearerChallenge, challengeScope, missingScopes, tenantOfResourcePath, tokenScopes, type BearerChallenge } from "../auth/oauth.ts";
import { lastUseIsStale, type Principal } from "../auth/principal.ts";
import { tenantConfig } from "../config/tenant-config.ts";
import { database, type Database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { MAX_MESSAGE_BYTES } from "../link/protocol.ts";
import { log } from "../log.ts";
import { GatewayErrorCode, jsonRpcErrorResponse } from "../mcp/errors.ts";
import { tenantOAuthResource, type TenantOAuthResource } from "./protected-resource.ts";

/**
 * `serversStamp`: the caller's tenant's servers stamp when authentication read it along with an API key (see
 * authenticateApiKey); the catalog cache then skips its own query.
 */
export type GatewayContext = { Bindings: Env; Variables: { principal: Principal; serversStamp?: string } };

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** 403 for a Host outside ALLOWED_HOSTS (when set), else nothing. */
function hostRefusal(c: { env: Env; req: { url: string; header(name: string): string | undefined } }): Response | undefined {
  const allowedHosts = list(c.env.ALLOWED_HOSTS);
  if (allowedHosts.length === 0) return undefined;
  // workerd derives the URL's host from the Host header; the URL stands in when a caller built the request itself.
  const host = validateHostHeader(c.req.header("host") ?? new URL(c.req.url).host, allowedHosts);
  if (host.ok) return undefined;
  log({ event: "request.refused", reason: "host", status: 403 }, "warn");
  return jsonRpcErrorResponse(403, GatewayErrorCode.Forbidden, `${host.message}; this gateway serves ${allowedHosts.join(", ")}`);
}

/**
 * Host checked when ALLOWED_HOSTS is set: DNS-rebinding protection, and (with PUBLIC_URL unset) what pins the origin
 * OAuth resource URLs are built on. Public endpoints that browsers read cross-origin take this one alone.
 */
export const hostGuard = createMiddleware<GatewayContext>(async (c, next) => {
  const refusal = hostRefusal(c);
  if (refusal) return refusal;
  await next();
});

/** 403 for a browser Origin other than the gateway's own or ALLOWED_ORIGINS; Host checked when ALLOWED_HOSTS is set. */
export const originGuard = createMiddleware<GatewayContext>(async (c, next) => {
  const url = new URL(c.req.url);
  const refusal = hostRefusal(c);
  if (refusal) return refusal;
  const rejection = originValidationResponse(c.req.raw, [url.hostname, ...list(c.env.ALLOWED_ORIGINS)]);
  if (rejection) {
    log({ event: "request.refused", reason: "origin", status: rejection.status }, "warn");
    return rejection;
  }
  await next();
});

/** 413 with a JSON-RPC error for a body above the one message size limit. */
export const mcpBodyLimit = bodyLimit({
  maxSize: MAX_MESSAGE_BYTES,
  onError: () =>
    jsonRpcErrorResponse(
      413,
      GatewayErrorCode.TooLarge,
      `Request body exceeds the gateway's limit of ${MAX_MESSAGE_BYTES} bytes; send a smaller message`,
    ),
});

const refusalMessages = {
  missing: "Authentication required: send Authorization: Bearer <API key or access token>",
  unknown: "The API key is not valid",
  revoked: "The API key was revoked; ask an administrator for a new key",
  disabled: "The API key is disabled; ask an administrator for an enabled key",
  expired: "The API key has expired; ask an administrator for a new key",
  rotated: "The API key was rotated and its grace period has ended; use the new key",
} as const;

/** Query parameters that carry a bearer token in other APIs; the gateway takes tokens only in the header. */
const QUERY_TOKEN_PARAMETERS = ["access_token", "token"];

/** The bearer credential when it is a JWT (three base64url segments), else undefined (API keys go their own way). */
function bearerJwt(authorization: string | undefined): string | undefined {
  const credential = /^Bearer[ \t]+([A-Za-z0-9_.-]+)[ \t]*$/i.exec(authorization ?? "")?.[1];
  return credential !== undefined && looksLikeJwt(credential) ? credential : undefined;
}

/** A tenant's MCP endpoint addressed by its own URL (`/t/<tenant>/mcp`), and its OAuth resource when it is one. */
interface AddressedTenant {
  tenant: string;
  oauth?: TenantOAuthResource | undefined;
}

/**
 * The tenant a `/t/<tenant>/mcp` request addresses (undefined on /mcp), with its OAuth resource; or the answer when
 * that cannot be known (the tenant's configuration unreadable: fail closed).
 */
async function addressedTenant(c: { env: Env; req: { url: string; param(name: string): string | undefined } }, db: Database): Promise<AddressedTenant | undefined | Response> {
  const segment = c.req.param("tenant");
  if (segment === undefined) return undefined;
  const tenant = tenantOfResourcePath(segment);
  if (tenant === undefined) return jsonRpcErrorResponse(404, GatewayErrorCode.InvalidRequest, "No such MCP endpoint: /t/<tenant>/mcp takes a tenant id");
  try {
    return { tenant, oauth: await tenantOAuthResource(c.env, db, tenant, c.req.url) };
  } catch (error) {
    log({ event: "auth.tenant_unavailable", tenant, detail: (error as Error).message, status: 503 }, "error");
    return unavailable("The gateway could not read this tenant's configuration, so the request was refused; retry shortly");
  }
}

/** 503 with Retry-After: the gateway cannot decide now. Not a 401, which would send OAuth clients to sign in again. */
function unavailable(message: string): Response {
  return jsonRpcErrorResponse(503, GatewayErrorCode.Unavailable, message, { "retry-after": "5" });
}

/**
 * Resolves the bearer credential into a principal — an API key, a JWT from one of the tenant's issuers, or (at a
 * tenant's OAuth resource) an access token from one of its authorization servers — or answers 401 with a
 * WWW-Authenticate challenge (naming the resource metadata at an OAuth resource), 403 for a token without a
 * required scope, or 503 when the credential cannot be checked now. At `/t/<tenant>/mcp` the credential must be
 * that tenant's.
 */
export const authenticateCaller = createMiddleware<GatewayContext>(async (c, next) => {
  const startedAt = Date.now();
  const db = database(c.env.DB);
  const addressed = await addressedTenant(c, db);
  if (addressed instanceof Response) return addressed;
  const oauth = addressed?.oauth;
  // RFC 9728 §5.1 and MCP authorization: every refusal at an OAuth resource says where its metadata is.
  const challenge = (refusal: Pick<BearerChallenge, "error" | "description"> = {}) =>
    bearerChallenge({ ...(oauth ? { resourceMetadata: oauth.location.metadataUrl, scope: challengeScope(oauth.config) } : {}), ...refusal });
  const unauthenticated = (reason: string, message: string, error: BearerChallenge["error"], tenant?: string) => {
    log({ event: "auth.refused", reason, ...(tenant ? { tenant } : {}), status: 401 }, "warn");
    return jsonRpcErrorResponse(401, GatewayErrorCode.Unauthenticated, message, {
      "www-authenticate": challenge(error ? { error, description: message } : {}),
    });
  };

  // RFC 6750 §2.3 / MCP authorization: a token in the URL ends up in logs and histories, so it is never accepted.
  const query = new URL(c.req.url).searchParams;
  if (QUERY_TOKEN_PARAMETERS.some((name) => query.has(name))) {
    return unauthenticated("query_token", "Tokens in the query string are not accepted: send Authorization: Bearer <token> in the request header", "invalid_request");
  }
  let principal: Principal;
  let keyLists: IpFilterLists | null = null;
  let lastUsedAt: number | null | undefined;
  const jwt = bearerJwt(c.req.header("authorization"));
  if (jwt !== undefined) {
    // At an OAuth resource, a token of one of its authorization servers must have been minted for it (and carry the
    // required scopes); any other issuer is one of the tenant's plain JWT issuers (auth.jwt), or nobody's.
    let viaOAuth = false;
    let outcome: JwtAuthentication;
    try {
      const asAccessToken = oauth ? await authenticateOAuthToken(c.env, jwt, oauth.tenant, oauth.config, oauth.location.resource) : undefined;
      viaOAuth = asAccessToken !== undefined;
      outcome = asAccessToken ?? (await authenticateJwt(db, c.env, jwt));
    } catch (error) {
      // Never a 500 for a token: whatever failed (D1, the config), the caller is told to retry.
      log({ event: "auth.jwt_failed", detail: error instanceof Error ? error.message : String(error), status: 503 }, "error");
      return unavailable("The token could not be verified right now; retry shortly");
    }
    if (!outcome.ok) {
      if (outcome.refusal === "keys_unavailable") {
        log({ event: "auth.refused", reason: "jwt_keys_unavailable", ...(outcome.tenant ? { tenant: outcome.tenant } : {}), status: 503 }, "warn");
        return unavailable(outcome.message);
      }
      return unauthenticated(`jwt_${outcome.refusal}`, outcome.message, "invalid_token", outcome.tenant);
    }
    principal = outcome.principal;
    const missing = viaOAuth && oauth ? missingScopes(oauth.config.requiredScopes, tokenScopes(principal.claims ?? {})) : [];
    if (missing.length > 0) {
      const message = `The access token lacks the scope${missing.length > 1 ? "s" : ""} ${missing.join(" ")} this resource requires`;
      const who = { tenant: principal.tenant, consumer: principal.consumer, keyId: principal.keyId };
      await auditRefusal(c.env, db, who, c.req.raw.headers, message, startedAt, GatewayErrorCode.Forbidden);
      log({ event: "auth.refused", reason: "insufficient_scope", tenant: principal.tenant, status: 403 }, "warn");
      return jsonRpcErrorResponse(403, GatewayErrorCode.Forbidden, message, {
        "www-authenticate": challenge({ error: "insufficient_scope", description: message }),
      });
    }
  } else {
    const outcome = await authenticateApiKey(db, c.req.header("authorization") ?? null, startedAt);
    if (!outcome.ok) {
      const message = refusalMessages[outcome.refusal];
      // A refused key that names its tenant (revoked, disabled, expired) is an event that tenant's auditors want to see.
      if (outcome.identified) await auditRefusal(c.env, db, outcome.identified, c.req.raw.headers, message, startedAt);
      // RFC 6750 §3: no error code when the request carried no credential at all.
      return unauthenticated(outcome.refusal, message, outcome.refusal === "missing" ? undefined : "invalid_token");
    }
    principal = outcome.principal;
    keyLists = outcome.ipFilter;
    lastUsedAt = outcome.lastUsedAt;
    c.set("serversStamp", outcome.serversStamp);
  }
  // Another tenant's credential is no credential here (said as for any invalid one: nothing about the other tenant).
  if (addressed && principal.tenant !== addressed.tenant) {
    return unauthenticated("other_tenant", "The credential is not valid for this resource", "invalid_token", addressed.tenant);
  }
  const ipRefusal = await checkClientIp(c, db, principal, keyLists, startedAt);
  if (ipRefusal) return ipRefusal;
  c.set("principal", principal);
  // Last use, at most once a minute per key: decided from the row already read, written after the answer.
  if (lastUsedAt !== undefined && lastUseIsStale(lastUsedAt, startedAt)) afterResponse(c, recordKeyUse(db, principal, startedAt), "key.last_used");
  await next();
});

/** Lets `work` finish after the answer (waitUntil); a failure is logged and never fails the call. */
function afterResponse(c: { readonly executionCtx: { waitUntil(promise: Promise<unknown>): void } }, work: Promise<unknown>, what: string): void {
  const logged = work.catch((error: unknown) => log({ event: `${what}.failed`, error: error instanceof Error ? error.message : String(error) }, "warn"));
  try {
    c.executionCtx.waitUntil(logged);
  } catch {
    // No execution context (an in-process test request): the logged promise still runs on its own.
  }
}

/** Why a request's client address is refused, or nothing when it may proceed (tenant and key lists both apply). */
export type ClientIpVerdict = { ok: true } | { ok: false; status: 403 | 503; message: string };

/**
 * The IP allow and deny lists of the principal's tenant and of its key (`keyLists`; null for a JWT), checked on
 * `CF-Connecting-IP` only — never X-Forwarded-For and the like, which the client writes. A refusal is audited in the
 * tenant's chain and logged. Lists that cannot be read refuse (fail closed). Used by /mcp and by the admin API.
 */
export async function clientIpVerdict(env: Env, db: Database, principal: Principal, keyLists: IpFilterLists | null, headers: Headers, startedAt: number): Promise<ClientIpVerdict> {
  let tenantFilter: CompiledIpFilter;
  let keyFilter: CompiledIpFilter;
  try {
    tenantFilter = ipFilterFor((await tenantConfig(db, principal.tenant)).published?.ipFilter);
    keyFilter = ipFilterFor(keyLists);
  } catch (error) {
    log({ event: "auth.ip_filter_unavailable", tenant: principal.tenant, detail: (error as Error).message, status: 503 }, "error");
    return { ok: false, status: 503, message: "The gateway could not read this tenant's IP allow and deny lists, so the request was refused; retry shortly" };
  }
  if (!tenantFilter.active && !keyFilter.active) return { ok: true };
  const ip = headers.get("cf-connecting-ip");
  const refusal = [
    { scope: "tenant", result: tenantFilter.check(ip) },
    { scope: "key", result: keyFilter.check(ip) },
  ].find((r) => !r.result.allowed);
  if (!refusal || refusal.result.allowed) return { ok: true };
  const message = `The client address is not allowed for this ${refusal.scope === "key" ? "API key" : "tenant"}`;
  const who = { tenant: principal.tenant, consumer: principal.consumer, keyId: principal.keyId };
  await auditRefusal(env, db, who, headers, `${message}: ${refusal.result.reason} (IP filter)`, startedAt, GatewayErrorCode.Forbidden);
  log({ event: "auth.refused", reason: `ip_filter_${refusal.scope}`, tenant: principal.tenant, status: 403 }, "warn");
  return { ok: false, status: 403, message };
}

/** {@link clientIpVerdict} as /mcp answers it: a JSON-RPC error response, or nothing to let the request through. */
async function checkClientIp(
  c: { env: Env; req: { raw: Request } },
  db: Database,
  principal: Principal,
  keyLists: IpFilterLists | null,
  startedAt: number,
): Promise<Response | undefined> {
  const verdict = await clientIpVerdict(c.env, db, principal, keyLists, c.req.raw.headers, startedAt);
  if (verdict.ok) return undefined;
  return jsonRpcErrorResponse(verdict.status, verdict.status === 403 ? GatewayErrorCode.Forbidden : GatewayErrorCode.Unavailable, verdict.message);
}
