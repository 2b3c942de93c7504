/**
 * @module The edge↔connector link protocol: every frame that crosses the WebSocket between the Connector
 * Durable Object and a connector process, as zod schemas and the types inferred from them.
 *
 * Platform-free: imported by the Worker (src/connectors/) and by the Node connector (connector/), so the two
 * sides cannot drift apart. Every received frame goes through {@link parseFrame}; nothing is trusted unparsed.
 */
import { z } from "zod";

/** Bumped when a frame changes incompatibly; the edge refuses a `hello` with another major version. */
export const LINK_PROTOCOL_VERSION = 1;

/**
 * The one message size limit, end to end: a POST body on /mcp, a JSON-RPC message relayed over the link, and a
 * message read from a child's stdout. 4 MiB is the MCP SDK's own default body limit and well inside what a
 * Durable Object WebSocket delivers (measured: 20 MB arrived, 40 MB never did).
 */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * The edge's bound on one relayed call. The connector enforces each server's own (shorter or equal) timeout; this
 * only guarantees that no agent waits forever on a connector that stopped answering without closing its socket.
 */
export const EDGE_CALL_DEADLINE_MS = 10 * 60 * 1000;

/** A frame wraps one message plus a small envelope (ids, server id, type). */
export const MAX_FRAME_BYTES = MAX_MESSAGE_BYTES + 64 * 1024;

/**
 * Heartbeats are constant strings so the Durable Object can answer them with
 * `setWebSocketAutoResponse` without waking from hibernation.
 */
export const HEARTBEAT_PING = '{"type":"ping"}';
export const HEARTBEAT_PONG = '{"type":"pong"}';

/**
 * Server ids and prefixes: safe in tool names (MCP allows [A-Za-z0-9_.-]), free of the `__` separator and not
 * ending in `_`, so `<prefix>__<name>` splits at exactly one place (`a_` + `__x` would read as `a` + `___x`).
 */
export const SERVER_ID_PATTERN = /^(?!.*__)(?!.*_$)[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The gateway's own tools (list_tools, call, …) live on this server id, which policy's built-in rule allows: no real server may take it. */
export const GATEWAY_SERVER_ID = "gateway";

export const serverIdSchema = z
  .string()
  .regex(SERVER_ID_PATTERN, "must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit, without '__' and not ending in '_'")
  .refine((id) => id !== GATEWAY_SERVER_ID, `"${GATEWAY_SERVER_ID}" is reserved for the gateway's own tools; choose another id`);

/** A JSON-RPC id as MCP allows it. */
const jsonRpcIdSchema = z.union([z.string(), z.number()]);

/** Tools, resources, templates and prompts are relayed as the upstream sent them; only their keys are checked. */
const namedItem = z.looseObject({ name: z.string().min(1).max(256) });
const resourceItem = z.looseObject({ uri: z.string().min(1), name: z.string() });
const resourceTemplateItem = z.looseObject({ uriTemplate: z.string().min(1), name: z.string() });

export const serverCatalogSchema = z.object({
  tools: z.array(namedItem),
  resources: z.array(resourceItem),
  resourceTemplates: z.array(resourceTemplateItem),
  prompts: z.array(namedItem),
});
export type ServerCatalog = z.infer<typeof serverCatalogSchema>;

export const serverHealthSchema = z.enum(["starting", "healthy", "unhealthy", "stopped"]);
export type ServerHealth = z.infer<typeof serverHealthSchema>;

/** What a connector says about one of its servers: identity, health and what it offers. */
export const serverReportSchema = z.object({
  id: serverIdSchema,
  name: z.string().max(256),
  /** How the server's tools and prompts are named to agents: absent = `<id>__`, "" = bare names, else `<prefix>__`. */
  prefix: z.union([serverIdSchema, z.literal("")]).optional(),
  health: serverHealthSchema,
  /**
   * Why the server is not healthy (crash loop, failed start), in words an operator can act on. Never the server's
   * own output (stderr stays in the connector's log on its host: it may hold anything the server read or printed).
   */
  detail: z.string().max(2000).optional(),
  /** The server's per-call timeout: the edge waits this long (plus a margin) before failing a call itself. */
  timeoutMs: z.number().int().positive().max(EDGE_CALL_DEADLINE_MS).optional(),
  catalog: serverCatalogSchema,
});
export type ServerReport = z.infer<typeof serverReportSchema>;

/** A JSON-RPC request as relayed to an upstream server (the id is the link's call id, not the agent's). */
export const relayedRequestSchema = z.object({
  method: z.string().min(1).max(256),
  params: z.record(z.string(), z.unknown()).optional(),
});
export type RelayedRequest = z.infer<typeof relayedRequestSchema>;

export const relayedNotificationSchema = z.object({
  method: z.string().min(1).max(256),
  params: z.record(z.string(), z.unknown()).optional(),
});
export type RelayedNotification = z.infer<typeof relayedNotificationSchema>;

export const rpcErrorSchema = z.object({
  code: z.number().int(),
  message: z.string(),
  data: z.unknown().optional(),
});
export type RpcError = z.infer<typeof rpcErrorSchema>;

const callIdSchema = z.string().min(1).max(128);

// ── connector → edge ────────────────────────────────────────────────────────────────────────────────────────────

/** First frame on every socket: who this replica is and the full state of its servers. */
export const helloFrameSchema = z.object({
  type: z.literal("hello"),
  protocol: z.number().int(),
  connectorVersion: z.string().max(64),
  /** Distinguishes replicas of one connector (several hosts may run the same connector id). */
  replicaId: z.string().min(1).max(128),
  /** How often this replica sends HEARTBEAT_PING; the edge treats a replica silent for 3 intervals as gone. */
  heartbeatMs: z.number().int().min(100).max(300_000).optional(),
  servers: z.array(serverReportSchema).max(256),
});

/** A server's health or catalog changed (crash, restart, list_changed). */
export const statusFrameSchema = z.object({
  type: z.literal("status"),
  server: serverReportSchema,
});

/** The final answer to one relayed call: the upstream's result or its JSON-RPC error, exactly one of them. */
export const resultFrameSchema = z
  .object({
    type: z.literal("result"),
    callId: callIdSchema,
    result: z.record(z.string(), z.unknown()).optional(),
    error: rpcErrorSchema.optional(),
  })
  .refine((frame) => (frame.result === undefined) !== (frame.error === undefined), {
    message: "a result frame carries exactly one of result and error",
  });

/**
 * A notification the upstream sent while serving a call (progress, log message). Progress carries no token: the
 * connector uses its own upstream, and the edge substitutes the agent's.
 */
export const notificationFrameSchema = z.object({
  type: z.literal("notification"),
  callId: callIdSchema,
  message: relayedNotificationSchema,
});

// ── edge → connector ────────────────────────────────────────────────────────────────────────────────────────────

/** Relay one JSON-RPC request to one of the connector's servers. */
export const rpcFrameSchema = z.object({
  type: z.literal("rpc"),
  callId: callIdSchema,
  serverId: serverIdSchema,
  request: relayedRequestSchema,
});

/** The agent went away or the edge gave up: the connector cancels the upstream request. */
export const cancelFrameSchema = z.object({
  type: z.literal("cancel"),
  callId: callIdSchema,
  reason: z.string().max(500).optional(),
});

/** Answers a hello (`welcome`) so the connector knows it is registered. */
export const welcomeFrameSchema = z.object({
  type: z.literal("welcome"),
  tenant: z.string(),
  connector: z.string(),
});

// ── either way ──────────────────────────────────────────────────────────────────────────────────────────────────

/** A frame was refused (invalid, oversized, unknown server). `callId` is set when it concerns one call. */
export const errorFrameSchema = z.object({
  type: z.literal("error"),
  code: z.string().max(64),
  message: z.string().max(2000),
  callId: callIdSchema.optional(),
});

export const pingFrameSchema = z.object({ type: z.literal("ping") });
export const pongFrameSchema = z.object({ type: z.literal("pong") });

// Discriminated by `type`, so an invalid frame's error names the path inside the frame it claims to be.
export const connectorFrameSchema = z.discriminatedUnion("type", [
  helloFrameSchema,
  statusFrameSchema,
  resultFrameSchema,
  notificationFrameSchema,
  errorFrameSchema,
  pingFrameSchema,
  pongFrameSchema,
]);
export const edgeFrameSchema = z.discriminatedUnion("type", [
  rpcFrameSchema,
  cancelFrameSchema,
  welcomeFrameSchema,
  errorFrameSchema,
  pingFrameSchema,
  pongFrameSchema,
]);

export type HelloFrame = z.infer<typeof helloFrameSchema>;
export type StatusFrame = z.infer<typeof statusFrameSchema>;
export type ResultFrame = z.infer<typeof resultFrameSchema>;
export type NotificationFrame = z.infer<typeof notificationFrameSchema>;
export type RpcFrame = z.infer<typeof rpcFrameSchema>;
export type CancelFrame = z.infer<typeof cancelFrameSchema>;
export type WelcomeFrame = z.infer<typeof welcomeFrameSchema>;
export type ErrorFrame = z.infer<typeof errorFrameSchema>;
/** Frames a connector sends (and the edge receives). */
export type ConnectorFrame = z.infer<typeof connectorFrameSchema>;
/** Frames the edge sends (and a connector receives). */
export type EdgeFrame = z.infer<typeof edgeFrameSchema>;

/** Stable codes of error frames. */
export const LinkErrorCode = {
  InvalidFrame: "invalid_frame",
  FrameTooLarge: "frame_too_large",
  UnsupportedProtocol: "unsupported_protocol",
  UnknownServer: "unknown_server",
  ServerConflict: "server_conflict",
  /** Some of a server's tools/prompts/resources are withheld: an older server of the tenant has the same names. */
  NameConflict: "name_conflict",
  NotReady: "not_ready",
  /** An administrator revoked the connector's token: the edge closes the link and refuses reconnects. */
  Revoked: "revoked",
} as const;

export type ParsedFrame<T> = { ok: true; frame: T } | { ok: false; error: ErrorFrame };

/**
 * Parses one received text frame against a side's schema. Never throws: a frame that is too large, not JSON or not
 * a valid frame yields the error frame to answer with.
 */
export function parseFrame<S extends z.ZodType>(schema: S, data: string | ArrayBuffer): ParsedFrame<z.infer<S>> {
  if (typeof data !== "string") {
    return refuse(LinkErrorCode.InvalidFrame, "binary frames are not part of the link protocol; send JSON text");
  }
  if (exceedsBytes(data, MAX_FRAME_BYTES)) {
    return refuse(LinkErrorCode.FrameTooLarge, `frame exceeds the ${MAX_FRAME_BYTES} byte limit`);
  }
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return refuse(LinkErrorCode.InvalidFrame, "frame is not valid JSON");
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join(".")}` : "";
    const callId =
      typeof value === "object" && value !== null && typeof (value as { callId?: unknown }).callId === "string"
        ? ((value as { callId: string }).callId.slice(0, 128) || undefined)
        : undefined;
    return refuse(LinkErrorCode.InvalidFrame, `invalid frame${where}: ${issue?.message ?? "unknown error"}`, callId);
  }
  return { ok: true, frame: parsed.data };
}

/**
 * Serialises a frame, or reports that it exceeds the frame limit (the caller answers the call with an error instead
 * of sending it).
 */
export function encodeFrame(frame: ConnectorFrame | EdgeFrame): { ok: true; text: string } | { ok: false; bytes: number } {
  const text = JSON.stringify(frame);
  return exceedsBytes(text, MAX_FRAME_BYTES) ? { ok: false, bytes: utf8Length(text) } : { ok: true, text };
}

/**
 * Whether the text's UTF-8 encoding is longer than `limit` bytes. Every frame passes here, so the common small one
 * is decided from its length alone (a UTF-16 code unit encodes to 1-3 bytes); only a text near the limit is encoded.
 */
export function exceedsBytes(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return utf8Length(text) > limit;
}

export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

function refuse(code: string, message: string, callId?: string): { ok: false; error: ErrorFrame } {
  return { ok: false, error: callId ? { type: "error", code, message, callId } : { type: "error", code, message } };
}
