/**
 * @module The MCP server agents talk to: one low-level SDK `Server` per request whose handlers list what the
 * caller may use of the tenant's aggregated catalog, authorize every call by policy (the decision names its rule),
 * and forward it to the server that owns the name.
 *
 * It depends on a {@link GatewayBackend} (catalog + relay), not on D1 or Durable Objects, so the same handlers are
 * exercised with a real backend in workerd and end to end.
 */
import { PROTOCOL_VERSION_META_KEY, ProtocolError, Server, type ServerContext } from "@modelcontextprotocol/server";
import { z } from "zod";
import type { CallOutcome } from "../connectors/connector-api.ts";
import type { RelayedNotification, RelayedRequest } from "../link/protocol.ts";
import type { AggregatedCatalog, CatalogServer, RoutedItem } from "./catalog.ts";
import { GatewayErrorCode } from "./errors.ts";
import { prefixOf } from "./namespacing.ts";
import { ADMIN_ROLE, GATEWAY_SERVER_ID } from "../config/schema.ts";
import type { CompiledPolicies, PolicyPrincipal, PolicySubject } from "../policy/engine.ts";
import { mayUseMetaTool, metaSubject, metaTool, MetaToolInputError, visibleMetaTools, type AuditTrail } from "./meta-tools.ts";
import { promptSubject, resourceSubject, serverVisible, toolSubject, visibleCatalog } from "./visibility.ts";
import {
  redactJson,
  redactMessage,
  redactText,
  type CompiledRedaction,
  type Hasher,
  type RedactionPlan,
  type RedactionTarget,
} from "../redact/engine.ts";
import { clip } from "../text.ts";
import type { LimitVerdict } from "../ratelimit/charge.ts";
import type { UsageParams, UsageReport } from "../metering/usage-store.ts";
import { describeLimit, retryAfterSeconds } from "../ratelimit/limits.ts";
import type { AuditFields } from "../audit/entry.ts";
import { CallAudit, type AuditOrigin, type CallOutcome as AuditedOutcome } from "./call-audit.ts";
import { decodeCursor, paginate } from "./pagination.ts";

export const GATEWAY_INFO = { name: "mcp-gateway", version: "0.1.0" } as const;

/** What a denial of an admin-only gateway tool names as its rule (no policy of the tenant's decided it). */
const ADMIN_ONLY_RULE = { ruleId: "gateway:admin-only", policyId: null };

/** What the MCP handlers need from the platform. */
export interface GatewayBackend {
  /** The caller's tenant's catalog: every enabled server, with which of them take calls now. */
  catalog(): Promise<AggregatedCatalog>;
  /** The tenant's compiled policies (the applied config's, plus the gateway's built-in rule). */
  policies(): Promise<CompiledPolicies>;
  /** The tenant's compiled redaction rules. */
  redaction(): Promise<CompiledRedaction>;
  /** The tenant's keyed hash for the `hash` redaction action. */
  hasher: Hasher;
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
  /**
   * Appends one entry to the tenant's audit chain; resolves once it is durable. When it cannot be written it throws
   * a ProtocolError if the tenant's audit mode is `closed`, and resolves (having logged) if it is `open`.
   */
  audit(fields: AuditFields): Promise<void>;
  /** Reads of the tenant's audit trail, for the gateway's audit tools. */
  auditTrail: AuditTrail;
  /**
   * Charges one call to the caller's rate limits and quotas (src/ratelimit): the consumer's bucket always, the
   * target's server and tool buckets when it names them. Never throws: an unreachable limiter is a refusal.
   */
  charge(target: { server: string | null; tool: string | null }): Promise<LimitVerdict>;
  /** The tenant's usage report (src/metering/usage-store.ts `currentUsage`), priced with its metering config. */
  usage(params: UsageParams): Promise<{ ok: true; report: UsageReport } | { ok: false; error: string }>;
}

/** Who is calling, from the transport (never from a tool argument). */
export interface Caller {
  principal: PolicyPrincipal;
  /** The request's `MCP-Protocol-Version` header, for 2025-era requests that carry it. */
  protocolVersionHeader?: string | undefined;
  /** Who and where, as recorded in the audit chain. */
  origin: AuditOrigin;
}

type Params = Record<string, unknown>;

/** From this revision on, bad tool arguments are tool execution errors (`isError`), not JSON-RPC errors (SEP-1303). */
const INPUT_ERRORS_AS_RESULTS_SINCE = "2025-11-25";

/** Request `_meta` as the spec's request schemas read it: a progress token, other keys kept as they are. */
const requestMeta = z.looseObject({ progressToken: z.union([z.string(), z.number().int()]).optional() }).optional();
/** String-valued arguments of a prompt or of a completion's context. */
const stringArguments = z.record(z.string(), z.string());

/**
 * The params of the methods whose handlers validate their own (registered with {@link ANY_PARAMS}): the spec's
 * request schemas (MCP 2025-11-25 and 2026-07-28 agree on them), unknown keys stripped as the SDK's would. A
 * failure is -32602 with a short message naming the first bad field (see {@link validParams}).
 */
const PARAMS = {
  "prompts/get": z.object({ _meta: requestMeta, name: z.string(), arguments: stringArguments.optional() }),
  "resources/read": z.object({ _meta: requestMeta, uri: z.string() }),
  "completion/complete": z.object({
    _meta: requestMeta,
    ref: z.discriminatedUnion("type", [
      z.object({ type: z.literal("ref/prompt"), name: z.string() }),
      z.object({ type: z.literal("ref/resource"), uri: z.string() }),
    ]),
    argument: z.object({ name: z.string(), value: z.string() }),
    context: z.object({ arguments: stringArguments.optional() }).optional(),
  }),
};

/**
 * What the SDK's three-argument `setRequestHandler` validates for these methods: anything (the SDK passes a copy of
 * the request's params, `{}` when it has none). With the SDK's two-argument form, a request that fails the spec
 * schema is answered -32603 with zod's whole issue dump (SDK 2.4) instead of -32602.
 */
const ANY_PARAMS = { params: z.unknown() };

/**
 * `raw` checked against the method's params schema, or a -32602 ProtocolError naming the first bad field — short
 * and stable: never zod's wording, never a value the agent sent, a hostile key in the path clipped.
 */
function validParams<M extends keyof typeof PARAMS>(method: M, raw: unknown): z.output<(typeof PARAMS)[M]> {
  const parsed = PARAMS[method].safeParse(raw);
  if (parsed.success) return parsed.data as z.output<(typeof PARAMS)[M]>;
  const issue = parsed.error.issues[0];
  const path = issue?.path.length ? echo(issue.path.map(String).join(".")) : "params";
  let problem = "is invalid";
  if (issue?.code === "invalid_type") {
    problem = valueAt(raw, issue.path) === undefined ? "is required" : `must be ${EXPECTED[issue.expected] ?? `of type ${issue.expected}`}`;
  } else if (issue?.code === "invalid_union" && "options" in issue && Array.isArray(issue.options)) {
    problem = `must be ${issue.options.map((option) => JSON.stringify(option)).join(" or ")}`;
  }
  throw new ProtocolError(GatewayErrorCode.InvalidParams, `Invalid params for ${method}: "${path}" ${problem}`);
}

const EXPECTED: Record<string, string> = { string: "a string", object: "an object", record: "an object", number: "a number", int: "an integer" };

/** The value at `path` in `value`, own properties only (undefined when absent). */
function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let at = value;
  for (const key of path) {
    if (typeof at !== "object" || at === null || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

export function createGatewayServer(backend: GatewayBackend, caller: Caller): Server {
  const { principal } = caller;
  const server = new Server(GATEWAY_INFO, {
    capabilities: { tools: {}, resources: {}, prompts: {}, completions: {}, logging: {} },
    instructions:
      "Tools, resources and prompts of the MCP servers your organisation runs behind this gateway, as far as your policies allow. Tool and prompt names are <server>__<name> unless a server keeps its own names. The gateway's own tools: list_tools, list_servers, server_status, call, usage; for administrators also audit_log, audit_stats, audit_verify.",
  });

  /** Whether the caller may use anything of a server: only such servers are named in hints. */
  const mayUseServer = (policies: CompiledPolicies) => (server: CatalogServer) => serverVisible(server, principal, policies);

  const view = async () => {
    const [catalog, policies] = await Promise.all([backend.catalog(), backend.policies()]);
    return { catalog, policies };
  };
  /** What redaction does to one call of one item, each way. */
  const redactionFor = async (target: RedactionTarget): Promise<CallRedaction> => {
    const compiled = await backend.redaction();
    return { request: compiled.plan("request", target), response: compiled.plan("response", target), hasher: backend.hasher };
  };
  /** The listings: filtered only where a list is asked for, so a call pays for one decision, not one per item. */
  const listed = async () => {
    const { catalog, policies } = await view();
    return { policies, visible: visibleCatalog(catalog, principal, policies) };
  };

  /**
   * Runs one call of `method` and records it in the audit chain, whatever its outcome, before the agent gets the
   * answer (the chain's ordering guarantee). When the entry cannot be written in `closed` mode, a result is
   * withheld and the audit failure answered instead; a failed call keeps its own error. `params` (the request's, as
   * the agent sent them) and the outcome are measured for the entry's requestBytes and responseBytes.
   */
  const audited = async <T>(method: string, params: unknown, run: (audit: CallAudit) => Promise<T>): Promise<T> => {
    const audit = new CallAudit(method, caller.origin, Date.now(), params);
    let outcome: AuditedOutcome;
    try {
      outcome = { ok: true, result: await run(audit) };
    } catch (error) {
      outcome = { ok: false, error };
      // A call that failed before it was charged (bad `call` arguments, a denied `call`, a platform failure) still
      // pays the consumer's token: nothing reaches the audit log for free.
      if (!audit.charged) {
        audit.charged = true;
        await backend.charge({ server: null, tool: null });
      }
    }
    const redaction = await backend.redaction().catch(() => undefined);
    let fields: AuditFields;
    try {
      fields = audit.fields(outcome, redaction, backend.hasher, Date.now());
    } catch {
      // Whatever a redaction rule did to the payloads, the call still leaves its entry: without them (withheld).
      fields = audit.fields(outcome, undefined, backend.hasher, Date.now());
    }
    try {
      await backend.audit(fields);
    } catch (auditError) {
      if (outcome.ok) throw auditError;
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.result as T;
  };

  /**
   * Charges the call once (whatever `call` nests) before policy decides, so denied and unknown calls pay too; a
   * refusal is a RateLimited error with when to retry, or Unavailable when the limiter cannot be asked (fail closed).
   */
  const charge = async (audit: CallAudit, target: { server: string | null; tool: string | null }): Promise<void> => {
    if (audit.charged) return;
    audit.charged = true;
    const verdict = await backend.charge(target);
    if (verdict.admitted) return;
    if (verdict.kind === "unavailable") {
      throw new ProtocolError(GatewayErrorCode.Unavailable, "The gateway could not check your rate limit, so the call was not made; retry shortly");
    }
    const retryAfter = retryAfterSeconds(verdict.retryAfterMs);
    throw new ProtocolError(GatewayErrorCode.RateLimited, `Rate limited by ${describeLimit(verdict.limit)}; retry in ${retryAfter} s`, {
      retryAfterMs: verdict.retryAfterMs,
      retryAfterSeconds: retryAfter,
      limit: verdict.limit,
      kind: verdict.kind,
    });
  };

  /** The route of a name, charged: an unknown name still costs the consumer's token (and may be refused as such). */
  const chargedRoute = async (audit: CallAudit, find: () => RoutedItem): Promise<RoutedItem> => {
    let route: RoutedItem;
    try {
      route = find();
    } catch (unknown) {
      await charge(audit, { server: null, tool: null });
      throw unknown;
    }
    return route;
  };

  /** Refuses unless policy allows; the error names the rule that decided. The decision is noted for the audit. */
  const authorize = (policies: CompiledPolicies, subject: PolicySubject, args: unknown, audit: CallAudit) => {
    const decision = policies.decide(principal, subject, args);
    audit.server = subject.server;
    audit.tool = subject.name;
    audit.ruleId = decision.ruleId;
    if (decision.allowed) return;
    throw new ProtocolError(GatewayErrorCode.Denied, `${describeSubject(subject)} is not allowed: ${decision.reason}`, {
      ruleId: decision.ruleId,
      policyId: decision.policyId,
    });
  };

  /** tools/call of an exposed name: a gateway tool, or an upstream tool through policy and relay. */
  const callTool = async (params: Params & { name: string }, ctx: ServerContext, audit: CallAudit): Promise<Params> => {
    // Through `call`, the entry describes the tool actually called: the inner call overwrites what the outer noted.
    audit.tool = params.name;
    audit.arguments = params.arguments ?? null;
    audit.server = null;
    audit.target = undefined;
    const { catalog, policies } = await view();
    const meta = metaTool(params.name);
    if (meta) {
      // `call` is charged as the tool it calls.
      audit.server = GATEWAY_SERVER_ID;
      if (params.name !== "call") await charge(audit, { server: GATEWAY_SERVER_ID, tool: params.name });
      authorize(policies, metaSubject(params.name), params.arguments, audit);
      if (!mayUseMetaTool(meta, principal)) {
        audit.ruleId = ADMIN_ONLY_RULE.ruleId;
        throw new ProtocolError(GatewayErrorCode.Denied, `the gateway's tool "${params.name}" is for administrators (role ${ADMIN_ROLE})`, ADMIN_ONLY_RULE);
      }
      try {
        return await meta.run(params.arguments, {
          catalog,
          principal,
          policies,
          callTool: (name, args) => callTool({ ...params, name, arguments: args }, ctx, audit),
          audit: backend.auditTrail,
          usage: (params) => backend.usage(params),
        });
      } catch (error) {
        if (!(error instanceof MetaToolInputError)) throw error;
        if (protocolVersion(params, caller) >= INPUT_ERRORS_AS_RESULTS_SINCE) {
          return { content: [{ type: "text", text: error.message }], isError: true };
        }
        throw new ProtocolError(GatewayErrorCode.InvalidParams, error.message);
      }
    }
    return callUpstream("tool", params, ctx, audit);
  };

  /** tools/call or prompts/get of an upstream's item by its exposed name: route, policy, availability, relay. */
  const callUpstream = async (kind: "tool" | "prompt", params: Params & { name: string }, ctx: ServerContext, audit: CallAudit): Promise<Params> => {
    const { catalog, policies } = await view();
    const route = await chargedRoute(audit, () => routeOf(catalog, kind, params.name, mayUseServer(policies)));
    // Noted before charging, so a limited call is recorded (and counted in usage) against what it called.
    audit.server = route.serverId;
    audit.tool = route.upstreamName;
    // Tool rules of the limits name tools; a prompt pays its server's and the consumer's buckets.
    await charge(audit, { server: route.serverId, tool: kind === "tool" ? route.upstreamName : null });
    audit.target = { server: route.serverId, name: route.upstreamName };
    authorize(policies, kind === "tool" ? toolSubject(route) : promptSubject(route), params.arguments, audit);
    assertAvailable(catalog, route.serverId);
    const redaction = await redactionFor(audit.target);
    return relay(backend, route.serverId, kind === "tool" ? "tools/call" : "prompts/get", { ...params, name: route.upstreamName }, ctx, redaction);
  };

  server.setRequestHandler("tools/list", async (request) => {
    const [{ policies, visible }, redaction] = await Promise.all([listed(), backend.redaction()]);
    // The gateway's tools first; the catalog never routes their names to an upstream (see GATEWAY_TOOL_NAMES).
    const own = visibleMetaTools(principal, policies);
    const upstream = visible.tools.map((t) => withoutOutputSchemaIfRedacted(t.definition, redaction.plan("response", { server: t.serverId, name: t.upstreamName })));
    return listPage("tools", [...own, ...upstream], request.params?.cursor);
  });

  server.setRequestHandler("tools/call", async (request, ctx) =>
    audited("tools/call", request.params, (audit) => callTool(request.params as Params & { name: string }, ctx, audit)) as never,
  );

  server.setRequestHandler("prompts/list", async (request) =>
    listPage("prompts", (await listed()).visible.prompts.map((p) => p.definition), request.params?.cursor),
  );

  // prompts/get, resources/read and completion/complete validate their own params (see PARAMS): the SDK's
  // two-argument registration answers invalid params as -32603 with zod's issue dump.
  server.setRequestHandler("prompts/get", ANY_PARAMS, async (raw, ctx) => {
    const params = validParams("prompts/get", raw);
    return audited("prompts/get", raw, async (audit) => {
      audit.tool = params.name;
      audit.arguments = params.arguments ?? null;
      return callUpstream("prompt", params, ctx, audit);
    }) as never;
  });

  server.setRequestHandler("resources/list", async (request) =>
    listPage("resources", (await listed()).visible.resources.map((r) => r.definition), request.params?.cursor),
  );

  server.setRequestHandler("resources/templates/list", async (request) =>
    listPage("resourceTemplates", (await listed()).visible.resourceTemplates.map((t) => t.definition), request.params?.cursor),
  );

  server.setRequestHandler("resources/read", ANY_PARAMS, async (raw, ctx) => {
    const params = validParams("resources/read", raw);
    return audited("resources/read", raw, async (audit) => {
      audit.tool = params.uri;
      const { catalog, policies } = await view();
      const target = catalog.resourceTarget(params.uri);
      if (target) audit.server = target.serverId;
      await charge(audit, { server: target?.serverId ?? null, tool: null });
      if (!target) {
        throw new ProtocolError(GatewayErrorCode.UnknownTarget, `Unknown resource "${echo(params.uri)}": no server lists it or has a template that matches it`, { uri: params.uri });
      }
      audit.target = { server: target.serverId, name: params.uri };
      // A read through a template is judged on the URI and on the template: a deny written for either holds.
      authorize(policies, resourceSubject(target.serverId, params.uri), undefined, audit);
      if (target.uriTemplate !== undefined) authorize(policies, resourceSubject(target.serverId, target.uriTemplate), undefined, audit);
      audit.tool = params.uri;
      assertAvailable(catalog, target.serverId);
      const redaction = await redactionFor(audit.target);
      return relay(backend, target.serverId, "resources/read", params, ctx, redaction);
    }) as never;
  });

  server.setRequestHandler("completion/complete", ANY_PARAMS, async (raw, ctx) => {
    const params = validParams("completion/complete", raw);
    return audited("completion/complete", raw, async (audit) => {
      const { catalog, policies } = await view();
      const ref = params.ref;
      audit.arguments = completionArguments(params);
      if (ref.type === "ref/prompt") {
        audit.tool = ref.name;
        const name = ref.name;
        const route = await chargedRoute(audit, () => routeOf(catalog, "prompt", name, mayUseServer(policies)));
        audit.server = route.serverId;
        audit.tool = route.upstreamName;
        await charge(audit, { server: route.serverId, tool: null });
        audit.target = { server: route.serverId, name: route.upstreamName };
        // Completing an argument is using the prompt with the arguments known so far: a conditional allow must hold
        // for them, or completion would list values (say, other customers' ids) the caller may not use.
        authorize(policies, promptSubject(route), completionArguments(params), audit);
        assertAvailable(catalog, route.serverId);
        const redaction = await redactionFor(audit.target);
        return relay(backend, route.serverId, "completion/complete", { ...params, ref: { ...ref, name: route.upstreamName } }, ctx, redaction);
      }
      audit.tool = ref.uri;
      const serverId = catalog.templateServer(ref.uri) ?? catalog.resourceServer(ref.uri);
      if (serverId) audit.server = serverId;
      await charge(audit, { server: serverId ?? null, tool: null });
      if (!serverId) {
        throw new ProtocolError(GatewayErrorCode.UnknownTarget, `Unknown resource template "${echo(ref.uri)}": no server lists it`);
      }
      audit.target = { server: serverId, name: ref.uri };
      authorize(policies, resourceSubject(serverId, ref.uri), undefined, audit);
      assertAvailable(catalog, serverId);
      const redaction = await redactionFor(audit.target);
      return relay(backend, serverId, "completion/complete", params, ctx, redaction);
    }) as never;
  });

  return server;
}

/**
 * A tool whose results redaction may rewrite is listed without its `outputSchema`: a masked or dropped field would
 * no longer match it, and clients that validate structured content against it would reject the whole result.
 */
function withoutOutputSchemaIfRedacted(definition: Record<string, unknown>, plan: RedactionPlan | undefined): Record<string, unknown> {
  if (!plan || definition.outputSchema === undefined) return definition;
  const { outputSchema: _dropped, ...rest } = definition;
  return rest;
}

function describeSubject(subject: PolicySubject): string {
  const what = subject.kind === "resource" ? `resource "${echo(subject.name)}"` : `${subject.kind} "${echo(subject.name)}"`;
  return subject.server === GATEWAY_SERVER_ID ? `the gateway's ${what}` : `${what} of server "${subject.server}"`;
}

/** The protocol revision of this request: the 2026-07-28 envelope's, else the 2025-era header's, else the oldest. */
function protocolVersion(params: Params, caller: Caller): string {
  const meta = params._meta as Params | undefined;
  const fromEnvelope = meta?.[PROTOCOL_VERSION_META_KEY];
  return typeof fromEnvelope === "string" ? fromEnvelope : (caller.protocolVersionHeader ?? "2025-03-26");
}

/** One page of an aggregated list, as `{ [key]: items, nextCursor? }`. */
function listPage(key: string, items: readonly unknown[], cursor: unknown): never {
  const page = paginate(items, decodeCursor(cursor));
  // The SDK types each list result separately; the shape is the same for all four.
  return { [key]: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } as never;
}

/**
 * Forwards one request and maps the outcome back: the result as the upstream sent it, or its JSON-RPC error with its
 * code — each way through the call's redaction plans, when a rule applies. Progress is re-addressed to the agent's
 * own progress token; without one it is dropped.
 */
async function relay(backend: GatewayBackend, serverId: string, method: string, params: Params, ctx: ServerContext, redaction: CallRedaction): Promise<Params> {
  const progressToken = ctx.mcpReq._meta?.progressToken;
  const { request: before, response: after, hasher } = redaction;
  // Returns the send's promise so the relay can deliver the result only after every notification went out.
  const onNotification = async (notification: RelayedNotification): Promise<void> => {
    if (notification.method === "notifications/progress") {
      if (progressToken === undefined) return;
      const progress: Params = { ...notification.params, progressToken };
      await ctx.mcpReq.notify({ method: notification.method, params: after ? redactMessage(after, progress, hasher).value : progress } as never);
    } else if (notification.method === "notifications/message") {
      const params = after ? redactMessage(after, notification.params as Params, hasher).value : notification.params;
      await ctx.mcpReq.notify({ method: notification.method, params } as never);
    }
  };
  // Everything but what routes the call (name, uri, ref) and its progress token: arguments, completion values,
  // follow-up input responses, _meta.
  const sent = before ? redactMessage(before, params, hasher).value : params;
  const outcome = await backend.relay(serverId, { method, params: upstreamParams(sent) }, onNotification, ctx.mcpReq.signal);
  if (!outcome.ok) {
    const { code, message, data } = outcome.error;
    if (!after) throw new ProtocolError(code, message, data);
    throw new ProtocolError(code, redactText(after, message, hasher).value, data === undefined ? undefined : redactJson(after, data, hasher).value);
  }
  return after ? redactMessage(after, outcome.result, hasher).value : outcome.result;
}

/** The redaction of one call: a plan each way (undefined = nothing to do) and the tenant's keyed hash. */
interface CallRedaction {
  request: RedactionPlan | undefined;
  response: RedactionPlan | undefined;
  hasher: Hasher;
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
 * The route of a tool or prompt name, or Unknown with a hint. Availability is checked by the caller after policy,
 * so a caller learns nothing about the health of what it may not use; hints name only servers the caller may use,
 * so for anything else "no such server" and "a server you may not use" read the same.
 */
function routeOf(catalog: AggregatedCatalog, kind: "tool" | "prompt", name: string, mayUse: (server: CatalogServer) => boolean): RoutedItem {
  const route = kind === "tool" ? catalog.tool(name) : catalog.prompt(name);
  if (route) return route;
  const prefix = prefixOf(name);
  const owners = prefix === undefined ? [] : catalog.serversWithPrefix(prefix).filter(mayUse);
  const hint =
    prefix === undefined
      ? `list them with ${kind}s/list`
      : owners.length === 0
        ? `no server of yours exposes names with the prefix "${echo(prefix)}"`
        : `server "${owners[0]?.id}" has no ${kind} by that name; list them with ${kind}s/list`;
  throw new ProtocolError(GatewayErrorCode.UnknownTarget, `Unknown ${kind} "${echo(name)}": ${hint}`);
}

/** The arguments a completion request knows: those already given, and the partial value being completed. */
function completionArguments(params: { argument?: { name?: unknown; value?: unknown }; context?: { arguments?: Record<string, unknown> } }): Record<string, unknown> {
  // fromEntries defines own properties, so a hostile name such as "__proto__" is just a key.
  const given = Object.entries(params.context?.arguments ?? {});
  return Object.fromEntries(typeof params.argument?.name === "string" ? [...given, [params.argument.name, params.argument.value]] : given);
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
