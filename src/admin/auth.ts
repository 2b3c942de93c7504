/**
 * @module Who may administer which tenant: an API key with the `admin` role administers its own tenant; the
 * platform admin token (its SHA-256 digest is the Worker secret ADMIN_TOKEN_SHA256) administers any tenant named
 * with `?tenant=`. Consumer keys get 403; a tenant admin naming another tenant gets the same 403 whether or not
 * that tenant exists.
 */
import { createMiddleware } from "hono/factory";
import { authenticateApiKey } from "../auth/authenticate.ts";
import { clientIpVerdict } from "../http/guards.ts";
import { bearerCredential, constantTimeEqual, sha256Hex } from "../auth/secrets.ts";
import { ADMIN_ROLE } from "../config/schema.ts";
import { database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { ID_PATTERN, ID_RULE } from "../ids.ts";
import { log } from "../log.ts";
import { AdminError } from "./errors.ts";

export interface AdminIdentity {
  platformAdmin: boolean;
  /** The tenant this request administers: the key's own, or the platform admin's `?tenant=` (null when absent). */
  tenant: string | null;
  consumer: string | null;
  keyId: string | null;
  roles: string[];
}

export type AdminContext = { Bindings: Env; Variables: { admin: AdminIdentity } };

export const requireAdmin = createMiddleware<AdminContext>(async (c, next) => {
  const requested = c.req.query("tenant");
  if (requested !== undefined && !ID_PATTERN.test(requested)) {
    throw new AdminError("bad_request", `?tenant= must be a tenant id: ${ID_RULE}`);
  }
  const credential = bearerCredential(c.req.header("authorization"));
  if (credential !== undefined && c.env.ADMIN_TOKEN_SHA256 && constantTimeEqual(await sha256Hex(credential), c.env.ADMIN_TOKEN_SHA256.toLowerCase())) {
    c.set("admin", { platformAdmin: true, tenant: requested ?? null, consumer: null, keyId: null, roles: [] });
    return next();
  }
  const startedAt = Date.now();
  const db = database(c.env.DB);
  const outcome = await authenticateApiKey(db, c.req.header("authorization") ?? null, startedAt);
  if (!outcome.ok) {
    log({ event: "admin.refused", reason: outcome.refusal, status: 401 }, "warn");
    throw new AdminError("unauthenticated", outcome.refusal === "missing" ? "Authentication required: send Authorization: Bearer <admin key>" : "The credential is not valid, disabled or expired");
  }
  const { principal } = outcome;
  if (!principal.roles.includes(ADMIN_ROLE) || (requested !== undefined && requested !== principal.tenant)) {
    log({ event: "admin.forbidden", tenant: principal.tenant, consumer: principal.consumer, status: 403 }, "warn");
    throw new AdminError("forbidden", `This key may not administer ${requested !== undefined ? "that tenant" : "this gateway"}: it needs the "${ADMIN_ROLE}" role of the tenant`);
  }
  // The tenant's and the key's IP lists hold here as on /mcp: an admin key restricted to an office range is no
  // master key from anywhere else. (The platform token is the operator's, above any tenant's lists.)
  const ip = await clientIpVerdict(c.env, db, principal, outcome.ipFilter, c.req.raw.headers, startedAt);
  if (!ip.ok) throw new AdminError(ip.status === 403 ? "forbidden" : "unavailable", ip.message);
  c.set("admin", { platformAdmin: false, tenant: principal.tenant, consumer: principal.consumer, keyId: principal.keyId, roles: principal.roles });
  return next();
});

/** The tenant a tenant-scoped request administers. */
export function adminTenant(admin: AdminIdentity): string {
  if (admin.tenant === null) throw new AdminError("bad_request", "The platform admin token must name the tenant: add ?tenant=ID");
  return admin.tenant;
}
