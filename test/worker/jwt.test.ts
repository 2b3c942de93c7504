/**
 * Bearer JWTs on /mcp inside workerd: a tenant's `auth.jwt.issuers`, with the JWK Sets and the OpenID discovery
 * document served by the real Node receiver (test/worker/webhook-receiver.ts) and the keys made here with jose.
 * The corpus: valid RS256, ES256 and EdDSA tokens (the consumer in the audit chain), discovery, expiry and nbf with
 * the clock skew, wrong aud, wrong and unknown iss, `alg: none`, an HS256 token signed with the RSA public key
 * (HS/RS confusion), an unknown kid refetching the JWKS (rotation) and a second one within the cooldown not
 * refetching, missing sub/exp, nested claims, roles that are not strings, email domains with and without
 * email_verified, an explicitly configured HS256 secret, tokens in the query string, roles meeting policies, and
 * an (issuer, audience) pair another tenant holds refused at apply with 409.
 */
import { env, exports } from "cloudflare:workers";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { afterEach, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { jwksClock, JWKS_REFETCH_COOLDOWN_MS } from "../../src/auth/jwks.ts";
import { adminCall, BASE, echoServer, FakeConnector, mcpAnswer, mcpPost, rpcMessages, rpcRequest, seedTenant, upstreamToolNames } from "./fixtures.ts";

const receiver = inject("auditWebhookReceiver");
const realNow = jwksClock.now;
afterEach(() => {
  jwksClock.now = realNow;
});

type Signer = { kid: string; alg: string; privateKey: CryptoKey; jwk: Record<string, unknown> };

async function signer(alg: "RS256" | "ES256" | "EdDSA", kid: string): Promise<Signer & { publicKey: CryptoKey }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

async function publish(channel: string, signers: Signer[]): Promise<void> {
  const answer = await fetch(`${receiver}/control/${channel}/jwks`, { method: "POST", body: JSON.stringify({ keys: signers.map((s) => s.jwk) }) });
  expect(answer.status).toBe(200);
}

async function fetches(channel: string): Promise<number> {
  return ((await (await fetch(`${receiver}/control/${channel}/jwks-fetches`)).json()) as { count: number }).count;
}

/** A tenant with one JWT issuer whose JWKS the receiver serves (RS256 + ES256 + EdDSA keys unless told). */
async function jwtTenant(issuerOptions: Record<string, unknown> = {}, extra: { policies?: unknown[]; tenant?: string } = {}) {
  const channel = `jwt-${crypto.randomUUID()}`;
  const rsa = await signer("RS256", "rsa-1");
  const ec = await signer("ES256", "ec-1");
  const ed = await signer("EdDSA", "ed-1");
  await publish(channel, [rsa, ec, ed]);
  const issuer = `https://idp-${crypto.randomUUID().slice(0, 8)}.example.com`;
  const audience = `mcp-gateway-${crypto.randomUUID().slice(0, 8)}`;
  const seeded = await seedTenant({
    jwt: { issuers: [{ issuer, audience, jwksUri: `${receiver}/jwks/${channel}`, algorithms: ["RS256", "ES256", "EdDSA"], ...issuerOptions }] },
    ...(extra.policies ? { policies: extra.policies } : {}),
    ...(extra.tenant ? { tenant: extra.tenant } : {}),
  });
  return { ...seeded, channel, issuer, audience, rsa, ec, ed };
}

type Tenant = Awaited<ReturnType<typeof jwtTenant>>;
const now = () => Math.floor(Date.now() / 1000);

/** A token for the tenant's issuer and audience, subject alice, role reader, valid for 5 minutes; `claims` overrides. */
function token(t: Tenant, key: Signer = t.rsa, claims: JWTPayload & Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  const payload = { iss: t.issuer, aud: t.audience, sub: "alice", roles: ["reader"], iat: now(), exp: now() + 300, ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete (payload as Record<string, unknown>)[name];
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header }).sign(key.privateKey);
}

/** Status, JSON body and challenge of a tools/list on /mcp with the bearer credential. */
async function call(credential: string) {
  const response = await mcpPost(rpcRequest("tools/list"), credential);
  const text = await response.text();
  return {
    status: response.status,
    challenge: response.headers.get("www-authenticate"),
    message: response.status === 200 ? undefined : (JSON.parse(text) as { error: { message: string } }).error.message,
    text,
  };
}

/** Expects a 401 invalid_token whose description is `message`. */
async function refused(credential: string, message: string | RegExp) {
  const answer = await call(credential);
  expect(answer.status).toBe(401);
  expect(answer.message).toMatch(message);
  expect(answer.challenge).toMatch(/^Bearer realm="mcp-gateway", error="invalid_token", error_description="[^"]+"$/);
  expect(answer.challenge).toContain(answer.message);
  return answer;
}

/** The consumer and key id of the tenant's audit entries, after a tools/call (audited, unlike a tools/list) with `credential`. */
async function auditedCaller(tenant: string, credential: string) {
  await mcpAnswer(rpcRequest("tools/call", { name: "nowhere__nothing", arguments: {} }), credential);
  await env.AUDIT_LOG.getByName(tenant).flush();
  const { results } = await env.DB.prepare("SELECT consumer, key_id AS keyId FROM audit_entries WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1")
    .bind(tenant)
    .all<{ consumer: string; keyId: string }>();
  return results;
}

const b64 = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

describe("valid tokens", () => {
  it("RS256, ES256 and EdDSA tokens list tools, and the audit chain names the token's consumer", async () => {
    const t = await jwtTenant();
    for (const key of [t.rsa, t.ec, t.ed]) expect((await call(await token(t, key))).status).toBe(200);
    expect(await auditedCaller(t.tenant, await token(t))).toEqual([{ consumer: "alice", keyId: "jwt:alice" }]);
    // The JWKS was fetched once for the three tokens (cached per isolate).
    expect(await fetches(t.channel)).toBe(1);
  });

  it("OIDC discovery finds the JWKS from <issuer>/.well-known/openid-configuration", async () => {
    const channel = `oidc-${crypto.randomUUID()}`;
    const rsa = await signer("RS256", "disc-1");
    await publish(channel, [rsa]);
    const issuer = `${receiver}/oidc/${channel}`;
    const audience = "discovered";
    const seeded = await seedTenant({ jwt: { issuers: [{ issuer, audience, discovery: true }] } });
    const t = { ...seeded, channel, issuer, audience, rsa, ec: rsa, ed: rsa };
    expect((await call(await token(t))).status).toBe(200);
    expect(await fetches(channel)).toBe(1);
  });

  it("roles from the token meet the tenant's policies like an API key's", async () => {
    const t = await jwtTenant();
    const connector = await FakeConnector.connect(t.connectorToken);
    await connector.hello([echoServer("echo")]);
    const list = async (roles: unknown) => {
      const response = await mcpPost(rpcRequest("tools/list"), await token(t, t.rsa, { roles }));
      expect(response.status).toBe(200);
      return upstreamToolNames((await rpcMessages(response)).at(-1));
    };
    expect(await list(["reader"])).toEqual(["echo__echo"]);
    expect(await list(["someone-else"])).toEqual([]);
    connector.socket.close();
  });

  it("a token expired less than the clock skew ago is still accepted", async () => {
    const t = await jwtTenant();
    expect((await call(await token(t, t.rsa, { exp: now() - 30 }))).status).toBe(200);
  });
});

describe("refused tokens: 401 invalid_token with a stable description", () => {
  it("expired (beyond the skew)", async () => {
    const t = await jwtTenant();
    await refused(await token(t, t.rsa, { exp: now() - 120 }), "The token has expired (exp)");
  });

  it("nbf in the future (beyond the skew)", async () => {
    const t = await jwtTenant();
    await refused(await token(t, t.rsa, { nbf: now() + 600 }), "The token is not valid yet (nbf)");
  });

  it("a bounded skew: clockSkewSeconds 0 refuses a token expired a few seconds ago", async () => {
    const t = await jwtTenant({ clockSkewSeconds: 0 });
    await refused(await token(t, t.rsa, { exp: now() - 5 }), "The token has expired (exp)");
  });

  it("no exp", async () => {
    const t = await jwtTenant();
    await refused(await token(t, t.rsa, { exp: undefined }), "The token has no expiry (exp)");
  });

  it("wrong audience", async () => {
    const t = await jwtTenant();
    await refused(await token(t, t.rsa, { aud: "someone-else" }), "The token's audience (aud) is not one this gateway accepts for its issuer");
    await refused(await token(t, t.rsa, { aud: undefined }), "The token's audience (aud) is not one this gateway accepts for its issuer");
  });

  it("wrong issuer (compared exactly) and unknown issuer", async () => {
    const t = await jwtTenant();
    await refused(await token(t, t.rsa, { iss: `${t.issuer}/` }), "The token's issuer (iss) is not configured for any tenant");
    await refused(await token(t, t.rsa, { iss: "https://unknown.example.org", aud: "nobody" }), "The token's issuer (iss) is not configured for any tenant");
    await refused(await token(t, t.rsa, { iss: undefined }), "The token has no issuer (iss)");
  });

  it("alg: none", async () => {
    const t = await jwtTenant();
    const unsecured = `${b64({ alg: "none", typ: "JWT" })}.${b64({ iss: t.issuer, aud: t.audience, sub: "alice", exp: now() + 300 })}.`;
    await refused(unsecured, "The token's algorithm (alg) is not allowed for its issuer");
  });

  it("an HS256 token signed with the RSA public key (HS/RS confusion)", async () => {
    const t = await jwtTenant();
    const publicKeyBytes = new TextEncoder().encode(await exportSPKI(t.rsa.publicKey));
    const forged = await new SignJWT({ iss: t.issuer, aud: t.audience, sub: "mallory", roles: ["reader"], exp: now() + 300 })
      .setProtectedHeader({ alg: "HS256", kid: t.rsa.kid })
      .sign(publicKeyBytes);
    await refused(forged, "The token's algorithm (alg) is not allowed for its issuer");
    // The JWK's own bytes as the HMAC key are refused the same way.
    const jwkBytes = new TextEncoder().encode(JSON.stringify(t.rsa.jwk));
    await refused(await new SignJWT({ iss: t.issuer, aud: t.audience, sub: "m", exp: now() + 300 }).setProtectedHeader({ alg: "HS256" }).sign(jwkBytes), /algorithm/);
  });

  it("an algorithm the issuer is not pinned to, even with a key in its set", async () => {
    const t = await jwtTenant({ algorithms: ["RS256"] });
    await refused(await token(t, t.ec), "The token's algorithm (alg) is not allowed for its issuer");
  });

  it("a bad signature, and a token signed by a key the issuer does not have under a known kid", async () => {
    const t = await jwtTenant();
    const good = await token(t);
    const [h, p, s] = good.split(".") as [string, string, string];
    const tampered = `${h}.${b64({ iss: t.issuer, aud: t.audience, sub: "admin", roles: ["admin"], exp: now() + 300 })}.${s}`;
    await refused(tampered, "The token's signature is not valid");
    const impostor = await signer("RS256", t.rsa.kid);
    await refused(await token(t, impostor), "The token's signature is not valid");
    expect(p.length).toBeGreaterThan(0);
  });

  it("missing sub, or a consumer claim that is not a string", async () => {
    const t = await jwtTenant();
    await refused(await token(t, t.rsa, { sub: undefined }), "The token has no usable sub claim naming the consumer");
    const nested = await jwtTenant({ consumerIdField: "user.id" });
    await refused(await token(nested, nested.rsa, { user: { id: { nested: true } } }), "The token has no usable user.id claim naming the consumer");
  });

  it("roles that are not strings", async () => {
    const t = await jwtTenant();
    await refused(await token(t, t.rsa, { roles: ["reader", 7] }), "The token's roles claim must be an array of strings or a space-separated string");
    await refused(await token(t, t.rsa, { roles: { reader: true } }), /roles claim must be/);
  });

  it("a malformed token never becomes a 500", async () => {
    await seedTenant();
    await refused("aaa.bbb.ccc", "The bearer token is not a well-formed JWT");
    await refused(`${b64({ alg: "RS256" })}.${b64("not an object").slice(0, -1)}.sig`, "The bearer token is not a well-formed JWT");
    await refused(`${b64({ alg: "RS256" })}.${b64({ iss: 42, aud: "x", exp: "soon" })}.sig`, "The token has no issuer (iss)");
  });
});

describe("nested claims", () => {
  it("consumer from user.id and roles from realm_access.roles (Keycloak's shape)", async () => {
    const t = await jwtTenant({ consumerIdField: "user.id", rolesField: "realm_access.roles" });
    const nested = await token(t, t.rsa, { user: { id: "u-42" }, realm_access: { roles: ["reader", "other"] }, roles: undefined });
    expect((await call(nested)).status).toBe(200);
    expect(await auditedCaller(t.tenant, nested)).toEqual([{ consumer: "u-42", keyId: "jwt:alice" }]);
  });

  it("roles as a space-separated string (an OAuth scope claim)", async () => {
    const t = await jwtTenant({ rolesField: "scope" });
    expect((await call(await token(t, t.rsa, { scope: "openid reader", roles: undefined }))).status).toBe(200);
  });
});

describe("allowed email domains", () => {
  it("need the email in a listed domain and email_verified: true", async () => {
    const t = await jwtTenant({ allowedEmailDomains: ["Example.com"] });
    expect((await call(await token(t, t.rsa, { email: "alice@EXAMPLE.com", email_verified: true }))).status).toBe(200);
    await refused(await token(t, t.rsa, { email: "alice@example.com" }), "The token's email is not verified (email_verified)");
    await refused(await token(t, t.rsa, { email: "alice@example.com", email_verified: "true" }), "The token's email is not verified (email_verified)");
    await refused(await token(t, t.rsa, { email: "alice@evil.example.com", email_verified: true }), "The token's email is not in a domain this tenant allows");
    await refused(await token(t, t.rsa, {}), "The token's email is not in a domain this tenant allows");
  });
});

describe("JWKS rotation, the refetch cooldown and fetch failures", () => {
  it("an unknown kid refetches the JWKS once the cooldown has passed; another within the cooldown does not", async () => {
    const t = await jwtTenant();
    await publish(t.channel, [t.rsa]);
    expect((await call(await token(t))).status).toBe(200);
    expect(await fetches(t.channel)).toBe(1);
    // The identity provider rotates: a new key appears in its set.
    const next = await signer("RS256", "rsa-2");
    await publish(t.channel, [t.rsa, next]);
    const start = realNow();
    jwksClock.now = () => start + JWKS_REFETCH_COOLDOWN_MS + 1_000;
    expect((await call(await token(t, next))).status).toBe(200);
    expect(await fetches(t.channel)).toBe(2);
    // Within 30 s of that refetch another unknown kid is refused without fetching again.
    const third = await signer("RS256", "rsa-3");
    await publish(t.channel, [t.rsa, next, third]);
    await refused(await token(t, third), "The token's signing key (kid) is not in its issuer's key set");
    await refused(await token(t, await signer("RS256", "made-up")), /signing key \(kid\)/);
    expect(await fetches(t.channel)).toBe(2);
    // Known keys keep working from the cache meanwhile.
    expect((await call(await token(t, next))).status).toBe(200);
    expect(await fetches(t.channel)).toBe(2);
    // After the cooldown, the third key is fetched and accepted.
    jwksClock.now = () => start + 2 * JWKS_REFETCH_COOLDOWN_MS + 2_000;
    expect((await call(await token(t, third))).status).toBe(200);
    expect(await fetches(t.channel)).toBe(3);
  });

  it("a failing JWKS is not fetched again for every token within the cooldown (forged tokens cannot make a fetch each)", async () => {
    const t = await jwtTenant();
    await fetch(`${receiver}/control/${t.channel}/jwks`, { method: "POST", body: JSON.stringify({ keys: "not a list" }) });
    const start = Date.now();
    jwksClock.now = () => start;
    // Unavailable keys are the gateway's problem, not the token's: 503, retry.
    for (let i = 0; i < 5; i++) expect((await call(await token(t))).status).toBe(503);
    expect(await fetches(t.channel)).toBe(1);
    jwksClock.now = () => start + JWKS_REFETCH_COOLDOWN_MS + 1_000;
    expect((await call(await token(t))).status).toBe(503);
    expect(await fetches(t.channel)).toBe(2);
  });

  it("an unreachable JWKS is a 503 naming the cause with Retry-After, never a 500 nor a 401 (which sends OAuth clients to sign in again)", async () => {
    const t = await jwtTenant({ jwksUri: `${receiver}/no-such-route` });
    const response = await mcpPost(rpcRequest("tools/list"), await token(t));
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(((await response.json()) as { error: { code: number; message: string } }).error).toEqual({
      code: -32091,
      message: "The token's issuer's signing keys are unavailable (the issuer's JWKS answered HTTP 404); retry shortly",
    });
  });
});

describe("HS256, only when configured", () => {
  it("a token signed with the named Worker secret is accepted; RS tokens are then refused", async () => {
    // JWT_HS_TENANT_SECRET is a binding of the worker tests (vitest.config.ts): tenant hs-tenant's own secret.
    const secret = new TextEncoder().encode((env as unknown as Record<string, string>).JWT_HS_TENANT_SECRET);
    const t = await jwtTenant({ jwksUri: undefined, algorithms: ["HS256"], hs256SecretEnv: "JWT_HS_TENANT_SECRET" }, { tenant: "hs-tenant" });
    const hs = await new SignJWT({ iss: t.issuer, aud: t.audience, sub: "svc", roles: ["reader"], exp: now() + 300 }).setProtectedHeader({ alg: "HS256" }).sign(secret);
    expect((await call(hs)).status).toBe(200);
    await refused(await token(t), "The token's algorithm (alg) is not allowed for its issuer");
    const wrongSecret = await new SignJWT({ iss: t.issuer, aud: t.audience, sub: "svc", exp: now() + 300 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("guessed"));
    await refused(wrongSecret, "The token's signature is not valid");
  });

  it("another tenant's secret is never used, even when its file names it (the name must carry the tenant)", async () => {
    const secret = new TextEncoder().encode((env as unknown as Record<string, string>).JWT_HS_TENANT_SECRET);
    const t = await jwtTenant({ jwksUri: undefined, algorithms: ["HS256"], hs256SecretEnv: "JWT_HS_TENANT_SECRET" });
    const hs = await new SignJWT({ iss: t.issuer, aud: t.audience, sub: "svc", roles: ["reader"], exp: now() + 300 }).setProtectedHeader({ alg: "HS256" }).sign(secret);
    expect((await call(hs)).status).toBe(401);
  });

  it("a named secret that is not set refuses the token (401, not 500)", async () => {
    const t = await jwtTenant({ jwksUri: undefined, algorithms: ["HS256"], hs256SecretEnv: "JWT_NO_SUCH_SECRET" });
    const hs = await new SignJWT({ iss: t.issuer, aud: t.audience, sub: "svc", exp: now() + 300 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("x".repeat(32)));
    await refused(hs, "The token's issuer cannot be verified: its HS256 secret is not set on the gateway");
  });
});

describe("tokens in the query string", () => {
  it("are refused with a message pointing at the Authorization header, even with a valid header", async () => {
    const t = await jwtTenant();
    const jwt = await token(t);
    for (const query of [`access_token=${jwt}`, `token=${t.apiKey}`]) {
      const response = await exports.default.fetch(
        new Request(`${BASE}/mcp?${query}`, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${jwt}` },
          body: JSON.stringify(rpcRequest("tools/list")),
        }),
      );
      expect(response.status).toBe(401);
      const body = (await response.json()) as { error: { message: string } };
      expect(body.error.message).toContain("Authorization: Bearer");
      expect(response.headers.get("www-authenticate")).toContain('error="invalid_request"');
    }
  });

  it("API keys still work next to a tenant's JWT issuers", async () => {
    const t = await jwtTenant();
    expect((await call(t.apiKey)).status).toBe(200);
  });
});

describe("config apply", () => {
  const admin = async (jwt: unknown) => {
    const adminKey = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
    const seeded = await seedTenant({ keys: [{ id: "admin", key: adminKey, roles: ["admin"] }] });
    const apply = (issuers: unknown[] | undefined) =>
      adminCall(
        "PUT",
        "/admin/v1/config",
        adminKey,
        stringify({ tenant: seeded.tenant, auth: { keys: [{ id: "admin", key: adminKey, name: "admin", consumerId: "agent-1", roles: ["admin"] }], ...(issuers ? { jwt: { issuers } } : {}) } }),
      );
    if (jwt) expect((await apply(jwt as unknown[])).status).toBe(200);
    return { ...seeded, apply };
  };
  const rows = async (tenant: string) =>
    (await env.DB.prepare("SELECT issuer, audience FROM jwt_issuers WHERE tenant_id = ? ORDER BY audience").bind(tenant).all()).results;

  it("writes the tenant's (issuer, audience) rows, replaces them on re-apply and clears them", async () => {
    const issuer = `https://idp-${crypto.randomUUID().slice(0, 8)}.example.com`;
    const t = await admin([{ issuer, audience: "a", jwksUri: "https://idp.example.com/jwks" }]);
    expect(await rows(t.tenant)).toEqual([{ issuer, audience: "a" }]);
    expect((await t.apply([{ issuer, audience: "a", jwksUri: "https://idp.example.com/jwks" }, { issuer, audience: "b", discovery: true }])).status).toBe(200);
    expect(await rows(t.tenant)).toEqual([
      { issuer, audience: "a" },
      { issuer, audience: "b" },
    ]);
    expect((await t.apply(undefined)).status).toBe(200);
    expect(await rows(t.tenant)).toEqual([]);
  });

  it("an (issuer, audience) another tenant has is a 409 conflict, and nothing of the file is applied", async () => {
    const issuer = `https://idp-${crypto.randomUUID().slice(0, 8)}.example.com`;
    const first = await admin([{ issuer, audience: "shared", jwksUri: "https://idp.example.com/jwks" }]);
    const second = await admin([{ issuer, audience: "own", jwksUri: "https://idp.example.com/jwks" }]);
    const before = await env.DB.prepare("SELECT config_version AS v FROM tenants WHERE id = ?").bind(second.tenant).first<{ v: number }>();
    const answer = await second.apply([{ issuer, audience: "shared", jwksUri: "https://idp.example.com/jwks" }]);
    expect(answer.status).toBe(409);
    expect(answer.text).toContain("already belong to another tenant");
    expect(answer.text).not.toContain(first.tenant);
    expect(await rows(second.tenant)).toEqual([{ issuer, audience: "own" }]);
    expect(await rows(first.tenant)).toEqual([{ issuer, audience: "shared" }]);
    const after = await env.DB.prepare("SELECT config_version AS v FROM tenants WHERE id = ?").bind(second.tenant).first<{ v: number }>();
    expect(after?.v).toBe(before?.v);
  });

  it("a file naming one pair twice is a 422 with its path", async () => {
    const t = await admin(undefined);
    const issuer = "https://idp.example.com";
    const answer = await t.apply([
      { issuer, audience: "x", jwksUri: "https://idp.example.com/jwks" },
      { issuer, audience: "x", discovery: true },
    ]);
    expect(answer.status).toBe(422);
    expect(answer.text).toContain("auth.jwt.issuers[1].audience");
  });
});
