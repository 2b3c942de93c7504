/**
 * @module JSON-RPC error codes for failures between the gateway and an upstream MCP server, in the
 * implementation-defined server-error range (-32000 … -32099). Platform-free: the connector answers calls with
 * them and the Worker passes them on to agents (and may branch on them, e.g. to retry on another replica).
 */
export const UpstreamErrorCode = {
  /** The server is not running (not configured, disabled, restarting, unhealthy) or the connector is shutting down. */
  Unavailable: -32091,
  /** The server's process died while the call was in flight. */
  Crashed: -32092,
  /** The server did not answer within the server's `timeout`. */
  Timeout: -32093,
  /** A message exceeded MAX_MESSAGE_BYTES (see protocol.ts). */
  TooLarge: -32094,
} as const;
export type UpstreamErrorCode = (typeof UpstreamErrorCode)[keyof typeof UpstreamErrorCode];

/** The JSON-RPC specification's own codes that the edge and the connector use when they end a call themselves. */
export const JsonRpcErrorCode = {
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InternalError: -32603,
  /** The call was cancelled (the agent went away, the edge gave up); MCP's RequestCancelled. */
  RequestCancelled: -32800,
} as const;
