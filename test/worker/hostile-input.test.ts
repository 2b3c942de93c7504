/**
 * A generated corpus (test/worker/hostile-corpus.ts, seeded PRNG) of malformed and hostile requests at /mcp,
 * /admin/v1 and /connect, each sent through the real Worker into the real Durable Objects and local D1, one tenant
 * for all of it. For every request: no 500 (the Worker's onError answer to an unhandled exception) and no other
 * 5xx; the refusal in the documented shape (a JSON-RPC error `{code: number, message: string}` on /mcp; `{error:
 * {code, message}}` with a documented code on /admin/v1; an error frame with a link error code, or a close with
 * code 4000, on /connect); on /mcp the exact number of audit entries the request adds. Afterwards: a normal
 * tools/call still works through the live connector, the tenant's chain verifies, and it holds exactly the entries
 * the corpus should have produced.
 */
import { env, exports } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyStoredChain } from "../../src/audit/store.ts";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { edgeFrameSchema, parseFrame, type EdgeFrame } from "../../src/link/protocol.ts";
import { adminCorpus, frameCorpus, freshSocketFrameCorpus, mcpCorpus, upgradeCorpus, type AdminCase, type FrameCase, type KeyKind, type McpCase } from "./hostile-corpus.ts";
import { ALLOW_ALL, answerEveryRpc, BASE, echoServer, FakeConnector, mcpPost, PLATFORM_TOKEN, rpcMessages, seedTenant } from "./fixtures.ts";

const ADMIN = "/admin/v1";

interface World {
  tenant: string;
  keys: Record<"valid" | "disabled" | "expired" | "admin", string>;
  connectorToken: string;
  hostileToken: string;
  connector: FakeConnector;
  stopAnswering: () => void;
}

let world: World;
/** Audit entries the corpus is expected to have added, summed as cases run. */
let expectedEntries = 0;

beforeAll(async () => {
  const keys = {
    valid: `gw_${crypto.randomUUID().replace(/-/g, "")}`,
    disabled: `gw_${crypto.randomUUID().replace(/-/g, "")}`,
    expired: `gw_${crypto.randomUUID().replace(/-/g, "")}`,
    admin: `gw_${crypto.randomUUID().replace(/-/g, "")}`,
  };
  const seeded = await seedTenant({
    keys: [
      { id: "key-1", key: keys.valid },
      { id: "off", key: keys.disabled, enabled: false },
      { id: "old", key: keys.expired, expiresAt: "2020-01-01T00:00:00Z" },
      { id: "admin", key: keys.admin, roles: ["admin"] },
    ],
    policies: ALLOW_ALL,
    // Limits far above the corpus: every audited request and every refused tenant key is recorded (a limited call
    // is recorded too, but a refusal past the limit is not), so the expected count is exact.
    rateLimit: { defaultPerMinute: 1_000_000, burst: 1_000_000 },
  });
  // A second connector of the tenant plays the hostile one: its own Connector object, its own server ids.
  const hostileToken = `gwc_${crypto.randomUUID().replace(/-/g, "")}`;
  await env.DB.prepare("INSERT INTO connectors (tenant_id, id, name, token_hash) VALUES (?, 'hostile', 'hostile', ?)")
    .bind(seeded.tenant, await sha256Hex(hostileToken))
    .run();
  const connector = await FakeConnector.connect(seeded.connectorToken);
  await connector.hello([echoServer("crm")]);
  const stopAnswering = answerEveryRpc(connector, { content: [{ type: "text", text: "echoed" }] });
  world = { tenant: seeded.tenant, keys, connectorToken: seeded.connectorToken, hostileToken, connector, stopAnswering };
});

afterAll(() => {
  world?.stopAnswering();
  try {
    world?.connector.socket.close(1000, "done");
  } catch {
    // already closed
  }
});

const headSeq = async () => (await env.AUDIT_LOG.getByName(world.tenant).state()).head.seq;

function groups<T extends { category: string }>(cases: T[]): [string, T[]][] {
  const byCategory = new Map<string, T[]>();
  for (const c of cases) byCategory.set(c.category, [...(byCategory.get(c.category) ?? []), c]);
  return [...byCategory];
}

/** A short, printable form of a body for failure messages. */
const shown = (text: string) => JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…(${text.length} chars)` : text);

// ---------------------------------------------------------------------------------------------------------------
// /mcp

function authorization(kind: KeyKind): Record<string, string> {
  switch (kind) {
    case "valid":
    case "query-token":
      return { authorization: `Bearer ${world.keys.valid}` };
    case "none":
      return {};
    case "unknown":
      return { authorization: "Bearer gw_0123456789abcdef0123456789abcdef" };
    case "empty-bearer":
      return { authorization: "Bearer " };
    case "basic":
      return { authorization: `Basic ${btoa(`agent:${world.keys.valid}`)}` };
    case "long":
      return { authorization: `Bearer ${"a".repeat(10_000)}` };
    case "jwt-garbage":
      return { authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln" };
    case "lowercase-scheme":
      return { authorization: `bearer ${world.keys.valid}` };
    case "disabled":
      return { authorization: `Bearer ${world.keys.disabled}` };
    case "expired":
      return { authorization: `Bearer ${world.keys.expired}` };
  }
}

async function sendMcp(c: McpCase): Promise<Response> {
  const headers = new Headers({ "content-type": "application/json", accept: "application/json, text/event-stream", ...authorization(c.key) });
  for (const [name, value] of Object.entries(c.headers)) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  const query = c.key === "query-token" ? "?access_token=gw_in_the_url" : (c.query ?? "");
  return exports.default.fetch(new Request(`${BASE}/mcp${query}`, { method: c.method, headers, ...(c.body === undefined ? {} : { body: c.body }) }));
}

/** What is wrong with the answer to one /mcp case (empty: nothing). */
function mcpProblems(c: McpCase, status: number, contentType: string, text: string): string[] {
  const problems: string[] = [];
  if (status >= 500) problems.push(`HTTP ${status} (never a 5xx): ${shown(text)}`);
  if (!c.statuses.includes(status)) problems.push(`HTTP ${status}, expected one of ${c.statuses.join("/")}: ${shown(text)}`);
  if (c.answer === "empty" || c.method === "HEAD") {
    if (text !== "" && c.method === "HEAD") problems.push(`HEAD answered a body ${shown(text)}`);
    return problems;
  }
  if (text === "") {
    // A notification is accepted with 202 and no body; a 405 may carry none. Anything else must say what is wrong.
    if (!(status === 202 && c.answer === "either") && status !== 405) problems.push(`HTTP ${status} with an empty body`);
    return problems;
  }
  let messages: Record<string, any>[];
  try {
    messages = contentType.includes("text/event-stream")
      ? text
          .split("\n")
          .filter((line) => line.startsWith("data: "))
          .map((line) => JSON.parse(line.slice(6)))
      : [JSON.parse(text)];
  } catch {
    if (status === 405) return problems; // a 405 from the transport may be plain text: the status says it all
    problems.push(`the body is not JSON-RPC: ${shown(text)}`);
    return problems;
  }
  const answer = messages.at(-1);
  if (!answer || answer.jsonrpc !== "2.0") {
    problems.push(`no JSON-RPC 2.0 message: ${shown(text)}`);
    return problems;
  }
  if (answer.error !== undefined) {
    const { code, message } = answer.error ?? {};
    if (typeof code !== "number" || !Number.isInteger(code)) problems.push(`error code ${JSON.stringify(code)} is not an integer`);
    if (typeof message !== "string" || message.length === 0) problems.push(`error message ${JSON.stringify(message)} is not a non-empty string`);
    if (code === -32603) problems.push(`internal error -32603: ${shown(text)}`);
    if (c.codes && !c.codes.includes(code)) problems.push(`error code ${code}, expected one of ${c.codes.join("/")}: ${shown(text)}`);
    if (c.answer === "result") problems.push(`an error, expected a result: ${shown(text)}`);
  } else if (answer.result !== undefined) {
    if (c.answer === "error") problems.push(`a result, expected an error: ${shown(text)}`);
  } else {
    problems.push(`neither result nor error: ${shown(text)}`);
  }
  // A hostile name is never echoed whole (names are clipped in messages).
  if (text.length > 64 * 1024 && c.answer !== "result") problems.push(`a ${text.length}-character answer echoes the request`);
  return problems;
}

const corpus = mcpCorpus();

/**
 * Bugs this corpus found that are reported, not fixed here: the case's label → what each of its problems says. The
 * corpus keeps the right expectation for these cases; while a bug reproduces exactly so, its case passes, and the
 * moment it is fixed the case fails, asking for its entry to be removed. None at present.
 *
 * (Fixed: invalid params of resources/read, prompts/get and completion/complete were answered -32603 with zod's
 * issue dump, by MCP SDK 2.4's two-argument `setRequestHandler`; src/mcp/gateway-server.ts now validates those
 * params itself and answers -32602 with a short message naming the field, before anything is charged or recorded.)
 */
const KNOWN_BUGS: Record<string, RegExp> = {};

describe("/mcp", () => {
  it("the corpus is large and deterministic", () => {
    expect(corpus.length).toBeGreaterThan(600);
    expect(new Set(corpus.map((c) => `${c.category}: ${c.label}`)).size).toBe(corpus.length);
    expect(mcpCorpus().map((c) => c.label)).toEqual(corpus.map((c) => c.label));
  });

  it.each(groups(corpus))("%s: every case refused in the JSON-RPC error shape, never a 5xx, audited exactly as expected", async (_category, cases) => {
    const failures: string[] = [];
    for (const c of cases) {
      const before = await headSeq();
      let problems: string[];
      try {
        const response = await sendMcp(c);
        const text = await response.text();
        problems = mcpProblems(c, response.status, response.headers.get("content-type") ?? "", text);
      } catch (error) {
        problems = [`the request threw: ${(error as Error).message}`];
      }
      const added = (await headSeq()) - before;
      if (added !== c.audits) problems.push(`added ${added} audit entries, expected ${c.audits}`);
      expectedEntries += c.audits;
      const known = KNOWN_BUGS[c.label];
      if (known && problems.length === 0) failures.push(`${c.label}: the known bug no longer reproduces; remove it from KNOWN_BUGS`);
      else if (known && problems.every((p) => known.test(p))) continue;
      if (problems.length > 0) failures.push(`${c.label}: ${problems.join("; ")}`);
    }
    expect(({} as Record<string, unknown>).polluted, "Object.prototype was polluted").toBeUndefined();
    expect(failures).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// /admin/v1

const ADMIN_CODES = ["bad_request", "unauthenticated", "forbidden", "not_found", "conflict", "too_large", "invalid_config", "unavailable"];

describe("/admin/v1 with an admin key", () => {
  it.each(groups(adminCorpus("TENANT")).map(([category]) => category))("%s: every case refused in the admin error shape, never a 5xx", async (category) => {
    const cases = adminCorpus(world.tenant).filter((c) => c.category === category);
    const versionBefore = await env.DB.prepare("SELECT config_version FROM tenants WHERE id = ?").bind(world.tenant).first("config_version");
    const failures: string[] = [];
    for (const c of cases) {
      const problems = await adminProblems(c);
      if (problems.length > 0) failures.push(`${c.method} ${c.path.slice(0, 60)} (${c.label}): ${problems.join("; ")}`);
    }
    expect(failures).toEqual([]);
    // Nothing was applied, created or revoked.
    expect(await env.DB.prepare("SELECT config_version FROM tenants WHERE id = ?").bind(world.tenant).first("config_version")).toBe(versionBefore);
    const keys = await env.DB.prepare("SELECT id FROM api_keys WHERE tenant_id = ? AND revoked_at IS NULL ORDER BY id").bind(world.tenant).all<{ id: string }>();
    expect(keys.results.map((k) => k.id)).toEqual(["admin", "key-1", "off", "old"]);
  });
});

async function adminProblems(c: AdminCase): Promise<string[]> {
  const problems: string[] = [];
  let response: Response;
  try {
    response = await exports.default.fetch(
      new Request(`${BASE}${ADMIN}${c.path}`, {
        method: c.method,
        headers: { authorization: `Bearer ${world.keys.admin}`, ...c.headers },
        ...(c.body === undefined ? {} : { body: c.body }),
      }),
    );
  } catch (error) {
    return [`the request threw: ${(error as Error).message}`];
  }
  const text = await response.text();
  if (response.status >= 500) problems.push(`HTTP ${response.status} (never a 5xx): ${shown(text)}`);
  if (!c.statuses.includes(response.status)) problems.push(`HTTP ${response.status}, expected one of ${c.statuses.join("/")}: ${shown(text)}`);
  if (response.status < 300) return problems;
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return [...problems, `the error body is not JSON: ${shown(text)}`];
  }
  if (!body || typeof body !== "object" || Object.keys(body).join() !== "error") problems.push(`not the admin error shape: ${shown(text)}`);
  else {
    const { code, message } = body.error ?? {};
    if (!ADMIN_CODES.includes(code)) problems.push(`error code ${JSON.stringify(code)} is not an admin error code`);
    if (!c.codes.includes(code)) problems.push(`error code ${code}, expected one of ${c.codes.join("/")}`);
    if (typeof message !== "string" || message.length === 0) problems.push("no error message");
  }
  if (!(response.headers.get("content-type") ?? "").startsWith("application/json")) problems.push(`content type ${response.headers.get("content-type")}`);
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// /connect

function upgradeCredential(kind: string): Record<string, string> {
  switch (kind) {
    case "connector":
      return { authorization: `Bearer ${world.hostileToken}` };
    case "unknown":
      return { authorization: "Bearer gwc_0123456789abcdef0123456789abcdef" };
    case "api-key":
      return { authorization: `Bearer ${world.keys.valid}` };
    case "admin-key":
      return { authorization: `Bearer ${world.keys.admin}` };
    case "platform":
      return { authorization: `Bearer ${PLATFORM_TOKEN}` };
    case "long":
      return { authorization: `Bearer ${"c".repeat(10_000)}` };
    case "basic":
      return { authorization: `Basic ${btoa(`local:${world.connectorToken}`)}` };
    default:
      return {};
  }
}

/** Resolves with `promise`, or with "timeout" after `ms`: a hung socket is a failure with a name, not a stuck test. */
function within<T>(promise: Promise<T>, ms = 10_000): Promise<T | "timeout"> {
  return Promise.race([promise, new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms))]);
}

/** A ping the Connector object itself answers (the exact heartbeat string is answered by the runtime instead). */
const SENTINEL_PING = '{ "type": "ping" }';

async function frameProblems(socket: FakeConnector, c: FrameCase): Promise<string[]> {
  const problems: string[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.socket.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }), { once: true }));
  socket.socket.send(c.frame);
  if (c.expect === "welcome") {
    if ((await within(socket.next("welcome"), 30_000)) === "timeout") problems.push("no welcome");
  } else if (c.expect === "silent") {
    // Nothing comes back for it: the sentinel's pong is the next frame, with no error before it.
  } else {
    const error = await within(socket.next("error"));
    if (error === "timeout") problems.push("no error frame (hung)");
    else if (error.code !== c.expect.replace(/^(error|close):/, "").replace(/^4000$/, "unsupported_protocol")) problems.push(`error frame ${error.code}: ${error.message}`);
    else if (error.message.length === 0) problems.push("an error frame without a message");
  }
  if (c.expect.startsWith("close:")) {
    const how = await within(closed);
    if (how === "timeout") problems.push("the socket was not closed");
    else if (how.code !== Number(c.expect.slice(6))) problems.push(`closed with ${how.code} ${how.reason}`);
    return problems;
  }
  socket.socket.send(SENTINEL_PING);
  const pong = await within(socket.next("pong"));
  if (pong === "timeout") problems.push("the socket stopped answering after it");
  const stray = socket.frames.filter((f) => f.type === "error");
  if (stray.length > 0) problems.push(`unexpected error frames: ${stray.map((f) => (f as { code: string }).code).join(", ")}`);
  socket.frames.splice(0, socket.frames.length);
  return problems;
}

describe("/connect", () => {
  it("upgrade attempts without a valid connector token, or without an upgrade, are refused with a JSON error", async () => {
    const failures: string[] = [];
    for (const c of upgradeCorpus()) {
      const response = await exports.default.fetch(new Request(`${BASE}/connect`, { method: c.method, headers: { ...c.headers, ...upgradeCredential(c.credential) } }));
      const text = await response.text();
      const problems: string[] = [];
      if (response.status >= 500) problems.push(`HTTP ${response.status}`);
      if (!c.statuses.includes(response.status)) problems.push(`HTTP ${response.status}, expected ${c.statuses.join("/")}: ${shown(text)}`);
      if (response.webSocket) problems.push("a WebSocket was handed out");
      let body: any;
      try {
        body = JSON.parse(text);
      } catch {
        problems.push(`not JSON: ${shown(text)}`);
      }
      if (body && (typeof body.error !== "string" || body.error.length === 0)) problems.push(`no error string: ${shown(text)}`);
      if (response.status === 401 && !response.headers.get("www-authenticate")?.startsWith("Bearer ")) problems.push("401 without a Bearer challenge");
      if (problems.length > 0) failures.push(`${c.label}: ${problems.join("; ")}`);
    }
    expect(failures).toEqual([]);
  });

  const frames = frameCorpus();

  it("the frame corpus is large and deterministic", () => {
    expect(frames.length).toBeGreaterThan(150);
    expect(frameCorpus().map((c) => c.label)).toEqual(frames.map((c) => c.label));
  });

  it.each(groups(frames).map(([category]) => category))("%s: every frame refused with an error frame (or shrugged off), the socket kept", { timeout: 120_000 }, async (category) => {
    const socket = await FakeConnector.connect(world.hostileToken);
    const failures: string[] = [];
    try {
      for (const c of frames.filter((f) => f.category === category)) {
        const problems = await frameProblems(socket, c);
        if (problems.length > 0) failures.push(`${c.label}: ${problems.join("; ")}`);
      }
    } finally {
      socket.socket.close(1000, "done");
    }
    expect(failures).toEqual([]);
  });

  it.each(freshSocketFrameCorpus())("$label on a fresh socket", async (c) => {
    const socket = await FakeConnector.connect(world.hostileToken);
    const problems = await frameProblems(socket, c);
    try {
      socket.socket.close(1000, "done");
    } catch {
      // the edge closed it
    }
    expect(problems, c.label).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Afterwards

describe("after the corpus", () => {
  it("the worker still serves a normal tools/call through the live connector", async () => {
    const before = await headSeq();
    const response = await mcpPost({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "crm__echo", arguments: { text: "still here" } } }, world.keys.valid);
    expect(response.status).toBe(200);
    expect((await rpcMessages(response)).at(-1)?.result).toEqual({ content: [{ type: "text", text: "echoed" }] });
    expect((await headSeq()) - before).toBe(1);
    expectedEntries += 1;
  });

  it("the tenant's audit chain verifies and holds exactly the entries the valid-but-refused requests produced", async () => {
    // Expected: one entry per /mcp request that reached an audited handler (tools/call, prompts/get,
    // resources/read, completion/complete with params the SDK accepts: unknown, relayed or refused alike), one
    // `authenticate` entry per request with the tenant's disabled or expired key, plus the final call above; none
    // for unparsable, mis-shaped, wrong-method, wrong-header, oversized or unknown-key requests, none for the admin
    // API and none for /connect.
    const audited = corpus.reduce((sum, c) => sum + c.audits, 0) + 1;
    expect(expectedEntries).toBe(audited);
    const result = await verifyStoredChain(env, world.tenant);
    expect(result).toMatchObject({ ok: true, entries: audited });
    expect((await headSeq())).toBe(audited);
    const byMethod = await env.DB.prepare("SELECT method, COUNT(*) AS n FROM audit_entries WHERE tenant_id = ? GROUP BY method ORDER BY method").bind(world.tenant).all<{ method: string; n: number }>();
    const expected = new Map<string, number>();
    const auditedMethods = ["tools/call", "prompts/get", "resources/read", "completion/complete"];
    for (const c of corpus) {
      if (c.audits === 0) continue;
      let methods: string[];
      if (c.key === "disabled" || c.key === "expired") methods = ["authenticate"];
      else {
        const parsed = JSON.parse(typeof c.body === "string" ? c.body : new TextDecoder().decode(c.body)) as { method: string } | { method: string }[];
        // A batch: one entry per audited call in it.
        methods = (Array.isArray(parsed) ? parsed : [parsed]).map((m) => m.method).filter((m) => auditedMethods.includes(m));
      }
      expect(methods.length, c.label).toBe(c.audits);
      for (const method of methods) expected.set(method, (expected.get(method) ?? 0) + 1);
    }
    expected.set("tools/call", (expected.get("tools/call") ?? 0) + 1);
    expect(Object.fromEntries(byMethod.results.map((r) => [r.method, r.n]))).toEqual(Object.fromEntries([...expected].sort(([a], [b]) => a.localeCompare(b))));
  });
});
