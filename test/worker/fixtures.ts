/**
 * Fixtures for tests inside workerd: seed a tenant, keys and a connector in the real local D1, talk to the Worker
 * through its real fetch handler, and play a connector over a real WebSocket into the Connector Durable Object.
 */
import { exports, env } from "cloudflare:workers";
import type { AuditFields } from "../../src/audit/entry.ts";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { seedStatements } from "../../src/config/seed.ts";
import { gatewayConfigSchema } from "../../src/config/schema.ts";
import { LATENCY_BUCKET_COUNT } from "../../src/metering/histogram.ts";
import {
  edgeFrameSchema,
  LINK_PROTOCOL_VERSION,
  parseFrame,
  type EdgeFrame,
  type ServerReport,
} from "../../src/link/protocol.ts";

export const BASE = "https://gateway.test";

let counter = 0;
/** A fresh tenant per test, so tests in one file never see each other's servers. */
/** A policy that lets the reader role use everything: for suites about transport and relaying, not policy. */
export const ALLOW_ALL = [{ id: "allow-all", roles: ["reader"], rules: [{ action: "allow" }] }];

export async function seedTenant(
  options: {
    keys?: { id: string; key: string; enabled?: boolean; expiresAt?: string; roles?: string[]; consumerId?: string; ipFilter?: unknown }[];
    policies?: unknown[];
    servers?: unknown[];
    redaction?: unknown;
    rateLimit?: unknown;
    /** A fixed tenant id (default: a fresh one per call). */
    tenant?: string;
    /** The tenant's `ipFilter` section (`{allow, deny}` CIDR lists); a key's own lists go in its `ipFilter`. */
    ipFilter?: unknown;
    /** The tenant's `auth.jwt` section (`{issuers: [...]}`): JWT issuers accepted next to its keys. */
    jwt?: unknown;
    /** The tenant's `auth.oauth` section: it is then an OAuth protected resource at /t/<tenant>/mcp. */
    oauth?: unknown;
  } = {},
) {
  const tenant = options.tenant ?? `t${++counter}-${crypto.randomUUID().slice(0, 8)}`;
  const apiKey = `gw_${crypto.randomUUID().replace(/-/g, "")}`;
  const connectorToken = `gwc_${crypto.randomUUID().replace(/-/g, "")}`;
  const keys = options.keys ?? [{ id: "key-1", key: apiKey }];
  const config = gatewayConfigSchema.parse({
    tenant,
    auth: { keys: keys.map((k) => ({ name: k.id, consumerId: "agent-1", roles: ["reader"], ...k })), ...(options.jwt ? { jwt: options.jwt } : {}), ...(options.oauth ? { oauth: options.oauth } : {}) },
    policies: options.policies ?? ALLOW_ALL,
    servers: options.servers ?? [],
    ...(options.redaction ? { redaction: options.redaction } : {}),
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
    ...(options.ipFilter ? { ipFilter: options.ipFilter } : {}),
  });
  const sql = await seedStatements(config, { id: "local", name: "local", tokenHash: await sha256Hex(connectorToken) });
  for (const statement of sql.trim().split("\n")) await env.DB.prepare(statement).run();
  return { tenant, apiKey, connectorToken };
}

/** A fresh API key in the gateway's shape. */
export const newApiKey = () => `gw_${crypto.randomUUID().replace(/-/g, "")}`;

/**
 * A tenant with a consumer key (id `consumer`, role reader) and an admin key (id `admin`), both consumer agent-1,
 * plus whatever else `options` seeds.
 */
export async function seedTenantWithAdmin(options: Omit<Parameters<typeof seedTenant>[0], "keys"> = {}) {
  const consumerKey = newApiKey();
  const adminKey = newApiKey();
  const seeded = await seedTenant({
    ...options,
    keys: [
      { id: "consumer", key: consumerKey },
      { id: "admin", key: adminKey, roles: ["admin"] },
    ],
  });
  return { ...seeded, consumerKey, adminKey };
}

/** A gateway.yaml key entry holding only the key's digest, as an applied file has it (consumer agent-1). */
export async function keyEntry(id: string, key: string, roles: string[], extra: Record<string, unknown> = {}) {
  return { id, keyHash: await sha256Hex(key), name: id, consumerId: "agent-1", roles, ...extra };
}

export function mcpPost(
  body: unknown,
  apiKey: string | undefined,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
  /** The endpoint: /mcp, or a tenant's own /t/<tenant>/mcp. */
  path = "/mcp",
): Promise<Response> {
  return exports.default.fetch(
    new Request(`${BASE}${path}`, {
      method: "POST",
      ...(signal ? { signal } : {}),
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
        ...headers,
      },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

/** The JSON-RPC messages of a response, whether it came as JSON or as an SSE stream. */
export async function rpcMessages(response: Response): Promise<Record<string, any>[]> {
  const text = await response.text();
  if ((response.headers.get("content-type") ?? "").includes("text/event-stream")) {
    return text
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)));
  }
  return [JSON.parse(text)];
}

export const INITIALIZE = {
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "worker-test", version: "1" } },
};

/** A connector played by the test: a real WebSocket into /connect. */
export class FakeConnector {
  readonly frames: EdgeFrame[] = [];
  private waiters: { match: (f: EdgeFrame) => boolean; resolve: (f: EdgeFrame) => void }[] = [];
  readonly socket: WebSocket;
  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      const parsed = parseFrame(edgeFrameSchema, event.data as string);
      if (!parsed.ok) throw new Error(`edge sent an invalid frame: ${parsed.error.message}`);
      this.frames.push(parsed.frame);
      this.waiters = this.waiters.filter((w) => (w.match(parsed.frame) ? (w.resolve(parsed.frame), false) : true));
    });
  }

  static async connect(token: string): Promise<FakeConnector> {
    const response = await exports.default.fetch(
      new Request(`${BASE}/connect`, { headers: { upgrade: "websocket", authorization: `Bearer ${token}` } }),
    );
    if (response.status !== 101 || !response.webSocket) throw new Error(`connect failed: ${response.status}`);
    response.webSocket.accept();
    return new FakeConnector(response.webSocket);
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  next<T extends EdgeFrame["type"]>(type: T, match: (f: Extract<EdgeFrame, { type: T }>) => boolean = () => true) {
    const seen = this.frames.find((f) => f.type === type && match(f as never));
    if (seen) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen as Extract<EdgeFrame, { type: T }>);
    }
    return new Promise<Extract<EdgeFrame, { type: T }>>((resolve) => {
      this.waiters.push({
        match: (f) => f.type === type && match(f as never),
        resolve: (f) => {
          this.frames.splice(this.frames.indexOf(f), 1);
          resolve(f as never);
        },
      });
    });
  }

  async hello(servers: ServerReport[], replicaId = "replica-1"): Promise<void> {
    this.send({ type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "test", replicaId, servers });
    await this.next("welcome");
  }
}

export function echoServer(id: string, extra: Partial<ServerReport> = {}): ServerReport {
  return {
    id,
    name: `${id} server`,
    health: "healthy",
    catalog: {
      tools: [{ name: "echo", description: "Echoes its input", inputSchema: { type: "object", properties: { text: { type: "string" } } } }],
      resources: [{ uri: `${id}://readme`, name: "readme" }],
      resourceTemplates: [{ uriTemplate: `${id}://items/{item}`, name: "item" }],
      prompts: [{ name: "greet", arguments: [{ name: "who" }] }],
    },
    ...extra,
  };
}

/** The platform admin token of the worker tests: vitest.config.ts binds ADMIN_TOKEN_SHA256 to its SHA-256. */
export const PLATFORM_TOKEN = "gwp_platform-admin-test-token-0123456789";

/** An admin API answer: status, headers, the body as text and (when it is JSON) parsed. */
export interface AdminAnswer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/**
 * One request to the admin API through the Worker's fetch handler. `path` is the whole path with its query
 * (`/admin/v1/keys?tenant=t1`); a string body is sent as it is (YAML by default), anything else as JSON.
 */
export async function adminCall(
  method: string,
  path: string,
  credential: string | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<AdminAnswer> {
  const init: RequestInit = {
    method,
    headers: {
      ...(credential ? { authorization: `Bearer ${credential}` } : {}),
      ...(body === undefined ? {} : { "content-type": typeof body === "string" ? "application/yaml" : "application/json" }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  };
  const response = await exports.default.fetch(new Request(`${BASE}${path}`, init));
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the test reads `text`
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

/** A JSON-RPC request. */
export function rpcRequest(method: string, params: Record<string, unknown> = {}, id = 1) {
  return { jsonrpc: "2.0", id, method, params };
}

/** The one JSON-RPC answer (the last message: notifications may come first) to a request on /mcp. */
export async function mcpAnswer(body: unknown, apiKey: string | undefined, headers: Record<string, string> = {}): Promise<Record<string, any>> {
  const messages = await rpcMessages(await mcpPost(body, apiKey, headers));
  const answer = messages.at(-1);
  if (!answer) throw new Error("no JSON-RPC message in the response");
  return answer;
}

/** Resolves when the edge closes the FakeConnector's socket; call it before the close can happen. */
export function socketClosed(connector: FakeConnector): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    connector.socket.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason }), { once: true });
  });
}

/** Answers the next relayed request the FakeConnector receives with `result`; returns the rpc frame. */
export async function answerNextRpc(connector: FakeConnector, result: Record<string, unknown> = { content: [] }) {
  const rpc = await connector.next("rpc");
  connector.send({ type: "result", callId: rpc.callId, result });
  return rpc;
}

/** The gateway's own tools, listed to every caller the built-in policy lets use them. */
export const GATEWAY_TOOLS = ["list_tools", "list_servers", "server_status", "call", "usage"];

/** The names of a tools/list answer's tools, without the gateway's own. */
export function upstreamToolNames(message: Record<string, any> | undefined): string[] {
  return (message?.result.tools as { name: string }[]).map((t) => t.name).filter((n) => !GATEWAY_TOOLS.includes(n));
}

/**
 * Answers every relayed request the FakeConnector receives from now on with `result` (for tests that poll calls
 * which may or may not reach the connector). Returns a function that stops answering.
 */
export function answerEveryRpc(connector: FakeConnector, result: Record<string, unknown> = { content: [] }): () => void {
  const listener = (event: MessageEvent) => {
    const parsed = parseFrame(edgeFrameSchema, event.data as string);
    if (parsed.ok && parsed.frame.type === "rpc") connector.send({ type: "result", callId: parsed.frame.callId, result });
  };
  connector.socket.addEventListener("message", listener);
  return () => connector.socket.removeEventListener("message", listener);
}

/** The writer's fields of the i-th call of a tenant, for tests that append to an AuditLog object directly. */
export function auditFields(tenant: string, i: number): AuditFields {
  return {
    timestamp: 1_767_225_600_000 + i,
    tenant,
    consumer: "agent-1",
    keyId: "key-1",
    clientIp: null,
    requestId: `req-${i}`,
    sessionId: null,
    server: "crm",
    method: "tools/call",
    tool: "echo",
    arguments: { i, note: "café ☕" },
    result: { content: [{ type: "text", text: `r${i}` }] },
    resultDigest: null,
    status: "ok",
    errorCode: null,
    errorMessage: null,
    latencyMs: 1,
    ruleId: null,
    requestBytes: 40 + i,
    responseBytes: 50,
  };
}

/** One usage_hourly row as the metering fold would have left it; absent counters are 0, `calls` is their sum. */
export interface UsageSeedRow {
  tenant: string;
  /** Epoch milliseconds of the hour. */
  hour: number;
  consumer?: string;
  server?: string;
  tool?: string;
  ok?: number;
  errors?: number;
  denied?: number;
  limited?: number;
  unknown?: number;
  unauthenticated?: number;
  latencySumMs?: number;
  requestBytes?: number;
  responseBytes?: number;
  /** Latency bucket index → count (an array works too). */
  buckets?: Readonly<Record<number, number>>;
}

/** Writes usage_hourly rows by SQL, for the reports' tests (metering's own tests go through the fold). */
export async function seedUsageRows(rows: readonly UsageSeedRow[]): Promise<void> {
  const buckets = Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => `latency_bucket_${i}`);
  const columns = ["tenant_id", "hour", "consumer", "server", "tool", "calls", "ok", "errors", "denied", "limited", "unknown", "unauthenticated", "latency_sum_ms", "request_bytes", "response_bytes", ...buckets];
  const sql = `INSERT INTO usage_hourly (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`;
  await env.DB.batch(
    rows.map((r) => {
      const statuses = [r.ok ?? 0, r.errors ?? 0, r.denied ?? 0, r.limited ?? 0, r.unknown ?? 0, r.unauthenticated ?? 0];
      return env.DB.prepare(sql).bind(
        r.tenant,
        r.hour,
        r.consumer ?? "",
        r.server ?? "",
        r.tool ?? "",
        statuses.reduce((a, b) => a + b, 0),
        ...statuses,
        r.latencySumMs ?? 0,
        r.requestBytes ?? 0,
        r.responseBytes ?? 0,
        ...Array.from({ length: LATENCY_BUCKET_COUNT }, (_, i) => r.buckets?.[i] ?? 0),
      );
    }),
  );
}
