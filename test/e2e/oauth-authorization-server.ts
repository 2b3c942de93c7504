/**
 * A small OAuth 2.1 authorization server for end-to-end tests, on 127.0.0.1 (a random port): node:http and jose,
 * nothing else. It issues RS256 access tokens with the client credentials grant only — what a machine client such as
 * mcp-remote's `--client-credentials` uses — for registered confidential clients.
 *
 * - `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata (issuer, token_endpoint, jwks_uri, the grant,
 *   the two client authentication methods, scopes_supported; and an authorization endpoint with response type
 *   "code" that refuses every client, which mcp-remote needs to see before it will run the client credentials grant).
 * - `GET /jwks`: the public signing key as a JWK Set.
 * - `POST /token`: RFC 6749 §4.4 with RFC 8707. The client authenticates with HTTP Basic (client_secret_basic; id and
 *   secret form-urlencoded first, RFC 6749 §2.3.1) or in the body (client_secret_post), never both; the secret is
 *   compared in constant time. `resource` is required (one absolute URI without a fragment) and becomes the token's
 *   `aud`. `scope` is optional: the token gets the asked scopes the client may have (all of its scopes when none is
 *   asked), and the answer always says which (`scope`); a scope this server does not know is `invalid_scope`.
 *   Errors are RFC 6749 §5.2 JSON (`invalid_request`, `invalid_client` with 401 and a `WWW-Authenticate: Basic`
 *   challenge when Basic was tried, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, and RFC 8707's
 *   `invalid_target`), with `Cache-Control: no-store`.
 *
 * Every token request is recorded (client, method, grant, resource, scope, the answer) for assertions, secrets never.
 * `mint` signs a token directly, for the tests that present hand-made tokens.
 */
import { randomUUID, timingSafeEqual, createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from "jose";

export interface RegisteredClient {
  id: string;
  secret: string;
  /** Scopes the client may be granted. */
  scopes: string[];
  /** The token's `roles` claim (omitted when undefined). */
  roles?: string[];
}

export interface TokenRequestRecord {
  n: number;
  /** The client id as presented (authenticated or not), or null. */
  clientId: string | null;
  authMethod: "client_secret_basic" | "client_secret_post" | null;
  grantType: string | null;
  /** Every `resource` parameter, in order. */
  resources: string[];
  /** The `scope` parameter as sent, or null. */
  scope: string | null;
  status: number;
  /** The OAuth error code, or null for a token. */
  error: string | null;
  /** The granted scope of an issued token. */
  grantedScope?: string;
}

export interface TestAuthorizationServer {
  /** The issuer identifier, `http://127.0.0.1:PORT` (no trailing slash). */
  issuer: string;
  tokenEndpoint: string;
  jwksUri: string;
  metadataUrl: string;
  scopesSupported: string[];
  /** Every token request so far, in arrival order. */
  requests: TokenRequestRecord[];
  /** Signs an access token with this server's key: iss, iat, exp (+lifetime) and jti filled in unless given. */
  mint(claims: JWTPayload & { sub: string; aud: string | string[] }, options?: { lifetimeSeconds?: number }): Promise<string>;
  close(): Promise<void>;
}

export interface AuthorizationServerOptions {
  clients: RegisteredClient[];
  scopesSupported: string[];
  /** Access token lifetime (default 300 s). */
  tokenLifetimeSeconds?: number;
}

class OAuthError extends Error {
  readonly status: number;
  readonly code: string;
  readonly description: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, description: string, headers: Record<string, string> = {}) {
    super(description);
    this.status = status;
    this.code = code;
    this.description = description;
    this.headers = headers;
  }
}

/** Constant-time string equality (digests first, so unequal lengths take the same path). */
function secretsEqual(a: string, b: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** RFC 6749 §2.3.1: Basic credentials are application/x-www-form-urlencoded before base64. */
function formDecode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, " "));
}

function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header ?? "");
  if (!match) return undefined;
  const decoded = Buffer.from(match[1] as string, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function json(response: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers }).end(JSON.stringify(value));
}

export async function startAuthorizationServer(options: AuthorizationServerOptions): Promise<TestAuthorizationServer> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const kid = randomUUID();
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] };
  const lifetime = options.tokenLifetimeSeconds ?? 300;
  const clients = new Map(options.clients.map((client) => [client.id, client]));
  const requests: TokenRequestRecord[] = [];
  let issuer = "";

  const mint: TestAuthorizationServer["mint"] = async (claims, mintOptions = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: "RS256", kid, typ: "at+jwt" })
      .setIssuer(typeof claims.iss === "string" ? claims.iss : issuer)
      .setIssuedAt(claims.iat ?? now)
      .setExpirationTime(claims.exp ?? now + (mintOptions.lifetimeSeconds ?? lifetime))
      .sign(privateKey);
  };

  /** The token endpoint's decision; throws {@link OAuthError} for an error answer. */
  const token = async (request: IncomingMessage, record: TokenRequestRecord) => {
    if (!(request.headers["content-type"] ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      throw new OAuthError(400, "invalid_request", "The token request must be application/x-www-form-urlencoded");
    }
    const form = new URLSearchParams(await readBody(request));
    record.grantType = form.get("grant_type");
    record.resources = form.getAll("resource");
    record.scope = form.get("scope");
    for (const name of ["grant_type", "scope", "client_id", "client_secret"]) {
      if (form.getAll(name).length > 1) throw new OAuthError(400, "invalid_request", `The parameter ${name} is repeated`);
    }

    // Client authentication first (RFC 6749 §3.2.1): exactly one method.
    const basic = basicCredentials(request.headers.authorization);
    const posted = form.has("client_secret") ? { id: form.get("client_id") ?? "", secret: form.get("client_secret") ?? "" } : undefined;
    if (request.headers.authorization !== undefined && !basic) {
      throw new OAuthError(401, "invalid_client", "The Authorization header is not HTTP Basic client authentication", { "www-authenticate": 'Basic realm="test-as"' });
    }
    const presented = basic ?? posted;
    record.authMethod = basic ? "client_secret_basic" : posted ? "client_secret_post" : null;
    record.clientId = presented?.id ?? form.get("client_id");
    if (basic && posted) throw new OAuthError(400, "invalid_request", "Use one client authentication method, not both");
    const challenge: Record<string, string> = basic ? { "www-authenticate": 'Basic realm="test-as"' } : {};
    if (!presented) throw new OAuthError(401, "invalid_client", "Client authentication is required (client_secret_basic or client_secret_post)", challenge);
    const client = clients.get(presented.id);
    // The same constant-time comparison for an unknown client, so timing does not tell which ids exist.
    const secretMatches = secretsEqual(presented.secret, client?.secret ?? randomUUID());
    if (!client || !secretMatches) throw new OAuthError(401, "invalid_client", "Client authentication failed", challenge);

    if (record.grantType === null) throw new OAuthError(400, "invalid_request", "grant_type is required");
    if (record.grantType !== "client_credentials") {
      throw new OAuthError(400, "unsupported_grant_type", `This server issues tokens only with the client_credentials grant, not ${record.grantType}`);
    }

    // RFC 8707: the resource the token is for, one absolute URI without a fragment.
    if (record.resources.length === 0) throw new OAuthError(400, "invalid_target", "The resource parameter (RFC 8707) is required");
    if (record.resources.length > 1) throw new OAuthError(400, "invalid_target", "Ask for one resource per token");
    const resource = record.resources[0] as string;
    if (!URL.canParse(resource) || resource.includes("#")) throw new OAuthError(400, "invalid_target", "The resource must be an absolute URI without a fragment");

    const asked = record.scope === null ? undefined : record.scope.split(" ").filter(Boolean);
    const unknown = asked?.filter((scope) => !options.scopesSupported.includes(scope)) ?? [];
    if (unknown.length > 0) throw new OAuthError(400, "invalid_scope", `Unknown scope: ${unknown.join(" ")}`);
    // RFC 6749 §3.3: the server may issue fewer scopes than asked, and then says which.
    const granted = asked === undefined ? client.scopes : asked.filter((scope) => client.scopes.includes(scope));
    record.grantedScope = granted.join(" ");

    const accessToken = await mint({
      sub: client.id,
      client_id: client.id,
      aud: resource,
      ...(granted.length > 0 ? { scope: record.grantedScope } : {}),
      ...(client.roles !== undefined ? { roles: client.roles } : {}),
    });
    return { access_token: accessToken, token_type: "Bearer", expires_in: lifetime, scope: record.grantedScope };
  };

  const server = createServer(async (request, response) => {
    const path = new URL(request.url ?? "/", "http://as").pathname;
    try {
      if (request.method === "GET" && path === "/.well-known/oauth-authorization-server") {
        return json(response, 200, {
          issuer,
          // mcp-remote 0.15 runs its client credentials grant from inside the SDK's authorization code flow, which
          // first insists on an authorization_endpoint and on response type "code" (RFC 8414 requires neither when
          // no grant uses them). The endpoint exists and refuses every client: none may use the code flow here.
          authorization_endpoint: `${issuer}/authorize`,
          response_types_supported: ["code"],
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          grant_types_supported: ["client_credentials"],
          token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
          scopes_supported: options.scopesSupported,
        });
      }
      if (request.method === "GET" && path === "/jwks") return json(response, 200, jwks);
      if (path === "/authorize") {
        return json(response, 400, { error: "unauthorized_client", error_description: "No client may use the authorization code flow here: use the client_credentials grant" });
      }
      if (path === "/token") {
        const record: TokenRequestRecord = { n: requests.length + 1, clientId: null, authMethod: null, grantType: null, resources: [], scope: null, status: 200, error: null };
        requests.push(record);
        try {
          if (request.method !== "POST") throw new OAuthError(405, "invalid_request", "The token endpoint takes POST", { allow: "POST" });
          return json(response, 200, await token(request, record));
        } catch (error) {
          if (!(error instanceof OAuthError)) throw error;
          record.status = error.status;
          record.error = error.code;
          return json(response, error.status, { error: error.code, error_description: error.description }, error.headers);
        }
      }
      json(response, 404, { error: "not_found" });
    } catch (error) {
      json(response, 500, { error: "server_error", error_description: (error as Error).message });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    jwksUri: `${issuer}/jwks`,
    metadataUrl: `${issuer}/.well-known/oauth-authorization-server`,
    scopesSupported: options.scopesSupported,
    requests,
    mint,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
