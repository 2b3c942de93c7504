/**
 * MCP authorization end to end (spec 2025-11-25: RFC 9728, RFC 6750, RFC 8707), with the client Claude Desktop uses
 * to reach remote servers: a real MCP client (SDK v1) spawns mcp-remote as its stdio server, and mcp-remote signs in
 * with the OAuth client credentials grant at a small authorization server on loopback
 * (./oauth-authorization-server.ts), which it finds only through the gateway's 401 challenge and protected resource
 * metadata for the tenant's resource URL `/t/e2e/mcp`. Then: the call reaches server-everything, the audit chain
 * names the OAuth client, and wrong secrets, missing scopes and tokens for other resources are refused — each
 * bounded in time, and checked on the raw HTTP as well.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/local-gateway.ts";
import { sha256Hex } from "../../src/auth/secrets.ts";
import { startAuthorizationServer, type RegisteredClient, type TestAuthorizationServer } from "./oauth-authorization-server.ts";
import { EVERYTHING_SERVER, startStack, type Stack } from "./stack.ts";

const MCP_REMOTE = join(PROJECT_ROOT, "node_modules/mcp-remote/dist/proxy.js");

/** The machine client the tenant trusts: granted the tool scope and the `reader` role the stack's policy allows. */
const ROBOT: RegisteredClient = { id: "e2e-robot", secret: randomBytes(24).toString("base64url"), scopes: ["mcp:tools"], roles: ["reader"] };
/** A client the authorization server never grants the tool scope. */
const NARROW: RegisteredClient = { id: "e2e-narrow", secret: randomBytes(24).toString("base64url"), scopes: ["profile"], roles: ["reader"] };
const REQUIRED_SCOPE = "mcp:tools";
const SCOPES_SUPPORTED = ["mcp:tools", "profile"];

let as: TestAuthorizationServer;
let stack: Stack;
let dir: string;
/** The tenant's canonical resource URL, as the MCP client dials it. */
let resource: string;
let metadataUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mcp-gateway-oauth-e2e-"));
  as = await startAuthorizationServer({ clients: [ROBOT, NARROW], scopesSupported: SCOPES_SUPPORTED });
  stack = await startStack(() => [EVERYTHING_SERVER]);
  resource = `${stack.url.origin}/t/e2e/mcp`;
  metadataUrl = `${stack.url.origin}/.well-known/oauth-protected-resource/t/e2e/mcp`;

  // The tenant's file, as the operator applies it: the stack's keys kept (by digest), and the tenant made an OAuth
  // protected resource trusting the loopback authorization server (its keys found by RFC 8414 discovery).
  const applied = await fetch(new URL("/admin/v1/config", stack.url), {
    method: "PUT",
    headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({
      tenant: "e2e",
      auth: {
        keys: [
          { id: "e2e-key", keyHash: await sha256Hex(stack.apiKey), name: "e2e agent", consumerId: "e2e-agent", roles: ["reader"] },
          { id: "e2e-admin", keyHash: await sha256Hex(stack.adminKey), name: "e2e admin", consumerId: "e2e-admin", roles: ["admin"] },
        ],
        oauth: {
          authorizationServers: [{ issuer: as.issuer, discovery: true, algorithms: ["RS256"], consumerIdField: "sub", rolesField: "roles" }],
          scopesSupported: SCOPES_SUPPORTED,
          requiredScopes: [REQUIRED_SCOPE],
          resourceName: "E2E tools",
        },
      },
      servers: [{ id: EVERYTHING_SERVER.id, name: EVERYTHING_SERVER.name, timeout: EVERYTHING_SERVER.timeout }],
      policies: [{ id: "e2e-allow-all", roles: ["reader"], rules: [{ action: "allow" }] }],
    }),
  });
  expect(applied.status, await applied.clone().text()).toBe(200);
  // Each isolate re-checks the tenant's config version within a second.
  await until(async () => (await fetch(metadataUrl)).status === 200, 10_000, "the tenant's OAuth metadata to be served");
}, 120_000);

/** Polls `ready` (hooks cannot use expect.poll). */
async function until(ready: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

afterAll(async () => {
  await stack?.dispose();
  await as?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The auth-params of a `Bearer` challenge (RFC 7235 §2.1, quoted-string values unescaped). */
function bearerChallenge(header: string | null): Record<string, string> {
  expect(header).toMatch(/^Bearer /);
  const params: Record<string, string> = {};
  for (const match of (header as string).slice("Bearer ".length).matchAll(/([A-Za-z0-9_-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*(?:,\s*|$)/g)) {
    params[(match[1] as string).toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : (match[3] as string);
  }
  return params;
}

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw-oauth-e2e", version: "1.0.0" } },
});

/** An initialize POSTed to the tenant's resource URL with the bearer token given (or none). */
function postInitialize(token?: string): Promise<Response> {
  return fetch(resource, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: INITIALIZE,
  });
}

/** A token from the authorization server's token endpoint, as any OAuth client gets one (client_secret_post). */
async function tokenFromAs(client: RegisteredClient, params: { resource: string; scope: string }): Promise<{ access_token: string; scope: string }> {
  const response = await fetch(as.tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: client.id, client_secret: client.secret, ...params }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { access_token: string; scope: string };
}

interface RemoteSession {
  client: Client;
  transport: StdioClientTransport;
  /** mcp-remote's stderr so far. */
  stderr(): string;
  close(): Promise<void>;
}

/**
 * A real MCP client whose stdio server is mcp-remote dialling the tenant's resource URL with the client credentials
 * grant. The secret reaches mcp-remote through the environment (a `${...}` placeholder in its arguments), and its
 * token store is a fresh directory, so no test inherits another's token. Connecting is bounded by `timeoutMs`.
 */
async function connectThroughMcpRemote(credentials: { id: string; secret: string }, timeoutMs = 30_000): Promise<RemoteSession> {
  const configDir = mkdtempSync(join(dir, "mcp-remote-"));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      MCP_REMOTE,
      resource,
      "--client-credentials",
      "--static-oauth-client-info",
      JSON.stringify({ client_id: credentials.id, client_secret: "${E2E_OAUTH_CLIENT_SECRET}" }),
      "--transport",
      "http-only",
    ],
    env: { MCP_REMOTE_CONFIG_DIR: configDir, E2E_OAUTH_CLIENT_SECRET: credentials.secret },
    stderr: "pipe",
    cwd: dir,
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const client = new Client({ name: "e2e-oauth-agent", version: "1.0.0" });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(transport),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`mcp-remote did not connect within ${timeoutMs} ms; its stderr:\n${stderr}`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    await client.close().catch(() => {});
    throw Object.assign(error as Error, { stderr: () => stderr });
  } finally {
    clearTimeout(timer);
  }
  return { client, transport, stderr: () => stderr, close: () => client.close() };
}

/** The failure of a connection that must not succeed, and how long it took to fail. */
async function failedConnection(credentials: { id: string; secret: string }): Promise<{ error: Error & { stderr?: () => string }; elapsedMs: number }> {
  const startedAt = Date.now();
  try {
    const session = await connectThroughMcpRemote(credentials, 20_000);
    // Connected after all: whatever it does next must fail; the test then fails on what this returns.
    await session.client.listTools().finally(() => session.close());
  } catch (error) {
    return { error: error as Error & { stderr?: () => string }, elapsedMs: Date.now() - startedAt };
  }
  throw new Error(`${credentials.id} was served through mcp-remote`);
}

describe("the tenant as an OAuth protected resource, on the raw HTTP", () => {
  it("publishes RFC 9728 metadata for exactly the URL clients dial", async () => {
    const response = await fetch(metadataUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const metadata = (await response.json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({
      resource,
      authorization_servers: [as.issuer],
      scopes_supported: SCOPES_SUPPORTED,
      bearer_methods_supported: ["header"],
      resource_name: "E2E tools",
    });
    // RFC 9728 §3.3: the resource must be identical to the one the metadata URL was built from.
    expect(metadata.resource).toBe(resource);
    // A tenant without auth.oauth (here: one that does not exist) has no metadata.
    expect((await fetch(`${stack.url.origin}/.well-known/oauth-protected-resource/t/other/mcp`)).status).toBe(404);
  });

  it("answers a request without a token with a 401 challenge naming the metadata and the required scope", async () => {
    const response = await postInitialize();
    expect(response.status).toBe(401);
    const challenge = bearerChallenge(response.headers.get("www-authenticate"));
    expect(challenge).toMatchObject({ realm: "mcp-gateway", resource_metadata: metadataUrl, scope: REQUIRED_SCOPE });
    // RFC 6750 §3.1: no error code when the request carried no credential at all.
    expect(challenge.error).toBeUndefined();
  });

  it("still serves the tenant's API keys at its resource URL", async () => {
    const response = await postInitialize(stack.apiKey);
    expect(response.status).toBe(200);
  });

  it("refuses a token minted for another resource with 401 invalid_token (RFC 8707 audience)", async () => {
    for (const other of [`${stack.url.origin}/t/other/mcp`, `${stack.url.origin}/mcp`]) {
      const { access_token } = await tokenFromAs(ROBOT, { resource: other, scope: REQUIRED_SCOPE });
      const response = await postInitialize(access_token);
      expect(response.status, other).toBe(401);
      const challenge = bearerChallenge(response.headers.get("www-authenticate"));
      expect(challenge, other).toMatchObject({ error: "invalid_token", resource_metadata: metadataUrl });
    }
    // The same client's token for this resource is served: what was refused was the audience alone.
    const { access_token } = await tokenFromAs(ROBOT, { resource, scope: REQUIRED_SCOPE });
    expect((await postInitialize(access_token)).status).toBe(200);
  });

  it("refuses a valid token without the required scope with 403 insufficient_scope", async () => {
    const { access_token, scope } = await tokenFromAs(NARROW, { resource, scope: "profile" });
    expect(scope).toBe("profile");
    const response = await postInitialize(access_token);
    expect(response.status).toBe(403);
    const challenge = bearerChallenge(response.headers.get("www-authenticate"));
    expect(challenge).toMatchObject({ error: "insufficient_scope", scope: REQUIRED_SCOPE, resource_metadata: metadataUrl });
  });

  it("refuses a token signed by a key the authorization server never published", async () => {
    const { access_token } = await tokenFromAs(ROBOT, { resource, scope: REQUIRED_SCOPE });
    const [header, payload, signature] = access_token.split(".") as [string, string, string];
    // One flipped bit in the signature.
    const forged = `${header}.${payload}.${signature.slice(0, -2)}${signature.at(-2) === "A" ? "B" : "A"}${signature.at(-1)}`;
    const response = await postInitialize(forged);
    expect(response.status).toBe(401);
    expect(bearerChallenge(response.headers.get("www-authenticate"))).toMatchObject({ error: "invalid_token", resource_metadata: metadataUrl });
  });
});

describe("mcp-remote's client credentials flow through the gateway", () => {
  it("discovers the authorization server from the gateway, signs in, lists and calls the tools, and is audited", async () => {
    const before = as.requests.length;
    const session = await connectThroughMcpRemote(ROBOT);
    try {
      // The secret never was on mcp-remote's command line: only its placeholder.
      const pid = session.transport.pid as number;
      const commandLine = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      expect(commandLine).toContain("${E2E_OAUTH_CLIENT_SECRET}");
      expect(commandLine).not.toContain(ROBOT.secret);

      const { tools } = await session.client.listTools();
      const names = tools.map((t) => t.name);
      expect(names).toContain("everything__echo");
      const result = await session.client.callTool({ name: "everything__echo", arguments: { message: "hello through mcp-remote" } });
      expect(result.isError).toBeFalsy();
      expect(result.content).toEqual([{ type: "text", text: "Echo: hello through mcp-remote" }]);
    } finally {
      await session.close();
    }

    // mcp-remote asked the authorization server the gateway's metadata names, for the gateway's resource URL and
    // the scope of the gateway's challenge, and was given a token.
    const asked = as.requests.slice(before).filter((r) => r.clientId === ROBOT.id);
    expect(asked.length).toBeGreaterThanOrEqual(1);
    expect(asked[0]).toMatchObject({ grantType: "client_credentials", resources: [resource], scope: REQUIRED_SCOPE, status: 200, grantedScope: REQUIRED_SCOPE });
    expect(["client_secret_basic", "client_secret_post"]).toContain(asked[0]?.authMethod);

    // The audit chain names the OAuth client as the consumer, its key as jwt:<client id>.
    const entries = await pollAudit((e) => e.consumer === ROBOT.id && e.tool === "echo");
    expect(entries[0]).toMatchObject({ consumer: ROBOT.id, keyId: `jwt:${ROBOT.id}`, server: "everything", tool: "echo", method: "tools/call", status: "ok" });
    expect(entries[0]?.arguments).toEqual({ message: "hello through mcp-remote" });
  });

  it("fails clearly and promptly with a wrong client secret", async () => {
    const before = as.requests.length;
    const { error, elapsedMs } = await failedConnection({ id: ROBOT.id, secret: "not-the-secret" });
    expect(elapsedMs).toBeLessThan(20_000);
    // The MCP client sees its stdio server go away (no hang); mcp-remote's log says why: the authorization server
    // refused the client.
    expect(error.message).toMatch(/Connection closed/);
    expect(error.stderr?.() ?? "").toMatch(/token request failed \(HTTP 401\): Client authentication failed/);
    const refused = as.requests.slice(before).filter((r) => r.clientId === ROBOT.id);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused.every((r) => r.status === 401 && r.error === "invalid_client")).toBe(true);
  });

  it("is refused when the authorization server grants a token without the required scope", async () => {
    const before = as.requests.length;
    const scopeRefusal = (e: AuditEntry) => e.consumer === NARROW.id && e.method === "authenticate";
    const refusalsBefore = (await auditEntries(scopeRefusal)).length;
    const { error, elapsedMs } = await failedConnection(NARROW);
    expect(elapsedMs).toBeLessThan(20_000);
    expect(error.message).toMatch(/Connection closed/);
    // mcp-remote asked for the challenge's scope and got a token without it; the gateway answered 403
    // insufficient_scope (the raw check above); mcp-remote stepped up once, asking for the challenge's scope again,
    // got the same narrow token and gave up.
    const asked = as.requests.slice(before).filter((r) => r.clientId === NARROW.id);
    expect(asked.length).toBeGreaterThanOrEqual(1);
    expect(asked.length).toBeLessThanOrEqual(3);
    for (const request of asked) expect(request).toMatchObject({ resources: [resource], scope: REQUIRED_SCOPE, status: 200, grantedScope: "" });
    expect(error.stderr?.() ?? "").toMatch(/Unauthorized/);
    // The gateway's side: the refusal of mcp-remote's token is in the tenant's audit chain, naming the client.
    const refusals = await pollAudit(scopeRefusal, refusalsBefore);
    expect(refusals[0]).toMatchObject({ keyId: `jwt:${NARROW.id}`, status: "unauthenticated", server: null });
    expect(refusals[0]?.errorMessage).toContain(`lacks the scope ${REQUIRED_SCOPE}`);
  });
});

type AuditEntry = {
  seq: number;
  consumer: string | null;
  keyId: string | null;
  server: string | null;
  tool: string | null;
  method: string;
  status: string;
  errorMessage: string | null;
  arguments: unknown;
};

/** The tenant's audit entries (newest first) that satisfy `found`, read through the admin API. */
async function auditEntries(found: (entry: AuditEntry) => boolean): Promise<AuditEntry[]> {
  const response = await fetch(new URL("/admin/v1/audit/entries?limit=100", stack.url), { headers: { authorization: `Bearer ${stack.adminKey}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { entries: AuditEntry[] }).entries.filter(found);
}

/** {@link auditEntries} once more than `already` of them are there. */
async function pollAudit(found: (entry: AuditEntry) => boolean, already = 0): Promise<AuditEntry[]> {
  let entries: AuditEntry[] = [];
  await expect
    .poll(
      async () => {
        entries = await auditEntries(found);
        return entries.length;
      },
      { timeout: 10_000, interval: 250 },
    )
    .toBeGreaterThan(already);
  return entries;
}
