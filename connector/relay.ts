/**
 * @module The pure parts of relaying one call to an upstream server: rewriting the request's progress token,
 * turning the upstream's answer into the link's outcome, and the errors the connector answers with. Every message
 * says what happened and what to do, because it reaches an agent (and its operator) verbatim.
 */
import { MAX_MESSAGE_BYTES, type RelayedNotification, type RpcError } from "../src/link/protocol.ts";
import { JsonRpcErrorCode, UpstreamErrorCode } from "../src/link/errors.ts";

export type RelayOutcome = { result: Record<string, unknown> } | { error: RpcError };
export type NotificationSink = (message: RelayedNotification) => void;

type Params = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The params to send upstream: the agent's `_meta.progressToken` (meaningless upstream, and possibly colliding with
 * another consumer's) replaced by the connector's own token for this call.
 */
export function withProgressToken(params: Params | undefined, token: string): Params {
  const meta = isRecord(params?._meta) ? params._meta : {};
  return { ...params, _meta: { ...meta, progressToken: token } };
}

/** A progress notification as the edge receives it: without the connector's token (the edge puts the agent's). */
export function progressForEdge(params: Params): RelayedNotification {
  const { progressToken: _ignored, ...rest } = params;
  return { method: "notifications/progress", params: rest };
}

/** The progress token of an upstream `notifications/progress`, as the string the connector issued. */
export function progressTokenOf(params: unknown): string | undefined {
  if (!isRecord(params)) return undefined;
  const token = params.progressToken;
  return typeof token === "string" || typeof token === "number" ? String(token) : undefined;
}

/** The outcome of an upstream JSON-RPC response: its result, or its error passed through unchanged. */
export function outcomeOf(serverId: string, response: Record<string, unknown>): RelayOutcome {
  if ("error" in response) {
    const error = response.error;
    if (isRecord(error) && Number.isInteger(error.code) && typeof error.message === "string") {
      return { error: { code: error.code as number, message: error.message, ...("data" in error ? { data: error.data } : {}) } };
    }
    return { error: { code: JsonRpcErrorCode.InternalError, message: `server "${serverId}" answered with a malformed JSON-RPC error` } };
  }
  if (isRecord(response.result)) return { result: response.result };
  return { error: { code: JsonRpcErrorCode.InternalError, message: `server "${serverId}" answered with a result that is not a JSON object` } };
}

/** Errors the connector answers calls with (codes in src/link/errors.ts). */
export const relayError = {
  unknownServer: (serverId: string): RpcError => ({
    code: UpstreamErrorCode.Unavailable,
    message: `server "${serverId}" is not configured on this connector; add it to the servers: section of its gateway.yaml`,
  }),
  notRunning: (serverId: string, state: string, detail: string | undefined): RpcError => ({
    code: UpstreamErrorCode.Unavailable,
    message: `server "${serverId}" is not available (${state})${detail ? `: ${detail}` : ""}; retry later`,
  }),
  shuttingDown: (): RpcError => ({
    code: UpstreamErrorCode.Unavailable,
    message: "the connector is shutting down; retry — another replica, or this one after its restart, will serve the call",
  }),
  crashed: (serverId: string, how: string): RpcError => ({
    code: UpstreamErrorCode.Crashed,
    message: `server "${serverId}" crashed (${how}) while handling this call; the connector is restarting it — retry shortly`,
  }),
  timedOut: (serverId: string, method: string, timeoutMs: number): RpcError => ({
    code: UpstreamErrorCode.Timeout,
    message: `server "${serverId}" did not answer ${method} within ${timeoutMs} ms (its timeout in gateway.yaml); the request was cancelled`,
  }),
  responseTooLarge: (serverId: string, bytes: number): RpcError => ({
    code: UpstreamErrorCode.TooLarge,
    message: `server "${serverId}" answered with a ${bytes}-byte message, above the gateway's ${MAX_MESSAGE_BYTES}-byte limit; ask for less (paging, filters)`,
  }),
  requestTooLarge: (serverId: string, bytes: number): RpcError => ({
    code: UpstreamErrorCode.TooLarge,
    message: `the request to server "${serverId}" is ${bytes} bytes, above the gateway's ${MAX_MESSAGE_BYTES}-byte limit`,
  }),
  resultFrameTooLarge: (bytes: number): RpcError => ({
    code: UpstreamErrorCode.TooLarge,
    message: `the answer is ${bytes} bytes, above the link's frame limit; ask for less (paging, filters)`,
  }),
  cancelled: (reason: string | undefined): RpcError => ({
    code: JsonRpcErrorCode.RequestCancelled,
    message: `the call was cancelled${reason ? `: ${reason}` : ""}`,
  }),
  duplicateCall: (callId: string): RpcError => ({
    code: JsonRpcErrorCode.InvalidRequest,
    message: `call id "${callId}" is already in flight on this connector`,
  }),
};

/** How a child ended, for messages: "exit code 1", "signal SIGKILL". */
export function describeExit(exit: { code: number | null; signal: string | null }): string {
  if (exit.signal) return `killed by signal ${exit.signal}`;
  return exit.code === null ? "exited" : `exit code ${exit.code}`;
}
