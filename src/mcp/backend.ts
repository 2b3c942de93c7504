/**
 * @module The Worker's GatewayBackend: the tenant's applied config and compiled policies, the catalog from D1
 * (every enabled server, with its availability), and relaying through the Connector Durable Object of the connector that serves each server.
 *
 * Platform failures (D1, a Durable Object being reset) become stable Unavailable errors here; their raw messages,
 * which can name tables, parameters or internals, go to the log only.
 */
import { ProtocolError } from "@modelcontextprotocol/server";
import type { Principal } from "../auth/principal.ts";
import { connectorObjectName } from "../connectors/connector-api.ts";
import type { Database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { UpstreamErrorCode } from "../link/errors.ts";
import { log } from "../log.ts";
import { tenantConfig, type TenantConfig } from "../config/tenant-config.ts";
import { tenantHasher } from "../redact/hash.ts";
import { tenantCatalog, type TenantCatalog } from "./catalog-cache.ts";
import type { GatewayBackend } from "./gateway-server.ts";
import { appendAuditEntry } from "../audit/append.ts";
import { chargeCall } from "../ratelimit/charge.ts";
import { currentUsage } from "../metering/usage-store.ts";
import { DEFAULT_METERING } from "../metering/schema.ts";
import { limitPlan } from "../ratelimit/limits.ts";
import { readAuditEntries, readAuditStats, verifyStoredChain } from "../audit/store.ts";
import { GatewayErrorCode } from "./errors.ts";

/**
 * @param waitUntil keeps work alive after the agent's response has ended (the cancellation of an abandoned call).
 * @param serversStamp the tenant's servers stamp when authentication already read it (an API key), else undefined.
 */
export function workerBackend(
  env: Env,
  db: Database,
  principal: Principal,
  waitUntil: (work: Promise<unknown>) => void,
  serversStamp?: string,
): GatewayBackend {
  // One request reads the config and the catalog once, however many handlers need them. Without them no call can
  // be authorized, so a failure fails the request (closed), with a stable error.
  let config: Promise<TenantConfig> | undefined;
  let loaded: Promise<TenantCatalog> | undefined;
  const unavailable = (what: string) => (error: unknown) => {
    log({ event: `${what}.unavailable`, tenant: principal.tenant, detail: (error as Error).message }, "error");
    throw new ProtocolError(UpstreamErrorCode.Unavailable, `The gateway could not read its ${what === "config" ? "configuration" : "server registry"}; retry shortly`);
  };
  const loadConfig = () => (config ??= tenantConfig(db, principal.tenant).catch(unavailable("config")));
  const load = () => (loaded ??= loadConfig().then((c) => tenantCatalog(db, principal.tenant, c, serversStamp).catch(unavailable("catalog"))));

  return {
    catalog: async () => (await load()).catalog,
    policies: async () => (await loadConfig()).policies,
    redaction: async () => (await loadConfig()).redaction,
    hasher: tenantHasher(env.REDACTION_HMAC_KEY, principal.tenant),
    auditTrail: {
      entries: (query, page) => readAuditEntries(env, principal.tenant, query, page),
      stats: (query) => readAuditStats(env, principal.tenant, query),
      verify: () => verifyStoredChain(env, principal.tenant),
    },
    async usage(params) {
      const metering = (await loadConfig()).published?.metering ?? DEFAULT_METERING;
      return currentUsage(env, principal.tenant, params, metering);
    },
    async charge(target) {
      let config: TenantConfig;
      try {
        config = await loadConfig();
      } catch {
        return { admitted: false, kind: "unavailable", reason: "the tenant's configuration could not be read" };
      }
      return chargeCall(env, principal.tenant, limitPlan(config.published?.rateLimit, { consumer: principal.consumer, keyId: principal.keyId }, target));
    },
    async audit(fields) {
      // Without the tenant's configuration its audit mode is unknown: closed, the safe reading.
      const audit = (await loadConfig().catch(() => undefined))?.published?.audit;
      if (audit?.enabled === false) return;
      try {
        await appendAuditEntry(env, fields);
      } catch (error) {
        log({ event: "audit.append_failed", tenant: principal.tenant, mode: audit?.failureMode ?? "closed", detail: (error as Error).message }, "error");
        if (audit?.failureMode === "open") return;
        throw new ProtocolError(
          GatewayErrorCode.AuditUnavailable,
          "The call could not be recorded in the audit log, so its result is withheld (this tenant's audit mode is closed). It may have run upstream; retry shortly",
        );
      }
    },
    async relay(serverId, request, onNotification, signal) {
      const connector = (await load()).connectorOf.get(serverId);
      if (!connector) {
        return { ok: false, error: { code: UpstreamErrorCode.Unavailable, message: `server "${serverId}" is not available` } };
      }
      const stub = env.CONNECTOR.getByName(connectorObjectName(principal.tenant, connector));
      const callId = crypto.randomUUID();
      const cancel = () => waitUntil(stub.cancel(callId, "the agent disconnected").catch(() => false));
      if (signal.aborted) {
        return { ok: false, error: { code: UpstreamErrorCode.Unavailable, message: "the agent disconnected before the call was sent" } };
      }
      signal.addEventListener("abort", cancel, { once: true });
      try {
        return await stub.call(callId, serverId, request, onNotification);
      } catch (error) {
        // The object was reset or overloaded mid-call (a deploy, an eviction): the call's fate is unknown.
        log({ event: "relay.interrupted", tenant: principal.tenant, server: serverId, detail: (error as Error).message }, "error");
        return {
          ok: false,
          error: { code: UpstreamErrorCode.Unavailable, message: `the link to server "${serverId}" was interrupted during the call; it may or may not have run — retry if it is safe to` },
        };
      } finally {
        signal.removeEventListener("abort", cancel);
      }
    },
  };
}
