/**
 * The real local stack for end-to-end tests: the Worker on workerd (wrangler's unstable_startWorker, local D1 and
 * Durable Objects in a temporary directory), the connector CLI as its own process, and real MCP servers from npm.
 */
import { generateCheckpointKeys } from "../../src/audit/checkpoint.ts";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unstable_startWorker } from "wrangler";
import { API_KEY_PREFIX, CONNECTOR_TOKEN_PREFIX, generateSecret, sha256Hex } from "../../src/auth/secrets.ts";
import { gatewayConfigSchema } from "../../src/config/schema.ts";
import { applyLocalWorkerEnv, applyMigrations, PROJECT_ROOT, seedDatabase, wrangler } from "../../scripts/local-gateway.ts";

export const EVERYTHING_SERVER = {
  id: "everything",
  name: "MCP Everything",
  command: process.execPath,
  args: [join(PROJECT_ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "stdio"],
  timeout: 30_000,
};

/** A second real server, so the stack aggregates two catalogs (together larger than a socket attachment). */
export function memoryServer(dataDir: string) {
  return {
    id: "memory",
    name: "Knowledge-graph memory",
    command: process.execPath,
    args: [join(PROJECT_ROOT, "node_modules/@modelcontextprotocol/server-memory/dist/index.js")],
    env: { MEMORY_FILE_PATH: join(dataDir, "memory.jsonl") },
  };
}

export interface Stack {
  url: URL;
  mcpUrl: URL;
  apiKey: string;
  /** A key with the admin role of the tenant (/admin/v1, the mcp-gateway CLI). */
  adminKey: string;
  /** Rows of a query against the stack's local D1 (read while the Worker runs). */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** The connector process, restartable. */
  connector: ConnectorProcess;
  /**
   * Disposes the Worker (workerd exits: every socket closes, every Durable Object is evicted). The local D1 and
   * Durable Object storage stay in the persist directory for {@link Stack.startWorker}.
   */
  stopWorker(): Promise<void>;
  /**
   * Starts the Worker again on the same persist directory and the same port, so `url` and the connector's URL hold.
   * The bundle is built again from src/ as it is then (the same code unless someone edits src/ during the run).
   */
  startWorker(): Promise<void>;
  /** stopWorker, `downMs` of nothing, startWorker. */
  restartWorker(downMs?: number): Promise<void>;
  dispose(): Promise<void>;
}

export class ConnectorProcess {
  process: ChildProcess | undefined;
  output = "";
  private readonly configPath: string;
  private readonly url: string;
  private readonly token: string;

  constructor(configPath: string, url: string, token: string) {
    this.configPath = configPath;
    this.url = url;
    this.token = token;
  }

  start(): void {
    this.output = "";
    // The installed command, which runs the connector's one-file build (made by the test set-up, test/build-connector.ts).
    const child = spawn(process.execPath, [join(PROJECT_ROOT, "connector/bin/mcp-gateway-connector.mjs"), "--config", this.configPath, "--url", this.url], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, MCP_GATEWAY_CONNECTOR_TOKEN: this.token },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk) => (this.output += chunk));
    child.stderr?.on("data", (chunk) => (this.output += chunk));
    this.process = child;
  }

  /** SIGTERM (drain) and wait for the exit. */
  async stop(): Promise<number | null> {
    const child = this.process;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    return exited;
  }

  /** Pids of the connector's child processes whose command line contains `match`. */
  childPids(match: string): number[] {
    const pid = this.process?.pid;
    if (!pid) return [];
    let listing = "";
    try {
      listing = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(pid)], { encoding: "utf8" });
    } catch {
      return []; // ps exits 1 when there is no child
    }
    return listing
      .split("\n")
      .filter((line) => line.includes(match))
      .map((line) => Number(line.trim().split(/\s+/)[0]));
  }
}

/** The e2e gateway's audit checkpoint keys (made per test run). */
export const E2E_AUDIT_KEYS = generateCheckpointKeys();

/** Top-level sections of the e2e tenant's gateway.yaml to set or replace (`rateLimit`, `audit`, `policies`, …). */
export type TenantOverrides = Record<string, unknown>;

export async function startStack(
  serversFor: (dir: string) => Record<string, unknown>[] = (dir) => [EVERYTHING_SERVER, memoryServer(dir)],
  overrides: TenantOverrides = {},
): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), "mcp-gateway-e2e-"));
  const servers = serversFor(dir);
  const persist = join(dir, "state");
  const apiKey = generateSecret(API_KEY_PREFIX);
  const adminKey = generateSecret(API_KEY_PREFIX);
  const connectorToken = generateSecret(CONNECTOR_TOKEN_PREFIX);
  const config = gatewayConfigSchema.parse({
    tenant: "e2e",
    auth: {
      keys: [
        { id: "e2e-key", key: apiKey, name: "e2e agent", consumerId: "e2e-agent", roles: ["reader"] },
        { id: "e2e-admin", key: adminKey, name: "e2e admin", consumerId: "e2e-admin", roles: ["admin"] },
      ],
    },
    servers,
    // The suites that test transport and relaying let the agent use everything; policy has its own suites.
    policies: [{ id: "e2e-allow-all", roles: ["reader"], rules: [{ action: "allow" }] }],
    ...overrides,
  });
  await applyMigrations({ persistTo: persist });
  await seedDatabase(config, { id: "local", name: "e2e connector", tokenHash: await sha256Hex(connectorToken) }, { persistTo: persist });

  const launch = async (port: number) => {
    // As `npm start` runs it (scripts/local-gateway.ts says why).
    applyLocalWorkerEnv();
    const started = await unstable_startWorker({
      config: join(PROJECT_ROOT, "wrangler.toml"),
      // Audit checkpoints signed with a key the suites know, so exports can be verified offline.
      bindings: { AUDIT_SIGNING_KEY: { type: "secret_text", value: E2E_AUDIT_KEYS.privateKey } },
      // watch: false — the bundle is built once per start; an edit to src/ during a run must not reload the Worker
      // under a suite (a reload closes every socket, like a deploy; the faults suite does that on purpose).
      dev: { server: { hostname: "127.0.0.1", port }, inspector: false, persist, logLevel: "warn", watch: false } as never,
    });
    await started.ready;
    return started;
  };
  // The first start picks a free port; restarts take the same one (the connector dials a fixed URL).
  let worker: Awaited<ReturnType<typeof launch>> | undefined = await launch(0);
  const url = await worker.url;
  const stopWorker = async () => {
    const running = worker;
    worker = undefined;
    await running?.dispose();
  };
  const startWorker = async () => {
    if (worker) return;
    worker = await launch(Number(url.port));
    const restarted = await worker.url;
    if (restarted.origin !== url.origin) throw new Error(`the Worker came back on ${restarted.origin}, not ${url.origin}`);
  };

  const configPath = join(dir, "gateway.yaml");
  writeFileSync(configPath, JSON.stringify({ tenant: "e2e", servers }), { mode: 0o600 });
  const connector = new ConnectorProcess(configPath, url.origin, connectorToken);
  connector.start();

  const stack: Stack = {
    url,
    mcpUrl: new URL("/mcp", url),
    apiKey,
    adminKey,
    async query(sql) {
      const output = await wrangler(["d1", "execute", "DB", "--local", "--persist-to", persist, "--json", "--command", sql]);
      // wrangler may print a line before the JSON.
      return (JSON.parse(output.slice(output.indexOf("["))) as { results: Record<string, unknown>[] }[]).flatMap((r) => r.results);
    },
    connector,
    stopWorker,
    startWorker,
    async restartWorker(downMs = 0) {
      await stopWorker();
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await startWorker();
    },
    async dispose() {
      await connector.stop();
      await stopWorker();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitForTools(stack, (names) => servers.every((s) => names.some((n) => n.startsWith(`${String(s.id)}__`))));
  return stack;
}

/** Raw JSON-RPC over HTTP, for the error cases real clients would refuse to send. */
export async function rawPost(stack: Stack, body: string, apiKey: string | undefined = stack.apiKey): Promise<{ status: number; messages: any[] }> {
  const response = await fetch(stack.mcpUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
    },
    body,
  });
  const text = await response.text();
  const messages = (response.headers.get("content-type") ?? "").includes("event-stream")
    ? text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)))
    : [JSON.parse(text)];
  return { status: response.status, messages };
}

/** Polls tools/list until `ready(names)` holds (the connector has registered its servers). */
export async function waitForTools(stack: Stack, ready: (names: string[]) => boolean, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let names: string[] = [];
  while (Date.now() < deadline) {
    const { messages } = await rawPost(stack, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }));
    names = (messages[0]?.result?.tools ?? []).map((t: { name: string }) => t.name);
    if (ready(names)) return names;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`tools did not become ready; last list: ${names.join(", ")}\nconnector output:\n${stack.connector.output}`);
}

/** An admin API request with the stack's admin key; throws on a non-2xx answer, naming it. */
export async function adminFetch(stack: Stack, path: string, init: RequestInit = {}): Promise<Response> {
  const response = await fetch(new URL(`/admin/v1${path}`, stack.url), {
    ...init,
    headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json", ...(init.headers as Record<string, string> | undefined) },
  });
  if (!response.ok) throw new Error(`${init.method ?? "GET"} /admin/v1${path}: ${response.status} ${await response.text()}`);
  return response;
}

/** POST /admin/v1/audit/verify (which ships the AuditLog object's entries to D1 first): its result line. */
export async function verifyAudit(stack: Stack): Promise<Record<string, any>> {
  const response = await adminFetch(stack, "/audit/verify", { method: "POST", body: "{}" });
  const lines = (await response.text()).split("\n").filter(Boolean).map((line) => JSON.parse(line));
  return lines.at(-1);
}
