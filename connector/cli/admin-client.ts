/**
 * @module Sends one admin API request and classifies the answer. Every failure the CLI expects (the gateway
 * unreachable, slow, refusing, or answering something that is not the admin API) comes back as a value, never as
 * an exception.
 */
import type { Connection } from "./args.ts";
import { requestUrl, type AdminRequest } from "./requests.ts";

/** How long one request may take, connection included. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** The admin API's error body: `{"error": {"code", "message", "details"?}}`. */
export type GatewayError = { code: string; message: string; details: string[] };

export type AdminFailure =
  /** No answer: refused, DNS, TLS, reset, timeout. */
  | { kind: "network"; url: string; reason: string }
  /** The gateway answered with its error body. */
  | { kind: "refused"; url: string; status: number; error: GatewayError }
  /** An answer that is not the admin API's (an HTML page, a proxy's 502, a redirect). */
  | { kind: "unexpected"; url: string; status: number; reason: string };

export type AdminResult = { ok: true; status: number; body: unknown } | { ok: false; failure: AdminFailure };

export type SendOptions = { timeoutMs?: number; fetch?: typeof fetch };

export async function sendAdminRequest(connection: Connection, request: AdminRequest, options: SendOptions = {}): Promise<AdminResult> {
  const url = requestUrl(connection.url, request.path, connection.tenant);
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const headers: Record<string, string> = { authorization: `Bearer ${connection.adminKey}`, accept: "application/json" };
  if (request.body) headers["content-type"] = request.body.contentType;

  let response: Response;
  let text: string;
  try {
    response = await (options.fetch ?? fetch)(url, {
      method: request.method,
      headers,
      ...(request.body ? { body: request.body.text } : {}),
      // A redirect is refused rather than followed: following it could resend the admin key, or turn a PUT into a GET.
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await response.text();
  } catch (error) {
    return { ok: false, failure: { kind: "network", url, reason: networkReason(error, timeoutMs) } };
  }

  const status = response.status;
  if (status >= 300 && status < 400) {
    const location = response.headers.get("location");
    const where = location ? ` to ${location}` : "";
    return { ok: false, failure: { kind: "unexpected", url, status, reason: `redirected${where}; pass the URL the gateway really serves as --url` } };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const type = response.headers.get("content-type");
    return {
      ok: false,
      failure: {
        kind: "unexpected",
        url,
        status,
        reason: `the answer is not JSON${type ? ` (${type.split(";")[0]})` : ""}; is this the gateway's URL${status === 404 ? ", and does it serve the admin API" : ""}?`,
      },
    };
  }
  if (status >= 200 && status < 300) return { ok: true, status, body };
  const error = gatewayError(body);
  if (error) return { ok: false, failure: { kind: "refused", url, status, error } };
  return { ok: false, failure: { kind: "unexpected", url, status, reason: "the answer is JSON but not the admin API's error body" } };
}

function gatewayError(body: unknown): GatewayError | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message, details } = error as { code?: unknown; message?: unknown; details?: unknown };
  if (typeof code !== "string") return undefined;
  return {
    code,
    message: typeof message === "string" ? message : "",
    details: Array.isArray(details) ? details.map((d) => (typeof d === "string" ? d : JSON.stringify(d))) : [],
  };
}

/** Why fetch() threw, in words: undici wraps the system error (ECONNREFUSED, ENOTFOUND, …) as the cause. */
export function networkReason(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return `no answer within ${timeoutMs % 1000 === 0 ? `${timeoutMs / 1000} s` : `${timeoutMs} ms`}`;
  }
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused (is the gateway running there?)";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "the host name does not resolve";
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "the connection was closed before an answer";
    case "UND_ERR_CONNECT_TIMEOUT":
      return "the connection timed out";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "the host is unreachable";
  }
  if (code?.startsWith("ERR_TLS") || code?.includes("CERT")) return `TLS failed (${code})`;
  const message = typeof cause?.message === "string" ? cause.message : error instanceof Error ? error.message : String(error);
  return code ? `${message} (${code})` : message;
}
