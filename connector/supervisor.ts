/**
 * @module The supervisor: one supervised child per enabled server in the connector's config. It starts each child,
 * restarts it with exponential backoff when it dies, declares it unhealthy when it crash-loops or cannot initialise
 * (with a detail an operator can act on), keeps its catalog current on `list_changed`, and relays calls to it.
 * Every change of a server's health or catalog is published as a {@link ServerReport} (the link client turns those
 * into `status` frames).
 *
 * A report never carries what a server printed: its stderr may hold anything it read or computed (connection
 * strings, tokens read from files, stack traces), and reports are stored by the gateway and shown to agents. Stderr
 * stays in the connector's local log (`server_stderr`, secret values masked); a report's detail says where to look.
 */
import type { ServerConfig } from "../src/config/server-schema.ts";
import type { RelayedRequest, RpcError, ServerCatalog, ServerHealth, ServerReport } from "../src/link/protocol.ts";
import { backoffDelay, recordCrash, type BackoffPolicy, type CrashLoopPolicy } from "./backoff.ts";
import type { ChildExit } from "./child-transport.ts";
import { childEnvironment, redactSecrets, resolveServerEnv, type HostEnv } from "./env.ts";
import type { Logger } from "./log.ts";
import { describeExit, relayError, type NotificationSink, type RelayOutcome } from "./relay.ts";
import { StderrTail } from "./stderr-tail.ts";
import { clip } from "../src/text.ts";
import { UpstreamSession, type CatalogKind } from "./upstream-session.ts";

export type RestartOptions = {
  backoff: BackoffPolicy;
  crashLoop: CrashLoopPolicy;
  /** A child that has stayed up this long starts its backoff from the beginning again after its next crash. */
  stableAfterMs: number;
  /** Spawn, initialize and first catalog must finish within this. */
  startTimeoutMs: number;
  /** Between SIGTERM and SIGKILL when stopping a child. */
  stopGraceMs: number;
};

export const DEFAULT_RESTART: RestartOptions = {
  backoff: { initialMs: 250, maxMs: 30_000, jitter: 0 },
  crashLoop: { crashes: 5, windowMs: 60_000 },
  stableAfterMs: 30_000,
  startTimeoutMs: 30_000,
  stopGraceMs: 5_000,
};

export type SupervisorOptions = {
  servers: readonly ServerConfig[];
  /** Where `${VAR}` references are resolved from and the children's base environment comes from. */
  hostEnv: HostEnv;
  platform?: string;
  connectorVersion: string;
  log: Logger;
  restart?: Partial<RestartOptions>;
};

export type ReportListener = (report: ServerReport) => void;

/** The protocol's limit on a report's detail. */
const MAX_DETAIL_CHARS = 2000;
/** The detail of every server while the connector drains and stops. */
const SHUTTING_DOWN = "the connector is shutting down";
/** list_changed notifications often come in bursts (a server registering tools one by one). */
const LIST_CHANGED_DEBOUNCE_MS = 100;
const EMPTY_CATALOG: ServerCatalog = { tools: [], resources: [], resourceTemplates: [], prompts: [] };

export class Supervisor {
  readonly #servers = new Map<string, SupervisedServer>();
  readonly #listeners = new Set<ReportListener>();
  /** Every relayed call in flight, by call id, for cancel and drain. */
  readonly #calls = new Map<string, { server: SupervisedServer; outcome: Promise<RelayOutcome> }>();
  #draining = false;

  constructor(options: SupervisorOptions) {
    const restart = { ...DEFAULT_RESTART, ...options.restart };
    const platform = options.platform ?? process.platform;
    for (const config of options.servers) {
      const server = new SupervisedServer(config, options, restart, platform, (report) => {
        for (const listener of this.#listeners) listener(report);
      });
      this.#servers.set(config.id, server);
    }
  }

  /** Starts every enabled server (in the background: watch reports for their health). */
  start(): void {
    for (const server of this.#servers.values()) server.start();
  }

  reports(): ServerReport[] {
    return [...this.#servers.values()].map((s) => s.report());
  }

  report(serverId: string): ServerReport | undefined {
    return this.#servers.get(serverId)?.report();
  }

  /** Subscribes to health and catalog changes; returns the unsubscribe function. */
  onReport(listener: ReportListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The pid of a server's current child (the leader of its process group), if one is running. */
  pid(serverId: string): number | undefined {
    return this.#servers.get(serverId)?.pid;
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  /**
   * Relays one request to a server. Resolves (never rejects) with the upstream's result or a JSON-RPC error:
   * unknown or unavailable server, crash, timeout, oversized answer, cancellation, shutdown.
   */
  relay(serverId: string, callId: string, request: RelayedRequest, onNotification: NotificationSink): Promise<RelayOutcome> {
    if (this.#draining) return Promise.resolve({ error: relayError.shuttingDown() });
    const server = this.#servers.get(serverId);
    if (!server) return Promise.resolve({ error: relayError.unknownServer(serverId) });
    if (this.#calls.has(callId)) return Promise.resolve({ error: relayError.duplicateCall(callId) });
    const outcome = server.relay(callId, request, onNotification).finally(() => this.#calls.delete(callId));
    this.#calls.set(callId, { server, outcome });
    return outcome;
  }

  /** Cancels a call in flight (the edge gave up on it). */
  cancel(callId: string, reason?: string): boolean {
    return this.#calls.get(callId)?.server.cancel(callId, reason) ?? false;
  }

  /**
   * Stops taking calls and reports every server `stopped` at once (so the edge sends its calls to another replica
   * rather than to this one for the whole grace period), waits up to `graceMs` for the calls in flight to finish,
   * then fails the rest (and tells their servers to stop working on them). Servers are no longer restarted.
   */
  async drain(graceMs: number): Promise<void> {
    this.#draining = true;
    // Synchronous: the status frames are on the link before anything else happens.
    for (const server of this.#servers.values()) server.beginShutdown();
    if (this.#calls.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.allSettled([...this.#calls.values()].map((c) => c.outcome)), graceOver]);
      clearTimeout(timer);
    }
    for (const server of this.#servers.values()) server.abortCalls(relayError.shuttingDown());
  }

  /** Stops every child and its process group. */
  async stop(): Promise<void> {
    this.#draining = true;
    await Promise.all([...this.#servers.values()].map((s) => s.stop()));
  }

  /**
   * SIGKILLs the process group of every child still alive, synchronously: for a process that is exiting without
   * stop() (`process.on("exit")`, a crash), where nothing asynchronous runs any more. Children are detached into
   * their own groups, so nothing else would stop them.
   */
  killAllSync(): void {
    for (const server of this.#servers.values()) server.killSync();
  }
}

/** One server: its config, its current session (if a child is running), health, catalog and restart state. */
class SupervisedServer {
  readonly #config: ServerConfig;
  readonly #options: SupervisorOptions;
  readonly #restart: RestartOptions;
  readonly #platform: string;
  readonly #publish: ReportListener;
  readonly #log: Logger;
  readonly #stderr = new StderrTail();
  #secrets: readonly string[] = [];

  #health: ServerHealth = "starting";
  #detail: string | undefined;
  #catalog: ServerCatalog = EMPTY_CATALOG;
  #session: UpstreamSession | undefined;
  /** Every session whose child has not exited yet (a stopping one is no longer #session but may still be alive). */
  readonly #live = new Set<UpstreamSession>();
  #stopping = false;
  #attempt = 0;
  #crashes: number[] = [];
  #restartTimer: NodeJS.Timeout | undefined;
  #stableTimer: NodeJS.Timeout | undefined;
  #listChanged = new Set<CatalogKind>();
  #listChangedTimer: NodeJS.Timeout | undefined;

  constructor(config: ServerConfig, options: SupervisorOptions, restart: RestartOptions, platform: string, publish: ReportListener) {
    this.#config = config;
    this.#options = options;
    this.#restart = restart;
    this.#platform = platform;
    this.#publish = publish;
    this.#log = options.log;
    if (!config.enabled) {
      this.#health = "stopped";
      this.#detail = "disabled in the connector's gateway.yaml (enabled: false)";
    }
  }

  get pid(): number | undefined {
    return this.#session?.pid;
  }

  report(): ServerReport {
    const { id, name, prefix } = this.#config;
    return {
      id,
      name: name ?? id,
      ...(prefix !== undefined ? { prefix } : {}),
      health: this.#health,
      ...(this.#detail !== undefined ? { detail: this.#detail } : {}),
      timeoutMs: this.#config.timeout,
      catalog: this.#catalog,
    };
  }

  start(): void {
    if (!this.#config.enabled) return;
    const resolved = resolveServerEnv(this.#config.id, this.#config.env, this.#options.hostEnv);
    if (!resolved.ok) {
      // A missing secret will not appear by retrying: say so once and leave the server down.
      this.#log("error", "server_env_unresolved", { server: this.#config.id, message: resolved.error });
      this.#setState("unhealthy", resolved.error);
      return;
    }
    this.#secrets = resolved.secrets;
    void this.#launch(childEnvironment(resolved.env, this.#options.hostEnv, this.#platform));
  }

  relay(callId: string, request: RelayedRequest, onNotification: NotificationSink): Promise<RelayOutcome> {
    const session = this.#session;
    if (!session || this.#health !== "healthy") {
      return Promise.resolve({ error: relayError.notRunning(this.#config.id, this.#health, this.#detail) });
    }
    const startedAt = Date.now();
    return session.relay(callId, request, onNotification).then((outcome) => {
      this.#log("info", "call_relayed", {
        server: this.#config.id,
        callId,
        method: request.method,
        // The tool's name, never its arguments.
        tool: request.method === "tools/call" && typeof request.params?.name === "string" ? request.params.name : undefined,
        status: "error" in outcome ? "error" : "ok",
        errorCode: "error" in outcome ? outcome.error.code : undefined,
        latencyMs: Date.now() - startedAt,
      });
      return outcome;
    });
  }

  cancel(callId: string, reason: string | undefined): boolean {
    return this.#session?.cancel(callId, reason) ?? false;
  }

  abortCalls(error: RpcError): void {
    this.#session?.abortAll(error);
  }

  /** The connector is draining: report the server stopped now and never restart it; its calls in flight go on. */
  beginShutdown(): void {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#stableTimer);
    if (this.#config.enabled) this.#setState("stopped", SHUTTING_DOWN);
  }

  async stop(): Promise<void> {
    this.beginShutdown();
    clearTimeout(this.#listChangedTimer);
    const session = this.#session;
    this.#session = undefined;
    await session?.stop(this.#restart.stopGraceMs);
  }

  killSync(): void {
    for (const session of this.#live) session.killSync();
  }

  async #launch(env: Record<string, string>): Promise<void> {
    if (this.#stopping) return;
    const session = new UpstreamSession({
      server: this.#config,
      env,
      connectorVersion: this.#options.connectorVersion,
      startTimeoutMs: this.#restart.startTimeoutMs,
      log: this.#log,
      onStderr: (text) => {
        for (const line of this.#stderr.push(text)) {
          this.#log("info", "server_stderr", { server: this.#config.id, line: redactSecrets(line, this.#secrets) });
        }
      },
      onListChanged: (kinds) => this.#scheduleCatalogRefresh(session, kinds),
    });
    this.#session = session;
    this.#live.add(session);
    void session.exited.then(() => this.#live.delete(session));
    this.#log("info", "server_starting", { server: this.#config.id, attempt: this.#attempt });
    let catalog: ServerCatalog;
    try {
      catalog = await session.start();
    } catch (error) {
      await session.stop(this.#restart.stopGraceMs);
      if (this.#session !== session || this.#stopping) return;
      this.#session = undefined;
      // A server that cannot initialise is broken until someone fixes it: unhealthy at once, still retried.
      this.#crashes = recordCrash(this.#crashes, Date.now(), this.#restart.crashLoop).history;
      this.#log("error", "server_start_failed", { server: this.#config.id, message: (error as Error).message });
      this.#setState("unhealthy", this.#pointToStderr(`could not start: ${(error as Error).message}`));
      this.#scheduleRestart(env);
      return;
    }
    if (this.#session !== session || this.#stopping) return;
    this.#catalog = catalog;
    this.#log("info", "server_ready", { server: this.#config.id, pid: session.pid, tools: catalog.tools.length });
    this.#setState("healthy", undefined);
    this.#stableTimer = setTimeout(() => (this.#attempt = 0), this.#restart.stableAfterMs);
    void session.exited.then((exit) => this.#crashed(session, exit, env));
  }

  #crashed(session: UpstreamSession, exit: ChildExit, env: Record<string, string>): void {
    if (this.#session !== session || this.#stopping) return;
    this.#session = undefined;
    clearTimeout(this.#stableTimer);
    const how = describeExit(exit);
    const { history, crashLoop } = recordCrash(this.#crashes, Date.now(), this.#restart.crashLoop);
    this.#crashes = history;
    this.#log("error", "server_crashed", { server: this.#config.id, exit: how, recentCrashes: history.length });
    if (crashLoop) {
      const windowS = Math.round(this.#restart.crashLoop.windowMs / 1000);
      this.#setState("unhealthy", this.#pointToStderr(`crashed ${history.length} times within ${windowS} s (last: ${how}); still retrying with backoff`));
    } else {
      this.#setState("starting", `restarting after a crash (${how})`);
    }
    this.#scheduleRestart(env);
  }

  #scheduleRestart(env: Record<string, string>): void {
    const delay = backoffDelay(this.#restart.backoff, this.#attempt++);
    this.#log("info", "server_restart_scheduled", { server: this.#config.id, delayMs: delay });
    this.#restartTimer = setTimeout(() => void this.#launch(env), delay);
  }

  #scheduleCatalogRefresh(session: UpstreamSession, kinds: readonly CatalogKind[]): void {
    for (const kind of kinds) this.#listChanged.add(kind);
    if (this.#listChangedTimer) return;
    this.#listChangedTimer = setTimeout(() => {
      this.#listChangedTimer = undefined;
      const changed = [...this.#listChanged];
      this.#listChanged.clear();
      session.fetchCatalog(changed).then(
        (partial) => {
          if (this.#session !== session) return;
          const catalog = { ...this.#catalog, ...partial };
          if (JSON.stringify(catalog) === JSON.stringify(this.#catalog)) return;
          this.#catalog = catalog;
          this.#log("info", "catalog_refreshed", { server: this.#config.id, kinds: changed });
          this.#publish(this.report());
        },
        (error: unknown) => this.#log("warn", "catalog_refresh_failed", { server: this.#config.id, message: (error as Error).message }),
      );
    }, LIST_CHANGED_DEBOUNCE_MS);
  }

  #setState(health: ServerHealth, detail: string | undefined): void {
    const clipped = detail === undefined ? undefined : clip(detail, MAX_DETAIL_CHARS);
    const changed = health !== this.#health || clipped !== this.#detail;
    this.#health = health;
    this.#detail = clipped;
    // Healthy→healthy with a new catalog is published by the caller; here only real state changes go out.
    if (changed || health === "healthy") this.#publish(this.report());
  }

  /**
   * An operator's first question about a broken server is what it printed: the detail says where to find it, never
   * what it is (see the module comment).
   */
  #pointToStderr(message: string): string {
    if (this.#stderr.lines().length === 0) return `${message}; it wrote nothing to stderr`;
    return `${message}; its stderr is in the connector's log on this host (event server_stderr)`;
  }
}
