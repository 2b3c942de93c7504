/**
 * @module One run of one upstream MCP server: its child process, the MCP session the connector opened on it (once,
 * shared by every call), its catalog, and the calls relayed to it. Restarts are the supervisor's business; a session
 * ends when its child does.
 *
 * Every request the connector sends goes out with its own string id: the handshake and the catalog lists
 * (handshake.ts says why these are not the SDK Client's) as well as relayed calls, which also get that id as their
 * progress token. Answers and notifications are routed here as they arrive, so nothing is re-validated, reshaped or
 * reordered on its way to the edge.
 */
import type { ServerConfig } from "../src/config/server-schema.ts";
import { JsonRpcErrorCode } from "../src/link/errors.ts";
import { MAX_MESSAGE_BYTES, exceedsBytes, serverCatalogSchema, utf8Length, type RelayedRequest, type RpcError, type ServerCatalog } from "../src/link/protocol.ts";
import { clip } from "../src/text.ts";
import { ChildProcessTransport, type ChildExit } from "./child-transport.ts";
import { capabilitiesOf, initializeParams, listAllPages, type ServerCapabilities } from "./handshake.ts";
import type { Logger } from "./log.ts";
import {
  describeExit,
  outcomeOf,
  progressForEdge,
  progressTokenOf,
  relayError,
  withProgressToken,
  type NotificationSink,
  type RelayOutcome,
} from "./relay.ts";

export type CatalogKind = keyof ServerCatalog;
export const CATALOG_KINDS: readonly CatalogKind[] = ["tools", "resources", "resourceTemplates", "prompts"];

export type SessionOptions = {
  server: ServerConfig;
  /** The child's complete environment (see env.ts). */
  env: Record<string, string>;
  connectorVersion: string;
  /** Spawn + initialize + first catalog must finish within this. */
  startTimeoutMs: number;
  log: Logger;
  onStderr: (text: string) => void;
  onListChanged: (kinds: readonly CatalogKind[]) => void;
};

type PendingCall = {
  /** The edge's id of a relayed call; undefined for the connector's own requests (handshake, lists). */
  callId: string | undefined;
  method: string;
  onNotification: NotificationSink;
  settle: (outcome: RelayOutcome) => void;
};

/** An upstream's JSON-RPC error answer to one of the connector's own requests. */
class UpstreamRequestError extends Error {
  readonly code: number;
  constructor(error: RpcError) {
    super(error.message);
    this.code = error.code;
  }
}

/** The catalog lists: which method (its result holds the list under the kind's own name) and which capability the server must have declared. */
const LISTS: Readonly<Record<CatalogKind, { method: string; capability: string }>> = {
  tools: { method: "tools/list", capability: "tools" },
  prompts: { method: "prompts/list", capability: "prompts" },
  resources: { method: "resources/list", capability: "resources" },
  resourceTemplates: { method: "resources/templates/list", capability: "resources" },
};

/** A Map, not an object literal: a server's notification named `constructor` or `__proto__` must find nothing. */
const LIST_CHANGED: ReadonlyMap<string, readonly CatalogKind[]> = new Map([
  ["notifications/tools/list_changed", ["tools"]],
  ["notifications/resources/list_changed", ["resources", "resourceTemplates"]],
  ["notifications/prompts/list_changed", ["prompts"]],
]);

export class UpstreamSession {
  readonly #options: SessionOptions;
  readonly #serverId: string;
  readonly #transport: ChildProcessTransport;
  /** In-flight requests by upstream id (for relayed calls also their progress token). */
  readonly #calls = new Map<string, PendingCall>();
  #nextId = 0;
  #capabilities: ServerCapabilities = {};
  #exit: ChildExit | undefined;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#serverId = options.server.id;
    const { server, log } = options;
    this.#transport = new ChildProcessTransport({
      command: server.command,
      args: server.args,
      env: options.env,
      cwd: server.cwd,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      onMessage: (message) => this.#route(message),
      onOversized: (bytes, id) => this.#oversized(bytes, id),
      onStrayOutput: (bytes) => log("warn", "server_stray_output", { server: server.id, bytes }),
      onStderr: options.onStderr,
      // Fail the pending calls the moment the child is gone: nobody is left to answer them.
      onExit: (exit) => {
        this.#exit = exit;
        this.#failAll(relayError.crashed(this.#serverId, describeExit(exit)));
      },
    });
  }

  get pid(): number | undefined {
    return this.#transport.pid;
  }

  /** Relayed calls in flight (the connector's own requests are not counted: nobody waits on them to drain). */
  get inFlight(): number {
    let count = 0;
    for (const call of this.#calls.values()) if (call.callId !== undefined) count++;
    return count;
  }

  /** Resolves when the child has exited. */
  get exited(): Promise<ChildExit> {
    return this.#transport.exited;
  }

  /** Spawns and initialises the server and fetches its whole catalog. Rejects with a reason an operator can act on. */
  async start(): Promise<ServerCatalog> {
    const deadline = AbortSignal.timeout(this.#options.startTimeoutMs);
    let spawned = false;
    try {
      await this.#transport.start();
      spawned = true;
      // The whole start window, not the server's per-request timeout: a first start may be slow (npx downloading).
      const initialized = await this.#request("initialize", initializeParams(this.#options.connectorVersion), deadline, this.#options.startTimeoutMs);
      this.#capabilities = capabilitiesOf(initialized);
      await this.#transport.send({ jsonrpc: "2.0", method: "notifications/initialized" });
      const catalog = await this.fetchCatalog(CATALOG_KINDS, deadline);
      return { tools: [], resources: [], resourceTemplates: [], prompts: [], ...catalog };
    } catch (error) {
      throw new Error(spawned && this.#exit ? `it exited (${describeExit(this.#exit)}) before it finished initialising` : startFailure(error, this.#options.startTimeoutMs));
    }
  }

  /** Fetches the given parts of the catalog, each only when the server declared the capability, every page of it. */
  async fetchCatalog(kinds: readonly CatalogKind[], signal?: AbortSignal): Promise<Partial<ServerCatalog>> {
    const catalog: Partial<ServerCatalog> = {};
    for (const kind of kinds) {
      const { method, capability } = LISTS[kind];
      let items: unknown[] = [];
      if (this.#capabilities[capability]) {
        const list = listAllPages(method, kind, (cursor) => this.#request(method, cursor === undefined ? {} : { cursor }, signal), MAX_MESSAGE_BYTES);
        // Servers with resources but no templates often answer "method not found" instead of an empty list.
        items = await (kind !== "resourceTemplates"
          ? list
          : list.catch((error: unknown) => {
              if (error instanceof UpstreamRequestError && error.code === JsonRpcErrorCode.MethodNotFound) return [];
              throw error;
            }));
      }
      catalog[kind] = this.#validItems(kind, items) as never;
    }
    return catalog;
  }

  /**
   * Relays one request upstream. Resolves (never rejects) with the upstream's answer, or with an error when the
   * server crashes, times out, answers too much, or the call is cancelled.
   */
  relay(callId: string, request: RelayedRequest, onNotification: NotificationSink): Promise<RelayOutcome> {
    if (request.method === "initialize") {
      // The session is initialised once, by the connector, and shared by every consumer's calls.
      return Promise.resolve({ error: { code: JsonRpcErrorCode.InvalidRequest, message: `server "${this.#serverId}" is already initialised by the connector; do not relay initialize` } });
    }
    return this.#send(request.method, (upstreamId) => withProgressToken(request.params, upstreamId), { callId, onNotification });
  }

  /**
   * Sends one request upstream under a fresh id and resolves (never rejects) with its answer, or with an error when
   * the server crashes, times out (its `timeout` in gateway.yaml), the answer is too large, the call is cancelled, or
   * `signal` fires first. A request that ends unanswered is cancelled upstream.
   */
  #send(
    method: string,
    params: (upstreamId: string) => Record<string, unknown>,
    call: { callId?: string; onNotification?: NotificationSink; signal?: AbortSignal | undefined; timeoutMs?: number },
  ): Promise<RelayOutcome> {
    // Nobody is left to answer: a request after the child's exit (a catalog refresh racing a crash) fails at once.
    if (this.#exit) return Promise.resolve({ error: relayError.crashed(this.#serverId, describeExit(this.#exit)) });
    const upstreamId = `gw-${++this.#nextId}`;
    const message = { jsonrpc: "2.0" as const, id: upstreamId, method, params: params(upstreamId) };
    const text = JSON.stringify(message);
    if (exceedsBytes(text, MAX_MESSAGE_BYTES)) return Promise.resolve({ error: relayError.requestTooLarge(this.#serverId, utf8Length(text)) });

    const { signal } = call;
    if (signal?.aborted) return Promise.resolve({ error: relayError.cancelled(String(signal.reason)) });
    const timeoutMs = call.timeoutMs ?? this.#options.server.timeout;
    return new Promise<RelayOutcome>((resolve) => {
      const giveUp = (reason: string, error: RpcError) => {
        this.#cancelUpstream(upstreamId, method, reason);
        settle({ error });
      };
      const timer = setTimeout(() => giveUp(`timed out after ${timeoutMs} ms`, relayError.timedOut(this.#serverId, method, timeoutMs)), timeoutMs);
      const onAbort = () => giveUp("the connector stopped waiting", relayError.cancelled(String(signal?.reason)));
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = (outcome: RelayOutcome) => {
        if (!this.#calls.delete(upstreamId)) return;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(outcome);
      };
      this.#calls.set(upstreamId, { callId: call.callId, method, onNotification: call.onNotification ?? (() => {}), settle });
      this.#transport.send(message).catch(() => {
        // The write failed because the child is dying; its exit fails the call as crashed (if it is still pending).
      });
    });
  }

  /** One of the connector's own requests: its result, or a rejection (the signal's reason when it fired first). */
  async #request(method: string, params: Record<string, unknown>, signal?: AbortSignal, timeoutMs?: number): Promise<Record<string, unknown>> {
    const outcome = await this.#send(method, () => params, { signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    if (signal?.aborted) throw signal.reason;
    if ("error" in outcome) throw new UpstreamRequestError(outcome.error);
    return outcome.result;
  }

  /** Cancels a relayed call (the agent went away): tells the server, and settles the call as cancelled. */
  cancel(callId: string, reason: string | undefined): boolean {
    for (const [upstreamId, call] of this.#calls) {
      if (call.callId === undefined || call.callId !== callId) continue;
      this.#cancelUpstream(upstreamId, call.method, reason ?? "cancelled by the gateway");
      call.settle({ error: relayError.cancelled(reason) });
      return true;
    }
    return false;
  }

  /** Settles every in-flight call with `error`, telling the server to stop working on them. */
  abortAll(error: RpcError): void {
    for (const [upstreamId, call] of this.#calls) this.#cancelUpstream(upstreamId, call.method, error.message);
    this.#failAll(error);
  }

  /** Stops the child and its process group (SIGTERM, then SIGKILL after graceMs). */
  async stop(graceMs: number): Promise<void> {
    await this.#transport.terminate(graceMs);
  }

  /** SIGKILLs the child's process group, synchronously (see ChildProcessTransport.killSync). */
  killSync(): void {
    this.#transport.killSync();
  }

  // ── what comes up the stream ──────────────────────────────────────────────────────────────────────────────────

  /** Routes one upstream message, synchronously, so the order in which the server wrote them is kept. */
  #route(message: Record<string, unknown>): void {
    const method = typeof message.method === "string" ? message.method : undefined;
    const id = typeof message.id === "string" || typeof message.id === "number" ? message.id : undefined;

    if (method === undefined) {
      // A response: every request the connector sends has one of its string ids.
      const call = typeof id === "string" ? this.#calls.get(id) : undefined;
      if (call) call.settle(outcomeOf(this.#serverId, message));
      // A late answer to a call that timed out or was cancelled, or not JSON-RPC at all: nobody is waiting for it.
      else this.#options.log("warn", "server_protocol_error", { server: this.#serverId, message: id === undefined ? "a message that is neither a request, a notification nor a response" : "a response to no request in flight" });
      return;
    }
    if (id !== undefined) {
      // The spec lets either side ping; anything else a server asks of its client is refused (see #refuse).
      if (method === "ping") void this.#transport.send({ jsonrpc: "2.0", id, result: {} }).catch(() => {});
      else this.#refuse(id, method);
      return;
    }
    if (method === "notifications/progress") {
      const params = (message.params ?? {}) as Record<string, unknown>;
      const token = progressTokenOf(params);
      const call = token === undefined ? undefined : this.#calls.get(token);
      if (call) call.onNotification(progressForEdge(params));
      return;
    }
    if (method === "notifications/message") {
      this.#routeLogMessage(message.params);
      return;
    }
    const kinds = LIST_CHANGED.get(method);
    if (kinds) this.#options.onListChanged(kinds);
    // Other notifications (resources/updated, …) have no subscriber behind the gateway yet.
  }

  /**
   * stdio carries no link between a log line and the request that caused it. With exactly one call in flight the
   * line can only be that call's; otherwise it might belong to another consumer's call, so it stays in the
   * connector's log.
   */
  #routeLogMessage(params: unknown): void {
    const only = this.#calls.size === 1 ? [...this.#calls.values()][0] : undefined;
    if (only?.callId !== undefined) {
      only.onNotification({ method: "notifications/message", params: (params ?? {}) as Record<string, unknown> });
      return;
    }
    const p = (params ?? {}) as { level?: unknown; logger?: unknown; data?: unknown };
    this.#options.log("info", "server_log", {
      server: this.#serverId,
      level: typeof p.level === "string" ? p.level : undefined,
      logger: typeof p.logger === "string" ? p.logger : undefined,
      inFlight: this.#calls.size,
      message: clip(typeof p.data === "string" ? p.data : JSON.stringify(p.data) ?? "", 500),
    });
  }

  /** Server→client requests the gateway cannot relay to the agent (yet): answered at once so the server need not wait. */
  #refuse(id: string | number, method: string): void {
    this.#options.log("warn", "server_request_refused", { server: this.#serverId, method });
    const error = {
      code: JsonRpcErrorCode.MethodNotFound,
      message: `mcp-gateway does not relay server-to-client requests (${method}) to agents yet; this server must work without them when used through the gateway`,
    };
    void this.#transport.send({ jsonrpc: "2.0", id, error }).catch(() => {});
  }

  #oversized(bytes: number, id: string | number | undefined): void {
    const call = typeof id === "string" ? this.#calls.get(id) : undefined;
    this.#options.log("warn", "server_message_too_large", { server: this.#serverId, bytes, callId: call?.callId });
    if (call) call.settle({ error: relayError.responseTooLarge(this.#serverId, bytes) });
  }

  #cancelUpstream(upstreamId: string, method: string, reason: string): void {
    // The spec forbids cancelling initialize; a session whose initialize fails is stopped instead.
    if (method === "initialize") return;
    const cancelled = { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: upstreamId, reason } };
    void this.#transport.send(cancelled).catch(() => {});
  }

  #failAll(error: RpcError): void {
    for (const call of [...this.#calls.values()]) call.settle({ error });
  }

  /** Drops catalog entries the link protocol would refuse, so one bad tool cannot make the whole hello invalid. */
  #validItems(kind: CatalogKind, items: readonly unknown[]): unknown[] {
    const schema = serverCatalogSchema.shape[kind].element;
    return items.filter((item) => {
      const ok = schema.safeParse(item).success;
      if (!ok) this.#options.log("warn", "catalog_item_dropped", { server: this.#serverId, kind, reason: "not a valid catalog entry" });
      return ok;
    });
  }
}

/** Why a start failed, in words for an operator. The command is not named: reports go to the edge, commands do not. */
function startFailure(error: unknown, timeoutMs: number): string {
  const e = error as NodeJS.ErrnoException;
  if (e?.code === "ENOENT") return "its command was not found (check the server's command, its cwd, and the connector's PATH)";
  if (e?.code === "EACCES") return "its command is not executable";
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return `it did not initialise within ${timeoutMs} ms`;
  return `it failed to initialise: ${e?.message ?? String(error)}`;
}
