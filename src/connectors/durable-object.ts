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
import { JsonRpcErrorCode, UpstreamErrorCode } from "../link/errors.ts";
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
  type ErrorFrame,
  type RelayedRequest,
  type ServerReport,
} from "../link/protocol.ts";
import { log } from "../log.ts";
import { connectorObjectName, type CallOutcome, type NotificationSink } from "./connector-api.ts";
import { ReplicaReports } from "./replica-store.ts";
import { mergeReplicaReports, pickReplica } from "./replicas.ts";
import { syncConnectorServers } from "./server-registry.ts";

/** Headers the Worker sets on the upgrade request after authenticating the connector token. */
export const CONNECTOR_IDENTITY_HEADERS = { tenant: "x-gateway-tenant", connector: "x-gateway-connector" } as const;

/** The heartbeat interval assumed for a replica that does not state its own. */
const DEFAULT_HEARTBEAT_MS = 15_000;
/** A replica silent for this many heartbeat intervals takes no new calls (its socket may be dead but not closed). */
const MISSED_HEARTBEATS = 3;
/** Time the edge grants beyond a server's own timeout, for the connector to report that timeout itself. */
const DEADLINE_MARGIN_MS = 5_000;
/** Notifications queued for one call beyond this are dropped: a chatty upstream and a slow agent must not exhaust memory. */
const MAX_QUEUED_NOTIFICATIONS = 256;

/** Kept on each socket so it survives hibernation (at most 16 KiB: server reports live in ReplicaReports). */
interface ReplicaAttachment {
  tenant: string;
  connector: string;
  /** Unique per socket; the key of this replica's rows in ReplicaReports. */
  socketId: string;
  /** Set by the replica's hello; a socket without one takes no calls. */
  replicaId?: string;
  heartbeatMs?: number;
  /** When the replica said hello: its liveness until the first heartbeat. */
  helloAt?: number;
}

interface Identity {
  tenant: string;
  connector: string;
}

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
  queued: number;
}

export class ConnectorDurableObject extends DurableObject<Env> {
  /** Calls in flight. Not persisted: while a call's RPC is awaited the object cannot hibernate. */
  private readonly pending = new Map<string, PendingCall>();
  private readonly reports: ReplicaReports;
  /** Syncs to D1 run one at a time; changes arriving meanwhile are folded into one more run. */
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  /** The conflict notices last sent to the replicas, so a steady state does not repeat them on every sync. */
  private lastNotices = "";

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.reports = new ReplicaReports(ctx.storage.sql);
    // Heartbeats are answered by the runtime itself, without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
    // Replicas whose sockets closed while the object was being reset (every deploy) left rows behind, and the
    // servers table still calls their servers healthy: correct both before serving anything.
    const pruned = this.reports.prune(this.liveReplicas().map((r) => r.attachment.socketId));
    const identity = this.identity();
    if (pruned && identity) void ctx.blockConcurrencyWhile(() => this.syncServers());
  }

  /** Accepts a replica's WebSocket. Only the Worker's /connect route reaches this, after authentication. */
  override async fetch(request: Request): Promise<Response> {
    const tenant = request.headers.get(CONNECTOR_IDENTITY_HEADERS.tenant);
    const connector = request.headers.get(CONNECTOR_IDENTITY_HEADERS.connector);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket" || !tenant || !connector) {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    // An object serves exactly the connector it is named after; anything else is a routing bug, refused.
    const known = this.identity();
    if ((known && (known.tenant !== tenant || known.connector !== connector)) || (this.ctx.id.name && this.ctx.id.name !== connectorObjectName(tenant, connector))) {
      log({ event: "connector.identity_mismatch", tenant, connector }, "error");
      return new Response("this object serves another connector", { status: 403 });
    }
    // A socket authenticated just before its token was revoked must not attach after the revocation closed the rest.
    if (this.ctx.storage.kv.get("revoked")) {
      log({ event: "connector.refused", tenant, connector, reason: "revoked", status: 401 }, "warn");
      return new Response("this connector's token was revoked", { status: 401 });
    }
    if (!known) this.ctx.storage.kv.put("identity", { tenant, connector } satisfies Identity);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ tenant, connector, socketId: crypto.randomUUID() } satisfies ReplicaAttachment);
    log({ event: "connector.attached", tenant, connector });
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * Relays one JSON-RPC request to a replica that has the server healthy and resolves with its reply. The caller
   * names the call (so it can {@link cancel} it).
   */
  async call(callId: string, serverId: string, request: RelayedRequest, onNotification?: NotificationSink): Promise<CallOutcome> {
    if (this.pending.has(callId)) return fail(JsonRpcErrorCode.InvalidRequest, `call id "${callId}" is already in flight`);
    const attached = this.liveReplicas();
    const live = attached.filter((r) => this.isResponsive(r.socket, r.attachment));
    const healthy = this.reports.healthyFor(serverId, live.map((r) => r.attachment.socketId));
    const replica = pickReplica(
      live.map(({ socket, attachment }) => ({
        socket,
        healthy: healthy.has(attachment.socketId),
        timeoutMs: healthy.get(attachment.socketId),
        inFlight: [...this.pending.values()].filter((p) => p.socket === socket).length,
      })),
    );
    if (!replica) {
      const reason =
        attached.length === 0
          ? "its connector is not connected"
          : live.length === 0
            ? "its connector has stopped answering heartbeats"
            : "no connected replica of its connector reports it healthy";
      return fail(UpstreamErrorCode.Unavailable, `server "${serverId}" is not available: ${reason}; retry shortly`);
    }
    const encoded = encodeFrame({ type: "rpc", callId, serverId, request });
    if (!encoded.ok) {
      return fail(UpstreamErrorCode.TooLarge, `request of ${encoded.bytes} bytes exceeds the gateway's message size limit`);
    }
    // The connector enforces the server's timeout; the edge waits a little longer, for a replica that went silent.
    const deadlineMs = Math.min(EDGE_CALL_DEADLINE_MS, (replica.timeoutMs ?? EDGE_CALL_DEADLINE_MS) + DEADLINE_MARGIN_MS);
    return new Promise<CallOutcome>((resolve) => {
      const deadline = setTimeout(() => {
        this.send(replica.socket, { type: "cancel", callId, reason: "edge deadline exceeded" });
        settle(fail(UpstreamErrorCode.Timeout, `server "${serverId}" did not answer within ${Math.round(deadlineMs / 1000)} s; its connector may be unreachable`));
      }, deadlineMs);
      const settle = (outcome: CallOutcome) => {
        if (!this.pending.delete(callId)) return;
        clearTimeout(deadline);
        resolve(outcome);
      };
      this.pending.set(callId, { socket: replica.socket, serverId, settle, onNotification, deliveries: Promise.resolve(), queued: 0 });
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
    call.settle(fail(JsonRpcErrorCode.RequestCancelled, `the call was cancelled: ${reason}`));
    return true;
  }

  /**
   * The connector's token was revoked: every replica's link is closed now (a reconnect is refused at /connect),
   * its calls fail at once and its servers are marked disconnected. Returns how many links were closed.
   */
  async revoke(): Promise<number> {
    // Remembered for good: a connector id is never re-issued (creating one that exists is a conflict).
    this.ctx.storage.kv.put("revoked", true);
    const sockets = this.ctx.getWebSockets();
    for (const socket of sockets) {
      this.send(socket, { type: "error", code: LinkErrorCode.Revoked, message: "this connector's token was revoked by an administrator" });
      await this.detach(socket, "closed (token revoked)");
    }
    return sockets.length;
  }

  override async webSocketMessage(socket: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const parsed = parseFrame(connectorFrameSchema, data);
    if (!parsed.ok) {
      log({ event: "link.invalid_frame", code: parsed.error.code, detail: parsed.error.message }, "warn");
      // A broken reply must not leave its call hanging.
      const call = this.callOf(socket, parsed.error.callId);
      call?.settle(fail(UpstreamErrorCode.Unavailable, `the connector sent an invalid reply: ${parsed.error.message}`));
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
        socket.serializeAttachment({
          ...attachment,
          replicaId: frame.replicaId,
          helloAt: Date.now(),
          ...(frame.heartbeatMs ? { heartbeatMs: frame.heartbeatMs } : {}),
        } satisfies ReplicaAttachment);
        await this.syncServers();
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
        log({ event: "server.status", tenant: attachment.tenant, connector: attachment.connector, server: frame.server.id, status: frame.server.health });
        await this.syncServers();
        return;
      }
      case "result": {
        // Only the socket a call was sent on may answer it: another replica cannot settle someone else's call.
        const call = this.callOf(socket, frame.callId);
        if (!call) return; // a late reply to a call that already failed, timed out or was cancelled
        const outcome: CallOutcome = frame.error ? { ok: false, error: frame.error } : { ok: true, result: frame.result ?? {} };
        void call.deliveries.then(() => call.settle(outcome));
        return;
      }
      case "notification": {
        const call = this.callOf(socket, frame.callId);
        const sink = call?.onNotification;
        if (!call || !sink) return;
        if (call.queued >= MAX_QUEUED_NOTIFICATIONS) return; // the agent is not keeping up: progress is lossy by nature
        call.queued++;
        // Chained per call, never awaited here: a slow agent delays only its own call, not the connector's others.
        // A failed delivery (the agent went away) is dropped; its result will be dropped the same way.
        call.deliveries = call.deliveries
          .then(() => sink(frame.message))
          .catch(() => {})
          .finally(() => call.queued--);
        return;
      }
      case "ping":
        this.send(socket, { type: "pong" });
        return;
      case "pong":
        return;
      case "error":
        log({ event: "link.connector_error", tenant: attachment.tenant, connector: attachment.connector, code: frame.code, detail: frame.message }, "warn");
        this.callOf(socket, frame.callId)?.settle(fail(UpstreamErrorCode.Unavailable, frame.message));
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
    await this.syncServers();
  }

  /**
   * Writes the merged view of every live replica to D1, one sync at a time: a burst of status frames costs one
   * sync in flight plus one more, never one per frame, and a later view can never be overwritten by an earlier one.
   */
  private syncServers(): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        try {
          await this.syncOnce();
        } catch (error) {
          // D1 unreachable: the servers table lags until the next hello, status or detach. Never thrown from here:
          // a throw would reset the object (in the constructor) or drop the frame being handled.
          log({ event: "servers.sync_failed", detail: (error as Error).message }, "error");
        }
      } while (this.syncAgain);
    })().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const identity = this.identity();
    if (!identity) return;
    const { tenant, connector } = identity;
    const outcome = await syncConnectorServers(database(this.env.DB), tenant, connector, this.mergedReports(), Date.now());
    const notices: ErrorFrame[] = [
      ...outcome.refused.map(({ serverId, ownedBy }) => ({
        type: "error" as const,
        code: LinkErrorCode.ServerConflict,
        message: `server id "${serverId}" belongs to connector "${ownedBy}" in this tenant and is not served from here; rename it in this connector's gateway.yaml`,
      })),
      ...outcome.conflicts.map(({ serverId, note }) => ({
        type: "error" as const,
        code: LinkErrorCode.NameConflict,
        message: `server "${serverId}": ${note}`,
      })),
    ];
    for (const notice of notices) log({ event: "server.conflict", tenant, connector, code: notice.code, detail: notice.message }, "warn");
    // Operators read these in the connector's log on their host; repeated only when they change.
    const text = JSON.stringify(notices);
    if (text === this.lastNotices) return;
    this.lastNotices = text;
    for (const { socket } of this.liveReplicas()) for (const notice of notices) this.send(socket, notice);
  }

  /** The tenant and connector this object serves, recorded when its first replica attached. */
  private identity(): Identity | undefined {
    return this.ctx.storage.kv.get<Identity>("identity");
  }

  /** The pending call `callId`, if it was sent on this socket. */
  private callOf(socket: WebSocket, callId: string | undefined): PendingCall | undefined {
    const call = callId === undefined ? undefined : this.pending.get(callId);
    return call && call.socket === socket ? call : undefined;
  }

  /** Open sockets whose replica has said hello. */
  private liveReplicas(): { socket: WebSocket; attachment: ReplicaAttachment }[] {
    return this.ctx.getWebSockets().flatMap((socket) => {
      const attachment = socket.deserializeAttachment() as ReplicaAttachment | null;
      return attachment?.replicaId && socket.readyState === WebSocket.OPEN ? [{ socket, attachment }] : [];
    });
  }

  /** Heard from within the last few heartbeat intervals (a half-open socket stays OPEN until TCP gives up). */
  private isResponsive(socket: WebSocket, attachment: ReplicaAttachment): boolean {
    const lastPing = this.ctx.getWebSocketAutoResponseTimestamp(socket)?.getTime() ?? 0;
    const lastHeard = Math.max(lastPing, attachment.helloAt ?? 0);
    return Date.now() - lastHeard <= MISSED_HEARTBEATS * (attachment.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
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

function fail(code: number, message: string): CallOutcome {
  return { ok: false, error: { code, message } };
}
