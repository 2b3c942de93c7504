/**
 * The gateway as an OAuth protected resource (MCP authorization 2025-11-25) inside workerd: a tenant with
 * `auth.oauth` at /t/<tenant>/mcp, its RFC 9728 metadata, the RFC 6750 / RFC 9728 challenges, audience binding
 * (RFC 8707), required scopes (403 insufficient_scope), the tenant of the URL against the tenant of the credential,
 * tokens never in the query string and never forwarded upstream. The authorization server's keys are served by the
 * real Node receiver (test/worker/webhook-receiver.ts); tokens are minted here with jose. PUBLIC_URL is unset in
 * the worker tests, so the resource's origin is the request's: https://gateway.test.
 */
import { env, exports } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { describe, expect, inject, it } from "vitest";
import { BASE, echoServer, FakeConnector, mcpPost, rpcMessages, rpcRequest, seedTenant } from "./fixtures.ts";

const receiver = inject("auditWebhookReceiver");
const now = () => Math.floor(Date.now() / 1000);

interface OAuthTenant {
  tenant: string;
  apiKey: string;
  connectorToken: string;
  issuer: string;
  resource: string;
  metadataUrl: string;
  sign(claims?: JWTPayload & Record<string, unknown>): Promise<string>;
}

/** A key pair whose public half the receiver serves as the JWK Set of `channel`. */
async function publishedKey(channel: string): Promise<CryptoKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "as-1", alg: "RS256", use: "sig" };
  const answer = await fetch(`${receiver}/control/${channel}/jwks`, { method: "POST", body: JSON.stringify({ keys: [jwk] }) });
  expect(answer.status).toBe(200);
  return privateKey;
}

/**
 * A tenant whose authorization server is the receiver's `<receiver>/as/<channel>` (found through RFC 8414 discovery
 * unless `server` says otherwise), requiring the scope mcp:tools; its tokens name client `agent-7` with role reader.
 */
async function oauthTenant(oauth: Record<string, unknown> = {}, server: Record<string, unknown> = { discovery: true }): Promise<OAuthTenant> {
  const channel = `as-${crypto.randomUUID()}`;
  const privateKey = await publishedKey(channel);
  const issuer = `${receiver}/as/${channel}`;
  const seeded = await seedTenant({
    oauth: { authorizationServers: [{ issuer, ...server }], scopesSupported: ["mcp:tools", "mcp:admin"], requiredScopes: ["mcp:tools"], resourceName: "Tools of the test tenant", ...oauth },
  });
  const resource = `${BASE}/t/${seeded.tenant}/mcp`;
  return {
    ...seeded,
    issuer,
    resource,
    metadataUrl: `${BASE}/.well-known/oauth-protected-resource/t/${seeded.tenant}/mcp`,
    sign: (claims = {}) => {
      const payload: Record<string, unknown> = { iss: issuer, aud: resource, sub: "agent-7", scope: "mcp:tools", roles: ["reader"], iat: now(), exp: now() + 300, ...claims };
      for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
      return new SignJWT(payload).setProtectedHeader({ alg: "RS256", kid: "as-1", typ: "at+jwt" }).sign(privateKey);
    },
  };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await exports.default.fetch(new Request(url, { headers }));
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
}

/** Status, challenge and JSON-RPC error message of a tools/list at `path` with the bearer credential. */
async function list(path: string, credential: string | undefined, query = "") {
  const response = await mcpPost(rpcRequest("tools/list"), credential, {}, undefined, `${path}${query}`);
  const text = await response.text();
  return {
    status: response.status,
    challenge: response.headers.get("www-authenticate"),
    message: response.status === 200 ? undefined : (JSON.parse(text) as { error: { message: string } }).error.message,
  };
}

const at = (t: OAuthTenant) => `/t/${t.tenant}/mcp`;

describe("protected resource metadata (RFC 9728)", () => {
  it("names the resource exactly as dialled, the tenant's authorization servers, scopes and header-only bearer tokens", async () => {
    const t = await oauthTenant();
    const answer = await get(t.metadataUrl);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      resource: t.resource,
      authorization_servers: [t.issuer],
      scopes_supported: ["mcp:tools", "mcp:admin"],
      bearer_methods_supported: ["header"],
      resource_name: "Tools of the test tenant",
    });
    // Public and read cross-origin by browser-based clients.
    expect(answer.headers.get("access-control-allow-origin")).toBe("*");
    expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
  });

  it("an unknown tenant and a tenant without auth.oauth get the same 404; /mcp's own well-known URLs name the per-tenant form", async () => {
    const plain = await seedTenant();
    const unknown = await get(`${BASE}/.well-known/oauth-protected-resource/t/nobody-${crypto.randomUUID().slice(0, 8)}/mcp`);
    const withoutOAuth = await get(`${BASE}/.well-known/oauth-protected-resource/t/${plain.tenant}/mcp`);
    expect(unknown.status).toBe(404);
    expect(withoutOAuth).toEqual({ ...unknown, headers: withoutOAuth.headers });
    for (const path of ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]) {
      const shared = await get(`${BASE}${path}`);
      expect(shared.status).toBe(404);
      expect(shared.body.error).toContain("/.well-known/oauth-protected-resource/t/<tenant>/mcp");
    }
    const hostile = await get(`${BASE}/.well-known/oauth-protected-resource/t/${encodeURIComponent("../admin")}/mcp`);
    expect(hostile.status).toBe(404);
  });

  it("a Host outside ALLOWED_HOSTS gets no metadata (with PUBLIC_URL unset, the host is the resource's origin)", async () => {
    const t = await oauthTenant();
    const answer = await get(t.metadataUrl.replace("gateway.test", "attacker.example"));
    expect(answer.status).toBe(403);
    expect(JSON.stringify(answer.body)).not.toContain("attacker.example/t/");
  });

  it("a tenant made after its metadata was asked for is an OAuth resource at once (unknown names are not cached)", async () => {
    const tenant = `late-${crypto.randomUUID().slice(0, 8)}`;
    const url = `${BASE}/.well-known/oauth-protected-resource/t/${tenant}/mcp`;
    expect((await get(url)).status).toBe(404);
    await seedTenant({ tenant, oauth: { authorizationServers: [{ issuer: "https://as.example.com", jwksUri: "https://as.example.com/jwks" }] } });
    // Within the per-isolate config cache's second: a cached "no such tenant" would still say 404 here.
    expect((await get(url)).status).toBe(200);
  });

  it("a CORS preflight is answered without credentials", async () => {
    const t = await oauthTenant();
    const response = await exports.default.fetch(new Request(t.metadataUrl, { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "GET" } }));
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("challenges (RFC 6750 §3, RFC 9728 §5.1)", () => {
  it("no credential: 401 naming the resource metadata and the required scope, with no error code", async () => {
    const t = await oauthTenant();
    const answer = await list(at(t), undefined);
    expect(answer.status).toBe(401);
    expect(answer.challenge).toBe(`Bearer realm="mcp-gateway", resource_metadata="${t.metadataUrl}", scope="mcp:tools"`);
  });

  it("without required scopes the challenge asks for the supported ones; with none, no scope parameter", async () => {
    const some = await oauthTenant({ requiredScopes: [] });
    expect((await list(at(some), undefined)).challenge).toContain('scope="mcp:tools mcp:admin"');
    const none = await oauthTenant({ requiredScopes: [], scopesSupported: [] });
    expect((await list(at(none), undefined)).challenge).toBe(`Bearer realm="mcp-gateway", resource_metadata="${none.metadataUrl}"`);
  });

  it("an invalid token: 401 invalid_token with the metadata; /mcp keeps its plain challenge", async () => {
    const t = await oauthTenant();
    const answer = await list(at(t), "not.a.token");
    expect(answer.status).toBe(401);
    expect(answer.challenge).toMatch(new RegExp(`^Bearer realm="mcp-gateway", resource_metadata="${t.metadataUrl.replace(/[.?]/g, "\\$&")}", scope="mcp:tools", error="invalid_token", error_description="[^"]+"$`));
    expect((await list("/mcp", undefined)).challenge).toBe('Bearer realm="mcp-gateway"');
  });

  it("a token in the query string is refused (invalid_request), even a valid one", async () => {
    const t = await oauthTenant();
    for (const name of ["access_token", "token"]) {
      const answer = await list(at(t), undefined, `?${name}=${await t.sign()}`);
      expect(answer.status).toBe(401);
      expect(answer.challenge).toContain('error="invalid_request"');
      expect(answer.challenge).toContain(`resource_metadata="${t.metadataUrl}"`);
    }
  });
});

describe("access tokens", () => {
  it("a token minted for the resource is accepted, and the call is recorded as the token's client", async () => {
    const t = await oauthTenant();
    const token = await t.sign();
    expect((await list(at(t), token)).status).toBe(200);
    const call = await mcpPost(rpcRequest("tools/call", { name: "nowhere__nothing", arguments: {} }), token, {}, undefined, at(t));
    expect(call.status).toBe(200);
    expect((await rpcMessages(call)).at(-1)?.error.code).toBe(-32602);
    await env.AUDIT_LOG.getByName(t.tenant).flush();
    const row = await env.DB.prepare("SELECT consumer, key_id AS keyId FROM audit_entries WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1").bind(t.tenant).first();
    expect(row).toEqual({ consumer: "agent-7", keyId: "jwt:agent-7" });
  });

  it("audience binding (RFC 8707): a token for another tenant's resource, for /mcp or for another server is refused", async () => {
    const t = await oauthTenant();
    for (const aud of [`${BASE}/t/someone-else/mcp`, `${BASE}/mcp`, "https://other-mcp.example/mcp", `${t.resource}/`, [`${BASE}/mcp`]]) {
      const answer = await list(at(t), await t.sign({ aud }));
      expect(answer.status, JSON.stringify(aud)).toBe(401);
      expect(answer.message).toBe("The token was not issued for this resource (aud)");
      expect(answer.challenge).toContain('error="invalid_token"');
    }
    // A token whose audiences include this resource is for it.
    expect((await list(at(t), await t.sign({ aud: ["https://other-mcp.example/mcp", t.resource] }))).status).toBe(200);
  });

  it("a resource token is not accepted at the shared /mcp (it was not minted for it)", async () => {
    const t = await oauthTenant();
    const answer = await list("/mcp", await t.sign());
    expect(answer.status).toBe(401);
    expect(answer.challenge).toContain('error="invalid_token"');
  });

  it("another tenant trusting the same authorization server does not accept this tenant's tokens", async () => {
    const a = await oauthTenant();
    const b = await seedTenant({ oauth: { authorizationServers: [{ issuer: a.issuer, discovery: true }] } });
    const answer = await list(`/t/${b.tenant}/mcp`, await a.sign());
    expect(answer.status).toBe(401);
    expect(answer.message).toBe("The token was not issued for this resource (aud)");
  });

  it("a token from an issuer that is not one of the resource's authorization servers is refused", async () => {
    const t = await oauthTenant();
    const stranger = await oauthTenant();
    const answer = await list(at(t), await stranger.sign({ aud: t.resource }));
    expect(answer.status).toBe(401);
    expect(answer.challenge).toContain('error="invalid_token"');
  });

  it("expired, unsigned and tampered tokens are refused with invalid_token", async () => {
    const t = await oauthTenant();
    expect((await list(at(t), await t.sign({ exp: now() - 3600 }))).message).toBe("The token has expired (exp)");
    const good = await t.sign();
    const [header, payload] = good.split(".") as [string, string];
    const b64 = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const none = `${b64({ alg: "none", typ: "JWT" })}.${payload}.`;
    const tampered = `${header}.${b64({ ...JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))), roles: ["admin"] })}.${good.split(".")[2]}`;
    for (const token of [none, tampered]) {
      const answer = await list(at(t), token);
      expect(answer.status).toBe(401);
      expect(answer.challenge).toContain('error="invalid_token"');
    }
  });

  it("a token without a required scope: 403 insufficient_scope naming the scope and the metadata, recorded in the chain", async () => {
    const t = await oauthTenant();
    for (const claims of [{ scope: "mcp:admin" }, { scope: undefined }, { scope: "mcp:toolsx" }, { scope: 42 }]) {
      const answer = await list(at(t), await t.sign(claims));
      expect(answer.status, JSON.stringify(claims)).toBe(403);
      expect(answer.message).toBe("The access token lacks the scope mcp:tools this resource requires");
      expect(answer.challenge).toBe(
        `Bearer realm="mcp-gateway", resource_metadata="${t.metadataUrl}", scope="mcp:tools", error="insufficient_scope", error_description="${answer.message}"`,
      );
    }
    await env.AUDIT_LOG.getByName(t.tenant).flush();
    const refusals = await env.DB.prepare("SELECT consumer, status FROM audit_entries WHERE tenant_id = ? AND method = 'authenticate'").bind(t.tenant).all();
    expect(refusals.results).toHaveLength(4);
    expect(refusals.results[0]).toMatchObject({ consumer: "agent-7" });
    // `scp` (an array or a string) grants scopes as `scope` does.
    expect((await list(at(t), await t.sign({ scope: undefined, scp: ["mcp:tools"] }))).status).toBe(200);
    expect((await list(at(t), await t.sign({ scope: "openid mcp:tools" }))).status).toBe(200);
  });

  it("the authorization server's keys are found through RFC 8414 metadata, or a configured jwksUri", async () => {
    const viaDiscovery = await oauthTenant();
    expect((await list(at(viaDiscovery), await viaDiscovery.sign())).status).toBe(200);
    const channel = `as-${crypto.randomUUID()}`;
    const privateKey = await publishedKey(channel);
    const issuer = `https://as-${channel.slice(3, 11)}.example.com`;
    const seeded = await seedTenant({ oauth: { authorizationServers: [{ issuer, jwksUri: `${receiver}/jwks/${channel}` }] } });
    const token = await new SignJWT({ iss: issuer, aud: `${BASE}/t/${seeded.tenant}/mcp`, sub: "svc", roles: ["reader"], exp: now() + 60 })
      .setProtectedHeader({ alg: "RS256", kid: "as-1" })
      .sign(privateKey);
    expect((await list(`/t/${seeded.tenant}/mcp`, token)).status).toBe(200);
  });
});

describe("the tenant of the URL", () => {
  it("the tenant's API keys work at its own resource; another tenant's key is refused there without naming it", async () => {
    const t = await oauthTenant();
    const other = await seedTenant();
    expect((await list(at(t), t.apiKey)).status).toBe(200);
    const refused = await list(at(t), other.apiKey);
    expect(refused.status).toBe(401);
    expect(refused.message).toBe("The credential is not valid for this resource");
    expect(refused.challenge).toContain(`resource_metadata="${t.metadataUrl}"`);
    expect(refused.message).not.toContain(other.tenant);
    // A tenant without OAuth has its /t/<tenant>/mcp too (API keys), with the plain challenge.
    expect((await list(`/t/${other.tenant}/mcp`, other.apiKey)).status).toBe(200);
    expect((await list(`/t/${other.tenant}/mcp`, undefined)).challenge).toBe('Bearer realm="mcp-gateway"');
    expect((await list(`/t/${other.tenant}/mcp`, t.apiKey)).status).toBe(401);
  });

  it("a path segment that is not a tenant id is a 404 JSON-RPC error, never a 5xx", async () => {
    // (`..` and `%2e%2e` never get here: the URL parser resolves them before the Worker sees the path.)
    for (const segment of ["-x", "a%2Fb", "a%00b", "a%20b", "x".repeat(200)]) {
      const response = await mcpPost(rpcRequest("tools/list"), "gw_whatever", {}, undefined, `/t/${segment}/mcp`);
      expect(response.status, segment).toBe(404);
      expect(((await response.json()) as { error: { code: number } }).error.code, segment).toBe(-32600);
    }
  });

  it("another tenant's auth.jwt token is refused at a tenant's URL", async () => {
    const t = await oauthTenant();
    const channel = `jwt-${crypto.randomUUID()}`;
    const privateKey = await publishedKey(channel);
    const issuer = `https://idp-${channel.slice(4, 12)}.example.com`;
    const other = await seedTenant({ jwt: { issuers: [{ issuer, audience: "other-gateway", jwksUri: `${receiver}/jwks/${channel}` }] } });
    const token = await new SignJWT({ iss: issuer, aud: "other-gateway", sub: "bob", roles: ["reader"], exp: now() + 60 }).setProtectedHeader({ alg: "RS256", kid: "as-1" }).sign(privateKey);
    expect((await list(`/t/${other.tenant}/mcp`, token)).status).toBe(200);
    const refused = await list(at(t), token);
    expect(refused.status).toBe(401);
    expect(refused.message).toBe("The credential is not valid for this resource");
  });
});

describe("tokens for another tenant's resource through auth.jwt", () => {
  it("a tenant whose JWT issuer names another tenant's resource URL as its audience never gets that tenant's tokens", async () => {
    const a = await oauthTenant();
    // Seeded directly, past the apply's check that refuses such a file (test/node/core-oauth.test.ts): the runtime
    // refusal must hold on its own, for rows written before that check or by any other path.
    const c = await seedTenant({ jwt: { issuers: [{ issuer: a.issuer, audience: a.resource, discovery: true }] } });
    const token = await a.sign();
    for (const path of ["/mcp", `/t/${c.tenant}/mcp`]) {
      const answer = await list(path, token);
      expect(answer.status, path).toBe(401);
      expect(answer.message, path).toBe("The token was minted for another tenant's resource (aud)");
    }
    // A's own resource still takes it.
    expect((await list(at(a), token)).status).toBe(200);
  });
});

describe("PUBLIC_URL", () => {
  it("pins the resource: metadata and challenges name it, and only tokens minted for it are accepted, whatever the Host", async () => {
    const { default: app } = await import("../../src/index.ts");
    const t = await oauthTenant();
    const pinned = { ...env, PUBLIC_URL: "https://mcp.example.com" };
    const fetchWith = (path: string, init: RequestInit = {}) => app.fetch(new Request(`${BASE}${path}`, init), pinned, { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as never);
    const metadata = (await (await fetchWith(`/.well-known/oauth-protected-resource/t/${t.tenant}/mcp`)).json()) as { resource: string };
    expect(metadata.resource).toBe(`https://mcp.example.com/t/${t.tenant}/mcp`);
    const post = async (token: string | undefined) =>
      fetchWith(`/t/${t.tenant}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(rpcRequest("tools/list")),
      });
    expect((await post(undefined)).headers.get("www-authenticate")).toContain(`resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/t/${t.tenant}/mcp"`);
    // The request came in on gateway.test: a token for that host's URL is not for the pinned resource.
    expect((await post(await t.sign())).status).toBe(401);
    expect((await post(await t.sign({ aud: `https://mcp.example.com/t/${t.tenant}/mcp` }))).status).toBe(200);
    // Not an origin: OAuth is off (no metadata, plain challenge) rather than bound to a guess.
    const broken = { ...env, PUBLIC_URL: "mcp.example.com/base" };
    const response = await app.fetch(new Request(`${BASE}/.well-known/oauth-protected-resource/t/${t.tenant}/mcp`), broken, { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as never);
    expect(response.status).toBe(404);
  });
});

describe("challenge texts", () => {
  it("a refusal whose description holds non-ASCII (a tenant's claim name) is still a 401 with an encodable header", async () => {
    const t = await oauthTenant({}, { discovery: true, consumerIdField: "benutzer.kennungü" });
    const answer = await list(at(t), await t.sign());
    expect(answer.status).toBe(401);
    expect(answer.challenge).toMatch(/^[\x20-\x7E]+$/);
    expect(answer.challenge).toContain("benutzer.kennung?");
  });
});

describe("no token passthrough", () => {
  it("the upstream server sees the call, never the agent's token or any authorization header", async () => {
    const t = await oauthTenant();
    const connector = await FakeConnector.connect(t.connectorToken);
    await connector.hello([echoServer("echo")]);
    const token = await t.sign();
    const pending = mcpPost(rpcRequest("tools/call", { name: "echo__echo", arguments: { text: "hi" } }), token, {}, undefined, at(t));
    const rpc = await connector.next("rpc");
    const relayed = JSON.stringify(rpc);
    expect(relayed).not.toContain(token);
    expect(relayed).not.toContain(token.split(".")[2]);
    expect(relayed.toLowerCase()).not.toContain("authorization");
    connector.send({ type: "result", callId: rpc.callId, result: { content: [{ type: "text", text: "hi" }] } });
    expect((await rpcMessages(await pending)).at(-1)?.result.content[0].text).toBe("hi");
    connector.socket.close();
  });
});
