/**
 * A failure nobody expected (here: the key store is broken) is answered in the caller's own shape without
 * internals — a JSON-RPC error with a reference to the log line, never SQL, a stack or a table name.
 * Its own file: it breaks the schema of this file's isolated D1.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { INITIALIZE, mcpPost, rpcMessages } from "./fixtures.ts";

it("answers an unexpected failure on /mcp with a JSON-RPC internal error that leaks nothing", async () => {
  await env.DB.prepare("DROP TABLE api_keys").run();
  const response = await mcpPost(INITIALIZE, "gw_any_key_0123456789abcdef");
  expect(response.status).toBe(500);
  const [message] = await rpcMessages(response);
  expect(message?.error.code).toBe(-32603);
  expect(message?.error.message).toMatch(/^Internal error; the gateway logged it as [0-9a-f-]{36}$/);
  expect(JSON.stringify(message)).not.toMatch(/api_keys|select|SQL|at /i);
});
