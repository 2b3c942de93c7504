/**
 * The OAuth resource server's pure parts: gateway.yaml `auth.oauth` through the real parser, the public origin the
 * resource URLs are built on, the metadata document, bearer challenges, the scopes a token grants, and where
 * discovery looks for an authorization server's keys.
 */
import { describe, expect, it } from "vitest";
import { discoveryUrls } from "../../src/auth/jwks.ts";
import {
  bearerChallenge,
  challengeScope,
  missingScopes,
  protectedResourceMetadata,
  publicOrigin,
  resourceTenantOf,
  tenantOfResourcePath,
  tenantResource,
  tokenScopes,
} from "../../src/auth/oauth.ts";
import { oauthSchema } from "../../src/auth/oauth-schema.ts";
import { edgeDocument, publishConfig } from "../../src/config/publish.ts";
import { gatewayConfigSchema, parseGatewayConfig } from "../../src/config/schema.ts";

const AS = { issuer: "https://login.example.com/tenant-a", discovery: true };

describe("auth.oauth in gateway.yaml", () => {
  it("fills the defaults and keeps what was given", () => {
    expect(oauthSchema.parse({ authorizationServers: [AS] })).toEqual({
      authorizationServers: [{ ...AS, algorithms: ["RS256"], consumerIdField: "sub", rolesField: "roles", clockSkewSeconds: 60 }],
      scopesSupported: [],
      requiredScopes: [],
    });
  });

  const refused: [string, unknown, string][] = [
    ["no authorization server", { authorizationServers: [] }, "authorizationServers"],
    ["an audience (it is always the resource URL)", { authorizationServers: [{ ...AS, audience: "x" }] }, "authorizationServers.0"],
    ["an HS256 secret", { authorizationServers: [{ ...AS, hs256SecretEnv: "JWT_X_SECRET" }] }, "authorizationServers.0"],
    ["HS256", { authorizationServers: [{ ...AS, algorithms: ["HS256"] }] }, "authorizationServers.0.algorithms.0"],
    ["alg none", { authorizationServers: [{ ...AS, algorithms: ["none"] }] }, "authorizationServers.0.algorithms.0"],
    ["no key source", { authorizationServers: [{ issuer: AS.issuer }] }, "authorizationServers.0.jwksUri"],
    ["two key sources", { authorizationServers: [{ ...AS, jwksUri: "https://login.example.com/jwks" }] }, "authorizationServers.0.jwksUri"],
    ["discovery over plain http", { authorizationServers: [{ issuer: "http://login.example.com", discovery: true }] }, "authorizationServers.0.issuer"],
    ["the same issuer twice", { authorizationServers: [AS, AS] }, "authorizationServers.1.issuer"],
    ["a scope with a space", { authorizationServers: [AS], scopesSupported: ["mcp tools"] }, "scopesSupported.0"],
    ["a scope with a quote", { authorizationServers: [AS], requiredScopes: ['mcp"x'] }, "requiredScopes.0"],
    ["a required scope not supported", { authorizationServers: [AS], scopesSupported: ["a"], requiredScopes: ["b"] }, "requiredScopes.0"],
    ["an unknown key", { authorizationServers: [AS], scopes: ["a"] }, ""],
  ];
  it.each(refused)("refuses %s", (_, input, path) => {
    const result = oauthSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join("."))).toContain(path);
  });

  it("loopback http issuers are allowed (local authorization servers); other schemes are not (clients are sent there)", () => {
    expect(oauthSchema.safeParse({ authorizationServers: [{ issuer: "http://127.0.0.1:9000", discovery: true }] }).success).toBe(true);
    for (const issuer of ["http://login.example.com", "urn:example:as", "javascript:alert(1)"]) {
      const result = oauthSchema.safeParse({ authorizationServers: [{ issuer, jwksUri: "https://login.example.com/jwks" }] });
      expect(result.success, issuer).toBe(false);
      expect(result.error?.issues.map((i) => i.path.join("."))).toContain("authorizationServers.0.issuer");
    }
  });

  const file = (auth: string, tenant = "acme") => parseGatewayConfig(`tenant: ${tenant}\nauth:\n${auth}`);
  const jwtIssuer = (audience: string) => `  jwt:\n    issuers:\n      - issuer: https://login.example.com\n        audience: ${audience}\n        jwksUri: https://login.example.com/jwks\n`;

  it("a JWT issuer's audience may not be another tenant's OAuth resource URL, only its own", () => {
    for (const audience of ["https://gw.example/t/globex/mcp", "http://127.0.0.1:8787/t/globex/mcp", "https://gw.example/t/glob%65x/mcp"]) {
      const parsed = file(jwtIssuer(audience));
      expect(parsed.ok, audience).toBe(false);
      expect(JSON.stringify(parsed), audience).toContain("auth.jwt.issuers[0].audience: is the OAuth resource of another tenant (/t/globex/mcp)");
    }
    for (const audience of ["https://gw.example/t/acme/mcp", "https://gw.example/mcp", "mcp-gateway", "https://gw.example/t/globex/mcp/extra"]) {
      expect(file(jwtIssuer(audience)).ok, audience).toBe(true);
    }
  });

  it("an issuer is either an OAuth authorization server or a JWT issuer, not both", () => {
    const both = `${jwtIssuer("mcp-gateway")}  oauth:\n    authorizationServers:\n      - issuer: https://login.example.com\n        discovery: true\n`;
    const parsed = file(both);
    expect(parsed.ok).toBe(false);
    expect(JSON.stringify(parsed)).toContain("auth.jwt.issuers[0].issuer: is also auth.oauth.authorizationServers[0]");
  });

  it("reaches the edge: published and sent by the CLI, and a file error names its path", async () => {
    const config = gatewayConfigSchema.parse({ tenant: "acme", auth: { oauth: { authorizationServers: [AS], requiredScopes: ["mcp:tools"] } } });
    expect(publishConfig(config).oauth?.requiredScopes).toEqual(["mcp:tools"]);
    expect(((await edgeDocument(config)).auth as Record<string, unknown>).oauth).toEqual(config.auth.oauth);
    const parsed = parseGatewayConfig("tenant: acme\nauth:\n  oauth:\n    authorizationServers:\n      - issuer: https://x.example\n");
    expect(parsed.ok).toBe(false);
    expect(JSON.stringify(parsed)).toContain("auth.oauth.authorizationServers[0]");
  });
});

describe("resource URLs", () => {
  it("PUBLIC_URL pins the origin; unset, the request's origin; anything but an http(s) origin makes none", () => {
    expect(publicOrigin("https://MCP.Example.com", "https://other.example/t/a/mcp")).toBe("https://mcp.example.com");
    expect(publicOrigin("https://mcp.example.com/", "https://other.example/x")).toBe("https://mcp.example.com");
    expect(publicOrigin(undefined, "http://127.0.0.1:8787/t/a/mcp")).toBe("http://127.0.0.1:8787");
    expect(publicOrigin("", "https://gw.example/t/a/mcp")).toBe("https://gw.example");
    for (const bad of ["mcp.example.com", "https://mcp.example.com/base", "https://u:p@mcp.example.com", "https://mcp.example.com?x=1", "ftp://mcp.example.com"]) {
      expect(publicOrigin(bad, "https://gw.example/t/a/mcp"), bad).toBeUndefined();
    }
  });

  it("which tenant's resource an audience is", () => {
    expect(resourceTenantOf("https://gw.example/t/acme/mcp")).toBe("acme");
    expect(resourceTenantOf("http://127.0.0.1:8787/t/ac%6De/mcp")).toBe("acme");
    for (const aud of ["https://gw.example/mcp", "https://gw.example/t/acme/mcp/", "https://gw.example/t/acme", "acme", "urn:t:acme:mcp", "ftp://gw/t/acme/mcp"]) {
      expect(resourceTenantOf(aud), aud).toBeUndefined();
    }
  });

  it("a tenant's resource and metadata URLs (RFC 9728 §3.1 path-suffixed)", () => {
    expect(tenantResource("https://gw.example", "acme")).toEqual({
      resource: "https://gw.example/t/acme/mcp",
      metadataUrl: "https://gw.example/.well-known/oauth-protected-resource/t/acme/mcp",
    });
    expect(tenantOfResourcePath("acme.eu:prod@1")).toBe("acme.eu:prod@1");
    for (const bad of ["", "..", "-a", "a/b", "a b", "x".repeat(129)]) expect(tenantOfResourcePath(bad)).toBeUndefined();
  });

  it("the metadata names only what is configured", () => {
    const oauth = oauthSchema.parse({ authorizationServers: [AS, { issuer: "https://b.example", jwksUri: "https://b.example/k" }] });
    expect(protectedResourceMetadata(oauth, "https://gw.example/t/a/mcp")).toEqual({
      resource: "https://gw.example/t/a/mcp",
      authorization_servers: [AS.issuer, "https://b.example"],
      bearer_methods_supported: ["header"],
    });
  });
});

describe("challenges and scopes", () => {
  it("builds RFC 6750 challenges with the RFC 9728 parameter, quoting safely", () => {
    expect(bearerChallenge()).toBe('Bearer realm="mcp-gateway"');
    expect(bearerChallenge({ resourceMetadata: "https://gw/.well-known/x", scope: "a b", error: "insufficient_scope", description: 'say "hi"\\\nnow' })).toBe(
      `Bearer realm="mcp-gateway", resource_metadata="https://gw/.well-known/x", scope="a b", error="insufficient_scope", error_description="say 'hi'' now"`,
    );
    // Only RFC 6750's characters: anything else (non-ASCII claim names, controls) would make the header unencodable.
    expect(bearerChallenge({ description: "kennung\u00fc \u7528\u0000\u0007\t~" })).toBe('Bearer realm="mcp-gateway", error_description="kennung? ????~"');
  });

  it("a challenge asks for the required scopes, else the supported ones, else none", () => {
    const base = { authorizationServers: [AS] };
    expect(challengeScope(oauthSchema.parse({ ...base, scopesSupported: ["a", "b"], requiredScopes: ["a"] }))).toBe("a");
    expect(challengeScope(oauthSchema.parse({ ...base, scopesSupported: ["a", "b"] }))).toBe("a b");
    expect(challengeScope(oauthSchema.parse(base))).toBeUndefined();
  });

  it("a token's scopes come from `scope` (space-separated) and `scp` (array or string); nothing else grants any", () => {
    expect([...tokenScopes({ scope: "a  b" })]).toEqual(["a", "b"]);
    expect([...tokenScopes({ scp: ["c", 1, ""] })]).toEqual(["c"]);
    expect([...tokenScopes({ scope: "a", scp: "b" })]).toEqual(["a", "b"]);
    expect(tokenScopes({ scope: 7, scp: { a: 1 }, roles: ["a"] }).size).toBe(0);
    expect(missingScopes(["a", "b"], tokenScopes({ scope: "b" }))).toEqual(["a"]);
    expect(missingScopes([], new Set())).toEqual([]);
  });

  it("discovery tries the OpenID configuration, then RFC 8414's path-inserted metadata", () => {
    expect(discoveryUrls("https://as.example/tenant-a/").map((d) => d.url)).toEqual([
      "https://as.example/tenant-a/.well-known/openid-configuration",
      "https://as.example/.well-known/oauth-authorization-server/tenant-a",
    ]);
    expect(discoveryUrls("https://as.example").map((d) => d.url)).toEqual([
      "https://as.example/.well-known/openid-configuration",
      "https://as.example/.well-known/oauth-authorization-server",
    ]);
  });
});
