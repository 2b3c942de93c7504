/**
 * @module The Connector Durable Object, one per `tenant/connector`: holds the hibernatable WebSockets of that
 * connector's replicas, relays calls to a healthy replica, correlates replies by call id, and fails a call the
 * moment its socket closes.
 *
 * A thin shell: frames are parsed by the link protocol module, replica choice is src/connectors/replicas.ts, each
 * replica's server reports live in src/connectors/replica-store.ts, the servers table is server-registry.ts.
 */
import { DurableObject } from "cloudflare:workers";
import { database } from "../db/client.ts";
import type { Env } from "../env.ts";
import { UpstreamErrorCode } from "../link/errors.ts";
import {
  EDGE_CALL_DEADLINE_MS,
  connectorFrameSchema,
  encodeFrame,
  HEARTBEAT_PING,
  HEARTBEAT_PONG,
  LINK_PROTOCOL_VERSION,
  LinkErrorCode,
  parseFrame,
  type EdgeFrame,
  type RelayedNotification,
  type RelayedRequest,
  type RpcError,
  type ServerReport,
} from "../link/protocol.ts";
import { log } from "../log.ts";
import { ReplicaReports } from "./replica-store.ts";
import { mergeReplicaReports, pickReplica } from "./replicas.ts";
import { syncConnectorServers } from "./server-registry.ts";

/** Headers the Worker sets on the upgrade request after authenticating the connector token. */
export const CONNECTOR_IDENTITY_HEADERS = { tenant: "x-gateway-tenant", connector: "x-gateway-connector" } as const;

/** Kept on each socket so it survives hibernation (at most 16 KiB: server reports live in ReplicaReports). */
interface ReplicaAttachment {
  tenant: string;
  connector: string;
  /** Unique per socket; the key of this replica's rows in ReplicaReports. */
  socketId: string;
  /** Set by the replica's hello; a socket without one takes no calls. */
  replicaId?: string;
  connectedAt: number;
}

export type CallOutcome = { ok: true; result: Record<string, unknown> } | { ok: false; error: RpcError };

/** Receives the notifications an upstream sends while serving a call (an RPC stub of the Worker's function). */
export type NotificationSink = (notification: RelayedNotification) => unknown;

interface PendingCall {
  socket: WebSocket;
  serverId: string;
  settle: (outcome: CallOutcome) => void;
  onNotification?: NotificationSink | undefined;
  /**
   * Notifications are delivered one after another and the result only after the last of them: each delivery is
   * an RPC back into the Worker, and nothing else orders them against the call's own return.
   */
  deliveries: Promise<unknown>;
}

export class ConnectorDurableObject extends DurableObject<Env> {
  /** Calls in flight. Not persisted: while a call's RPC is awaited the object cannot hibernate. */
  private readonly pending = new Map<string, PendingCall>();
  private readonly reports: ReplicaReports;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.reports = new ReplicaReports(ctx.storage.sql);
    // Sockets that closed while the object was reset (a deploy) left rows behind.
    this.reports.prune(this.liveReplicas().map((r) => r.attachment.socketId));
    // Heartbeats are answered by the runtime itself, without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
  }

  /** Accepts a replica's WebSocket. Only the Worker's /connect route reaches this, after authentication. */
  override async fetch(request: Request): Promise<Response> {
    const tenant = request.headers.get(CONNECTOR_IDENTITY_HEADERS.tenant);
    const connector = request.headers.get(CONNECTOR_IDENTITY_HEADERS.connector);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket" || !tenant || !connector) {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    const attachment: ReplicaAttachment = { tenant, connector, socketId: crypto.randomUUID(), connectedAt: Date.now() };
    server.serializeAttachment(attachment);
    log({ event: "connector.attached", tenant, connector });
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * Relays one JSON-RPC request to a replica that has the server healthy and resolves with its reply. The caller
   * names the call (so it can {@link cancel} it). Expected failures are values, not exceptions (an exception
   * thrown from an RPC method is logged as uncaught).
   */
  async call(callId: string, serverId: string, request: RelayedRequest, onNotification?: NotificationSink): Promise<CallOutcome> {
    const live = this.liveReplicas();
    const healthy = this.reports.healthyFor(serverId, live.map((r) => r.attachment.socketId));
    const replicas = live.map(({ socket, attachment }) => ({
      socket,
      healthy: healthy.has(attachment.socketId),
      inFlight: [...this.pending.values()].filter((p) => p.socket === socket).length,
    }));
    const replica = pickReplica(replicas);
    if (!replica) {
      const reason =
        replicas.length === 0
          ? "its connector is not connected"
          : "no connected replica of its connector reports it healthy";
      return fail(UpstreamErrorCode.Unavailable, `server "${serverId}" is not available: ${reason}; retry shortly`);
    }
    if (this.pending.has(callId)) return fail(GatewayCallError.InvalidRequest, `call id "${callId}" is already in flight`);
    const encoded = encodeFrame({ type: "rpc", callId, serverId, request });
    if (!encoded.ok) {
      return fail(UpstreamErrorCode.TooLarge, `request of ${encoded.bytes} bytes exceeds the gateway's message size limit`);
    }
    return new Promise<CallOutcome>((resolve) => {
      const deadline = setTimeout(() => {
        this.send(replica.socket, { type: "cancel", callId, reason: "edge deadline exceeded" });
        settle(fail(UpstreamErrorCode.Timeout, `server "${serverId}" did not answer within ${EDGE_CALL_DEADLINE_MS / 1000} s`));
      }, EDGE_CALL_DEADLINE_MS);
      const settle = (outcome: CallOutcome) => {
        if (!this.pending.delete(callId)) return;
        clearTimeout(deadline);
        resolve(outcome);
      };
      this.pending.set(callId, { socket: replica.socket, serverId, settle, onNotification, deliveries: Promise.resolve() });
      try {
        replica.socket.send(encoded.text);
      } catch {
        settle(fail(UpstreamErrorCode.Unavailable, `server "${serverId}" is not available: the connector's socket just closed; retry`));
      }
    });
  }

  /**
   * The agent went away: tell the replica to cancel the upstream request, and end the call. Returns whether the
   * call was still in flight.
   */
  async cancel(callId: string, reason: string): Promise<boolean> {
    const call = this.pending.get(callId);
    if (!call) return false;
    this.send(call.socket, { type: "cancel", callId, reason });
    call.settle(fail(GatewayCallError.Cancelled, `the call was cancelled: ${reason}`));
    return true;
  }

  /** The merged view of this connector's servers (for status pages and tests). */
  async servers(): Promise<ServerReport[]> {
    return this.mergedReports();
  }

  /** How many replicas are attached and registered. */
  async replicaCount(): Promise<number> {
    return this.liveReplicas().length;
  }

  override async webSocketMessage(socket: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const parsed = parseFrame(connectorFrameSchema, data);
    if (!parsed.ok) {
      log({ event: "link.invalid_frame", code: parsed.error.code, detail: parsed.error.message }, "warn");
      // A broken reply must not leave its call hanging.
      const callId = parsed.error.callId;
      const call = callId ? this.pending.get(callId) : undefined;
      if (call && call.socket === socket) {
        call.settle(fail(UpstreamErrorCode.Unavailable, `the connector sent an invalid reply: ${parsed.error.message}`));
      }
      this.send(socket, parsed.error);
      return;
    }
    const frame = parsed.frame;
    const attachment = socket.deserializeAttachment() as ReplicaAttachment;
    switch (frame.type) {
      case "hello": {
        if (frame.protocol !== LINK_PROTOCOL_VERSION) {
          const message = `link protocol ${frame.protocol} is not supported; this gateway speaks ${LINK_PROTOCOL_VERSION}: upgrade the connector`;
          this.send(socket, { type: "error", code: LinkErrorCode.UnsupportedProtocol, message });
          socket.close(4000, "unsupported link protocol");
          return;
        }
        this.reports.replace(attachment.socketId, frame.servers);
        socket.serializeAttachment({ ...attachment, replicaId: frame.replicaId });
        await this.syncServers(attachment, socket);
        this.send(socket, { type: "welcome", tenant: attachment.tenant, connector: attachment.connector });
        log({ event: "connector.hello", tenant: attachment.tenant, connector: attachment.connector, replica: frame.replicaId, servers: frame.servers.length });
        return;
      }
      case "status": {
        if (!attachment.replicaId) {
          this.send(socket, { type: "error", code: LinkErrorCode.NotReady, message: "send hello before status" });
          return;
        }
        this.reports.upsert(attachment.socketId, frame.server);
        await this.syncServers(attachment, socket);
        log({ event: "server.status", tenant: attachment.tenant, connector: attachment.connector, server: frame.server.id, status: frame.server.health });
        return;
      }
      case "result": {
        const call = this.pending.get(frame.callId);
        if (!call || call.socket !== socket) return; // late reply to a call that already failed or timed out
        const outcome: CallOutcome = frame.error ? { ok: false, error: frame.error } : { ok: true, result: frame.result ?? {} };
        void call.deliveries.then(() => call.settle(outcome));
        return;
      }
      case "notification": {
        const call = this.pending.get(frame.callId);
        const sink = call?.onNotification;
        if (!call || call.socket !== socket || !sink) return;
        // Chained per call, never awaited here: a slow agent delays only its own call, not the connector's others.
        // A failed delivery (the agent went away) is dropped; its result will be dropped the same way.
        call.deliveries = call.deliveries.then(() => sink(frame.message)).catch(() => {});
        return;
      }
      case "ping":
        this.send(socket, { type: "pong" });
        return;
      case "pong":
        return;
      case "error":
        log({ event: "link.connector_error", tenant: attachment.tenant, connector: attachment.connector, code: frame.code, detail: frame.message }, "warn");
        if (frame.callId) {
          const call = this.pending.get(frame.callId);
          if (call && call.socket === socket) call.settle(fail(UpstreamErrorCode.Unavailable, frame.message));
        }
        return;
    }
  }

  override async webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> {
    await this.detach(socket, `closed (${code}${reason ? `: ${reason}` : ""})`);
  }

  override async webSocketError(socket: WebSocket, error: unknown): Promise<void> {
    await this.detach(socket, `errored (${error instanceof Error ? error.message : String(error)})`);
  }

  /** A replica went away: its calls fail now, not at their timeout, and the servers table learns it. */
  private async detach(socket: WebSocket, how: string): Promise<void> {
    for (const call of this.pending.values()) {
      if (call.socket === socket) {
        call.settle(fail(UpstreamErrorCode.Unavailable, `the connector serving "${call.serverId}" disconnected during the call (socket ${how}); retry`));
      }
    }
    const attachment = socket.deserializeAttachment() as ReplicaAttachment | null;
    try {
      socket.close(1000, "closing");
    } catch {
      // already closed
    }
    if (!attachment) return;
    this.reports.remove(attachment.socketId);
    log({ event: "connector.detached", tenant: attachment.tenant, connector: attachment.connector, replica: attachment.replicaId, how });
    await this.syncServers(attachment, socket);
  }

  /** Writes the merged view of every still-attached replica to D1; refuses servers another connector owns. */
  private async syncServers(identity: ReplicaAttachment, changed: WebSocket): Promise<void> {
    const outcome = await syncConnectorServers(database(this.env.DB), identity.tenant, identity.connector, this.mergedReports(), Date.now());
    for (const { serverId, ownedBy } of outcome.refused) {
      const message = `server id "${serverId}" is already served by connector "${ownedBy}" in this tenant; rename it in this connector's gateway.yaml`;
      log({ event: "server.refused", tenant: identity.tenant, connector: identity.connector, server: serverId, detail: message }, "warn");
      this.send(changed, { type: "error", code: LinkErrorCode.ServerConflict, message });
    }
  }

  /** Open sockets whose replica has said hello. */
  private liveReplicas(): { socket: WebSocket; attachment: ReplicaAttachment }[] {
    return this.ctx.getWebSockets().flatMap((socket) => {
      const attachment = socket.deserializeAttachment() as ReplicaAttachment | null;
      return attachment?.replicaId && socket.readyState === WebSocket.OPEN ? [{ socket, attachment }] : [];
    });
  }

  /** One report per server across the live replicas. */
  private mergedReports(): ServerReport[] {
    return mergeReplicaReports(this.reports.reportsOf(this.liveReplicas().map((r) => r.attachment.socketId)));
  }

  private send(socket: WebSocket, frame: EdgeFrame): void {
    const encoded = encodeFrame(frame);
    if (!encoded.ok) return;
    try {
      socket.send(encoded.text);
    } catch {
      // The socket is closing; its close handler fails what was pending on it.
    }
  }
}

/** JSON-RPC codes of calls the edge itself ends (the spec's own codes). */
const GatewayCallError = { InvalidRequest: -32600, Cancelled: -32800 } as const;

function fail(code: number, message: string): CallOutcome {
  return { ok: false, error: { code, message } };
}
