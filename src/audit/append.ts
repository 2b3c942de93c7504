/**
 * @module The Worker's way into a tenant's audit chain: the tenant's AuditLog Durable Object, named by the tenant id.
 */
import type { IdentifiedRefusal } from "../auth/authenticate.ts";
import { tenantConfig } from "../config/tenant-config.ts";
import type { Database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { log } from "../log.ts";
import { storedSessionId } from "../mcp/call-audit.ts";
import { GatewayErrorCode } from "../mcp/errors.ts";
import { chargeCall } from "../ratelimit/charge.ts";
import { limitPlan } from "../ratelimit/limits.ts";
import type { AuditFields } from "./entry.ts";
import type { AuditReceipt } from "./durable-object.ts";

/** The `method` of an entry for a refused credential: the request's body is never read, so its MCP method is unknown. */
export const AUTHENTICATE_METHOD = "authenticate";

/** The AuditLog object of a tenant. */
export function auditLog(env: Env, tenant: string) {
  return env.AUDIT_LOG.getByName(tenant);
}

/** Appends one entry; resolves once it is durable. Rejects when the object or its storage fails. */
export function appendAuditEntry(env: Env, fields: AuditFields): Promise<AuditReceipt> {
  return auditLog(env, fields.tenant).append(fields);
}

/**
 * Ships what the tenant's object holds to D1, so a read of D1 sees every entry appended so far. A failure (D1 down)
 * is logged: the read then shows what D1 has.
 */
export async function flushAuditLog(env: Env, tenant: string): Promise<void> {
  try {
    await auditLog(env, tenant).sync();
  } catch (error) {
    log({ event: "audit.flush_failed", tenant, detail: (error as Error).message }, "warn");
  }
}

/**
 * Records a refused credential that names its key. The refusal stands whatever happens here, so a failure to write
 * is logged and not raised (there is no result to withhold). Each recorded refusal costs the key's consumer a token
 * of its rate limit, like any call: a leaked, revoked key hammering the gateway fills the tenant's chain no faster
 * than its limit allows; refusals past it are logged, not recorded.
 */
export async function auditRefusal(
  env: Env,
  db: Database,
  who: IdentifiedRefusal,
  headers: Headers,
  message: string,
  startedAt: number,
  errorCode: number = GatewayErrorCode.Unauthenticated,
): Promise<void> {
  try {
    const config = await tenantConfig(db, who.tenant).catch(() => undefined);
    if (config?.published?.audit?.enabled === false) return;
    const plan = limitPlan(config?.published?.rateLimit, { consumer: who.consumer, keyId: who.keyId }, { server: null, tool: null });
    const verdict = await chargeCall(env, who.tenant, plan);
    if (!verdict.admitted) {
      log({ event: "audit.refusal_not_recorded", tenant: who.tenant, keyId: who.keyId, reason: verdict.kind }, "warn");
      return;
    }
    await appendAuditEntry(env, {
      timestamp: startedAt,
      tenant: who.tenant,
      consumer: who.consumer,
      keyId: who.keyId,
      clientIp: headers.get("cf-connecting-ip"),
      requestId: crypto.randomUUID(),
      sessionId: storedSessionId(headers.get("mcp-session-id")),
      server: null,
      method: AUTHENTICATE_METHOD,
      tool: null,
      arguments: null,
      result: null,
      resultDigest: null,
      status: "unauthenticated",
      errorCode,
      errorMessage: message,
      latencyMs: Math.max(0, Date.now() - startedAt),
      ruleId: null,
      // The request's body is never read, and the agent gets no JSON-RPC body of ours to count.
      requestBytes: 0,
      responseBytes: 0,
    });
  } catch (error) {
    log({ event: "audit.append_failed", tenant: who.tenant, detail: (error as Error).message }, "error");
  }
}
