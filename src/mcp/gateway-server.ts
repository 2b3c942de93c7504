/**
 * @module The MCP server agents talk to: one low-level SDK `Server` per request whose handlers list the tenant's
 * aggregated catalog and forward calls to the server that owns each name.
 *
 * It depends on a {@link GatewayBackend} (catalog + relay), not on D1 or Durable Objects, so the same handlers are
 * exercised with a real backend in workerd and end to end.
 */
import { ProtocolError, Server, type ServerContext } from "@modelcontextprotocol/server";
import type { CallOutcome } from "../connectors/connector-api.ts";
import type { RelayedNotification, RelayedRequest } from "../link/protocol.ts";
import type { AggregatedCatalog, RoutedItem } from "./catalog.ts";
import { GatewayErrorCode } from "./errors.ts";
import { prefixOf } from "./namespacing.ts";
import { clip } from "../text.ts";
import { decodeCursor, paginate } from "./pagination.ts";

export const GATEWAY_INFO = { name: "mcp-gateway", version: "0.1.0" } as const;

/** What the MCP handlers need from the platform. */
export interface GatewayBackend {
  /** The caller's tenant's catalog: every enabled server, with which of them take calls now. */
  catalog(): Promise<AggregatedCatalog>;
  /**
   * Relays one request to a server; notifications the upstream sends meanwhile go to `onNotification`. When
   * `signal` aborts (the agent disconnected) the upstream request is cancelled.
   */
  relay(
    serverId: string,
    request: RelayedRequest,
    onNotification: (n: RelayedNotification) => Promise<void>,
    signal: AbortSignal,
  ): Promise<CallOutcome>;
}

type Params = Record<string, unknown>;

export function createGatewayServer(backend: GatewayBackend): Server {
  const server = new Server(GATEWAY_INFO, {
    capabilities: { tools: {}, resources: {}, prompts: {}, completions: {}, logging: {} },
    instructions:
      "Tools, resources and prompts of the MCP servers your organisation runs behind this gateway. Tool and prompt names are <server>__<name> unless a server keeps its own names.",
  });

  server.setRequestHandler("tools/list", async (request) =>
    listPage("tools", (await backend.catalog()).tools.map((t) => t.definition), request.params?.cursor),
  );

  server.setRequestHandler("tools/call", async (request, ctx) => {
    const params = request.params as Params & { name: string };
    const catalog = await backend.catalog();
    const route = routeOf(catalog, "tool", params.name);
    return relay(backend, route.serverId, "tools/call", { ...params, name: route.upstreamName }, ctx) as never;
  });

  server.setRequestHandler("prompts/list", async (request) =>
    listPage("prompts", (await backend.catalog()).prompts.map((p) => p.definition), request.params?.cursor),
  );

  server.setRequestHandler("prompts/get", async (request, ctx) => {
    const params = request.params as Params & { name: string };
    const catalog = await backend.catalog();
    const route = routeOf(catalog, "prompt", params.name);
    return relay(backend, route.serverId, "prompts/get", { ...params, name: route.upstreamName }, ctx) as never;
  });

  server.setRequestHandler("resources/list", async (request) =>
    listPage("resources", (await backend.catalog()).resources.map((r) => r.definition), request.params?.cursor),
  );

  server.setRequestHandler("resources/templates/list", async (request) =>
    listPage("resourceTemplates", (await backend.catalog()).resourceTemplates.map((t) => t.definition), request.params?.cursor),
  );

  server.setRequestHandler("resources/read", async (request, ctx) => {
    const params = request.params as Params & { uri: string };
    const catalog = await backend.catalog();
    const serverId = catalog.resourceServer(params.uri);
    if (!serverId) {
      throw new ProtocolError(GatewayErrorCode.UnknownTarget, `Unknown resource "${echo(params.uri)}": no server lists it or has a template that matches it`, { uri: params.uri });
    }
    assertAvailable(catalog, serverId);
    return relay(backend, serverId, "resources/read", params, ctx) as never;
  });

  server.setRequestHandler("completion/complete", async (request, ctx) => {
    const params = request.params as Params & { ref: { type: string; name?: string; uri?: string } };
    const catalog = await backend.catalog();
    const ref = params.ref;
    if (ref.type === "ref/prompt" && typeof ref.name === "string") {
      const route = routeOf(catalog, "prompt", ref.name);
      return relay(backend, route.serverId, "completion/complete", { ...params, ref: { ...ref, name: route.upstreamName } }, ctx) as never;
    }
    if (ref.type === "ref/resource" && typeof ref.uri === "string") {
      const serverId = catalog.templateServer(ref.uri) ?? catalog.resourceServer(ref.uri);
      if (!serverId) {
        throw new ProtocolError(GatewayErrorCode.UnknownTarget, `Unknown resource template "${echo(ref.uri)}": no server lists it`);
      }
      assertAvailable(catalog, serverId);
      return relay(backend, serverId, "completion/complete", params, ctx) as never;
    }
    throw new ProtocolError(GatewayErrorCode.UnknownTarget, `Unsupported completion reference type "${echo(String(ref.type))}"`);
  });

  return server;
}

/** One page of an aggregated list, as `{ [key]: items, nextCursor? }`. */
function listPage(key: string, items: readonly unknown[], cursor: unknown): never {
  const page = paginate(items, decodeCursor(cursor));
  // The SDK types each list result separately; the shape is the same for all four.
  return { [key]: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } as never;
}

/**
 * Forwards one request and maps the outcome back: the result as the upstream sent it, or its JSON-RPC error with
 * code and message intact. Progress is re-addressed to the agent's own progress token; without one it is dropped.
 */
async function relay(backend: GatewayBackend, serverId: string, method: string, params: Params, ctx: ServerContext): Promise<Params> {
  const progressToken = ctx.mcpReq._meta?.progressToken;
  // Returns the send's promise so the relay can deliver the result only after every notification went out.
  const onNotification = async (notification: RelayedNotification): Promise<void> => {
    if (notification.method === "notifications/progress") {
      if (progressToken === undefined) return;
      await ctx.mcpReq.notify({ method: notification.method, params: { ...notification.params, progressToken } } as never);
    } else if (notification.method === "notifications/message") {
      await ctx.mcpReq.notify(notification as never);
    }
  };
  const outcome = await backend.relay(serverId, { method, params: upstreamParams(params) }, onNotification, ctx.mcpReq.signal);
  if (!outcome.ok) throw new ProtocolError(outcome.error.code, outcome.error.message, outcome.error.data);
  return outcome.result;
}

/**
 * The params an upstream receives: the agent's own, minus the agent's progress token (the connector uses its own)
 * and the 2026-07-28 envelope keys, which describe the agent's connection to the gateway, not to the upstream.
 */
function upstreamParams(params: Params): Params {
  const { _meta, ...rest } = params;
  if (!_meta || typeof _meta !== "object") return rest;
  const kept = Object.fromEntries(
    Object.entries(_meta as Params).filter(([key]) => key !== "progressToken" && !key.startsWith("io.modelcontextprotocol/")),
  );
  return Object.keys(kept).length > 0 ? { ...rest, _meta: kept } : rest;
}

/**
 * The route of a tool or prompt name whose server takes calls now. A name its (older) server holds while down is
 * Unavailable, so the agent knows to retry, rather than Unknown; a name nobody holds is Unknown, with a hint.
 */
function routeOf(catalog: AggregatedCatalog, kind: "tool" | "prompt", name: string): RoutedItem {
  const route = kind === "tool" ? catalog.tool(name) : catalog.prompt(name);
  if (route) {
    assertAvailable(catalog, route.serverId);
    return route;
  }
  const prefix = prefixOf(name);
  const owners = prefix === undefined ? [] : catalog.serversWithPrefix(prefix);
  const hint =
    prefix === undefined
      ? `list them with ${kind}s/list`
      : owners.length === 0
        ? `no server of yours exposes names with the prefix "${echo(prefix)}"`
        : `server "${owners[0]?.id}" has no ${kind} by that name; list them with ${kind}s/list`;
  throw new ProtocolError(GatewayErrorCode.UnknownTarget, `Unknown ${kind} "${echo(name)}": ${hint}`);
}

function assertAvailable(catalog: AggregatedCatalog, serverId: string): void {
  const server = catalog.server(serverId);
  if (server?.available) return;
  // The status only: a server's detail is for its operators, not for every agent of the tenant.
  throw new ProtocolError(GatewayErrorCode.Unavailable, `Server "${serverId}" is not available right now (${server?.status ?? "unknown"}); retry shortly`);
}

/** Echoed names are bounded so a hostile 1 MB name cannot inflate every error. */
function echo(text: string): string {
  return clip(text, 200);
}
