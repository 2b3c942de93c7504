/**
 * @module The aggregated catalog: what one tenant's agents see (tools, prompts, resources, resource templates of
 * every available server) and how each exposed name routes back to a server and its upstream name.
 *
 * Pure. Listing and routing both read the same catalog, so a name an agent was shown is exactly a name that
 * routes. When two servers would expose the same name, the server registered first keeps it and the newer one's
 * item is withheld and reported as a conflict — never a silent first-wins at call time. Names are claimed over
 * every enabled server, available or not: while the older server is down its names stay its own (a call fails as
 * unavailable) instead of moving to the newer server, which would send the agent's arguments somewhere else.
 */
import { UriTemplate } from "@modelcontextprotocol/server";
import type { ServerCatalog } from "../link/protocol.ts";
import { GATEWAY_SERVER_ID } from "../link/protocol.ts";
import { exposedName, exposedPrefix, GATEWAY_TOOL_NAMES } from "./namespacing.ts";

/** One server as the catalog needs it. */
export interface CatalogServer {
  id: string;
  name: string;
  prefix?: string | undefined;
  /** Older servers keep their names when names clash. */
  registeredAt: number;
  /** Whether it takes calls now (reported healthy by a connected replica); only available servers are listed. */
  available: boolean;
  /** Its health as last known (healthy, starting, unhealthy, stopped, disconnected), for error messages. */
  status: string;
  /** Its last reported catalog (kept while it is down, so its names stay claimed). */
  catalog: ServerCatalog;
}

type Item = Record<string, unknown> & { name: string };

export interface RoutedItem {
  /** The name agents see. */
  name: string;
  serverId: string;
  /** The name the upstream server knows. */
  upstreamName: string;
  /** The upstream's definition with `name` replaced by the exposed name. */
  definition: Item;
}

export interface ResourceRoute {
  serverId: string;
  definition: Record<string, unknown> & { uri: string };
}

export interface TemplateRoute {
  serverId: string;
  definition: Record<string, unknown> & { uriTemplate: string };
}

export interface Conflict {
  kind: "tool" | "prompt" | "resource" | "resourceTemplate";
  /** The exposed name (or URI) both servers claim. */
  name: string;
  /** The newer server, whose item is withheld. */
  serverId: string;
  /** The older server, which keeps the name. */
  keptBy: string;
}

export interface AggregatedCatalog {
  /** What agents are shown: the items of available servers. */
  tools: RoutedItem[];
  prompts: RoutedItem[];
  resources: ResourceRoute[];
  resourceTemplates: TemplateRoute[];
  conflicts: Conflict[];
  /** The route of a name, whether or not its server is available now (check with {@link server}). */
  tool(name: string): RoutedItem | undefined;
  prompt(name: string): RoutedItem | undefined;
  /** The server that serves a URI: a listed resource first, else the oldest server with a matching template. */
  resourceServer(uri: string): string | undefined;
  /** The same, saying which template matched when no resource lists the URI (policy judges both). */
  resourceTarget(uri: string): { serverId: string; uriTemplate?: string } | undefined;
  /** The server of a template, by its exact URI template (completion references name templates). */
  templateServer(uriTemplate: string): string | undefined;
  server(id: string): CatalogServer | undefined;
  /** Every server, oldest first. */
  servers: readonly CatalogServer[];
  /** The servers whose names carry this prefix (one, unless it is "" shared by servers with bare names). */
  serversWithPrefix(prefix: string): CatalogServer[];
}

export function buildCatalog(servers: readonly CatalogServer[]): AggregatedCatalog {
  const ordered = [...servers].sort((a, b) => a.registeredAt - b.registeredAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const conflicts: Conflict[] = [];
  const tools = new Map<string, RoutedItem>();
  const prompts = new Map<string, RoutedItem>();
  const resources = new Map<string, ResourceRoute>();
  const templates = new Map<string, TemplateRoute>();

  // The gateway's own tool names are claimed first, so a bare upstream name like `call` is a recorded conflict.
  for (const name of GATEWAY_TOOL_NAMES) tools.set(name, { name, serverId: GATEWAY_SERVER_ID, upstreamName: name, definition: { name } });
  for (const server of ordered) {
    const prefix = exposedPrefix(server);
    addNamed("tool", server, prefix, server.catalog.tools, tools, conflicts);
    addNamed("prompt", server, prefix, server.catalog.prompts, prompts, conflicts);
    for (const resource of server.catalog.resources) {
      claim("resource", resource.uri, server.id, { serverId: server.id, definition: resource }, resources, conflicts);
    }
    for (const template of server.catalog.resourceTemplates) {
      const route = { serverId: server.id, definition: template };
      claim("resourceTemplate", template.uriTemplate, server.id, route, templates, conflicts);
    }
  }

  for (const name of GATEWAY_TOOL_NAMES) tools.delete(name);
  const byId = new Map(ordered.map((s) => [s.id, s]));
  const resourceTarget = (uri: string) => {
    const listed = resources.get(uri);
    if (listed) return { serverId: listed.serverId };
    const template = matchTemplate([...templates.values()], uri);
    return template && { serverId: template.serverId, uriTemplate: template.definition.uriTemplate };
  };
  const listed = <T extends { serverId: string }>(routes: Map<string, T>) => [...routes.values()].filter((r) => byId.get(r.serverId)?.available);
  return {
    tools: listed(tools),
    prompts: listed(prompts),
    resources: listed(resources),
    resourceTemplates: listed(templates),
    conflicts,
    tool: (name) => tools.get(name),
    prompt: (name) => prompts.get(name),
    resourceServer: (uri) => resourceTarget(uri)?.serverId,
    resourceTarget,
    templateServer: (uriTemplate) => templates.get(uriTemplate)?.serverId,
    server: (id) => byId.get(id),
    servers: ordered,
    serversWithPrefix: (prefix) => ordered.filter((s) => exposedPrefix(s) === prefix),
  };
}

/** A human sentence per withheld item, for a server's status detail. */
export function describeConflicts(conflicts: readonly Conflict[], serverId: string): string | undefined {
  const own = conflicts.filter((c) => c.serverId === serverId);
  if (own.length === 0) return undefined;
  const names = own.map((c) => `${c.kind} "${c.name}" (kept by server "${c.keptBy}")`);
  return `unavailable because the name is already taken: ${names.join(", ")}; give this server a different prefix`;
}

function matchTemplate(templates: readonly TemplateRoute[], uri: string): TemplateRoute | undefined {
  for (const template of templates) {
    try {
      if (new UriTemplate(template.definition.uriTemplate).match(uri)) return template;
    } catch {
      // An upstream's malformed template routes nothing; the other servers' templates still may.
    }
  }
  return undefined;
}

function addNamed(
  kind: "tool" | "prompt",
  server: CatalogServer,
  prefix: string,
  items: readonly Item[],
  into: Map<string, RoutedItem>,
  conflicts: Conflict[],
): void {
  for (const item of items) {
    const name = exposedName(prefix, item.name);
    const route: RoutedItem = { name, serverId: server.id, upstreamName: item.name, definition: { ...item, name } };
    claim(kind, name, server.id, route, into, conflicts);
  }
}

function claim<T extends { serverId: string }>(
  kind: Conflict["kind"],
  key: string,
  serverId: string,
  route: T,
  into: Map<string, T>,
  conflicts: Conflict[],
): void {
  const holder = into.get(key);
  if (holder === undefined) {
    into.set(key, route);
  } else if (holder.serverId !== serverId) {
    conflicts.push({ kind, name: key, serverId, keptBy: holder.serverId });
  }
  // The same server listing one name twice is the upstream's own bug; its first definition stands.
}
