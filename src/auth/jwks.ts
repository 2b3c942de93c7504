/**
 * @module The signing keys of JWT issuers, fetched and cached per isolate (jose's createRemoteJWKSet behaviour, with
 * bounds this gateway controls): each fetch times out after {@link JWKS_FETCH_TIMEOUT_MS}; a key set is kept for
 * {@link JWKS_CACHE_MS}; a token whose `kid` is not in the cached set triggers a refetch (key rotation), at most once
 * per {@link JWKS_REFETCH_COOLDOWN_MS} per issuer, so tokens with made-up kids cannot make the gateway hammer an
 * identity provider. With `discovery`, jwks_uri comes from `<issuer>/.well-known/openid-configuration`, or from the
 * RFC 8414 authorization server metadata when there is no OpenID configuration.
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput } from "jose";
import { isSecureOrLoopbackUrl, type JwtIssuerConfig } from "./jwt-schema.ts";

export const JWKS_FETCH_TIMEOUT_MS = 5_000;
export const JWKS_CACHE_MS = 10 * 60_000;
export const JWKS_REFETCH_COOLDOWN_MS = 30_000;

/** The clock the cache reads; tests move it to step past the refetch cooldown and the cache lifetime. */
export const jwksClock = { now: (): number => Date.now() };

/** Why an issuer's keys could not be had: said to the caller as "the issuer's signing keys are unavailable". */
export class JwksUnavailableError extends Error {
  /** The HTTP status of a document that was answered with an error status. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

interface CachedKeySet {
  resolve: KeyResolver;
  fetchedAt: number;
}

const MAX_ISSUERS = 500;
/** A JWKS or discovery document above this is refused (real ones are a few KB). */
const MAX_JWKS_BYTES = 256 * 1024;
/** A key set with more keys than this is refused. */
const MAX_JWKS_KEYS = 100;
/** When each issuer's last fetch failed: no new attempt within the cooldown. */
const failures = new Map<string, number>();
const cache = new Map<string, CachedKeySet>();
/** An issuer's fetch in flight, shared by concurrent requests of one isolate. */
const inflight = new Map<string, Promise<CachedKeySet>>();

/** Forgets every cached key set (tests). */
export function clearJwksCache(): void {
  cache.clear();
  inflight.clear();
  failures.clear();
}

function cacheKey(issuer: JwtIssuerConfig): string {
  return JSON.stringify([issuer.issuer, issuer.jwksUri ?? null, issuer.discovery === true]);
}

async function fetchJson(url: string, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: "application/json" }, redirect: "manual", signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS) });
  } catch (error) {
    const timedOut = (error as Error).name === "TimeoutError" || (error as Error).name === "AbortError";
    throw new JwksUnavailableError(`${what} could not be fetched${timedOut ? ` within ${JWKS_FETCH_TIMEOUT_MS / 1000} s` : ""}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new JwksUnavailableError(`${what} answered HTTP ${response.status}`, response.status);
  }
  // A tenant chooses the URL and anyone with a token-shaped string can make us fetch it: bounded, whatever it sends.
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > MAX_JWKS_BYTES) {
    await response.body?.cancel();
    throw new JwksUnavailableError(`${what} is larger than ${MAX_JWKS_BYTES} bytes`);
  }
  const text = await boundedText(response, MAX_JWKS_BYTES);
  if (text === undefined) throw new JwksUnavailableError(`${what} is larger than ${MAX_JWKS_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch {
    throw new JwksUnavailableError(`${what} is not JSON`);
  }
}

/** The body as text, or undefined (the rest cancelled) once it exceeds `max` bytes. */
async function boundedText(response: Response, max: number): Promise<string | undefined> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

/**
 * The discovery documents tried, in order: OpenID Connect Discovery (`<issuer>/.well-known/openid-configuration`),
 * then RFC 8414's `/.well-known/oauth-authorization-server` inserted before the issuer's path (OAuth authorization
 * servers that are not OpenID providers publish only that one; MCP clients try both the same way).
 */
export function discoveryUrls(issuer: string): { url: string; what: string }[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, "");
  return [
    { url: `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`, what: "the issuer's OpenID configuration" },
    { url: `${url.origin}/.well-known/oauth-authorization-server${path}`, what: "the issuer's OAuth authorization server metadata" },
  ];
}

async function jwksUri(issuer: JwtIssuerConfig): Promise<string> {
  if (issuer.jwksUri !== undefined) return issuer.jwksUri;
  const [openid, oauth] = discoveryUrls(issuer.issuer) as [{ url: string; what: string }, { url: string; what: string }];
  let document: { issuer?: unknown; jwks_uri?: unknown } | null;
  let what = openid.what;
  try {
    document = (await fetchJson(openid.url, openid.what)) as typeof document;
  } catch (error) {
    // Only a document that is not there sends us to the other one; a timeout or a refused connection is an outage.
    if (!(error instanceof JwksUnavailableError) || (error.status !== 404 && error.status !== 410)) throw error;
    what = oauth.what;
    document = (await fetchJson(oauth.url, oauth.what)) as typeof document;
  }
  // OpenID Connect Discovery §4.3 and RFC 8414 §3.3: the document's issuer must be the one it was fetched for.
  if (document?.issuer !== issuer.issuer) throw new JwksUnavailableError(`${what} names another issuer`);
  if (typeof document.jwks_uri !== "string" || !isSecureOrLoopbackUrl(document.jwks_uri)) {
    throw new JwksUnavailableError(`${what} has no usable jwks_uri (https, or http to a loopback host)`);
  }
  return document.jwks_uri;
}

async function load(issuer: JwtIssuerConfig): Promise<CachedKeySet> {
  const key = cacheKey(issuer);
  const running = inflight.get(key);
  if (running) return running;
  // A fetch that failed recently is not repeated for every token that names this issuer: forged tokens would
  // otherwise turn into a fetch each (and pile onto a provider that is already failing).
  const failedAt = failures.get(key);
  if (failedAt !== undefined && jwksClock.now() - failedAt < JWKS_REFETCH_COOLDOWN_MS) {
    throw new JwksUnavailableError("the issuer's keys could not be fetched a moment ago; retry shortly");
  }
  const work = (async () => {
    const body = (await fetchJson(await jwksUri(issuer), "the issuer's JWKS")) as JSONWebKeySet | null;
    if (!body || !Array.isArray(body.keys)) throw new JwksUnavailableError("the issuer's JWKS has no keys array");
    if (body.keys.length > MAX_JWKS_KEYS) throw new JwksUnavailableError(`the issuer's JWKS has more than ${MAX_JWKS_KEYS} keys`);
    let resolve: KeyResolver;
    try {
      resolve = createLocalJWKSet(body);
    } catch {
      throw new JwksUnavailableError("the issuer's JWKS is malformed");
    }
    const entry = { resolve, fetchedAt: jwksClock.now() };
    cache.delete(key);
    cache.set(key, entry);
    if (cache.size > MAX_ISSUERS) cache.delete(cache.keys().next().value as string);
    return entry;
  })();
  inflight.set(key, work);
  try {
    const entry = await work;
    failures.delete(key);
    return entry;
  } catch (error) {
    failures.set(key, jwksClock.now());
    if (failures.size > MAX_ISSUERS) failures.delete(failures.keys().next().value as string);
    throw error;
  } finally {
    inflight.delete(key);
  }
}

/**
 * A key resolver for jose's jwtVerify: the cached key set (fetched when absent or older than JWKS_CACHE_MS), and,
 * when no key matches the token's header, one refetch unless the set was fetched within the cooldown.
 */
export function issuerKeys(issuer: JwtIssuerConfig) {
  return async (header: JWTHeaderParameters, token: FlattenedJWSInput) => {
    let entry = cache.get(cacheKey(issuer));
    if (!entry || jwksClock.now() - entry.fetchedAt >= JWKS_CACHE_MS) entry = await load(issuer);
    try {
      return await entry.resolve(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || jwksClock.now() - entry.fetchedAt < JWKS_REFETCH_COOLDOWN_MS) throw error;
    }
    return (await load(issuer)).resolve(header, token);
  };
}
