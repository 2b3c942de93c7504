/**
 * @module The one shape of the gateway's own ids (tenants, consumers, keys, policies, rules): safe in logs, URLs
 * and JSON keys. Server and connector ids have their own, narrower shape (link/protocol.ts).
 */
import { z } from "zod";

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
export const ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 _ . : @ -";
export const idSchema = z.string().regex(ID_PATTERN, ID_RULE);
