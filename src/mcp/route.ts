/**
 * @module POST /mcp: Streamable HTTP termination on the MCP SDK v2. 2026-07-28 clients are served statelessly per
 * request; 2025-era clients (initialize) by the SDK's stateless fallback on the same endpoint. GET and DELETE get
 * 405: this endpoint holds no sessions and serves no standalone stream.
 */
import { createMcpHandler } from "@modelcontextprotocol/server";
import type { Context } from "hono";
import { database } from "../db/client.ts";
import type { GatewayContext } from "../http/guards.ts";
import { MAX_MESSAGE_BYTES } from "../link/protocol.ts";
import { log } from "../log.ts";
import { workerBackend } from "./backend.ts";
import { createGatewayServer } from "./gateway-server.ts";

export async function serveMcp(c: Context<GatewayContext>): Promise<Response> {
  const principal = c.get("principal");
  const backend = workerBackend(c.env, database(c.env.DB), principal, (work) => c.executionCtx.waitUntil(work), c.get("serversStamp"));
  // A handler per request: the factory closes over this caller's backend, so no state crosses requests or tenants.
  const requestId = crypto.randomUUID();
  const caller = {
    principal,
    protocolVersionHeader: c.req.header("mcp-protocol-version"),
    origin: {
      tenant: principal.tenant,
      consumer: principal.consumer,
      keyId: principal.keyId,
      // Cloudflare's own header, never X-Forwarded-For (which the client writes).
      clientIp: c.req.header("cf-connecting-ip") ?? null,
      requestId,
      sessionId: c.req.header("mcp-session-id") ?? null,
    },
  };
  const handler = createMcpHandler(() => createGatewayServer(backend, caller), {
    maxRequestBodySize: MAX_MESSAGE_BYTES,
    onerror: (error) => log({ event: "mcp.error", tenant: principal.tenant, consumer: principal.consumer, detail: error.message }, "warn"),
  });
  const response = await handler.fetch(c.req.raw, {
    // The SDK passes authInfo through to handlers; the key itself never travels past authentication, so `token`
    // carries the key's id, not its secret.
    authInfo: { token: `key:${principal.keyId}`, clientId: principal.consumer, scopes: principal.roles },
  });
  // The id the audit entries of this request carry: what an operator searches for when an agent reports a problem.
  const answered = new Response(response.body, response);
  answered.headers.set("x-request-id", requestId);
  return answered;
}
