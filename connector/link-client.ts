/**
 * @module The link client: the connector's one outbound WebSocket to the gateway (`wss://<gateway>/connect`). It
 * announces the connector's servers (`hello`), relays `rpc` frames to the supervisor and answers with `result` and
 * `notification` frames, reports health and catalog changes (`status`), keeps the link alive with heartbeats, and
 * redials with backoff and jitter whenever the link is lost — the gateway closes every socket on each deploy.
 *
 * Every received frame is validated with the shared protocol module; an invalid one is answered with an error
 * frame and the connection is kept. No frame above the protocol's size limit is ever sent.
 */
import {
  HEARTBEAT_PING,
  HEARTBEAT_PONG,
  LINK_PROTOCOL_VERSION,
  edgeFrameSchema,
  encodeFrame,
  parseFrame,
  type ConnectorFrame,
  type RpcFrame,
  type ServerReport,
} from "../src/link/protocol.ts";
import { backoffDelay, type BackoffPolicy } from "./backoff.ts";
import type { Logger } from "./log.ts";
import { relayError, type RelayOutcome } from "./relay.ts";
import type { Supervisor } from "./supervisor.ts";

/** What the link needs from the supervisor (a narrow seam, so the link can be tested with a stand-in). */
export type LinkSupervisor = Pick<Supervisor, "reports" | "relay" | "cancel" | "onReport">;

export type LinkClientOptions = {
  /** `ws://` or `wss://` URL of the gateway's /connect endpoint. */
  url: string;
  /** The connector token; sent only in the Authorization header of the handshake. */
  token: string;
  replicaId: string;
  connectorVersion: string;
  supervisor: LinkSupervisor;
  log: Logger;
  /** A ping every this many ms (at most 5 min), announced in the hello; the link is declared dead after two intervals without any frame. */
  heartbeatIntervalMs?: number;
  reconnect?: BackoffPolicy;
};

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;
/** The range of `heartbeatMs` in the hello (src/link/protocol.ts). */
const MIN_ANNOUNCED_HEARTBEAT_MS = 100;
const MAX_HEARTBEAT_INTERVAL_MS = 300_000;
export const DEFAULT_RECONNECT: BackoffPolicy = { initialMs: 500, maxMs: 30_000, jitter: 0.5 };

/**
 * The parts of Node's built-in WebSocket (undici) the link uses. Declared here because the shared tsconfig types the
 * global WebSocket as workerd's, whose constructor has no `headers` option; Node's has (verified on Node 22).
 */
interface NodeWebSocket {
  readonly readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "error" | "close", listener: (event: SocketEvent) => void): void;
}
type SocketEvent = { data?: unknown; code?: number; reason?: string; message?: string; error?: unknown };
const NodeWebSocket = (globalThis as unknown as { WebSocket: new (url: string, init: { headers: Record<string, string> }) => NodeWebSocket }).WebSocket;
const OPEN = 1;

export class LinkClient {
  readonly #options: LinkClientOptions;
  readonly #heartbeatMs: number;
  readonly #reconnect: BackoffPolicy;
  #socket: NodeWebSocket | undefined;
  /**
   * Calls received on the current socket, each with the frame that started it: the edge forgets them when the socket
   * goes, so the connector cancels them. A frame that reuses a call id in flight started nothing and owns no entry.
   */
  #calls = new Map<string, RpcFrame>();
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #lastHeardAt = 0;
  #welcomed = false;
  #stopped = false;
  #unsubscribe: (() => void) | undefined;

  constructor(options: LinkClientOptions) {
    this.#options = options;
    // Capped at what the hello can announce: pinging more often than asked is harmless, announcing less is not.
    this.#heartbeatMs = Math.min(options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS, MAX_HEARTBEAT_INTERVAL_MS);
    this.#reconnect = options.reconnect ?? DEFAULT_RECONNECT;
  }

  /** True while a socket is open and the gateway has welcomed this replica. */
  get connected(): boolean {
    return this.#socket?.readyState === OPEN && this.#welcomed;
  }

  start(): void {
    this.#unsubscribe = this.#options.supervisor.onReport((report) => this.#sendStatus(report));
    this.#dial();
  }

  /** Closes the link for good (no redial). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#heartbeatTimer);
    const socket = this.#socket;
    this.#socket = undefined;
    if (!socket) return;
    if (socket.readyState !== OPEN) {
      // Still dialling: abandon the handshake (its events are ignored, the socket is no longer current).
      socket.close();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1_000);
      socket.addEventListener("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.close(1000, "connector shutting down");
    });
  }

  // ── socket lifecycle ──────────────────────────────────────────────────────────────────────────────────────────

  #dial(): void {
    if (this.#stopped) return;
    const { url, token, log } = this.#options;
    log("info", "link_connecting", { url: redactUrl(url), attempt: this.#attempt });
    let socket: NodeWebSocket;
    try {
      socket = new NodeWebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    } catch (error) {
      log("error", "link_failed", { reason: (error as Error).message });
      this.#scheduleRedial();
      return;
    }
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    this.#welcomed = false;
    // Node fires only `error` (never `close`) when the handshake fails (401, server down): both end the socket,
    // and #ended runs once per socket.
    let ended = false;
    const end = (reason: string) => {
      if (ended) return;
      ended = true;
      this.#ended(socket, reason);
    };
    socket.addEventListener("open", () => this.#opened(socket, end));
    socket.addEventListener("message", (event) => this.#received(socket, event.data));
    socket.addEventListener("error", (event) => end(`error: ${event.message || errorMessage(event.error) || "connection failed"}`));
    socket.addEventListener("close", (event) => end(`closed: ${event.code ?? ""} ${event.reason ?? ""}`.trim()));
  }

  #opened(socket: NodeWebSocket, end: (reason: string) => void): void {
    if (this.#socket !== socket) return;
    this.#options.log("info", "link_open", {});
    this.#lastHeardAt = Date.now();
    this.#sendHello(socket);
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = setInterval(() => {
      if (Date.now() - this.#lastHeardAt > 2 * this.#heartbeatMs) {
        // A half-open TCP connection would never fire close: give up on it without waiting for its close handshake.
        end("heartbeat timeout: nothing heard from the gateway for two intervals");
        socket.close(4000, "heartbeat timeout");
        return;
      }
      socket.send(HEARTBEAT_PING);
    }, this.#heartbeatMs);
  }

  #ended(socket: NodeWebSocket, reason: string): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#welcomed = false;
    clearInterval(this.#heartbeatTimer);
    for (const callId of this.#calls.keys()) this.#options.supervisor.cancel(callId, "the link to the gateway was lost");
    this.#calls.clear();
    this.#options.log("warn", "link_closed", { reason });
    this.#scheduleRedial();
  }

  #scheduleRedial(): void {
    if (this.#stopped || this.#reconnectTimer) return;
    const delayMs = backoffDelay(this.#reconnect, this.#attempt++);
    this.#options.log("info", "link_redial_scheduled", { delayMs });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#dial();
    }, delayMs);
  }

  // ── frames in ─────────────────────────────────────────────────────────────────────────────────────────────────

  #received(socket: NodeWebSocket, data: unknown): void {
    if (this.#socket !== socket) return;
    this.#lastHeardAt = Date.now();
    const parsed = parseFrame(edgeFrameSchema, data instanceof ArrayBuffer ? data : String(data));
    if (!parsed.ok) {
      this.#options.log("warn", "link_frame_invalid", { code: parsed.error.code, message: parsed.error.message, callId: parsed.error.callId });
      this.#send(socket, parsed.error);
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case "rpc":
        void this.#relay(socket, frame);
        return;
      case "cancel":
        this.#options.supervisor.cancel(frame.callId, frame.reason);
        return;
      case "welcome":
        this.#welcomed = true;
        // Only a welcomed link counts as success: a gateway that accepts and then drops the socket keeps backing off.
        this.#attempt = 0;
        this.#options.log("info", "link_welcomed", { tenant: frame.tenant, connector: frame.connector });
        return;
      case "error":
        this.#options.log("warn", "link_error_frame", { code: frame.code, message: frame.message, callId: frame.callId });
        return;
      case "ping":
        socket.send(HEARTBEAT_PONG);
        return;
      case "pong":
        return;
    }
  }

  async #relay(socket: NodeWebSocket, frame: RpcFrame): Promise<void> {
    const { callId, serverId, request } = frame;
    // A duplicate id is answered by the supervisor (an error); it must not untrack the original call when it ends.
    if (!this.#calls.has(callId)) this.#calls.set(callId, frame);
    const outcome = await this.#options.supervisor.relay(serverId, callId, request, (message) => {
      if (!this.#send(socket, { type: "notification", callId, message })) {
        this.#options.log("warn", "notification_dropped", { server: serverId, callId, method: message.method });
      }
    });
    if (this.#calls.get(callId) === frame) this.#calls.delete(callId);
    this.#sendResult(socket, callId, outcome);
  }

  // ── frames out ────────────────────────────────────────────────────────────────────────────────────────────────

  #sendResult(socket: NodeWebSocket, callId: string, outcome: RelayOutcome): void {
    const frame: ConnectorFrame = { type: "result", callId, ...outcome };
    const encoded = encodeFrame(frame);
    const sent = encoded.ok
      ? this.#sendText(socket, encoded.text)
      : this.#send(socket, { type: "result", callId, error: relayError.resultFrameTooLarge(encoded.bytes) });
    if (!sent) this.#options.log("warn", "result_dropped", { callId, reason: "the link it came on is gone" });
  }

  #sendHello(socket: NodeWebSocket): void {
    const { replicaId, connectorVersion, supervisor } = this.#options;
    const servers = supervisor.reports().map(fitReport);
    const hello: ConnectorFrame = {
      type: "hello",
      protocol: LINK_PROTOCOL_VERSION,
      connectorVersion,
      replicaId,
      heartbeatMs: announcedHeartbeatMs(this.#heartbeatMs),
      servers,
    };
    if (this.#send(socket, hello)) return;
    // Each catalog fits a frame but all of them together do not: announce the servers, then their catalogs one by one.
    const bare = servers.map((s) => ({ ...s, catalog: { tools: [], resources: [], resourceTemplates: [], prompts: [] } }));
    this.#send(socket, { ...hello, servers: bare });
    for (const server of servers) this.#send(socket, { type: "status", server });
  }

  #sendStatus(report: ServerReport): void {
    const socket = this.#socket;
    if (socket?.readyState === OPEN) this.#send(socket, { type: "status", server: fitReport(report) });
  }

  /** Sends a frame if it fits the limit and the socket is open; false otherwise. */
  #send(socket: NodeWebSocket, frame: ConnectorFrame): boolean {
    const encoded = encodeFrame(frame);
    if (!encoded.ok) {
      this.#options.log("error", "frame_too_large", { type: frame.type, bytes: encoded.bytes });
      return false;
    }
    return this.#sendText(socket, encoded.text);
  }

  #sendText(socket: NodeWebSocket, text: string): boolean {
    if (this.#socket !== socket || socket.readyState !== OPEN) return false;
    socket.send(text);
    return true;
  }
}

/**
 * A report whose catalog alone exceeds a frame cannot be announced: the server is reported unhealthy with an empty
 * catalog and a reason, rather than the whole hello being refused.
 */
export function fitReport(report: ServerReport): ServerReport {
  const encoded = encodeFrame({ type: "status", server: report });
  if (encoded.ok) return report;
  return {
    ...report,
    health: "unhealthy",
    detail: `its catalog is ${encoded.bytes} bytes, above the link's frame limit; expose fewer tools, resources or prompts`,
    catalog: { tools: [], resources: [], resourceTemplates: [], prompts: [] },
  };
}

/**
 * The heartbeat interval as announced in the hello (the edge counts a replica silent for 3 intervals as gone). The
 * protocol accepts 100 ms to 5 min and the interval is at most 5 min (see the constructor); a shorter one (tests) is
 * announced as 100 ms, so the edge merely waits a little longer than it needs to.
 */
function announcedHeartbeatMs(intervalMs: number): number {
  return Math.max(MIN_ANNOUNCED_HEARTBEAT_MS, Math.ceil(intervalMs));
}

/** A URL as it may be logged: no credentials, query or fragment. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

function errorMessage(error: unknown): string | undefined {
  return error instanceof Error ? error.message : undefined;
}
