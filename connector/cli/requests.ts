/**
 * @module Each remote command as the admin API request it makes (docs/admin-api.md). Pure.
 */
import type { AuditFilters, Command, UsagePeriod } from "./args.ts";

export type AdminRequest = {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Under the gateway's base URL, e.g. `/admin/v1/keys/k1`; ids are percent-encoded. */
  path: string;
  /** Query parameters, in order (`?tenant=` is added after them). */
  query?: [string, string][];
  body?: { contentType: string; text: string };
};

/** The most entries the gateway returns in one page of GET /admin/v1/audit/entries. */
export const AUDIT_PAGE_LIMIT = 500;


const API = "/admin/v1";
const segment = encodeURIComponent;
const json = (value: unknown) => ({ contentType: "application/json", text: JSON.stringify(value) });

/** The commands that are one admin API request (`audit log` is one per page: {@link auditEntriesRequest}). */
export type RemoteCommand = Exclude<Command, { kind: "init" | "config validate" | "audit log" }>;

/**
 * The request of a remote command. `config apply` sends the file's edge document (src/config/publish.ts: no server
 * commands, args, env or cwd, keys as digests) as JSON; the file itself is never rewritten.
 */
export function requestFor(command: RemoteCommand, edgeDocumentText?: string): AdminRequest {
  switch (command.kind) {
    case "config apply":
      return { method: "PUT", path: `${API}/config`, body: { contentType: "application/json", text: edgeDocumentText ?? "{}" } };
    case "whoami":
      return { method: "GET", path: `${API}/whoami` };
    case "keys list":
      return { method: "GET", path: `${API}/keys` };
    case "keys create":
      return {
        method: "POST",
        path: `${API}/keys`,
        body: json({
          name: command.name,
          consumerId: command.consumerId,
          roles: command.roles,
          ...(command.expiresAt !== undefined ? { expiresAt: command.expiresAt } : {}),
          ...(command.id !== undefined ? { id: command.id } : {}),
        }),
      };
    case "keys revoke":
      return { method: "DELETE", path: `${API}/keys/${segment(command.id)}` };
    case "keys rotate":
      return command.graceSeconds === undefined
        ? { method: "POST", path: `${API}/keys/${segment(command.id)}/rotate` }
        : { method: "POST", path: `${API}/keys/${segment(command.id)}/rotate`, body: json({ graceSeconds: command.graceSeconds }) };
    case "servers list":
      return { method: "GET", path: `${API}/servers` };
    case "connectors list":
      return { method: "GET", path: `${API}/connectors` };
    case "connectors create":
      return {
        method: "POST",
        path: `${API}/connectors`,
        body: json({ id: command.id, ...(command.name !== undefined ? { name: command.name } : {}) }),
      };
    case "connectors revoke":
      return { method: "DELETE", path: `${API}/connectors/${segment(command.id)}` };
    case "audit stats":
      return { method: "GET", path: `${API}/audit/stats`, query: filterQuery(command.filters) };
    case "audit verify":
      // The gateway verifies its own copy; an offline verification (--file) sends nothing at all.
      return { method: "POST", path: `${API}/audit/verify` };
    case "audit export": {
      const query: [string, string][] = [["format", command.format]];
      if (command.fromSeq !== undefined) query.push(["fromSeq", String(command.fromSeq)]);
      if (command.toSeq !== undefined) query.push(["toSeq", String(command.toSeq)]);
      return { method: "GET", path: `${API}/audit/export`, query };
    }
    case "usage": {
      const query: [string, string][] = [];
      if (command.consumer !== undefined) query.push(["consumer", command.consumer]);
      if (command.from !== undefined) query.push(["from", command.from]);
      if (command.to !== undefined) query.push(["to", command.to]);
      query.push(["by", command.by]);
      return { method: "GET", path: `${API}/usage`, query };
    }
    case "usage chargeback":
      return { method: "GET", path: `${API}/usage/chargeback`, query: [...periodQuery(command.period), ["format", command.format === "csv" ? "csv" : "json"]] };
    case "usage stripe":
      return { method: "POST", path: `${API}/usage/stripe`, query: [["period", command.period]] };
  }
}

function periodQuery(period: UsagePeriod): [string, string][] {
  if ("month" in period) return [["period", period.month]];
  const query: [string, string][] = [];
  if (period.from !== undefined) query.push(["from", period.from]);
  if (period.to !== undefined) query.push(["to", period.to]);
  return query;
}

/** One page of `audit log`: at most `limit` entries (1-500), after `cursor` (the previous page's nextCursor). */
export function auditEntriesRequest(filters: AuditFilters, limit: number, cursor: string | undefined): AdminRequest {
  const query = filterQuery(filters);
  query.push(["limit", String(Math.max(1, Math.min(AUDIT_PAGE_LIMIT, limit)))]);
  if (cursor !== undefined) query.push(["cursor", cursor]);
  return { method: "GET", path: `${API}/audit/entries`, query };
}

function filterQuery(filters: AuditFilters): [string, string][] {
  const query: [string, string][] = [];
  for (const key of ["consumer", "server", "tool", "status", "from", "to"] as const) {
    const value = filters[key];
    if (value !== undefined) query.push([key, value]);
  }
  return query;
}

/**
 * The full URL of a request: the base URL's path kept (a gateway may live under a prefix), the request's query and
 * `?tenant=` added (the base URL's own query and fragment dropped).
 */
export function requestUrl(baseUrl: string, path: string, tenant: string | undefined, query: readonly (readonly [string, string])[] = []): string {
  const url = new URL(baseUrl);
  url.pathname = url.pathname.replace(/\/+$/, "") + path;
  const params = tenant === undefined ? [...query] : [...query, ["tenant", tenant] as const];
  url.search = params.length === 0 ? "" : `?${params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")}`;
  url.hash = "";
  return url.href;
}
