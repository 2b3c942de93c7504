/**
 * End to end: real MCP clients → the real Worker on workerd → the Connector Durable Object → the real connector
 * process → @modelcontextprotocol/server-everything as a supervised child.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/local-gateway.ts";
import { CLIENT_KINDS, connectClient, type AgentClient } from "./clients.ts";
import { rawPost, startStack, waitForTools, type Stack } from "./stack.ts";

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.dispose();
});

describe.each(CLIENT_KINDS)("with the %s client", (kind) => {
  let client: AgentClient;
  beforeAll(async () => {
    client = await connectClient(kind, stack.mcpUrl, stack.apiKey);
  });
  afterAll(async () => {
    await client?.close();
  });

  it("lists both upstreams' tools, each under its server's namespace, after the gateway's own tools", async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t: { name: string }) => t.name);
    expect(names.slice(0, 5)).toEqual(["list_tools", "list_servers", "server_status", "usage", "call"]);
    expect(names).toContain("everything__echo");
    expect(names).toContain("everything__trigger-long-running-operation");
    expect(names).toContain("memory__create_entities");
    expect(names.slice(5).every((n: string) => n.startsWith("everything__") || n.startsWith("memory__"))).toBe(true);
  });

  it("calls a tool", async () => {
    const result = await client.callTool("everything__echo", { message: `hello from ${kind}` });
    expect(result.content[0].text).toContain(`hello from ${kind}`);
  });

  it("receives every progress notification before the result", async () => {
    const seen: number[] = [];
    const result = await client.callTool("everything__trigger-long-running-operation", { duration: 0.5, steps: 5 }, (p) => seen.push(p.progress));
    expect(result.content[0].text).toMatch(/completed/i);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it("reads a resource by its own URI", async () => {
    const { resources } = await client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    const uri = resources[0].uri as string;
    const read = await client.readResource(uri);
    expect(read.contents[0].uri).toBe(uri);
  });

  it("gets a prompt by its namespaced name", async () => {
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p: { name: string }) => p.name)).toContain("everything__simple-prompt");
    const prompt = await client.getPrompt("everything__simple-prompt");
    expect(prompt.messages.length).toBeGreaterThan(0);
  });
});

describe("with the MCP Inspector CLI", () => {
  const inspector = async (...args: string[]) => {
    const cli = join(PROJECT_ROOT, "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [cli, "--cli", stack.mcpUrl.href, "--header", `Authorization: Bearer ${stack.apiKey}`, ...args],
      { cwd: PROJECT_ROOT, timeout: 60_000 },
    );
    return JSON.parse(stdout);
  };

  it("lists tools and calls one", async () => {
    const { tools } = await inspector("--method", "tools/list");
    expect(tools.map((t: { name: string }) => t.name)).toContain("memory__read_graph");
    const result = await inspector("--method", "tools/call", "--tool-name", "everything__echo", "--tool-arg", "message=from-inspector");
    expect(result.content[0].text).toBe("Echo: from-inspector");
  });
});

describe("clear errors", () => {
  it("answers a malformed body with a parse error", async () => {
    const { status, messages } = await rawPost(stack, '{"jsonrpc":"2.0","id":1,"method":');
    expect(status).toBe(400);
    expect(messages[0].error.code).toBe(-32700);
  });

  it("answers a wrong key with 401 and a Bearer challenge", async () => {
    const { status, messages } = await rawPost(stack, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }), "gw_wrong");
    expect(status).toBe(401);
    expect(messages[0].error.message).toMatch(/not valid/);
  });

  it("names an unknown tool", async () => {
    const client = await connectClient("v2-2025", stack.mcpUrl, stack.apiKey);
    try {
      await expect(client.callTool("everything__no-such-tool", {})).rejects.toThrow(/Unknown tool "everything__no-such-tool"/);
    } finally {
      await client.close();
    }
  });
});

describe("failures of the upstream and of the connector", () => {
  it("fails a call at once when its server dies mid-call, and serves the next call after the restart", async () => {
    const client = await connectClient("v2-2025", stack.mcpUrl, stack.apiKey);
    try {
      const call = client.callTool("everything__trigger-long-running-operation", { duration: 20, steps: 20 }, () => {});
      // Let the call reach the child before killing it.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const [pid] = stack.connector.childPids("server-everything");
      expect(pid).toBeGreaterThan(0);
      const killedAt = Date.now();
      process.kill(pid as number, "SIGKILL");
      await expect(call).rejects.toThrow(/crashed/);
      expect(Date.now() - killedAt).toBeLessThan(1000);

      await expect
        .poll(async () => (await client.callTool("everything__echo", { message: "back" }).catch((e: Error) => ({ content: [{ text: e.message }] }))).content[0].text, {
          timeout: 20_000,
          interval: 250,
        })
        .toContain("back");
      expect(stack.connector.childPids("server-everything")).not.toContain(pid);
    } finally {
      await client.close();
    }
  });

  it("fails calls fast while the connector is away and serves again after it reconnects", async () => {
    const client = await connectClient("v2-2025", stack.mcpUrl, stack.apiKey);
    try {
      expect(await stack.connector.stop()).toBe(0);
      const startedAt = Date.now();
      await expect(client.callTool("everything__echo", { message: "x" })).rejects.toThrow(/Server "everything" is not available right now/);
      expect(Date.now() - startedAt).toBeLessThan(2000);

      stack.connector.start();
      await waitForTools(stack, (names) => names.includes("everything__echo"));
      const result = await client.callTool("everything__echo", { message: "reconnected" });
      expect(result.content[0].text).toContain("reconnected");
    } finally {
      await client.close();
    }
  });
});
