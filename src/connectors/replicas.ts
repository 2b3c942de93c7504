/**
 * @module Pure rules for a connector with several replicas attached: what the edge believes about each server, and
 * which replica serves a call.
 */
import type { ServerHealth, ServerReport } from "../link/protocol.ts";

const healthRank: Record<ServerHealth, number> = { healthy: 3, starting: 2, unhealthy: 1, stopped: 0 };

/**
 * One report per server across all replicas: the healthiest replica's view wins, because a call can be sent to it.
 * Replicas of one connector run the same configuration, so their catalogs agree when both are healthy.
 */
export function mergeReplicaReports(replicas: readonly (readonly ServerReport[])[]): ServerReport[] {
  const best = new Map<string, ServerReport>();
  for (const reports of replicas) {
    for (const report of reports) {
      const current = best.get(report.id);
      if (!current || healthRank[report.health] > healthRank[current.health]) best.set(report.id, report);
    }
  }
  return [...best.values()];
}

/**
 * Among the replicas that report the call's server healthy, the one with the fewest calls in flight (ties: the
 * first), so a slow replica does not collect every call.
 */
export function pickReplica<R extends { healthy: boolean; inFlight: number }>(replicas: readonly R[]): R | undefined {
  let chosen: R | undefined;
  for (const replica of replicas) {
    if (!replica.healthy) continue;
    if (!chosen || replica.inFlight < chosen.inFlight) chosen = replica;
  }
  return chosen;
}
