/**
 * @module What one caller may see of its tenant's aggregated catalog: the listings filtered by policy, so
 * tools/list, prompts/list, resources/list and the gateway's discovery tools show exactly what the caller may
 * use. Pure.
 *
 * An item is listed when some allow rule could let the caller use it (conditions on arguments are judged at call
 * time, so a tool allowed only for some arguments is listed) and no unconditional deny rule forbids it.
 */
import type { PolicyPrincipal, CompiledPolicies, PolicySubject } from "../policy/engine.ts";
import type { AggregatedCatalog, CatalogServer, ResourceRoute, RoutedItem, TemplateRoute } from "./catalog.ts";

export function toolSubject(route: RoutedItem): PolicySubject {
  return { server: route.serverId, kind: "tool", name: route.upstreamName };
}

export function promptSubject(route: RoutedItem): PolicySubject {
  return { server: route.serverId, kind: "prompt", name: route.upstreamName };
}

export function resourceSubject(serverId: string, uriOrTemplate: string): PolicySubject {
  return { server: serverId, kind: "resource", name: uriOrTemplate };
}

export interface VisibleCatalog {
  tools: RoutedItem[];
  prompts: RoutedItem[];
  resources: ResourceRoute[];
  resourceTemplates: TemplateRoute[];
}

export function visibleCatalog(catalog: AggregatedCatalog, principal: PolicyPrincipal, policies: CompiledPolicies): VisibleCatalog {
  const may = (subject: PolicySubject) => policies.visible(principal, subject);
  return {
    tools: catalog.tools.filter((t) => may(toolSubject(t))),
    prompts: catalog.prompts.filter((p) => may(promptSubject(p))),
    resources: catalog.resources.filter((r) => may(resourceSubject(r.serverId, r.definition.uri))),
    resourceTemplates: catalog.resourceTemplates.filter((t) => may(resourceSubject(t.serverId, t.definition.uriTemplate))),
  };
}

/**
 * Whether the caller may use anything a server offers (by its last reported catalog, so a server that is down
 * stays visible to those who use it): a server the caller may use nothing of does not exist for that caller.
 */
export function serverVisible(server: CatalogServer, principal: PolicyPrincipal, policies: CompiledPolicies): boolean {
  const usable = usableCounts(server, principal, policies);
  return usable.tools + usable.prompts + usable.resources > 0;
}

/** How many of a server's tools, prompts and resources (listed resources and templates) the caller may use. */
export function usableCounts(server: CatalogServer, principal: PolicyPrincipal, policies: CompiledPolicies) {
  const may = (kind: PolicySubject["kind"], name: string) => policies.visible(principal, { server: server.id, kind, name });
  const { tools, prompts, resources, resourceTemplates } = server.catalog;
  return {
    tools: tools.filter((t) => may("tool", t.name)).length,
    prompts: prompts.filter((p) => may("prompt", p.name)).length,
    resources: resources.filter((r) => may("resource", r.uri)).length + resourceTemplates.filter((t) => may("resource", t.uriTemplate)).length,
  };
}
