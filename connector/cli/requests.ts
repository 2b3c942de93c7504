/**
 * @module Each remote command as the admin API request it makes (docs/admin-api.md). Pure.
 */
import type { Command } from "./args.ts";

export type AdminRequest = {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Under the gateway's base URL, e.g. `/admin/v1/keys/k1`; ids are percent-encoded. */
  path: string;
  body?: { contentType: string; text: string };
};


const API = "/admin/v1";
const segment = encodeURIComponent;
const json = (value: unknown) => ({ contentType: "application/json", text: JSON.stringify(value) });

/**
 * The request of a remote command. `config apply` sends the file's edge document (src/config/publish.ts: no server
 * commands, args, env or cwd, keys as digests) as JSON; the file itself is never rewritten.
 */
export function requestFor(command: Exclude<Command, { kind: "init" | "config validate" }>, edgeDocumentText?: string): AdminRequest {
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
      return { method: "POST", path: `${API}/keys/${segment(command.id)}/rotate` };
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
  }
}

/** The full URL of a request: the base URL's path kept (a gateway may live under a prefix), `?tenant=` added. */
export function requestUrl(baseUrl: string, path: string, tenant: string | undefined): string {
  const url = new URL(baseUrl);
  url.pathname = url.pathname.replace(/\/+$/, "") + path;
  url.search = tenant === undefined ? "" : `?tenant=${encodeURIComponent(tenant)}`;
  url.hash = "";
  return url.href;
}
