/**
 * @module GET /connect: a connector's WebSocket, authenticated by its token and handed to the Connector Durable
 * Object of its tenant and id.
 */
import type { Context } from "hono";
import { authenticateConnector } from "../auth/authenticate.ts";
import { database } from "../db/client.ts";
import type { GatewayContext } from "../http/guards.ts";
import { log } from "../log.ts";
import { connectorObjectName } from "./connector-api.ts";
import { CONNECTOR_IDENTITY_HEADERS } from "./durable-object.ts";

export async function acceptConnector(c: Context<GatewayContext>): Promise<Response> {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return c.json({ error: "expected a WebSocket upgrade: connectors dial wss://<gateway>/connect" }, 426);
  }
  const identity = await authenticateConnector(database(c.env.DB), c.req.header("authorization") ?? null);
  if (!identity) {
    log({ event: "connector.refused", status: 401 }, "warn");
    return c.json({ error: "connector token missing, unknown or disabled" }, 401, { "www-authenticate": 'Bearer realm="mcp-gateway-connect"' });
  }
  // The identity travels in headers the Worker sets itself, after removing any the caller sent.
  const headers = new Headers(c.req.raw.headers);
  headers.delete("authorization");
  headers.set(CONNECTOR_IDENTITY_HEADERS.tenant, identity.tenant);
  headers.set(CONNECTOR_IDENTITY_HEADERS.connector, identity.connector);
  const stub = c.env.CONNECTOR.getByName(connectorObjectName(identity.tenant, identity.connector));
  return stub.fetch(new Request(c.req.raw.url, { method: "GET", headers }));
}
