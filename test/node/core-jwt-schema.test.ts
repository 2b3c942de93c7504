/**
 * gateway.yaml `auth.jwt` (src/auth/jwt-schema.ts) through the real config parser: defaults, the JWKS source
 * (exactly one of jwksUri / discovery; https or loopback http), pinned algorithms (no `none`, HS256 only with a named
 * secret and alone), claim paths, email domains, the clock skew bound, duplicate pairs, unknown keys, and what
 * reaches the edge (publishConfig, edgeDocument: the issuers, never a secret).
 */
import { describe, expect, it } from "vitest";
import { claimAt, looksLikeJwt, rolesFromClaim } from "../../src/auth/jwt.ts";
import { edgeDocument, publishConfig } from "../../src/config/publish.ts";
import { parseGatewayConfig, type GatewayConfig } from "../../src/config/schema.ts";

const ISSUER = { issuer: "https://idp.example.com/realms/acme", audience: "mcp-gateway", jwksUri: "https://idp.example.com/jwks" };

function parse(issuers: unknown[]) {
  return parseGatewayConfig(JSON.stringify({ tenant: "acme", auth: { jwt: { issuers } } }), { for: "edge" });
}

function ok(issuers: unknown[]): GatewayConfig {
  const result = parse(issuers);
  if (!result.ok) throw new Error(result.errors.join("\n"));
  return result.config;
}

function errors(issuers: unknown[]): string[] {
  const result = parse(issuers);
  if (result.ok) throw new Error("expected the config to be refused");
  return result.errors;
}

describe("auth.jwt.issuers", () => {
  it("fills the defaults", () => {
    expect(ok([ISSUER]).auth.jwt?.issuers[0]).toEqual({
      ...ISSUER,
      algorithms: ["RS256"],
      consumerIdField: "sub",
      rolesField: "roles",
      clockSkewSeconds: 60,
    });
  });

  it("is optional, and auth.type jwt / oidc from the seed still parse", () => {
    expect(ok([ISSUER]).auth.keys).toEqual([]);
    const seed = parseGatewayConfig(JSON.stringify({ auth: { type: "oidc" } }), { for: "edge" });
    expect(seed.ok && seed.config.auth.jwt).toBeUndefined();
  });

  it("accepts discovery, every asymmetric algorithm, nested claim paths, email domains and the skew bounds", () => {
    const config = ok([
      {
        issuer: "https://login.example.com",
        audience: "api://gateway",
        discovery: true,
        algorithms: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"],
        consumerIdField: "user.id",
        rolesField: "realm_access.roles",
        allowedEmailDomains: ["Example.COM", "corp.example.org"],
        clockSkewSeconds: 300,
      },
      { issuer: "http://127.0.0.1:8080/realms/dev", audience: "dev", jwksUri: "http://localhost:8080/jwks", clockSkewSeconds: 0 },
    ]);
    expect(config.auth.jwt?.issuers[0]?.allowedEmailDomains).toEqual(["example.com", "corp.example.org"]);
  });

  it("requires issuer (a URL) and audience", () => {
    expect(errors([{ audience: "x", jwksUri: ISSUER.jwksUri }]).join("\n")).toContain("auth.jwt.issuers[0].issuer");
    expect(errors([{ ...ISSUER, issuer: "not a url" }]).join("\n")).toContain("auth.jwt.issuers[0].issuer: must be a URL");
    expect(errors([{ issuer: ISSUER.issuer, jwksUri: ISSUER.jwksUri }]).join("\n")).toContain("auth.jwt.issuers[0].audience");
    expect(errors([]).join("\n")).toContain("auth.jwt.issuers");
  });

  it("needs exactly one of jwksUri and discovery", () => {
    const { jwksUri, ...bare } = ISSUER;
    expect(jwksUri).toBeDefined();
    expect(errors([bare])).toEqual(["auth.jwt.issuers[0].jwksUri: give exactly one of jwksUri or discovery: true"]);
    expect(errors([{ ...ISSUER, discovery: true }])).toEqual(["auth.jwt.issuers[0].jwksUri: give exactly one of jwksUri or discovery: true"]);
    expect(errors([{ ...bare, discovery: false }])).toEqual(["auth.jwt.issuers[0].jwksUri: give exactly one of jwksUri or discovery: true"]);
  });

  it("wants https for jwksUri and a discovered issuer (http only to loopback)", () => {
    expect(errors([{ ...ISSUER, jwksUri: "http://idp.example.com/jwks" }]).join("\n")).toContain("auth.jwt.issuers[0].jwksUri: must be an https:// URL");
    expect(errors([{ issuer: "http://idp.example.com", audience: "a", discovery: true }]).join("\n")).toContain(
      "auth.jwt.issuers[0].issuer: discovery needs an https:// issuer",
    );
    expect(errors([{ ...ISSUER, jwksUri: "ftp://idp.example.com/jwks" }]).join("\n")).toContain("jwksUri");
  });

  it("pins algorithms: a non-empty list of known ones, never none", () => {
    expect(errors([{ ...ISSUER, algorithms: [] }]).join("\n")).toContain("auth.jwt.issuers[0].algorithms");
    expect(errors([{ ...ISSUER, algorithms: ["none"] }]).join("\n")).toContain("auth.jwt.issuers[0].algorithms[0]");
    expect(errors([{ ...ISSUER, algorithms: ["HS512"] }]).join("\n")).toContain("auth.jwt.issuers[0].algorithms[0]");
  });

  it("allows HS256 only with hs256SecretEnv, alone, and without a JWKS source", () => {
    const { jwksUri: _, ...bare } = ISSUER;
    expect(ok([{ ...bare, algorithms: ["HS256"], hs256SecretEnv: "JWT_ACME_SECRET" }]).auth.jwt?.issuers[0]?.hs256SecretEnv).toBe("JWT_ACME_SECRET");
    expect(errors([{ ...ISSUER, algorithms: ["HS256"] }])).toContain("auth.jwt.issuers[0].algorithms: HS256 needs hs256SecretEnv (the Worker secret holding the shared secret)");
    expect(errors([{ ...bare, hs256SecretEnv: "JWT_ACME_SECRET" }])).toContain('auth.jwt.issuers[0].algorithms: must be exactly ["HS256"] when hs256SecretEnv is set');
    expect(errors([{ ...bare, algorithms: ["HS256", "RS256"], hs256SecretEnv: "JWT_ACME_SECRET" }])).toContain(
      'auth.jwt.issuers[0].algorithms: must be exactly ["HS256"] when hs256SecretEnv is set',
    );
    expect(errors([{ ...ISSUER, algorithms: ["HS256"], hs256SecretEnv: "JWT_ACME_SECRET" }])).toContain("auth.jwt.issuers[0].hs256SecretEnv: an HS256 issuer has no jwksUri or discovery");
    expect(errors([{ ...bare, algorithms: ["HS256"], hs256SecretEnv: "not a name" }]).join("\n")).toContain("auth.jwt.issuers[0].hs256SecretEnv");
    // Another tenant's secret is not this tenant's (tenant acme: JWT_ACME_…).
    expect(errors([{ ...bare, algorithms: ["HS256"], hs256SecretEnv: "JWT_GLOBEX_SECRET" }])).toContain(
      "auth.jwt.issuers[0].hs256SecretEnv: must begin with JWT_ACME_ (this tenant's secrets), e.g. JWT_ACME_SECRET",
    );
    // A platform secret is not a tenant's token key.
    expect(errors([{ ...bare, algorithms: ["HS256"], hs256SecretEnv: "AUDIT_SIGNING_KEY" }]).join("\n")).toContain("must name a Worker secret whose name begins with JWT_");
  });

  it("bounds the clock skew to 0…300 seconds", () => {
    expect(errors([{ ...ISSUER, clockSkewSeconds: 301 }]).join("\n")).toContain("auth.jwt.issuers[0].clockSkewSeconds");
    expect(errors([{ ...ISSUER, clockSkewSeconds: -1 }]).join("\n")).toContain("auth.jwt.issuers[0].clockSkewSeconds");
  });

  it("checks claim paths and email domains", () => {
    expect(errors([{ ...ISSUER, consumerIdField: "user..id" }]).join("\n")).toContain("auth.jwt.issuers[0].consumerIdField");
    expect(errors([{ ...ISSUER, rolesField: "" }]).join("\n")).toContain("auth.jwt.issuers[0].rolesField");
    expect(errors([{ ...ISSUER, allowedEmailDomains: [] }]).join("\n")).toContain("auth.jwt.issuers[0].allowedEmailDomains");
    expect(errors([{ ...ISSUER, allowedEmailDomains: ["@example.com"] }]).join("\n")).toContain("auth.jwt.issuers[0].allowedEmailDomains[0]");
  });

  it("refuses unknown keys and a pair named twice", () => {
    expect(errors([{ ...ISSUER, jwks: "x" }]).join("\n")).toContain("auth.jwt.issuers[0]");
    expect(errors([ISSUER, { ...ISSUER, jwksUri: undefined, discovery: true }])).toContain("auth.jwt.issuers[1].audience: the same issuer and audience as issuers[0]");
    ok([ISSUER, { ...ISSUER, audience: "other" }]);
  });
});

describe("what reaches the edge", () => {
  it("publishConfig and edgeDocument carry the issuers (no secret in them) and the edge parses the document back", async () => {
    const { jwksUri: _, ...bare } = ISSUER;
    const config = ok([ISSUER, { ...bare, audience: "hs", algorithms: ["HS256"], hs256SecretEnv: "JWT_ACME_SECRET" }]);
    expect(publishConfig(config).jwt).toEqual(config.auth.jwt);
    const document = await edgeDocument(config);
    expect((document.auth as { jwt: unknown }).jwt).toEqual(config.auth.jwt);
    const back = parseGatewayConfig(JSON.stringify(document), { for: "edge" });
    expect(back.ok && back.config.auth.jwt).toEqual(config.auth.jwt);
    const none = ok([ISSUER]);
    delete none.auth.jwt;
    expect("jwt" in publishConfig(none)).toBe(false);
  });
});

describe("claim helpers", () => {
  it("read dotted paths, own properties only", () => {
    const claims = { sub: "a", user: { id: "u1" }, realm_access: { roles: ["r"] }, "dotted.name": 1 };
    expect(claimAt(claims, "user.id")).toBe("u1");
    expect(claimAt(claims, "realm_access.roles")).toEqual(["r"]);
    expect(claimAt(claims, "user.id.more")).toBeUndefined();
    expect(claimAt(claims, "user.constructor")).toBeUndefined();
    expect(claimAt(claims, "missing")).toBeUndefined();
  });

  it("take roles as an array of strings or a space-separated string", () => {
    expect(rolesFromClaim(undefined)).toEqual([]);
    expect(rolesFromClaim("a  b c")).toEqual(["a", "b", "c"]);
    expect(rolesFromClaim(["a", "b"])).toEqual(["a", "b"]);
    expect(rolesFromClaim(["a", 1])).toBeUndefined();
    expect(rolesFromClaim({ a: true })).toBeUndefined();
    expect(rolesFromClaim(7)).toBeUndefined();
  });

  it("tell JWTs from API keys by shape", () => {
    expect(looksLikeJwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln")).toBe(true);
    expect(looksLikeJwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")).toBe(true);
    expect(looksLikeJwt("gw_abcdefghijklmnopqrstuvwxyz012345")).toBe(false);
    expect(looksLikeJwt("a.b")).toBe(false);
    expect(looksLikeJwt("a.b.c.d")).toBe(false);
  });
});
