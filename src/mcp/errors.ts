/**
 * @module The JSON-RPC error codes an agent can see from the gateway (decision D6): stable codes, messages that
 * say what to do. Upstream failures use the link's codes (src/link/errors.ts); the rest are here.
 */
import { UpstreamErrorCode } from "../link/errors.ts";

export const GatewayErrorCode = {
  ...UpstreamErrorCode,
  ParseError: -32700,
  InvalidRequest: -32600,
  /** Invalid params; also an unknown tool, prompt or resource (as the MCP specification asks). */
  InvalidParams: -32602,
  UnknownTarget: -32602,
  /** No or a refused credential (HTTP 401). */
  Unauthenticated: -32001,
  /** A Host or browser Origin the gateway does not serve (HTTP 403); the SDK's own Origin check uses it too. */
  Forbidden: -32000,
  /** A policy denied the call; `data` names the rule (`ruleId`, `policyId`; null for the default deny). */
  Denied: -32003,
  /**
   * The call's audit entry could not be written and the tenant's audit mode is `closed`: the result is withheld.
   * The call may have run upstream (its entry is what failed).
   */
  AuditUnavailable: -32005,
  /**
   * A rate limit or quota refused the call (it was not run): `data` has `retryAfterMs` and the `limit` that
   * refused it. Denied and unknown calls pay for their token too.
   */
  RateLimited: -32029,
} as const;

/** A JSON-RPC error response for failures that happen before a message is parsed (auth, origin, size). */
export function jsonRpcErrorResponse(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code, message } }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
