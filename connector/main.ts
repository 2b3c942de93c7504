/**
 * @module `mcp-gateway-connector`: runs the stdio MCP servers of a gateway.yaml on this host and connects them to
 * the gateway over one outbound WebSocket. {@link startConnector} is the programmatic entry (tests, `npm start`);
 * {@link main} is the CLI around it (flags, config file, signals, exit codes).
 */
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import packageJson from "../package.json" with { type: "json" };
import type { ServerConfig } from "../src/config/server-schema.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { readServerConfig } from "./config.ts";
import type { HostEnv } from "./env.ts";
import { LinkClient } from "./link-client.ts";
import { jsonLogger, type Logger } from "./log.ts";
import { USAGE, connectUrl, parseCliOptions } from "./options.ts";
import { Supervisor, type RestartOptions } from "./supervisor.ts";

export const CONNECTOR_VERSION: string = packageJson.version;
/** How long a shutdown waits for calls in flight before failing them. */
export const DEFAULT_DRAIN_GRACE_MS = 10_000;

export type StartConnectorOptions = {
  servers: readonly ServerConfig[];
  /** The gateway: its base http(s) URL or the ws(s) URL of its /connect endpoint. */
  url: string;
  token: string;
  /** Random per process unless given. */
  replicaId?: string;
  /** Where `${VAR}` in servers' env is resolved from; process.env by default. */
  hostEnv?: HostEnv;
  log?: Logger;
  heartbeatIntervalMs?: number;
  reconnect?: BackoffPolicy;
  restart?: Partial<RestartOptions>;
  drainGraceMs?: number;
};

export type ConnectorHandle = {
  replicaId: string;
  supervisor: Supervisor;
  link: LinkClient;
  /**
   * Drains and stops: every server is reported stopped and new calls are refused, calls in flight get up to the
   * drain grace to finish (then fail), the link is closed and every child's process group is stopped. Idempotent.
   */
  stop(): Promise<void>;
};

/**
 * Starts the servers and the link (both in the background); throws only on an invalid URL.
 *
 * Until stop() has finished, a `process.on("exit")` hook SIGKILLs every child's process group: the children are
 * detached into their own groups, so a process that exits without stop() (process.exit() anywhere, an uncaught
 * exception) would otherwise leave them running with nobody to stop them. It lives here rather than in the CLI so
 * that an embedding program gets it too, and it is removed by stop() so that it does not outlive the connector.
 * (SIGKILL of the connector itself cannot be caught; nothing short of a service manager's cgroup covers that.)
 */
export function startConnector(options: StartConnectorOptions): ConnectorHandle {
  const connect = connectUrl(options.url);
  if (!connect.ok) throw new Error(connect.error);
  const log = options.log ?? jsonLogger();
  const replicaId = options.replicaId ?? randomUUID();
  const supervisor = new Supervisor({
    servers: options.servers,
    hostEnv: options.hostEnv ?? process.env,
    connectorVersion: CONNECTOR_VERSION,
    log,
    ...(options.restart ? { restart: options.restart } : {}),
  });
  const link = new LinkClient({
    url: connect.url,
    token: options.token,
    replicaId,
    connectorVersion: CONNECTOR_VERSION,
    supervisor,
    log,
    ...(options.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
    ...(options.reconnect ? { reconnect: options.reconnect } : {}),
  });
  log("info", "connector_starting", { version: CONNECTOR_VERSION, replicaId, servers: options.servers.map((s) => s.id) });
  const killChildren = () => supervisor.killAllSync();
  process.on("exit", killChildren);
  supervisor.start();
  link.start();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log("info", "connector_draining", { inFlight: supervisor.inFlight });
      await supervisor.drain(options.drainGraceMs ?? DEFAULT_DRAIN_GRACE_MS);
      // Let the link send the answers of the calls just settled before it closes.
      await new Promise((resolve) => setImmediate(resolve));
      await link.stop();
      await supervisor.stop();
      process.off("exit", killChildren);
      log("info", "connector_stopped", {});
    })());
  return { replicaId, supervisor, link, stop };
}

export { readServerConfig };

/**
 * The CLI. Resolves with the process exit code: 0 after a clean shutdown, 2 on bad flags or config. On an uncaught
 * exception or unhandled rejection it logs `connector_crashed`, kills every child's process group and exits 1.
 */
export async function main(argv: readonly string[] = process.argv.slice(2), env: HostEnv = process.env): Promise<number> {
  const cli = parseCliOptions(argv, env);
  if (cli.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (cli.kind === "invalid") {
    for (const error of cli.errors) process.stderr.write(`mcp-gateway-connector: ${error}\n`);
    process.stderr.write(`\n${USAGE}\n`);
    return 2;
  }
  const config = readServerConfig(cli.options.configPath);
  if (!config.ok) {
    for (const error of config.errors) process.stderr.write(`mcp-gateway-connector: ${error}\n`);
    return 2;
  }
  const log = jsonLogger();
  for (const warning of cli.options.warnings) log("warn", "connector_warning", { message: warning });
  const handle = startConnector({
    servers: config.servers,
    url: cli.options.url,
    token: cli.options.token,
    hostEnv: env,
    log,
    ...(cli.options.replicaId !== undefined ? { replicaId: cli.options.replicaId } : {}),
  });
  // The connector must not limp on after a bug (a call's state may be corrupt) nor die leaving its children behind:
  // log, kill every child's group (the exit hook would too; explicit here), exit 1 for the service manager to restart.
  let crashed = false;
  const onFatal = (kind: string) => (error: unknown) => {
    if (crashed) return;
    crashed = true;
    const mask = (text: string | undefined) => (text === undefined ? undefined : text.split(cli.options.token).join("[redacted]"));
    log("error", "connector_crashed", {
      kind,
      error: error instanceof Error ? error.name : typeof error,
      message: mask(error instanceof Error ? error.message : String(error)),
      stack: mask(error instanceof Error ? error.stack : undefined),
    });
    handle.supervisor.killAllSync();
    process.exit(1);
  };
  process.on("uncaughtException", onFatal("uncaughtException"));
  process.on("unhandledRejection", onFatal("unhandledRejection"));
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log("info", "connector_signal", { signal });
      void handle.stop().then(resolve);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  return 0;
}

// `node connector/main.ts` (npm run connector). Exit explicitly: a stray handle must not keep a stopped connector alive.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exit(await main());
}
