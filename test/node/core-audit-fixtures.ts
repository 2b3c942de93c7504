/** Shared fixtures of the core-audit-*.test.ts suites: deterministic entries, chains and keys. */
import { appendEntry } from "../../src/audit/chain.ts";
import { type AuditCheckpoint, encodeBase64Url, publicKeyFromPrivate, signCheckpoint } from "../../src/audit/checkpoint.ts";
import type { AuditEntry, AuditFields, ChainHead } from "../../src/audit/entry.ts";

export const TENANT = "acme";

/** A fixed Ed25519 seed (bytes 1..32) and its public key, and a second, unrelated pair. */
export const PRIVATE_KEY = encodeBase64Url(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
export const PUBLIC_KEY = publicKeyFromPrivate(PRIVATE_KEY);
export const OTHER_PRIVATE_KEY = encodeBase64Url(Uint8Array.from({ length: 32 }, (_, i) => 200 - i));
export const OTHER_PUBLIC_KEY = publicKeyFromPrivate(OTHER_PRIVATE_KEY);

const STATUSES = ["ok", "error", "denied", "limited", "unknown", "ok"] as const;

/** The writer's fields of the i-th call: varied statuses, payloads with unicode, numbers and nesting. */
export function fields(i: number, overrides: Partial<AuditFields> = {}): AuditFields {
  const status = STATUSES[i % STATUSES.length] ?? "ok";
  return {
    timestamp: 1_767_225_600_000 + i * 1_000,
    tenant: TENANT,
    consumer: `agent-${i % 3}`,
    keyId: `key-${i % 3}`,
    clientIp: i % 4 === 0 ? null : `203.0.113.${i % 250}`,
    requestId: `req-${i}`,
    sessionId: i % 2 === 0 ? `sess-${i % 5}` : null,
    server: i % 7 === 0 ? null : "crm",
    method: "tools/call",
    tool: "get_customer",
    arguments: { customer: { id: `c-${i}`, email: "[REDACTED:email]" }, fields: ["name", "tier"], limit: i, ratio: i / 8, note: "café ☕ 😀" },
    result: status === "ok" ? { content: [{ type: "text", text: `Customer c-${i}: ACME Corp, tier gold` }], isError: false } : null,
    resultDigest: status === "ok" ? "ab".repeat(32) : null,
    status,
    errorCode: status === "error" ? -32603 : status === "denied" ? -32003 : null,
    errorMessage: status === "error" ? "upstream failed" : status === "denied" ? "denied by rule crm.rules[1]" : null,
    latencyMs: 10 + (i % 90),
    ruleId: status === "denied" ? "crm.rules[1]" : status === "ok" ? "crm.rules[0]" : null,
    requestBytes: 120 + (i % 40),
    responseBytes: status === "ok" ? 80 + (i % 25) : 60,
    ...overrides,
  };
}

/** `count` entries appended after `start` (default: genesis). */
export function buildChain(count: number, start: ChainHead | null = null, make: (i: number) => AuditFields = fields): AuditEntry[] {
  const entries: AuditEntry[] = [];
  let head = start;
  for (let i = 0; i < count; i++) {
    const entry = appendEntry(head, make((start?.seq ?? 0) + i + 1));
    entries.push(entry);
    head = entry;
  }
  return entries;
}

/** A checkpoint of `entry`, signed with the fixture key (or `key`). */
export function checkpointOf(entry: { seq: number; hash: string; tenant?: string }, key = PRIVATE_KEY, tenant = TENANT): AuditCheckpoint {
  return signCheckpoint({ tenant, seq: entry.seq, hash: entry.hash, time: 1_767_300_000_000 + entry.seq }, key);
}

/** A deep copy, so tampering never touches the original chain. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}
