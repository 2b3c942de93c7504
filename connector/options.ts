/**
 * @module The connector's command line: flags and environment variables into options, and the gateway URL into the
 * WebSocket URL of its /connect endpoint. Pure (argv and env are passed in).
 */
import { parseArgs } from "node:util";
import type { HostEnv } from "./env.ts";

export const USAGE = `Usage: mcp-gateway-connector [--config FILE] [--url URL] [--token TOKEN] [--replica-id ID]

Runs the stdio MCP servers listed under servers: in gateway.yaml and connects them to the gateway.
It dials out (no inbound port); server secrets stay on this host.

  --config FILE      gateway.yaml to read servers from   env MCP_GATEWAY_CONFIG   default ./gateway.yaml
  --url URL          the gateway (https://… or wss://…/connect)   env MCP_GATEWAY_URL
  --token TOKEN      the connector token; prefer the env variable   env MCP_GATEWAY_CONNECTOR_TOKEN
  --replica-id ID    names this replica when several hosts run one connector   default: random per process
  --help             print this help`;

export type CliOptions = {
  configPath: string;
  url: string;
  token: string;
  replicaId: string | undefined;
  /** Things worth a warning in the log (never containing the token). */
  warnings: string[];
};

export type CliParse = { kind: "run"; options: CliOptions } | { kind: "help" } | { kind: "invalid"; errors: string[] };

export function parseCliOptions(argv: readonly string[], env: HostEnv): CliParse {
  let values: { config?: string; url?: string; token?: string; "replica-id"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string" },
        url: { type: "string" },
        token: { type: "string" },
        "replica-id": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return { kind: "invalid", errors: [(error as Error).message] };
  }
  if (values.help) return { kind: "help" };

  const errors: string[] = [];
  const warnings: string[] = [];
  const rawUrl = values.url ?? env.MCP_GATEWAY_URL;
  let url = "";
  if (!rawUrl) errors.push("no gateway URL: pass --url or set MCP_GATEWAY_URL");
  else {
    const connect = connectUrl(rawUrl);
    if (connect.ok) url = connect.url;
    else errors.push(connect.error);
  }
  const token = values.token ?? env.MCP_GATEWAY_CONNECTOR_TOKEN;
  if (!token) errors.push("no connector token: set MCP_GATEWAY_CONNECTOR_TOKEN (or pass --token)");
  if (values.token !== undefined) {
    warnings.push("--token is visible to every user of this host in the process list; set MCP_GATEWAY_CONNECTOR_TOKEN instead");
  }
  if (url.startsWith("ws://") && !isLoopback(new URL(url).hostname)) {
    warnings.push("the gateway URL is not encrypted (ws://): the connector token and all calls cross the network in clear text; use https:// or wss://");
  }
  const replicaId = values["replica-id"];
  if (replicaId !== undefined && !/^[\x21-\x7e]{1,128}$/.test(replicaId)) {
    errors.push("--replica-id must be 1-128 printable characters without spaces");
  }
  if (errors.length > 0) return { kind: "invalid", errors };
  return {
    kind: "run",
    options: { configPath: values.config ?? env.MCP_GATEWAY_CONFIG ?? "./gateway.yaml", url, token: token as string, replicaId, warnings },
  };
}

/**
 * The WebSocket URL of a gateway's /connect endpoint. An http(s) URL is the gateway's base URL: it becomes ws(s) and
 * gets `/connect` appended to its path (unless already there). A ws(s) URL is the endpoint itself, with `/connect`
 * added only when it has no path.
 */
export function connectUrl(input: string): { ok: true; url: string } | { ok: false; error: string } {
  let u: URL;
  try {
    u = new URL(input);
  } catch {
    return { ok: false, error: `the gateway URL "${input}" is not a valid URL` };
  }
  if (u.username || u.password) return { ok: false, error: "the gateway URL must not contain credentials; the token goes in MCP_GATEWAY_CONNECTOR_TOKEN" };
  const base = u.pathname.replace(/\/+$/, "");
  let path: string;
  if (u.protocol === "http:" || u.protocol === "https:") path = base.endsWith("/connect") ? base : `${base}/connect`;
  else if (u.protocol === "ws:" || u.protocol === "wss:") path = base === "" ? "/connect" : u.pathname;
  else return { ok: false, error: `the gateway URL must start with https://, http://, wss:// or ws:// (got ${u.protocol}//)` };
  const scheme = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  return { ok: true, url: `${scheme}//${u.host}${path}${u.search}` };
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || hostname.startsWith("127.");
}
