/**
 * @module One run of one upstream MCP server: its child process, the SDK Client that initialised it (once, shared
 * by every call), its catalog, and the calls relayed to it. Restarts are the supervisor's business; a session ends
 * when its child does.
 *
 * The SDK Client performs the handshake and the list requests (with pagination). Relayed calls bypass it: they go
 * out with the connector's own string ids and progress tokens, and their responses and notifications are taken off
 * the stream by the transport's interceptor in arrival order, so nothing is re-validated, reshaped or reordered.
 */
import { Client, ProtocolError, type JSONRPCMessage } from "@modelcontextprotocol/client";
import type { ServerConfig } from "../src/config/server-schema.ts";
import { JsonRpcErrorCode } from "../src/link/errors.ts";
import { MAX_MESSAGE_BYTES, exceedsBytes, serverCatalogSchema, utf8Length, type RelayedRequest, type RpcError, type ServerCatalog } from "../src/link/protocol.ts";
import { clip } from "../src/text.ts";
import { ChildProcessTransport, type ChildExit } from "./child-transport.ts";
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
  callId: string;
  method: string;
  onNotification: NotificationSink;
  settle: (outcome: RelayOutcome) => void;
};

const LIST_CHANGED: Readonly<Record<string, readonly CatalogKind[]>> = {
  "notifications/tools/list_changed": ["tools"],
  "notifications/resources/list_changed": ["resources", "resourceTemplates"],
  "notifications/prompts/list_changed": ["prompts"],
};

export class UpstreamSession {
  readonly #options: SessionOptions;
  readonly #serverId: string;
  readonly #transport: ChildProcessTransport;
  readonly #client: Client;
  /** In-flight relayed calls by upstream id (= the call's progress token). */
  readonly #calls = new Map<string, PendingCall>();
  #nextId = 0;

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
      intercept: (message) => this.#intercept(message),
      onOversized: (bytes, id) => this.#oversized(bytes, id),
      onStrayOutput: (bytes) => log("warn", "server_stray_output", { server: server.id, bytes }),
      onStderr: options.onStderr,
      // Fail the pending calls the moment the child is gone: nobody is left to answer them.
      onExit: (exit) => this.#failAll(relayError.crashed(this.#serverId, describeExit(exit))),
    });
    // No client capabilities: the gateway relays neither sampling, elicitation nor roots (see #refuse).
    this.#client = new Client({ name: "mcp-gateway-connector", version: options.connectorVersion });
    this.#client.onerror = (error) => log("warn", "server_protocol_error", { server: server.id, message: error.message });
  }

  get pid(): number | undefined {
    return this.#transport.pid;
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  /** Resolves when the child has exited. */
  get exited(): Promise<ChildExit> {
    return this.#transport.exited;
  }

  /** Spawns and initialises the server and fetches its whole catalog. Rejects with a reason an operator can act on. */
  async start(): Promise<ServerCatalog> {
    const deadline = AbortSignal.timeout(this.#options.startTimeoutMs);
    try {
      await this.#client.connect(this.#transport, { timeout: this.#options.startTimeoutMs, signal: deadline });
      const catalog = await this.fetchCatalog(CATALOG_KINDS, deadline);
      return { tools: [], resources: [], resourceTemplates: [], prompts: [], ...catalog };
    } catch (error) {
      throw new Error(startFailure(error, this.#options.startTimeoutMs));
    }
  }

  /** Fetches the given parts of the catalog, each only when the server declared the capability, every page of it. */
  async fetchCatalog(kinds: readonly CatalogKind[], signal?: AbortSignal): Promise<Partial<ServerCatalog>> {
    const capabilities = this.#client.getServerCapabilities() ?? {};
    const options = { cacheMode: "bypass" as const, timeout: this.#options.server.timeout, ...(signal ? { signal } : {}) };
    const catalog: Partial<ServerCatalog> = {};
    for (const kind of kinds) {
      let items: unknown[] = [];
      if (kind === "tools" && capabilities.tools) items = (await this.#client.listTools(undefined, options)).tools;
      if (kind === "prompts" && capabilities.prompts) items = (await this.#client.listPrompts(undefined, options)).prompts;
      if (kind === "resources" && capabilities.resources) items = (await this.#client.listResources(undefined, options)).resources;
      if (kind === "resourceTemplates" && capabilities.resources) {
        // Servers with resources but no templates often answer "method not found" instead of an empty list.
        items = await this.#client.listResourceTemplates(undefined, options).then(
          (r) => r.resourceTemplates,
          (error: unknown) => {
            if (error instanceof ProtocolError && error.code === JsonRpcErrorCode.MethodNotFound) return [];
            throw error;
          },
        );
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
    const upstreamId = `gw-${++this.#nextId}`;
    const message = { jsonrpc: "2.0" as const, id: upstreamId, method: request.method, params: withProgressToken(request.params, upstreamId) };
    const text = JSON.stringify(message);
    if (exceedsBytes(text, MAX_MESSAGE_BYTES)) return Promise.resolve({ error: relayError.requestTooLarge(this.#serverId, utf8Length(text)) });

    const timeoutMs = this.#options.server.timeout;
    return new Promise<RelayOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.#cancelUpstream(upstreamId, `timed out after ${timeoutMs} ms`);
        settle({ error: relayError.timedOut(this.#serverId, request.method, timeoutMs) });
      }, timeoutMs);
      const settle = (outcome: RelayOutcome) => {
        if (!this.#calls.delete(upstreamId)) return;
        clearTimeout(timer);
        resolve(outcome);
      };
      this.#calls.set(upstreamId, { callId, method: request.method, onNotification, settle });
      this.#transport.send(message as JSONRPCMessage).catch(() => {
        // The write failed because the child is dying; its exit fails the call as crashed (if it is still pending).
      });
    });
  }

  /** Cancels a relayed call (the agent went away): tells the server, and settles the call as cancelled. */
  cancel(callId: string, reason: string | undefined): boolean {
    for (const [upstreamId, call] of this.#calls) {
      if (call.callId !== callId) continue;
      this.#cancelUpstream(upstreamId, reason ?? "cancelled by the gateway");
      call.settle({ error: relayError.cancelled(reason) });
      return true;
    }
    return false;
  }

  /** Settles every in-flight call with `error`, telling the server to stop working on them. */
  abortAll(error: RpcError): void {
    for (const upstreamId of this.#calls.keys()) this.#cancelUpstream(upstreamId, error.message);
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

  /** Routes one upstream message; returns false to leave it to the SDK Client. Synchronous, so order is kept. */
  #intercept(message: Record<string, unknown>): boolean {
    const method = typeof message.method === "string" ? message.method : undefined;
    const hasId = typeof message.id === "string" || typeof message.id === "number";

    if (method === undefined) {
      // A response: ours when the id is one of the relay's string ids, else the Client's (numeric ids).
      const call = typeof message.id === "string" ? this.#calls.get(message.id) : undefined;
      if (!call) return false;
      call.settle(outcomeOf(this.#serverId, message));
      return true;
    }
    if (hasId) {
      if (method === "ping") return false;
      this.#refuse(message.id as string | number, method);
      return true;
    }
    if (method === "notifications/progress") {
      const params = (message.params ?? {}) as Record<string, unknown>;
      const token = progressTokenOf(params);
      const call = token === undefined ? undefined : this.#calls.get(token);
      if (call) call.onNotification(progressForEdge(params));
      return true;
    }
    if (method === "notifications/message") {
      this.#routeLogMessage(message.params);
      return true;
    }
    const kinds = LIST_CHANGED[method];
    if (kinds) {
      this.#options.onListChanged(kinds);
      return true;
    }
    return false;
  }

  /**
   * stdio carries no link between a log line and the request that caused it. With exactly one call in flight the
   * line can only be that call's; otherwise it might belong to another consumer's call, so it stays in the
   * connector's log.
   */
  #routeLogMessage(params: unknown): void {
    const only = this.#calls.size === 1 ? [...this.#calls.values()][0] : undefined;
    if (only) {
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
    void this.#transport.send({ jsonrpc: "2.0", id, error } as JSONRPCMessage).catch(() => {});
  }

  #oversized(bytes: number, id: string | number | undefined): void {
    const call = typeof id === "string" ? this.#calls.get(id) : undefined;
    this.#options.log("warn", "server_message_too_large", { server: this.#serverId, bytes, callId: call?.callId });
    if (call) call.settle({ error: relayError.responseTooLarge(this.#serverId, bytes) });
  }

  #cancelUpstream(upstreamId: string, reason: string): void {
    const cancelled = { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: upstreamId, reason } };
    void this.#transport.send(cancelled as JSONRPCMessage).catch(() => {});
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
