/**
 * @module Sends one admin API request and classifies the answer. Every failure the CLI expects (the gateway
 * unreachable, slow, refusing, or answering something that is not the admin API) comes back as a value, never as
 * an exception — except once a streamed answer ({@link streamAdminRequest}) is under way: a stream cut off or gone
 * quiet throws an {@link AdminStreamError} carrying the same kind of value.
 */
import type { Connection } from "./args.ts";
import { requestUrl, type AdminRequest } from "./requests.ts";

/** How long one request may take, connection included; for a streamed answer, how long its headers may take. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** How long a streamed answer may go without a byte (a 1M-entry verification or export takes minutes in all). */
export const STREAM_IDLE_TIMEOUT_MS = 30_000;
/** The most of an error body read (a streamed answer's error is JSON like any other, and small). */
const MAX_ERROR_BODY = 1024 * 1024;

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

/** The URL and fetch options of one admin request (the signal is the caller's: timeouts differ). */
function adminFetch(connection: Connection, request: AdminRequest, accept: string): { url: string; init: RequestInit } {
  const url = requestUrl(connection.url, request.path, connection.tenant, request.query);
  const headers: Record<string, string> = { authorization: `Bearer ${connection.adminKey}`, accept };
  if (request.body) headers["content-type"] = request.body.contentType;
  return {
    url,
    init: {
      method: request.method,
      headers,
      ...(request.body ? { body: request.body.text } : {}),
      // A redirect is refused rather than followed: following it could resend the admin key, or turn a PUT into a GET.
      redirect: "manual",
    },
  };
}

export async function sendAdminRequest(connection: Connection, request: AdminRequest, options: SendOptions = {}): Promise<AdminResult> {
  const { url, init } = adminFetch(connection, request, "application/json");
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;

  let response: Response;
  let text: string;
  try {
    response = await (options.fetch ?? fetch)(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    text = await response.text();
  } catch (error) {
    return { ok: false, failure: { kind: "network", url, reason: networkReason(error, timeoutMs) } };
  }

  const failure = answerFailure(url, response, text);
  if (failure) return { ok: false, failure };
  return { ok: true, status: response.status, body: JSON.parse(text) as unknown };
}

/** Why an answer is not a success of the admin API, or undefined for a 2xx JSON answer. */
function answerFailure(url: string, response: Response, text: string): AdminFailure | undefined {
  const status = response.status;
  if (status >= 300 && status < 400) {
    const location = response.headers.get("location");
    const where = location ? ` to ${location}` : "";
    return { kind: "unexpected", url, status, reason: `redirected${where}; pass the URL the gateway really serves as --url` };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const type = response.headers.get("content-type");
    return {
      kind: "unexpected",
      url,
      status,
      reason: `the answer is not JSON${type ? ` (${type.split(";")[0]})` : ""}; is this the gateway's URL${status === 404 ? ", and does it serve the admin API" : ""}?`,
    };
  }
  if (status >= 200 && status < 300) return undefined;
  const error = gatewayError(body);
  if (error) return { kind: "refused", url, status, error };
  return { kind: "unexpected", url, status, reason: "the answer is JSON but not the admin API's error body" };
}

/** Thrown while reading a streamed answer: it was cut off, went quiet, or is not what was asked for. */
export class AdminStreamError extends Error {
  readonly failure: AdminFailure;
  constructor(failure: AdminFailure) {
    super(failure.kind === "refused" ? failure.error.message : failure.reason);
    this.name = "AdminStreamError";
    this.failure = failure;
  }
}

export type AdminStream =
  | {
      ok: true;
      status: number;
      url: string;
      /** The content type's media type, lowercase, without parameters ("" when absent). */
      contentType: string;
      /**
       * The body as it arrives. Iterate it once; it throws an {@link AdminStreamError} when the connection breaks or no
       * byte comes for the idle timeout. Leaving the loop early closes the connection.
       */
      chunks: AsyncIterable<Uint8Array>;
      /** Closes the connection without reading the body (when its type shows it is not what was asked for). */
      cancel(): Promise<void>;
    }
  | { ok: false; failure: AdminFailure };

export type StreamOptions = SendOptions & {
  /** Longest wait for the next byte of the body; default {@link STREAM_IDLE_TIMEOUT_MS}. */
  idleTimeoutMs?: number;
  /** The Accept header; default application/json. */
  accept?: string;
};

/**
 * Sends a request whose 2xx answer is a stream (NDJSON progress, an export). The headers must come within
 * `timeoutMs`; after that there is no limit on the whole, only on silence: `idleTimeoutMs` without a byte. A non-2xx
 * answer is read whole and classified as {@link sendAdminRequest} does.
 */
export async function streamAdminRequest(connection: Connection, request: AdminRequest, options: StreamOptions = {}): Promise<AdminStream> {
  const { url, init } = adminFetch(connection, request, options.accept ?? "application/json");
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const idleMs = options.idleTimeoutMs ?? options.timeoutMs ?? STREAM_IDLE_TIMEOUT_MS;

  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut: "headers" | "idle" | undefined;
  const arm = (ms: number, phase: "headers" | "idle") => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = phase;
      controller.abort(new DOMException(`no data within ${ms} ms`, "TimeoutError"));
    }, ms);
  };
  const disarm = () => clearTimeout(timer);

  let response: Response;
  arm(timeoutMs, "headers");
  try {
    response = await (options.fetch ?? fetch)(url, { ...init, signal: controller.signal });
  } catch (error) {
    disarm();
    return { ok: false, failure: { kind: "network", url, reason: networkReason(error, timeoutMs) } };
  }

  const status = response.status;
  if (status < 200 || status >= 300) {
    let text: string;
    try {
      text = await readCapped(response, MAX_ERROR_BODY);
    } catch (error) {
      return { ok: false, failure: { kind: "network", url, reason: networkReason(error, timeoutMs) } };
    } finally {
      disarm();
    }
    return { ok: false, failure: answerFailure(url, response, text) ?? { kind: "unexpected", url, status, reason: "no answer body" } };
  }
  disarm();

  const body = response.body;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (!body) return;
    const reader = body.getReader();
    let done = false;
    try {
      for (;;) {
        arm(idleMs, "idle");
        let read: ReadableStreamReadResult<Uint8Array>;
        try {
          read = (await reader.read()) as ReadableStreamReadResult<Uint8Array>;
        } catch (error) {
          done = true;
          const reason = timedOut === "idle" ? `no data for ${duration(idleMs)}: the answer stopped` : `the answer was cut off: ${streamReason(error, idleMs)}`;
          throw new AdminStreamError({ kind: "network", url, reason });
        } finally {
          disarm();
        }
        if (read.done) {
          done = true;
          return;
        }
        yield read.value;
      }
    } finally {
      disarm();
      // Left early (the consumer had enough, or failed): close the connection rather than drain it.
      if (!done) await reader.cancel().catch(() => {});
    }
  }
  const type = (response.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return { ok: true, status, url, contentType: type, chunks: chunks(), cancel: async () => void (await body?.cancel().catch(() => {})) };
}

/**
 * The lines of a byte stream (UTF-8), without their "\n" (a trailing "\r" is kept: callers that care trim it).
 * A last line without "\n" is yielded too. A line longer than `maxLine` characters throws an AdminStreamError.
 */
export async function* streamLines(chunks: AsyncIterable<Uint8Array>, url: string, maxLine = MAX_ERROR_BODY): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of chunks) {
    pending += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let end = pending.indexOf("\n"); end !== -1; end = pending.indexOf("\n", start)) {
      yield pending.slice(start, end);
      start = end + 1;
    }
    pending = pending.slice(start);
    if (pending.length > maxLine) throw new AdminStreamError({ kind: "unexpected", url, status: 200, reason: `a line of the answer is longer than ${maxLine} characters` });
  }
  pending += decoder.decode();
  if (pending !== "") yield pending;
}

async function readCapped(response: Response, max: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = (await reader.read()) as ReadableStreamReadResult<Uint8Array>;
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
    if (text.length > max) {
      await reader.cancel().catch(() => {});
      return text;
    }
  }
}

function streamReason(error: unknown, idleMs: number): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  if (cause?.code === "UND_ERR_SOCKET" || cause?.code === "ECONNRESET" || (error instanceof Error && error.message === "terminated")) {
    return "the connection was closed";
  }
  return networkReason(error, idleMs);
}

function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
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
    return `no answer within ${duration(timeoutMs)}`;
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
