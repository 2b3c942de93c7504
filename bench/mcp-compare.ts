/**
 * @module MCP path benchmark (issue 8): the same stdio MCP server reached three ways, in one run, on loopback:
 *
 * - **direct**: the official SDK v1 `Client` over `StdioClientTransport` (the physical limit);
 * - **bridge**: supergateway 4 exposing the server over Streamable HTTP (`--stateful`: one long-lived child per
 *   session, as the gateway's connector keeps one; its stateless mode spawns a child per POST and is reported
 *   separately, for information);
 * - **gateway**: the real local stack (test/e2e/stack.ts): the Worker on workerd with local D1 and Durable Objects,
 *   the connector process, an API key, a policy, rate limiting on (limits too high to refuse), audit and metering on.
 *
 * Latency of `tools/call` at concurrency 1 is measured with SDK clients, the three targets interleaved in small
 * batches (the order rotating every round) so machine noise hits them equally. Throughput at concurrency 32 uses
 * raw `fetch` POSTs (unique JSON-RPC ids) for the HTTP targets and 32 concurrent calls over one SDK stdio client for
 * direct. The main upstream is test/fixtures/echo-mcp-server.mjs (raw JSON-RPC, near-zero cost); a smaller set of
 * figures uses @modelcontextprotocol/server-everything's `echo`.
 *
 * Then the gateway's overhead is taken apart on the same stack (informational figures): /healthz, `ping` (auth),
 * `tools/list` (config and catalog), and `tools/call` with rate limiting and audit switched off and on through the
 * admin API (PUT /admin/v1/config, the CLI's `config apply`). Also: the Worker bundle's gzip size (wrangler deploy
 * --dry-run) and the connector's idle RSS.
 *
 * And the harness floor (informational): an empty "hello" Worker (no bindings) on wrangler dev, with the gateway
 * stack's dev options, on the bare workerd binary wrangler runs, and the same hello on node:http in a child process,
 * called with the gateway's raw-fetch POSTs, interleaved with the echo comparison's paths (c=1 rounds and c=32
 * passes). From it: the gateway's p50 overhead net of what any Worker pays on this local harness, and the throughput
 * ceiling of the harness itself relative to supergateway's.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { unstable_startWorker } from "wrangler";
import { applyLocalWorkerEnv, PROJECT_ROOT, wrangler } from "../scripts/local-gateway.ts";
import { edgeDocument } from "../src/config/publish.ts";
import { gatewayConfigSchema } from "../src/config/schema.ts";
import { EVERYTHING_SERVER, startStack, type Stack } from "../test/e2e/stack.ts";
import type { Benchmark, BenchContext, Figure } from "./run.ts";

// ---- sizes: the whole benchmark stays under ~3 minutes on a 2-core machine -------------------------------------
/** Rounds of the interleaved c=1 latency test with the echo server; each round makes LATENCY_BATCH calls per target. */
const LATENCY_ROUNDS = 30;
const LATENCY_BATCH = 10;
/** The same for server-everything (the second, smaller set). */
const EVERYTHING_ROUNDS = 15;
/** Untimed calls per target before timing. */
const WARMUP_CALLS = 50;
const CONCURRENCY = 32;
/** Milliseconds of load per target (split in two passes, the order reversed in the second). */
const THROUGHPUT_MS = 4_000;
const EVERYTHING_THROUGHPUT_MS = 2_000;
/** The repeat on a second stack whose D1 and Durable Object state lives on tmpfs (no disk syncs). */
const TMPFS_ROUNDS = 15;
const TMPFS_THROUGHPUT_MS = 2_000;
const TMPFS_DIR = "/dev/shm";
/** Calls per configuration variant in the overhead breakdown (c=1, raw fetch). */
const BREAKDOWN_CALLS = 80;
/** Calls through supergateway's stateless mode (a process spawn per call). */
const STATELESS_CALLS = 10;
/** How long the connector sits idle before its RSS is read. */
const IDLE_MS = 3_000;
/** How long a floor server (bare workerd, node:http) may take to answer its first request. */
const FLOOR_START_MS = 20_000;

// ---- targets of the issue ----------------------------------------------------------------------------------------
const OVERHEAD_RATIO_TARGET = 1.0;
const THROUGHPUT_RATIO_TARGET = 1.0;
const BUNDLE_GZIP_TARGET_KIB = 1024;
const CONNECTOR_RSS_TARGET_MB = 80;

const ECHO_SERVER_PATH = join(PROJECT_ROOT, "test/fixtures/echo-mcp-server.mjs");
const SUPERGATEWAY = join(PROJECT_ROOT, "node_modules/supergateway/dist/index.js");
const PROTOCOL_VERSION = "2025-11-25";

export const ECHO_SERVER = { id: "echo", name: "Echo", command: process.execPath, args: [ECHO_SERVER_PATH], timeout: 30_000 };

/** The tenant's gateway.yaml sections for the measured configuration (the stack's key and servers stay). */
const POLICIES = [
  {
    id: "bench-reader",
    roles: ["reader"],
    rules: [
      { server: "echo", tool: "{echo,add}", action: "allow" },
      { server: "everything", tool: "echo", action: "allow" },
    ],
  },
  { id: "bench-guardrails", roles: ["*"], rules: [{ server: "everything", tool: "get-env", action: "deny" }] },
];
export const FULL_SECTIONS = {
  policies: POLICIES,
  rateLimit: { enabled: true, defaultPerMinute: 1_000_000, burst: 1_000_000 },
  audit: { enabled: true, failureMode: "closed" },
  metering: { enabled: true, currency: "credits", prices: [{ perCall: 0.001 }] },
};

// ---- one target: a call that throws unless the upstream answered what was expected ------------------------------
interface Target {
  label: string;
  call(i: number): Promise<void>;
}

interface ToolSpec {
  /** The tool's name as this target exposes it. */
  name: string;
  args(i: number): Record<string, unknown>;
  expected(i: number): string;
}

const echoTool = (name: string): ToolSpec => ({ name, args: (i) => ({ text: `hello ${i}` }), expected: (i) => `hello ${i}` });
const everythingTool = (name: string): ToolSpec => ({ name, args: (i) => ({ message: `hello ${i}` }), expected: (i) => `Echo: hello ${i}` });

function checkResult(result: unknown, expected: string): void {
  const r = result as { content?: { type?: string; text?: string }[]; isError?: boolean } | undefined;
  if (r?.isError) throw new Error(`isError: ${JSON.stringify(r.content).slice(0, 200)}`);
  const text = r?.content?.[0]?.text;
  if (text !== expected) throw new Error(`unexpected result ${JSON.stringify(result).slice(0, 200)}`);
}

function sdkTarget(label: string, client: Client, tool: ToolSpec): Target {
  return {
    label,
    async call(i) {
      checkResult(await client.callTool({ name: tool.name, arguments: tool.args(i) }, undefined, { timeout: 30_000 }), tool.expected(i));
    },
  };
}

interface Endpoint {
  url: string;
  headers: Record<string, string>;
}

let nextId = 1;

/** One JSON-RPC request as a raw POST; the answer (JSON or SSE) must carry a reply with the same id. */
async function rawRequest(endpoint: Endpoint, method: string, params: Record<string, unknown>): Promise<unknown> {
  const id = nextId++;
  const response = await fetch(endpoint.url, {
    method: "POST",
    headers: endpoint.headers,
    body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`);
  const messages: { id?: unknown; result?: unknown; error?: { message?: string } }[] = (response.headers.get("content-type") ?? "").includes("event-stream")
    ? text
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => JSON.parse(l.slice(5)))
    : [JSON.parse(text)];
  const reply = messages.find((m) => m.id === id);
  if (!reply) throw new Error(`no reply to ${id}: ${text.slice(0, 200)}`);
  if (reply.error) throw new Error(`JSON-RPC error: ${reply.error.message}`);
  return reply.result;
}

function rawTarget(label: string, endpoint: Endpoint, tool: ToolSpec): Target {
  return {
    label,
    async call(i) {
      checkResult(await rawRequest(endpoint, "tools/call", { name: tool.name, arguments: tool.args(i) }), tool.expected(i));
    },
  };
}

// ---- measurement --------------------------------------------------------------------------------------------------
interface Samples {
  ms: number[];
  errors: number;
  firstError?: string;
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function summary(samples: Samples) {
  const sorted = [...samples.ms].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), n: sorted.length, errors: samples.errors };
}

async function timedCall(target: Target, i: number, into: Samples): Promise<void> {
  const start = performance.now();
  try {
    await target.call(i);
    into.ms.push(performance.now() - start);
  } catch (error) {
    into.errors++;
    into.firstError ??= `${target.label}: ${(error as Error).message}`;
  }
}

async function warmUp(targets: readonly Target[], calls: number): Promise<void> {
  for (const target of targets) for (let i = 0; i < calls; i++) await target.call(i).catch(() => {});
}

/** c=1: every round runs a batch of calls on each target, in an order that rotates every round. */
async function interleavedLatency(targets: readonly Target[], rounds: number, batch: number): Promise<Samples[]> {
  const samples = targets.map((): Samples => ({ ms: [], errors: 0 }));
  let i = 0;
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < targets.length; k++) {
      const index = (round + k) % targets.length;
      for (let b = 0; b < batch; b++) await timedCall(targets[index] as Target, i++, samples[index] as Samples);
    }
  }
  return samples;
}

interface Throughput {
  calls: number;
  errors: number;
  seconds: number;
  firstError?: string;
}

/** `concurrency` workers calling back to back for `ms`. */
async function load(target: Target, concurrency: number, ms: number, into: Throughput): Promise<void> {
  let i = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          await target.call(i++);
          into.calls++;
        } catch (error) {
          into.errors++;
          into.firstError ??= `${target.label}: ${(error as Error).message}`;
        }
      }
    }),
  );
  into.seconds += (performance.now() - start) / 1_000;
}

/** Two passes per target, the second in reverse order, so a drift of the machine does not favour one target. */
async function throughputs(targets: readonly Target[], concurrency: number, ms: number): Promise<Throughput[]> {
  const results = targets.map((): Throughput => ({ calls: 0, errors: 0, seconds: 0 }));
  for (const pass of [0, 1]) {
    const order = targets.map((_, k) => k);
    if (pass === 1) order.reverse();
    for (const k of order) await load(targets[k] as Target, concurrency, ms / 2, results[k] as Throughput);
  }
  return results;
}

// ---- processes ----------------------------------------------------------------------------------------------------
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function connectStdio(command: string, args: string[]): Promise<Client> {
  const client = new Client({ name: "bench-direct", version: "1.0.0" });
  await client.connect(new StdioClientTransport({ command, args, stderr: "ignore" }));
  return client;
}

async function connectHttp(url: URL, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: "bench-http", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  return client;
}

/** supergateway stdio → Streamable HTTP on a free loopback port, in its own process group (killed as a group). */
class Supergateway {
  readonly url: URL;
  private readonly child: ChildProcess;
  output = "";

  private constructor(port: number, child: ChildProcess) {
    this.url = new URL(`http://127.0.0.1:${port}/mcp`);
    this.child = child;
    child.stdout?.on("data", (chunk) => (this.output = (this.output + chunk).slice(-4_000)));
    child.stderr?.on("data", (chunk) => (this.output = (this.output + chunk).slice(-4_000)));
  }

  static async start(command: string, args: string[], stateful: boolean): Promise<Supergateway> {
    const port = await freePort();
    const stdio = [command, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
    const child = spawn(
      process.execPath,
      [SUPERGATEWAY, "--stdio", stdio, "--outputTransport", "streamableHttp", ...(stateful ? ["--stateful"] : []), "--port", String(port), "--logLevel", "none"],
      // stdin stays open: supergateway exits when it closes.
      { cwd: PROJECT_ROOT, detached: true, stdio: ["pipe", "pipe", "pipe"] },
    );
    const gateway = new Supergateway(port, child);
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await fetch(gateway.url, { method: "GET" });
        return gateway;
      } catch {
        if (child.exitCode !== null || Date.now() > deadline) {
          await gateway.stop();
          throw new Error(`supergateway did not start:\n${gateway.output}`);
        }
        await sleep(100);
      }
    }
  }

  /** A raw session (initialize + initialized) for stateful mode; stateless needs none. */
  async endpoint(stateful: boolean): Promise<Endpoint> {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    if (!stateful) return { url: this.url.href, headers: { ...headers, "mcp-protocol-version": PROTOCOL_VERSION } };
    const response = await fetch(this.url, {
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "bench-raw", version: "1.0.0" } },
      }),
    });
    await response.text();
    const session = response.headers.get("mcp-session-id");
    if (!response.ok || !session) throw new Error(`supergateway initialize: HTTP ${response.status}`);
    const sessionHeaders = { ...headers, "mcp-session-id": session, "mcp-protocol-version": PROTOCOL_VERSION };
    await (await fetch(this.url, { method: "POST", headers: sessionHeaders, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })).text();
    return { url: this.url.href, headers: sessionHeaders };
  }

  async stop(): Promise<void> {
    await stopGroup(this.child);
  }
}

/** Ends a child spawned with `detached: true` and its whole process group: SIGTERM, SIGKILL after 3 s. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), signal);
    } catch {
      // already gone
    }
  };
  child.stdin?.end();
  group("SIGTERM");
  const timer = setTimeout(() => group("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
  group("SIGKILL"); // stragglers of the group (its children), if any
}

// ---- the harness floor: an empty Worker on the same local harness ------------------------------------------------
/** A "hello" Worker, no bindings: it answers a JSON-RPC POST's id with `{ ok: true }` (what rawRequest expects). */
const HELLO_WORKER = `export default {
  async fetch(request) {
    const { id } = request.method === "POST" ? await request.json() : { id: null };
    return Response.json({ jsonrpc: "2.0", id, result: { ok: true } });
  },
};
`;

/** The same hello on node:http (its port is the first argument). */
const HELLO_NODE = `import { createServer } from "node:http";
createServer((request, response) => {
  let body = "";
  request.setEncoding("utf8");
  request.on("data", (chunk) => (body += chunk));
  request.on("end", () => {
    let id = null;
    try {
      id = JSON.parse(body).id;
    } catch {}
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ jsonrpc: "2.0", id, result: { ok: true } }));
  });
}).listen(Number(process.argv[2]), "127.0.0.1");
`;

/** The project's compatibility date (wrangler.toml), for the hello Worker on both runtimes. */
function projectCompatibilityDate(): string {
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(join(PROJECT_ROOT, "wrangler.toml"), "utf8"))?.[1];
  if (!date) throw new Error("no compatibility_date in wrangler.toml");
  return date;
}

/**
 * The workerd binary wrangler dev itself runs: resolved through wrangler → its miniflare → its workerd, since the
 * package tree may hold another (hoisted) workerd version next to wrangler's own.
 */
function wranglersWorkerd(): { path: string; version: string } {
  const miniflare = createRequire(createRequire(import.meta.url).resolve("wrangler")).resolve("miniflare");
  const fromMiniflare = createRequire(miniflare);
  return { path: (fromMiniflare("workerd") as { default: string }).default, version: (fromMiniflare("workerd/package.json") as { version: string }).version };
}

/** The floor servers are called like the gateway's raw-fetch figures: a JSON-RPC POST with the same MCP headers. */
const floorEndpoint = (url: string): Endpoint => ({
  url,
  headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": PROTOCOL_VERSION },
});

function floorTarget(label: string, endpoint: Endpoint): Target {
  return {
    label,
    async call() {
      const result = (await rawRequest(endpoint, "ping", {})) as { ok?: unknown } | undefined;
      if (result?.ok !== true) throw new Error(`unexpected result ${JSON.stringify(result).slice(0, 200)}`);
    },
  };
}

interface FloorServer {
  label: string;
  /** The short name of a Worker runtime, for the throughput-ceiling figure; none for node:http. */
  runtime?: string;
  /** What that ceiling says. */
  ceiling?: string;
  note: string;
  target: Target;
}

/**
 * The hello Worker on wrangler dev (`unstable_startWorker` with the gateway stack's dev options) and on the bare
 * workerd binary, and the hello on node:http, with their temporary directory. `dispose` stops whatever was started,
 * also after a failed start.
 */
class HarnessFloor {
  readonly servers: FloorServer[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), "mcp-gateway-bench-floor-"));
  private readonly stops: (() => Promise<unknown>)[] = [];

  async start(ctx: BenchContext): Promise<void> {
    const date = projectCompatibilityDate();
    writeFileSync(join(this.dir, "worker.js"), HELLO_WORKER);
    writeFileSync(join(this.dir, "server.mjs"), HELLO_NODE);
    writeFileSync(join(this.dir, "wrangler.toml"), `name = "bench-floor"\nmain = "worker.js"\ncompatibility_date = "${date}"\n`);

    applyLocalWorkerEnv(); // the same local environment as the gateway's stack (test/e2e/stack.ts)
    const worker = await unstable_startWorker({
      config: join(this.dir, "wrangler.toml"),
      // As test/e2e/stack.ts starts the gateway (its persist directory holds nothing here: no bindings).
      dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, persist: join(this.dir, "state"), logLevel: "warn", watch: false } as never,
    });
    this.stops.push(() => worker.dispose());
    await worker.ready;
    const wranglerUrl = new URL("/", await worker.url).href;
    const onWrangler = floorTarget("floor wrangler dev", floorEndpoint(wranglerUrl));
    await onWrangler.call(0);

    const workerd = wranglersWorkerd();
    const workerdPort = await freePort();
    writeFileSync(
      join(this.dir, "floor.capnp"),
      `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello) ],
  sockets = [ ( name = "http", address = "127.0.0.1:${workerdPort}", http = (), service = "main" ) ]
);
const hello :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "worker.js") ],
  compatibilityDate = "${date}",
);
`,
    );
    const onWorkerd = floorTarget("floor bare workerd", floorEndpoint(`http://127.0.0.1:${workerdPort}/`));
    await this.spawnServer(onWorkerd, workerd.path, ["serve", join(this.dir, "floor.capnp")]);

    const nodePort = await freePort();
    const onNode = floorTarget("floor node:http", floorEndpoint(`http://127.0.0.1:${nodePort}/`));
    await this.spawnServer(onNode, process.execPath, [join(this.dir, "server.mjs"), String(nodePort)]);

    ctx.log(`floor: wrangler dev at ${wranglerUrl}, workerd ${workerd.version} on :${workerdPort}, node:http on :${nodePort}; compatibility date ${date}`);
    this.servers.push(
      {
        label: "hello Worker on wrangler dev",
        runtime: "wrangler dev",
        ceiling: "even an empty Worker on the local dev harness the gateway is measured on reaches only this multiple of supergateway's tools/call rate",
        note: "an empty Worker (no bindings) through unstable_startWorker with the gateway stack's dev options (wrangler's proxy worker, miniflare's entry worker, the Worker: two workerd processes); raw fetch POST, in the echo: rounds",
        target: onWrangler,
      },
      {
        label: "hello Worker on bare workerd",
        runtime: "bare workerd",
        ceiling: "the same Worker without wrangler dev's proxy and entry workers: the runtime's own ceiling here (the load generator shares the machine's cores)",
        note: `the same Worker on the workerd binary wrangler runs (${workerd.version}), alone, one socket, a minimal capnp config; raw fetch POST, in the echo: rounds`,
        target: onWorkerd,
      },
      { label: "node:http hello", note: "the same answer from node:http in a child process, for scale; raw fetch POST, in the echo: rounds", target: onNode },
    );
  }

  /** A server in its own process group; resolves once it answers `target`'s request. */
  private async spawnServer(target: Target, command: string, args: string[]): Promise<void> {
    const child = spawn(command, args, { cwd: this.dir, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: unknown) => (output = (output + String(chunk)).slice(-4_000));
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.once("error", (error) => keep(`${error.message}\n`));
    this.stops.push(() => stopGroup(child));
    const deadline = Date.now() + FLOOR_START_MS;
    for (;;) {
      try {
        await target.call(0);
        return;
      } catch (error) {
        if (child.pid === undefined || child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`${target.label} did not start (${(error as Error).message}):\n${output}`);
        }
        await sleep(100);
      }
    }
  }

  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    for (const stop of this.stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        errors.push(error);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (errors.length > 0) throw errors[0];
  }
}

// ---- bundle and memory --------------------------------------------------------------------------------------------
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The deployable bundle's size: every module wrangler would upload (source maps excluded), gzipped one by one. */
async function bundleSize(ctx: BenchContext): Promise<{ rawKiB: number; gzipKiB: number; wranglerGzipKiB: number }> {
  const outdir = mkdtempSync(join(tmpdir(), "mcp-gateway-bench-bundle-"));
  try {
    const output = await wrangler(["deploy", "--dry-run", "--outdir", outdir]);
    let raw = 0;
    let gzip = 0;
    for (const file of filesUnder(outdir).filter((f) => !f.endsWith(".map") && !f.endsWith("README.md"))) {
      const bytes = readFileSync(file);
      raw += bytes.length;
      gzip += gzipSync(bytes, { level: 9 }).length;
    }
    const wranglerGzipKiB = Number(/gzip: ([\d.]+) KiB/.exec(output)?.[1] ?? Number.NaN);
    ctx.log(`bundle: ${(raw / 1024).toFixed(1)} KiB raw, ${(gzip / 1024).toFixed(1)} KiB gzip (wrangler says ${wranglerGzipKiB} KiB)`);
    return { rawKiB: raw / 1024, gzipKiB: gzip / 1024, wranglerGzipKiB };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" })
      .split("\n")
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there is none
  }
}

// ---- the gateway's configuration, swapped through the admin API ---------------------------------------------------
async function applySections(stack: Stack, sections: Record<string, unknown>): Promise<void> {
  const config = gatewayConfigSchema.parse({
    tenant: "e2e",
    auth: {
      keys: [
        { id: "e2e-key", key: stack.apiKey, name: "e2e agent", consumerId: "e2e-agent", roles: ["reader"] },
        { id: "e2e-admin", key: stack.adminKey, name: "e2e admin", consumerId: "e2e-admin", roles: ["admin"] },
      ],
    },
    servers: [ECHO_SERVER, EVERYTHING_SERVER],
    ...sections,
  });
  const response = await fetch(new URL("/admin/v1/config", stack.url), {
    method: "PUT",
    headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(await edgeDocument(config)),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`config apply: HTTP ${response.status}: ${text.slice(0, 500)}`);
  // Every isolate re-checks the tenant's config version at most this late (CONFIG_RECHECK_MS = 1 s).
  await sleep(1_300);
}

/** c=1 latency of one op, `calls` times (after a few untimed). */
async function sequential(op: (i: number) => Promise<unknown>, calls: number): Promise<Samples> {
  const target: Target = { label: "op", call: async (i) => void (await op(i)) };
  await warmUp([target], 10);
  const samples: Samples = { ms: [], errors: 0 };
  for (let i = 0; i < calls; i++) await timedCall(target, i, samples);
  return samples;
}

// ---- the benchmark ------------------------------------------------------------------------------------------------
const ms = (value: number) => Number(value.toFixed(3));

function latencyFigures(prefix: string, label: string, samples: Samples, note: string): Figure[] {
  const s = summary(samples);
  return [
    { name: `${prefix} ${label} p50`, unit: "ms", value: ms(s.p50), note: `${note}; ${s.n} calls, c=1` },
    { name: `${prefix} ${label} p90`, unit: "ms", value: ms(s.p90) },
    { name: `${prefix} ${label} p99`, unit: "ms", value: ms(s.p99) },
    { name: `${prefix} ${label} errors (c=1)`, unit: "calls", value: s.errors },
  ];
}

function throughputFigures(prefix: string, label: string, t: Throughput, note: string): Figure[] {
  return [
    { name: `${prefix} ${label} throughput`, unit: "calls/s", value: t.calls / t.seconds, higherIsBetter: true, note: `${note}; c=${CONCURRENCY}, ${t.calls} calls in ${t.seconds.toFixed(1)} s` },
    { name: `${prefix} ${label} errors (c=${CONCURRENCY})`, unit: "calls", value: t.errors },
  ];
}

function logErrors(ctx: BenchContext, list: readonly (Samples | Throughput)[]): void {
  for (const s of list) if (s.firstError) ctx.log(`first error: ${s.firstError}`);
}

/** What {@link compare} measured: its figures, and the samples the floor figures are derived from. */
interface Comparison {
  figures: Figure[];
  direct: Samples;
  bridge: Samples;
  gateway: Samples;
  tBridge: Throughput;
  /** The `extra` targets' samples, in their order. */
  extraLatency: Samples[];
  extraThroughput: Throughput[];
}

/**
 * The comparison of the three paths to one upstream, with or without the issue's targets. `extra` targets (the
 * harness floor) are warmed up, interleaved in the same c=1 rounds and loaded in the same c=32 passes; their samples
 * come back in the {@link Comparison}, not as figures.
 */
async function compare(
  ctx: BenchContext,
  prefix: string,
  targets: { direct: Client; bridge: Client; gateway: Client; bridgeRaw: Endpoint; gatewayRaw: Endpoint },
  tools: { direct: ToolSpec; bridge: ToolSpec; gateway: ToolSpec },
  rounds: number,
  throughputMs: number,
  withTargets: boolean,
  extra: readonly Target[] = [],
): Promise<Comparison> {
  const latencyTargets = [
    sdkTarget("direct", targets.direct, tools.direct),
    sdkTarget("bridge", targets.bridge, tools.bridge),
    sdkTarget("gateway", targets.gateway, tools.gateway),
    ...extra,
  ];
  await warmUp(latencyTargets, WARMUP_CALLS);
  const alongside = extra.length > 0 ? ` (with ${extra.map((t) => t.label).join(", ")})` : "";
  ctx.log(`${prefix}: c=1 latency, ${rounds} rounds × ${LATENCY_BATCH} calls per target, interleaved${alongside}`);
  const [direct, bridge, gateway, ...extraLatency] = (await interleavedLatency(latencyTargets, rounds, LATENCY_BATCH)) as [Samples, Samples, Samples, ...Samples[]];
  const loadTargets = [
    sdkTarget("direct", targets.direct, tools.direct),
    rawTarget("bridge", targets.bridgeRaw, tools.bridge),
    rawTarget("gateway", targets.gatewayRaw, tools.gateway),
    ...extra,
  ];
  ctx.log(`${prefix}: throughput at c=${CONCURRENCY}, ${throughputMs / 1000} s per target${alongside}`);
  const [tDirect, tBridge, tGateway, ...extraThroughput] = (await throughputs(loadTargets, CONCURRENCY, throughputMs)) as [Throughput, Throughput, Throughput, ...Throughput[]];
  logErrors(ctx, [direct, bridge, gateway, ...extraLatency, tDirect, tBridge, tGateway, ...extraThroughput]);

  const d = summary(direct).p50;
  const gatewayOverhead = summary(gateway).p50 - d;
  const bridgeOverhead = summary(bridge).p50 - d;
  const ratioNote = withTargets ? "" : " (informational: the issue's targets are on the echo figures)";
  const figures: Figure[] = [
    ...latencyFigures(prefix, "direct", direct, "SDK v1 Client over stdio"),
    ...latencyFigures(prefix, "supergateway", bridge, "SDK v1 Client over Streamable HTTP to supergateway --stateful"),
    ...latencyFigures(prefix, "gateway", gateway, "SDK v1 Client over Streamable HTTP to the Worker (key, policy, rate limit, audit, metering) → connector"),
    { name: `${prefix} gateway p50 overhead over direct`, unit: "ms", value: ms(gatewayOverhead) },
    { name: `${prefix} supergateway p50 overhead over direct`, unit: "ms", value: ms(bridgeOverhead) },
    {
      name: `${prefix} overhead ratio gateway/supergateway`,
      unit: "×",
      value: gatewayOverhead / bridgeOverhead,
      ...(withTargets ? { target: OVERHEAD_RATIO_TARGET } : {}),
      note: `gateway p50 overhead ÷ supergateway p50 overhead${ratioNote}`,
    },
    ...throughputFigures(prefix, "direct", tDirect, "32 concurrent calls over one SDK stdio client"),
    ...throughputFigures(prefix, "supergateway", tBridge, "raw fetch POSTs in one stateful session"),
    ...throughputFigures(prefix, "gateway", tGateway, "raw fetch POSTs, stateless, API key"),
    {
      name: `${prefix} throughput ratio gateway/supergateway`,
      unit: "×",
      value: tGateway.calls / tGateway.seconds / (tBridge.calls / tBridge.seconds),
      higherIsBetter: true,
      ...(withTargets ? { target: THROUGHPUT_RATIO_TARGET } : {}),
      note: `at c=${CONCURRENCY}${ratioNote}`,
    },
  ];
  return { figures, direct, bridge, gateway, tBridge, extraLatency, extraThroughput };
}

/**
 * The harness floor's figures (measured in `echo`'s rounds and passes), and what they say about the echo comparison.
 * Informational: the issue's targets stay on the raw `echo:` ratios.
 */
function floorFigures(echo: Comparison, servers: readonly FloorServer[]): Figure[] {
  const p50 = (s: Samples) => summary(s).p50;
  const rate = (t: Throughput) => t.calls / t.seconds;
  const latency = (k: number) => echo.extraLatency[k] as Samples;
  const load = (k: number) => echo.extraThroughput[k] as Throughput;
  const figures: Figure[] = [
    ...servers.flatMap((server, k) => latencyFigures("floor:", server.label, latency(k), server.note)),
    ...servers.flatMap((server, k) => throughputFigures("floor:", server.label, load(k), "raw fetch POSTs, in the echo: passes")),
  ];
  const wranglerDev = servers.findIndex((server) => server.runtime === "wrangler dev");
  if (wranglerDev >= 0) {
    const direct = p50(echo.direct);
    const net = p50(echo.gateway) - p50(latency(wranglerDev)) - direct;
    figures.push(
      {
        name: "floor: echo gateway p50 overhead net of the wrangler-dev floor",
        unit: "ms",
        value: ms(net),
        note: "echo: gateway p50 − floor wrangler dev p50 − echo: direct p50: what the gateway adds beyond any Worker's round trip on this harness (its SDK client's share included, as in supergateway's overhead)",
      },
      {
        name: "floor: echo net overhead ratio gateway/supergateway",
        unit: "×",
        value: net / (p50(echo.bridge) - direct),
        note: "informational, no target (the target stays on echo: overhead ratio): the net overhead above ÷ echo: supergateway p50 overhead over direct",
      },
    );
  }
  servers.forEach((server, k) => {
    if (server.runtime === undefined) return;
    figures.push({
      name: `floor: throughput ceiling ${server.runtime}/supergateway`,
      unit: "×",
      value: rate(load(k)) / rate(echo.tBridge),
      note: `informational: floor ${server.label} throughput ÷ echo: supergateway throughput (c=${CONCURRENCY}): ${server.ceiling ?? ""}`,
    });
  });
  return figures;
}

/** Where the gateway's time goes: layers of the request, and the call with rate limiting and audit on and off. */
export async function breakdown(ctx: BenchContext, stack: Stack, gatewayRaw: Endpoint): Promise<Figure[]> {
  const figures: Figure[] = [];
  const p50 = (s: Samples) => ms(summary(s).p50);
  const call = rawTarget("gateway", gatewayRaw, echoTool("echo__echo"));
  const healthz = new URL("/healthz", stack.url);

  ctx.log(`breakdown: layers and configurations, ${BREAKDOWN_CALLS} raw-fetch calls each at c=1`);
  const layers = {
    healthz: await sequential(async () => (await fetch(healthz)).text(), BREAKDOWN_CALLS),
    ping: await sequential(() => rawRequest(gatewayRaw, "ping", {}), BREAKDOWN_CALLS),
    list: await sequential(() => rawRequest(gatewayRaw, "tools/list", {}), BREAKDOWN_CALLS),
  };
  const variants: [string, Record<string, unknown>, string][] = [
    ["full", FULL_SECTIONS, "key, policy, rate limit, audit, metering (as measured above)"],
    ["no rate limit", { ...FULL_SECTIONS, rateLimit: { enabled: false } }, "rateLimit.enabled: false (no RateLimiter DO)"],
    ["no audit", { ...FULL_SECTIONS, audit: { enabled: false } }, "audit.enabled: false (no AuditLog DO)"],
    ["neither", { ...FULL_SECTIONS, rateLimit: { enabled: false }, audit: { enabled: false }, metering: { enabled: false } }, "rate limit, audit and metering off: auth, policy, relay"],
  ];
  const byVariant = new Map<string, Samples>();
  for (const [name, sections] of variants) {
    await applySections(stack, sections);
    const samples = await sequential((i) => call.call(i), BREAKDOWN_CALLS);
    byVariant.set(name, samples);
    if (samples.firstError) ctx.log(`first error (${name}): ${samples.firstError}`);
  }
  await applySections(stack, FULL_SECTIONS);
  const again = await sequential((i) => call.call(i), BREAKDOWN_CALLS);
  const full = byVariant.get("full") as Samples;
  const none = byVariant.get("neither") as Samples;
  const noRateLimit = byVariant.get("no rate limit") as Samples;
  const noAudit = byVariant.get("no audit") as Samples;

  figures.push(
    { name: "breakdown GET /healthz p50", unit: "ms", value: p50(layers.healthz), note: "workerd + Hono round trip, no D1, no DO" },
    { name: "breakdown ping p50", unit: "ms", value: p50(layers.ping), note: "+ Origin check, API-key lookup in D1, the MCP handler" },
    { name: "breakdown tools/list p50", unit: "ms", value: p50(layers.list), note: "+ the catalog's stamp query (and the config re-check every 1 s), policy filtering" },
  );
  for (const [name, , note] of variants) {
    figures.push({ name: `breakdown tools/call p50, ${name}`, unit: "ms", value: p50(byVariant.get(name) as Samples), note: `raw fetch; ${note}` });
  }
  figures.push(
    { name: "breakdown tools/call p50, full (again)", unit: "ms", value: p50(again), note: "the full configuration re-applied at the end: the drift of the run" },
    { name: "breakdown cost of the relay", unit: "ms", value: ms(p50(none) - p50(layers.list)), note: "tools/call with neither − tools/list: Connector DO → WebSocket → connector → stdio and back, redaction plans" },
    { name: "breakdown cost of rate limiting", unit: "ms", value: ms(p50(noAudit) - p50(none)), note: "no audit − neither: the RateLimiter DO round trip" },
    { name: "breakdown cost of audit", unit: "ms", value: ms(p50(noRateLimit) - p50(none)), note: "no rate limit − neither: the AuditLog DO append (before the answer)" },
    { name: "breakdown errors", unit: "calls", value: [...byVariant.values(), again, layers.healthz, layers.ping, layers.list].reduce((n, s) => n + s.errors, 0) },
  );
  if (full.errors + again.errors > 0) ctx.log("breakdown: errors in the full configuration");
  return figures;
}

/** Runs `work` once, however often it is asked (a disposal that may come early or from the finally block). */
function once(work: () => Promise<unknown>): () => Promise<unknown> {
  let done: Promise<unknown> | undefined;
  return () => (done ??= work());
}

/** startStack with its temporary directory (local D1 and Durable Object state) under `dir`. */
async function stackUnder(dir: string | undefined, servers: Record<string, unknown>[]): Promise<Stack> {
  const saved = process.env.TMPDIR;
  if (dir !== undefined) process.env.TMPDIR = dir;
  try {
    return await startStack(() => servers, FULL_SECTIONS);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

const benchmark: Benchmark = {
  name: "mcp-compare",
  async run(ctx) {
    const figures: Figure[] = [];
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      // Before anything else runs, so the build has both cores.
      const bundle = await bundleSize(ctx);
      figures.push(
        { name: "Worker bundle gzip", unit: "KiB", value: bundle.gzipKiB, target: BUNDLE_GZIP_TARGET_KIB, note: "wrangler deploy --dry-run, every module gzipped with node:zlib (level 9)" },
        { name: "Worker bundle raw", unit: "KiB", value: bundle.rawKiB },
      );

      ctx.log("starting the stack (workerd, D1, DOs, connector with echo + server-everything)");
      const stack = await stackUnder(undefined, [ECHO_SERVER, EVERYTHING_SERVER]);
      const disposeStack = once(() => stack.dispose());
      cleanups.push(disposeStack);

      const [sgEcho, sgEverything, sgStateless] = await Promise.all([
        Supergateway.start(process.execPath, [ECHO_SERVER_PATH], true),
        Supergateway.start(EVERYTHING_SERVER.command, EVERYTHING_SERVER.args, true),
        Supergateway.start(process.execPath, [ECHO_SERVER_PATH], false),
      ]);
      cleanups.push(() => sgEcho.stop(), () => sgEverything.stop(), () => sgStateless.stop());

      // The connector idle: registered, no call yet.
      await sleep(IDLE_MS);
      const connectorPid = stack.connector.process?.pid;
      if (connectorPid === undefined) throw new Error("the connector has no pid");
      const childPids = childrenOf(connectorPid);
      const childrenRss = childPids.reduce((sum, pid) => sum + rssMiB(pid), 0);
      figures.push(
        { name: "connector idle RSS", unit: "MiB", value: rssMiB(connectorPid), target: CONNECTOR_RSS_TARGET_MB, note: `VmRSS of the connector process alone, ${IDLE_MS / 1000} s idle with its servers` },
        { name: "connector children RSS", unit: "MiB", value: childrenRss, note: `the ${childPids.length} stdio servers it runs (echo fixture, server-everything), for information` },
      );

      const gatewayEndpoint = (s: Stack): Endpoint => ({
        url: s.mcpUrl.href,
        headers: {
          authorization: `Bearer ${s.apiKey}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": PROTOCOL_VERSION,
        },
      });
      const gatewayRaw = gatewayEndpoint(stack);

      // First, while the audit chain is short and nothing is waiting to ship to D1; it ends on the full configuration.
      const breakdownFigures = await breakdown(ctx, stack, gatewayRaw);

      const connect = async (client: Promise<Client>, cleanup = true) => {
        const c = await client;
        if (cleanup) cleanups.push(() => c.close());
        return c;
      };
      const [directEcho, directEverything, bridgeEcho, bridgeEverything, gateway] = await Promise.all([
        connect(connectStdio(process.execPath, [ECHO_SERVER_PATH])),
        connect(connectStdio(EVERYTHING_SERVER.command, EVERYTHING_SERVER.args)),
        connect(connectHttp(sgEcho.url)),
        connect(connectHttp(sgEverything.url)),
        connect(connectHttp(stack.mcpUrl, { authorization: `Bearer ${stack.apiKey}` }), false),
      ]);
      const closeGateway = once(() => gateway.close());
      cleanups.push(closeGateway);
      const [bridgeEchoRaw, bridgeEverythingRaw] = await Promise.all([sgEcho.endpoint(true), sgEverything.endpoint(true)]);

      // The harness floor runs beside the echo comparison only (interleaved with its paths), then stops.
      ctx.log("starting the harness floor: a hello Worker on wrangler dev and on bare workerd, a node:http hello");
      const floor = new HarnessFloor();
      const disposeFloor = once(() => floor.dispose());
      cleanups.push(disposeFloor);
      await floor.start(ctx);

      const echo = await compare(
        ctx,
        "echo:",
        { direct: directEcho, bridge: bridgeEcho, gateway, bridgeRaw: bridgeEchoRaw, gatewayRaw },
        { direct: echoTool("echo"), bridge: echoTool("echo"), gateway: echoTool("echo__echo") },
        LATENCY_ROUNDS,
        THROUGHPUT_MS,
        true,
        floor.servers.map((server) => server.target),
      );
      await disposeFloor();
      figures.push(...echo.figures, ...floorFigures(echo, floor.servers));
      figures.push(
        ...(await compare(
          ctx,
          "everything:",
          { direct: directEverything, bridge: bridgeEverything, gateway, bridgeRaw: bridgeEverythingRaw, gatewayRaw },
          { direct: everythingTool("echo"), bridge: everythingTool("echo"), gateway: everythingTool("everything__echo") },
          EVERYTHING_ROUNDS,
          EVERYTHING_THROUGHPUT_MS,
          false,
        )).figures,
      );

      const stateless = rawTarget("supergateway stateless", await sgStateless.endpoint(false), echoTool("echo"));
      const statelessSamples = await sequential((i) => stateless.call(i), STATELESS_CALLS);
      logErrors(ctx, [statelessSamples]);
      figures.push({
        name: "echo: supergateway stateless p50",
        unit: "ms",
        value: ms(summary(statelessSamples).p50),
        note: `supergateway without --stateful spawns the server for every POST (${STATELESS_CALLS} calls, raw fetch): not a fair baseline, hence --stateful above`,
      });
      figures.push(...breakdownFigures);

      // The same stack again with its local D1 and Durable Object SQLite files on tmpfs: what the disk's syncs cost.
      await closeGateway();
      await disposeStack();
      ctx.log(`starting a second stack with its state under ${TMPFS_DIR}`);
      const tmpfsStack = await stackUnder(TMPFS_DIR, [ECHO_SERVER]);
      cleanups.push(once(() => tmpfsStack.dispose()));
      const tmpfsGateway = await connect(connectHttp(tmpfsStack.mcpUrl, { authorization: `Bearer ${tmpfsStack.apiKey}` }));
      figures.push(
        ...(await compare(
            ctx,
            "echo, state on tmpfs:",
            { direct: directEcho, bridge: bridgeEcho, gateway: tmpfsGateway, bridgeRaw: bridgeEchoRaw, gatewayRaw: gatewayEndpoint(tmpfsStack) },
            { direct: echoTool("echo"), bridge: echoTool("echo"), gateway: echoTool("echo__echo") },
            TMPFS_ROUNDS,
            TMPFS_THROUGHPUT_MS,
          false,
        )).figures,
      );
      return figures;
    } finally {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (error) {
          ctx.log(`cleanup: ${(error as Error).message}`);
        }
      }
    }
  },
};

export default benchmark;
