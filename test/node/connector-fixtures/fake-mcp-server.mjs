#!/usr/bin/env node
// A deliberately small stdio MCP server for the connector's tests: it misbehaves on request (huge answers, silence,
// crashes, server→client requests, grandchildren) in ways a well-behaved server like server-everything will not.
// Raw newline-delimited JSON-RPC, no SDK, so every byte it writes is under the test's control.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const tool = (name) => ({ name, inputSchema: { type: "object" } });
const tools = ["pid", "big", "sleep", "log", "sample", "ping-client", "odd-notifications", "add-tool", "spawn-grandchild", "wait"].map(tool);
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const answer = (id, result) => send({ result, jsonrpc: "2.0", id });
const text = (t) => ({ content: [{ type: "text", text: String(t) }] });
const waiting = new Map(); // server→client requests we sent, by id

if (process.env.FAKE_STDERR) console.error(process.env.FAKE_STDERR);
if (process.env.FAKE_CRASH_AFTER_MS) setTimeout(() => process.exit(3), Number(process.env.FAKE_CRASH_AFTER_MS));

createInterface({ input: process.stdin }).on("line", (line) => {
  const msg = JSON.parse(line);
  if (msg.method === undefined) {
    waiting.get(msg.id)?.(msg);
    return;
  }
  if (msg.method === "notifications/cancelled") {
    console.error(`cancelled ${msg.params.requestId}`);
    return;
  }
  if (msg.id === undefined) return;
  const p = msg.params ?? {};
  switch (msg.method) {
    case "initialize": {
      const result = { protocolVersion: process.env.FAKE_PROTOCOL_VERSION ?? p.protocolVersion, capabilities: { tools: { listChanged: true } }, serverInfo: { name: "fake", version: "1.0.0" } };
      return setTimeout(() => answer(msg.id, result), Number(process.env.FAKE_INIT_DELAY_MS ?? 0));
    }
    case "tools/list": {
      // Two pages, so the catalog proves the connector follows nextCursor.
      const half = Math.ceil(tools.length / 2);
      return p.cursor === "page-2" ? answer(msg.id, { tools: tools.slice(half) }) : answer(msg.id, { tools: tools.slice(0, half), nextCursor: "page-2" });
    }
    case "tools/call":
      return call(msg.id, p.name, p.arguments ?? {}, p._meta ?? {});
    default:
      return send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: `no ${msg.method}` } });
  }
});

/** Sends the client a request of its own and answers call `id` with the client's reply (its error or result). */
function askClient(id, method, params) {
  const requestId = `s-${id}`;
  waiting.set(requestId, (reply) => answer(id, text(JSON.stringify(reply.error ?? reply.result))));
  send({ jsonrpc: "2.0", id: requestId, method, ...(params ? { params } : {}) });
}

function call(id, name, args, meta) {
  switch (name) {
    case "pid":
      return answer(id, text(process.pid));
    case "big":
      return answer(id, text("x".repeat(4 * 1024 * 1024 + 10)));
    case "sleep":
      return; // never answers
    case "wait":
      return setTimeout(() => answer(id, text(`waited ${args.ms}`)), args.ms);
    case "log":
      send({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: `log line for ${meta.progressToken}` } });
      return answer(id, text("logged"));
    case "sample":
      return askClient(id, "sampling/createMessage", { messages: [], maxTokens: 1 });
    case "ping-client":
      return askClient(id, "ping", undefined);
    case "odd-notifications":
      // Names that an object literal lookup would find on Object.prototype.
      for (const method of ["constructor", "__proto__", "toString", "hasOwnProperty"]) send({ jsonrpc: "2.0", method });
      return answer(id, text("sent"));
    case "add-tool":
      tools.push(tool(`added-${tools.length}`));
      send({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
      return answer(id, text("added"));
    case "spawn-grandchild": {
      // Same process group (not detached): stopping the server's group must stop it too.
      const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
      return answer(id, text(child.pid));
    }
    default:
      return send({ jsonrpc: "2.0", id, error: { code: -32602, message: `unknown tool ${name}` } });
  }
}
