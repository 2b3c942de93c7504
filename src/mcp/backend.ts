/**
 * @module The Worker's GatewayBackend: the catalog from D1 (servers reported healthy) and relaying through the
 * Connector Durable Object of the connector that serves each server.
 */
import type { Principal } from "../auth/principal.ts";
import { tenantServers, type UnavailableServer } from "../connectors/server-registry.ts";
import { UpstreamErrorCode } from "../link/errors.ts";
import type { Database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { buildCatalog, type AggregatedCatalog } from "./catalog.ts";
import type { GatewayBackend } from "./gateway-server.ts";

/** The Durable Object name of a connector: tenants never share one. */
export function connectorObjectName(tenant: string, connector: string): string {
  return `${tenant}/${connector}`;
}

/**
 * @param waitUntil keeps work alive after the agent's response has ended (the cancellation of an abandoned call).
 */
export function workerBackend(env: Env, db: Database, principal: Principal, waitUntil: (work: Promise<unknown>) => void): GatewayBackend {
  // One request reads the servers table once, however many handlers ask.
  let loaded: Promise<{ catalog: AggregatedCatalog; connectorOf: Map<string, string>; unavailable: UnavailableServer[] }> | undefined;
  const load = () =>
    (loaded ??= tenantServers(db, principal.tenant).then(({ available, unavailable }) => ({
      catalog: buildCatalog(available),
      connectorOf: new Map(available.map((s) => [s.id, s.connectorId])),
      unavailable,
    })));

  return {
    catalog: async () => (await load()).catalog,
    unavailableServers: async () => (await load()).unavailable,
    async relay(serverId, request, onNotification, signal) {
      const connector = (await load()).connectorOf.get(serverId);
      if (!connector) {
        return { ok: false, error: { code: UpstreamErrorCode.Unavailable, message: `server "${serverId}" is not available` } };
      }
      const stub = env.CONNECTOR.getByName(connectorObjectName(principal.tenant, connector));
      const callId = crypto.randomUUID();
      const cancel = () => waitUntil(stub.cancel(callId, "the agent disconnected"));
      signal.addEventListener("abort", cancel, { once: true });
      try {
        return await stub.call(callId, serverId, request, onNotification);
      } finally {
        signal.removeEventListener("abort", cancel);
      }
    },
  };
}
