/**
 * The MCP clients agents actually use, behind one small interface: the v1 SDK Client (the most deployed), the v2
 * Client on the 2025 handshake (its default), and the v2 Client pinned to protocol 2026-07-28 (stateless).
 */
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

type Progress = { progress: number; total?: number };
type Result = Record<string, any>;

export interface AgentClient {
  label: string;
  listTools(): Promise<Result>;
  callTool(name: string, args: Record<string, unknown>, onprogress?: (p: Progress) => void): Promise<Result>;
  listResources(): Promise<Result>;
  readResource(uri: string): Promise<Result>;
  listPrompts(): Promise<Result>;
  getPrompt(name: string, args?: Record<string, string>): Promise<Result>;
  close(): Promise<void>;
}

export type ClientKind = "v1" | "v2-2025" | "v2-2026";
export const CLIENT_KINDS: ClientKind[] = ["v1", "v2-2025", "v2-2026"];

export async function connectClient(kind: ClientKind, mcpUrl: URL, apiKey: string): Promise<AgentClient> {
  const requestInit = { headers: { authorization: `Bearer ${apiKey}` } };
  const info = { name: `e2e-${kind}`, version: "1.0.0" };
  if (kind === "v1") {
    const client = new ClientV1(info);
    await client.connect(new TransportV1(mcpUrl, { requestInit }));
    return {
      label: kind,
      listTools: () => client.listTools(),
      callTool: (name, args, onprogress) =>
        client.callTool({ name, arguments: args }, undefined, onprogress ? { onprogress, timeout: 30_000 } : { timeout: 30_000 }),
      listResources: () => client.listResources(),
      readResource: (uri) => client.readResource({ uri }),
      listPrompts: () => client.listPrompts(),
      getPrompt: (name, args) => client.getPrompt({ name, arguments: args ?? {} }),
      close: () => client.close(),
    };
  }
  const client = new ClientV2(info, kind === "v2-2026" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {});
  await client.connect(new TransportV2(mcpUrl, { requestInit }));
  return {
    label: kind,
    listTools: () => client.listTools(),
    // v2 takes options second; the v1-style third argument would silently send no progress token.
    callTool: (name, args, onprogress) =>
      client.callTool({ name, arguments: args }, onprogress ? { onprogress, timeout: 30_000 } : { timeout: 30_000 }),
    listResources: () => client.listResources(),
    readResource: (uri) => client.readResource({ uri }),
    listPrompts: () => client.listPrompts(),
    getPrompt: (name, args) => client.getPrompt({ name, arguments: args ?? {} }),
    close: () => client.close(),
  };
}
