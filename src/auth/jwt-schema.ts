/**
 * @module gateway.yaml `auth.jwt`: the identity providers whose bearer JWTs a tenant accepts on /mcp, next to its
 * API keys. Platform-free (zod only): the CLI, the admin API and the Worker validate the same way.
 *
 * Nothing here is secret: an HS256 shared secret is never in the file, only the name of the Worker secret holding
 * it (`hs256SecretEnv`), and only when an issuer asks for HS256 explicitly.
 */
import { z } from "zod";

/** Asymmetric algorithms an issuer may be pinned to (never `none`, never a symmetric one by default). */
export const JWT_ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"] as const;

/** Longest clock skew an issuer may be given, in seconds. */
export const MAX_CLOCK_SKEW_SECONDS = 300;

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** https, or http to a loopback host (local identity providers and tests). */
export function isSecureOrLoopbackUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname));
}

const secureUrlSchema = z
  .string()
  .max(2048)
  .refine(isSecureOrLoopbackUrl, "must be an https:// URL (http:// only for localhost, 127.0.0.1 or [::1])");

/** A dotted claim path: `sub`, `realm_access.roles`, `user.id`. */
const claimPathSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^.\s]+(\.[^.\s]+)*$/, "must be a claim name or a dotted path to a nested claim (e.g. realm_access.roles)");

const envNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be the name of a Worker secret");

const domainSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, "must be a domain name such as example.com")
  .transform((d) => d.toLowerCase());

/** An issuer's fields; {@link jwtIssuerSchema} adds the checks across them, and OAuth servers reuse them (src/auth/oauth-schema.ts). */
export const jwtIssuerFields = z.strictObject({
  /** The token's `iss`, compared exactly. */
  issuer: z.string().min(1).max(2048).refine((text) => URL.canParse(text), "must be a URL"),
  /** A value the token's `aud` must contain; the (issuer, audience) pair names this tenant. */
  audience: z.string().min(1).max(2048),
  /** Where the issuer's signing keys are (a JWK Set). */
  jwksUri: secureUrlSchema.optional(),
  /** Find jwks_uri in `<issuer>/.well-known/openid-configuration` (or RFC 8414's oauth-authorization-server) instead. */
  discovery: z.boolean().optional(),
  algorithms: z.array(z.enum([...JWT_ASYMMETRIC_ALGORITHMS, "HS256"])).min(1).default(["RS256"]),
  /**
   * The Worker secret holding an HS256 shared secret: HS256 only when named here (then algorithms is ["HS256"]).
   * Only names beginning `JWT_` may be used: a tenant's file must not be able to point at the platform's own
   * secrets (the audit signing key, the webhook root, …) and use them as a token key.
   */
  hs256SecretEnv: envNameSchema.regex(/^JWT_[A-Z0-9_]+$/, "must name a Worker secret whose name begins with JWT_ (e.g. JWT_ACME_SECRET)").optional(),
  /** The claim naming the consumer (dotted for a nested claim). */
  consumerIdField: claimPathSchema.default("sub"),
  /** The claim holding the roles: an array of strings or a space-separated string. */
  rolesField: claimPathSchema.default("roles"),
  /** Only tokens whose `email` is in one of these domains, with `email_verified: true`. */
  allowedEmailDomains: z.array(domainSchema).min(1).optional(),
  clockSkewSeconds: z.number().int().min(0).max(MAX_CLOCK_SKEW_SECONDS).default(60),
});

/** The checks across an issuer's fields: one key source, HS256 only with its secret, discovery over https. */
export function checkIssuerFields(
  issuer: { issuer: string; jwksUri?: string | undefined; discovery?: boolean | undefined; algorithms: readonly string[]; hs256SecretEnv?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  const hs = issuer.hs256SecretEnv !== undefined;
  const hasHs = issuer.algorithms.includes("HS256");
  if (hs && (issuer.algorithms.length !== 1 || !hasHs)) {
    ctx.addIssue({ code: "custom", path: ["algorithms"], message: 'must be exactly ["HS256"] when hs256SecretEnv is set' });
  }
  if (!hs && hasHs) {
    ctx.addIssue({ code: "custom", path: ["algorithms"], message: "HS256 needs hs256SecretEnv (the Worker secret holding the shared secret)" });
  }
  const sources = (issuer.jwksUri !== undefined ? 1 : 0) + (issuer.discovery === true ? 1 : 0);
  if (hs && sources > 0) {
    ctx.addIssue({ code: "custom", path: ["hs256SecretEnv"], message: "an HS256 issuer has no jwksUri or discovery" });
  } else if (!hs && sources !== 1) {
    ctx.addIssue({ code: "custom", path: ["jwksUri"], message: "give exactly one of jwksUri or discovery: true" });
  }
  if (issuer.discovery === true && !isSecureOrLoopbackUrl(issuer.issuer)) {
    ctx.addIssue({ code: "custom", path: ["issuer"], message: "discovery needs an https:// issuer (http:// only for localhost, 127.0.0.1 or [::1])" });
  }
}

export const jwtIssuerSchema = jwtIssuerFields.superRefine(checkIssuerFields);
export type JwtIssuerConfig = z.infer<typeof jwtIssuerSchema>;

export const jwtAuthSchema = z
  .strictObject({
    issuers: z.array(jwtIssuerSchema).min(1),
  })
  .superRefine((jwt, ctx) => {
    const seen = new Map<string, number>();
    jwt.issuers.forEach((issuer, i) => {
      const pair = JSON.stringify([issuer.issuer, issuer.audience]);
      const same = seen.get(pair);
      if (same !== undefined) {
        ctx.addIssue({ code: "custom", path: ["issuers", i, "audience"], message: `the same issuer and audience as issuers[${same}]` });
      }
      seen.set(pair, i);
    });
  });
export type JwtAuthConfig = z.infer<typeof jwtAuthSchema>;
