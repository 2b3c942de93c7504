/**
 * @module The Worker's bindings (wrangler.toml) as one type.
 */
import type { ConnectorDurableObject } from "./connectors/durable-object.ts";

export interface Env {
  DB: D1Database;
  CONNECTOR: DurableObjectNamespace<ConnectorDurableObject>;
  /** Comma-separated extra hostnames a browser Origin may have. */
  ALLOWED_ORIGINS?: string;
  /** Comma-separated accepted Host header values; empty accepts any. */
  ALLOWED_HOSTS?: string;
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
}
