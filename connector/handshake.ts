/**
 * @module The pure parts of the connector's own conversation with an upstream server: the MCP `initialize`
 * handshake it performs once per child, and the walk over a paginated list.
 *
 * The connector used to do both through the SDK's `Client`. It was the only thing the connector still took from it:
 * relayed calls already bypassed it. It also cost a third of the connector's idle memory (the SDK client and its
 * schemas, ≈ 22 MiB of 110), and the connector must stay small next to customers' servers (issue 8: ≤ 80 MB idle).
 * What the Client did here is small and written down in the spec: offer the latest protocol version, accept any
 * version the SDK supports, remember the capabilities, then say `notifications/initialized`. Ids, timeouts and
 * cancellation are the session's (upstream-session.ts), shared with relayed calls.
 */

/**
 * Protocol versions the connector accepts from a server, newest first; the first is the one it offers. The same
 * list as the MCP SDK's `SUPPORTED_PROTOCOL_VERSIONS` (test/node/connector-units.test.ts keeps them equal).
 */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly string[] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", "2024-10-07"];

/** A server that keeps returning new cursors is broken: stop after this many pages rather than loop forever. */
export const MAX_LIST_PAGES = 1_000;

export type ServerCapabilities = Readonly<Record<string, unknown>>;

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The params of the connector's `initialize`: no client capabilities, since it relays no sampling, elicitation or roots. */
export function initializeParams(clientVersion: string): Json {
  return {
    protocolVersion: SUPPORTED_PROTOCOL_VERSIONS[0],
    capabilities: {},
    clientInfo: { name: "mcp-gateway-connector", version: clientVersion },
  };
}

/** The server's capabilities from its `initialize` result; throws, saying why, when the result cannot be used. */
export function capabilitiesOf(result: Json): ServerCapabilities {
  const version = result.protocolVersion;
  if (typeof version !== "string") throw new Error("its initialize result names no protocolVersion");
  if (!SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
    throw new Error(`it speaks MCP protocol version ${JSON.stringify(version.slice(0, 40))}, which the connector does not support (it supports ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")})`);
  }
  if (!isRecord(result.capabilities)) throw new Error("its initialize result has no capabilities object");
  return result.capabilities;
}

/**
 * Every item of a paginated list (`tools/list`, `prompts/list`, …): follows `nextCursor` until a page has none.
 * A page that repeats the previous cursor and items ends the walk, as the SDK's client does for servers that echo
 * their last cursor; more than {@link MAX_LIST_PAGES} pages, more than `maxChars` of items in all, or a cursor that
 * is not a string, is an error.
 */
export async function listAllPages(
  method: string,
  key: string,
  fetchPage: (cursor: string | undefined) => Promise<Json>,
  maxChars: number = Number.POSITIVE_INFINITY,
): Promise<unknown[]> {
  const items: unknown[] = [];
  let cursor: string | undefined;
  let previous: string | undefined;
  let chars = 0;
  for (let pages = 1; ; pages++) {
    const page = await fetchPage(cursor);
    const pageItems = page[key];
    if (!Array.isArray(pageItems)) throw new Error(`${method} answered without a ${key} array`);
    if (page.nextCursor !== undefined && page.nextCursor !== null && typeof page.nextCursor !== "string") {
      throw new Error(`${method} answered with a nextCursor that is not a string`);
    }
    const next = typeof page.nextCursor === "string" ? page.nextCursor : undefined;
    const signature = JSON.stringify(pageItems);
    if (cursor !== undefined && next === cursor && signature === previous) return items;
    // The whole list must fit in one link frame anyway; a server that never stops must not fill the host's memory.
    chars += signature.length;
    if (chars > maxChars) throw new Error(`${method} listed more than ${maxChars} characters of ${key}, more than the gateway can carry`);
    items.push(...pageItems);
    if (next === undefined) return items;
    if (pages >= MAX_LIST_PAGES) throw new Error(`${method} did not stop paginating after ${MAX_LIST_PAGES} pages`);
    cursor = next;
    previous = signature;
  }
}
