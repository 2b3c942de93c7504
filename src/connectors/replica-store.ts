/**
 * @module What each attached replica last reported about its servers, in the Connector Durable Object's own
 * SQLite. Not in the WebSocket attachment: attachments are capped at 16 KiB and one server's catalog alone can
 * exceed that. Rows are keyed by socket, so a replica that reconnects (or two replicas sharing a replica id) never
 * mix their reports; rows of sockets that no longer exist are pruned.
 */
import type { ServerReport } from "../link/protocol.ts";

/** SQLite in a Durable Object refuses rows above 2 MB; a larger report is replaced by an explanation. */
export const MAX_STORED_REPORT_BYTES = 2_000_000 - 64 * 1024;

export class ReplicaReports {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS replica_servers (
      socket_id TEXT NOT NULL,
      server_id TEXT NOT NULL,
      health TEXT NOT NULL,
      report TEXT NOT NULL,
      PRIMARY KEY (socket_id, server_id)
    )`);
  }

  /** A hello: the socket's whole report set. */
  replace(socketId: string, reports: readonly ServerReport[]): void {
    this.sql.exec("DELETE FROM replica_servers WHERE socket_id = ?", socketId);
    for (const report of reports) this.upsert(socketId, report);
  }

  /** A status frame: one server's new report. */
  upsert(socketId: string, report: ServerReport): void {
    const stored = storable(report);
    this.sql.exec(
      "INSERT INTO replica_servers (socket_id, server_id, health, report) VALUES (?, ?, ?, ?) ON CONFLICT (socket_id, server_id) DO UPDATE SET health = excluded.health, report = excluded.report",
      socketId,
      stored.id,
      stored.health,
      JSON.stringify(stored),
    );
  }

  remove(socketId: string): void {
    this.sql.exec("DELETE FROM replica_servers WHERE socket_id = ?", socketId);
  }

  /** Drops the rows of sockets that are gone (e.g. closed while the object was being reset); true if any were. */
  prune(liveSocketIds: readonly string[]): boolean {
    const live = new Set(liveSocketIds);
    const stale = this.sql
      .exec<{ socket_id: string }>("SELECT DISTINCT socket_id FROM replica_servers")
      .toArray()
      .filter((row) => !live.has(row.socket_id));
    for (const row of stale) this.remove(row.socket_id);
    return stale.length > 0;
  }

  /** Every report of the given sockets, grouped by socket. */
  reportsOf(socketIds: readonly string[]): ServerReport[][] {
    return socketIds.map((socketId) =>
      this.sql
        .exec<{ report: string }>("SELECT report FROM replica_servers WHERE socket_id = ?", socketId)
        .toArray()
        .map((row) => JSON.parse(row.report) as ServerReport),
    );
  }

  /**
   * The sockets among `socketIds` that report the server healthy, each with the server's per-call timeout as that
   * replica reported it (cheap: no report is parsed in JavaScript).
   */
  healthyFor(serverId: string, socketIds: readonly string[]): Map<string, number | undefined> {
    const live = new Set(socketIds);
    const rows = this.sql
      .exec<{ socket_id: string; timeout_ms: number | null }>(
        "SELECT socket_id, json_extract(report, '$.timeoutMs') AS timeout_ms FROM replica_servers WHERE server_id = ? AND health = 'healthy'",
        serverId,
      )
      .toArray();
    return new Map(rows.filter((row) => live.has(row.socket_id)).map((row) => [row.socket_id, row.timeout_ms ?? undefined]));
  }

  /** Whether any row exists (after a prune: whether the object still believes in any replica). */
  isEmpty(): boolean {
    return this.sql.exec("SELECT 1 FROM replica_servers LIMIT 1").toArray().length === 0;
  }
}

/** The report as it can be stored: one whose catalog is too large to keep is marked unhealthy and says why. */
function storable(report: ServerReport): ServerReport {
  const bytes = new TextEncoder().encode(JSON.stringify(report)).byteLength;
  if (bytes <= MAX_STORED_REPORT_BYTES) return report;
  return {
    ...report,
    health: "unhealthy",
    detail: `its catalog (${bytes} bytes) exceeds the ${MAX_STORED_REPORT_BYTES} bytes the gateway stores per server; split the server or trim tool descriptions`,
    catalog: { tools: [], resources: [], resourceTemplates: [], prompts: [] },
  };
}
