/**
 * @module The admin API's errors: one JSON shape with a stable code (docs/admin-api.md), thrown as values by the
 * handlers and rendered in one place.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const AdminErrorCode = {
  BadRequest: "bad_request",
  Unauthenticated: "unauthenticated",
  Forbidden: "forbidden",
  NotFound: "not_found",
  Conflict: "conflict",
  TooLarge: "too_large",
  InvalidConfig: "invalid_config",
  Unavailable: "unavailable",
} as const;
export type AdminErrorCode = (typeof AdminErrorCode)[keyof typeof AdminErrorCode];

const statusOf: Record<AdminErrorCode, ContentfulStatusCode> = {
  bad_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  invalid_config: 422,
  unavailable: 503,
};

export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly details: string[] | undefined;

  constructor(code: AdminErrorCode, message: string, details?: string[]) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

export function adminErrorResponse(c: Context, error: AdminError): Response {
  const headers: Record<string, string> = error.code === "unauthenticated" ? { "www-authenticate": 'Bearer realm="mcp-gateway-admin"' } : {};
  return c.json({ error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } }, statusOf[error.code], headers);
}

/**
 * An insert whose id was checked free just before: a concurrent create of the same id loses the race at the
 * database's unique constraint, which is the same conflict, not a 500.
 */
export async function insertOnce<T>(conflictMessage: string, insert: Promise<T>): Promise<T> {
  try {
    return await insert;
  } catch (error) {
    if (/UNIQUE constraint failed/.test((error as Error).message)) throw new AdminError("conflict", conflictMessage);
    throw error;
  }
}
