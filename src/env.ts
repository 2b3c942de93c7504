/**
 * @module The Worker's bindings (wrangler.toml) as one type.
 */
import type { AuditLogDurableObject } from "./audit/durable-object.ts";
import type { ConnectorDurableObject } from "./connectors/durable-object.ts";
import type { RateLimiterDurableObject } from "./ratelimit/durable-object.ts";

export interface Env {
  DB: D1Database;
  CONNECTOR: DurableObjectNamespace<ConnectorDurableObject>;
  /** One AuditLog object per tenant (named by the tenant id): the only writer of its audit chain. */
  AUDIT_LOG: DurableObjectNamespace<AuditLogDurableObject>;
  /**
   * RateLimiter objects: one per consumer (`JSON.stringify([tenant, consumer])`: its token buckets and quotas) and
   * one per tenant (`JSON.stringify([tenant])`: tenant-wide quotas). src/ratelimit/charge.ts names them.
   */
  RATE_LIMITER: DurableObjectNamespace<RateLimiterDurableObject>;
  /** Comma-separated extra hostnames a browser Origin may have. */
  ALLOWED_ORIGINS?: string;
  /** Comma-separated accepted Host header values; empty accepts any. */
  ALLOWED_HOSTS?: string;
  /**
   * The gateway's public origin (`https://mcp.example.com`): tenants' OAuth resource URLs are
   * `<PUBLIC_URL>/t/<tenant>/mcp`, and tokens must be minted for exactly those (src/auth/oauth.ts). Unset = the
   * request's own origin. Set but not an http(s) origin = OAuth refused (never a guessed audience).
   */
  PUBLIC_URL?: string;
  /**
   * Secret: lowercase hex SHA-256 of the platform admin token, which may administer every tenant through
   * /admin/v1. Unset = no platform admin (tenant admin keys only). The token itself is stored nowhere.
   */
  ADMIN_TOKEN_SHA256?: string;
  /**
   * Secret: the key of the `hash` redaction action (HMAC-SHA256, a per-tenant key derived from it). Unset = a
   * `hash` action masks instead.
   */
  REDACTION_HMAC_KEY?: string;
  /**
   * Secret: base64url (no padding) of a 32-byte Ed25519 seed that signs audit checkpoints (docs/audit-chain.md).
   * Unset = no checkpoints: the chain still links, but a deleted tail is visible only against the live head.
   */
  AUDIT_SIGNING_KEY?: string;
  /**
   * Comma-separated base64url public keys of signing keys no longer used (after rotating AUDIT_SIGNING_KEY): online
   * verification accepts checkpoints signed with them. Public, not secret.
   */
  AUDIT_RETIRED_PUBLIC_KEYS?: string;
  /** A checkpoint at least every this many entries (default 1000). */
  AUDIT_CHECKPOINT_EVERY?: string;
  /** …and at the latest this many seconds after an entry (default 60). */
  AUDIT_CHECKPOINT_SECONDS?: string;
  /**
   * Secret: the root of the audit webhooks' signing keys (any long random string). Each tenant's key is
   * HMAC-SHA256(secret, "mcp-gateway audit webhook v1\n" + tenant) (src/audit/delivery.ts). Unset = no webhook is
   * delivered (an error is logged, nothing is skipped: delivery resumes from where it stopped once it is set).
   */
  AUDIT_WEBHOOK_SECRET?: string;
  /** R2 bucket for the audit chain's per-checkpoint JSONL objects (a tenant's `audit.r2`); unbound = not written. */
  AUDIT_BUCKET?: R2Bucket;
  /**
   * Secret: the access key id of the S3-compatible store a tenant's `audit.s3` writes to (AWS Signature V4,
   * src/audit/delivery.ts). Unset (or its secret access key unset) = no S3 object is written (an error is logged,
   * nothing is skipped: delivery resumes from where it stopped once both are set).
   */
  AUDIT_S3_ACCESS_KEY_ID?: string;
  /** Secret: the secret access key that goes with AUDIT_S3_ACCESS_KEY_ID. */
  AUDIT_S3_SECRET_ACCESS_KEY?: string;
  /**
   * Secret: a Stripe secret key (or a restricted key allowed to write billing meter events). Set = `POST
   * /admin/v1/usage/stripe` sends the chargeback's meter events (src/metering/stripe.ts); unset = it only builds
   * and records them.
   */
  STRIPE_API_KEY?: string;
  /** The Stripe API's base URL; default https://api.stripe.com (tests point it at a local fake). */
  STRIPE_API_BASE?: string;
}
