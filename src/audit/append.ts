/**
 * @module The Worker's way into a tenant's audit chain: the tenant's AuditLog Durable Object, named by the tenant id.
 */
import type { Env } from "../env.ts";
import type { AuditFields } from "./entry.ts";
import type { AuditReceipt } from "./durable-object.ts";

/** The AuditLog object of a tenant. */
export function auditLog(env: Env, tenant: string) {
  return env.AUDIT_LOG.getByName(tenant);
}

/** Appends one entry; resolves once it is durable. Rejects when the object or its storage fails. */
export function appendAuditEntry(env: Env, fields: AuditFields): Promise<AuditReceipt> {
  return auditLog(env, fields.tenant).append(fields);
}
