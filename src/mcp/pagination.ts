/**
 * @module Cursor pagination for aggregated lists. Cursors are opaque to clients (base64url of an offset), and a
 * cursor that does not decode is an Invalid Params error rather than a silent restart from the top.
 */
import { ProtocolError } from "@modelcontextprotocol/server";
import { GatewayErrorCode } from "./errors.ts";

/** Items per page: large enough that typical catalogs fit in one page, small enough to bound a response. */
export const PAGE_SIZE = 100;

export function paginate<T>(items: readonly T[], offset: number, pageSize = PAGE_SIZE): { items: T[]; nextCursor?: string } {
  const end = offset + pageSize;
  const page = items.slice(offset, end);
  return end < items.length ? { items: page, nextCursor: encodeCursor(end) } : { items: page };
}

export function encodeCursor(offset: number): string {
  return btoa(`o:${offset}`).replace(/=+$/, "");
}

/** The offset a cursor stands for; 0 without a cursor. */
export function decodeCursor(cursor: unknown): number {
  if (cursor === undefined || cursor === null) return 0;
  if (typeof cursor === "string" && cursor.length <= 32) {
    try {
      const match = /^o:(\d{1,9})$/.exec(atob(cursor));
      if (match?.[1] !== undefined) return Number(match[1]);
    } catch {
      // not base64: fall through to the error
    }
  }
  throw new ProtocolError(GatewayErrorCode.InvalidParams, "Invalid cursor: pass the nextCursor of the previous page unchanged");
}
