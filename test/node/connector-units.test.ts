// The connector's pure pieces: retry arithmetic, stdout framing, stderr tail, relay rewriting, CLI options, the
// MCP handshake and list pagination.
import { SUPPORTED_PROTOCOL_VERSIONS as SDK_PROTOCOL_VERSIONS } from "@modelcontextprotocol/client";
import { describe, expect, it } from "vitest";
import { backoffDelay, recordCrash } from "../../connector/backoff.ts";
import { capabilitiesOf, initializeParams, listAllPages, MAX_LIST_PAGES, SUPPORTED_PROTOCOL_VERSIONS } from "../../connector/handshake.ts";
import { connectUrl, parseCliOptions } from "../../connector/options.ts";
import { outcomeOf, progressForEdge, withProgressToken } from "../../connector/relay.ts";
import { StderrTail } from "../../connector/stderr-tail.ts";
import { LineFramer, topLevelId } from "../../connector/stdio-framing.ts";

describe("backoff", () => {
  const policy = { initialMs: 250, maxMs: 30_000, jitter: 0 };
  it("doubles from the initial delay up to the cap", () => {
    expect([0, 1, 2, 3, 10, 100].map((a) => backoffDelay(policy, a))).toEqual([250, 500, 1000, 2000, 30_000, 30_000]);
  });
  it("jitters within [1 - jitter, 1] of the exact delay", () => {
    const jittered = { ...policy, jitter: 0.5 };
    expect(backoffDelay(jittered, 2, () => 0)).toBe(1000);
    expect(backoffDelay(jittered, 2, () => 0.9)).toBe(550);
  });
  it("calls 5 crashes within 60 s a crash loop, and forgets crashes older than the window", () => {
    const loop = { crashes: 5, windowMs: 60_000 };
    let history: number[] = [];
    const verdicts = [0, 10_000, 20_000, 30_000, 40_000].map((t) => {
      const r = recordCrash(history, t, loop);
      history = r.history;
      return r.crashLoop;
    });
    expect(verdicts).toEqual([false, false, false, false, true]);
    expect(recordCrash([0, 1, 2, 3], 70_000, loop)).toEqual({ history: [70_000], crashLoop: false });
  });
});

describe("LineFramer", () => {
  it("splits messages across and within chunks, ignoring blank lines and CRs", () => {
    const framer = new LineFramer(1000);
    expect(framer.push(Buffer.from('{"a":1}\n{"b"'))).toEqual([{ kind: "line", text: '{"a":1}' }]);
    expect(framer.push(Buffer.from(':2}\r\n\n{"c":3}\n'))).toEqual([
      { kind: "line", text: '{"b":2}' },
      { kind: "line", text: '{"c":3}' },
    ]);
  });

  it("skips an oversized line, reports its id, and keeps the messages around it", () => {
    const framer = new LineFramer(100);
    const big = JSON.stringify({ result: { text: "x".repeat(500) }, jsonrpc: "2.0", id: "gw-7" });
    const lines = [...framer.push(Buffer.from(`{"before":1}\n${big.slice(0, 200)}`)), ...framer.push(Buffer.from(`${big.slice(200)}\n{"after":2}\n`))];
    expect(lines).toEqual([
      { kind: "line", text: '{"before":1}' },
      { kind: "oversized", bytes: big.length, id: "gw-7" },
      { kind: "line", text: '{"after":2}' },
    ]);
  });

  it("finds a top-level id at either end, never a nested one", () => {
    expect(topLevelId('{"jsonrpc":"2.0","id":12,"result":{', "")).toBe(12);
    expect(topLevelId('{"result":{"id":"nested"', '"x"},"jsonrpc":"2.0","id":"gw-3"}')).toBe("gw-3");
    expect(topLevelId('{"result":{"id":"nested"', '"id":"nested"}}')).toBeUndefined();
  });
});

describe("StderrTail", () => {
  it("keeps the last lines, truncated, and returns completed lines for logging", () => {
    const tail = new StderrTail(2, 10);
    expect(tail.push("one\ntwo\nthree is long")).toEqual(["one", "two"]);
    expect(tail.push(" indeed\nfour\n")).toEqual(["three is …", "four"]);
    expect(tail.lines()).toEqual(["three is …", "four"]);
    tail.push("partial");
    expect(tail.lines()).toEqual(["four", "partial"]);
  });
});

describe("relay rewriting", () => {
  it("replaces the agent's progress token with the connector's, keeping other _meta and params", () => {
    expect(withProgressToken({ name: "t", _meta: { progressToken: "agent", traceparent: "00-x" } }, "gw-1")).toEqual({
      name: "t",
      _meta: { progressToken: "gw-1", traceparent: "00-x" },
    });
    expect(withProgressToken(undefined, "gw-2")).toEqual({ _meta: { progressToken: "gw-2" } });
  });
  it("forwards progress without the token", () => {
    expect(progressForEdge({ progressToken: "gw-1", progress: 2, total: 5, message: "half" })).toEqual({
      method: "notifications/progress",
      params: { progress: 2, total: 5, message: "half" },
    });
  });
  it("passes results and upstream errors through, and refuses malformed answers", () => {
    expect(outcomeOf("s", { id: 1, result: { content: [] } })).toEqual({ result: { content: [] } });
    expect(outcomeOf("s", { id: 1, error: { code: -32602, message: "bad", data: { x: 1 } } })).toEqual({
      error: { code: -32602, message: "bad", data: { x: 1 } },
    });
    expect(outcomeOf("s", { id: 1, result: 42 })).toMatchObject({ error: { code: -32603 } });
    expect(outcomeOf("s", { id: 1, error: "nope" })).toMatchObject({ error: { code: -32603 } });
  });
});

describe("CLI options", () => {
  it("turns a gateway's https URL into its wss /connect endpoint", () => {
    expect(connectUrl("https://gw.example.com")).toEqual({ ok: true, url: "wss://gw.example.com/connect" });
    expect(connectUrl("http://127.0.0.1:8787/")).toEqual({ ok: true, url: "ws://127.0.0.1:8787/connect" });
    expect(connectUrl("https://gw.example.com/connect")).toEqual({ ok: true, url: "wss://gw.example.com/connect" });
    expect(connectUrl("wss://gw.example.com/custom/path")).toEqual({ ok: true, url: "wss://gw.example.com/custom/path" });
    expect(connectUrl("ftp://x").ok).toBe(false);
    expect(connectUrl("https://user:pw@gw.example.com").ok).toBe(false);
  });

  it("reads the environment, with flags taking precedence", () => {
    const env = { MCP_GATEWAY_URL: "https://gw.example.com", MCP_GATEWAY_CONNECTOR_TOKEN: "tok", MCP_GATEWAY_CONFIG: "/etc/gw.yaml" };
    expect(parseCliOptions([], env)).toEqual({
      kind: "run",
      options: { configPath: "/etc/gw.yaml", url: "wss://gw.example.com/connect", token: "tok", replicaId: undefined, warnings: [] },
    });
    const parsed = parseCliOptions(["--config", "a.yaml", "--replica-id", "host-1"], env);
    expect(parsed).toMatchObject({ kind: "run", options: { configPath: "a.yaml", replicaId: "host-1" } });
  });

  it("warns that --token is visible in ps, and about clear-text URLs, without echoing the token", () => {
    const parsed = parseCliOptions(["--token", "very-secret-token", "--url", "http://gw.example.com"], {});
    expect(parsed.kind).toBe("run");
    if (parsed.kind !== "run") return;
    expect(parsed.options.warnings.join(" ")).toMatch(/process list/);
    expect(parsed.options.warnings.join(" ")).toMatch(/clear text/);
    expect(parsed.options.warnings.join(" ")).not.toContain("very-secret-token");
  });

  it("refuses missing URL or token and unknown flags", () => {
    expect(parseCliOptions([], {})).toMatchObject({ kind: "invalid", errors: [expect.stringMatching(/URL/), expect.stringMatching(/token/)] });
    expect(parseCliOptions(["--nope"], {}).kind).toBe("invalid");
    expect(parseCliOptions(["--help"], {}).kind).toBe("help");
  });
});

describe("handshake", () => {
  it("accepts exactly the protocol versions the MCP SDK supports, and offers the newest", () => {
    expect(SUPPORTED_PROTOCOL_VERSIONS).toEqual(SDK_PROTOCOL_VERSIONS);
    expect(initializeParams("1.2.3")).toEqual({
      protocolVersion: SDK_PROTOCOL_VERSIONS[0],
      capabilities: {},
      clientInfo: { name: "mcp-gateway-connector", version: "1.2.3" },
    });
  });
  it("takes the capabilities of a usable initialize result", () => {
    const capabilities = { tools: { listChanged: true }, resources: {} };
    expect(capabilitiesOf({ protocolVersion: "2024-11-05", capabilities, serverInfo: { name: "s", version: "1" } })).toBe(capabilities);
  });
  it("refuses an unsupported or missing protocol version and a result without capabilities, saying which", () => {
    expect(() => capabilitiesOf({ protocolVersion: "2030-01-01", capabilities: {} })).toThrow(/protocol version "2030-01-01", which the connector does not support \(it supports 2025-11-25, 2025-06-18/);
    expect(() => capabilitiesOf({ protocolVersion: "x".repeat(10_000), capabilities: {} })).toThrow(/^.{0,260}$/);
    expect(() => capabilitiesOf({ capabilities: {} })).toThrow("its initialize result names no protocolVersion");
    expect(() => capabilitiesOf({ protocolVersion: 20250618, capabilities: {} })).toThrow("its initialize result names no protocolVersion");
    expect(() => capabilitiesOf({ protocolVersion: "2025-06-18", capabilities: [] })).toThrow("its initialize result has no capabilities object");
  });
});

describe("listAllPages", () => {
  /** A server's pages by cursor ("" is the first page); records the cursors asked for. */
  function pages(byCursor: Record<string, Record<string, unknown>>) {
    const asked: (string | undefined)[] = [];
    const fetchPage = (cursor: string | undefined) => {
      asked.push(cursor);
      return Promise.resolve(byCursor[cursor ?? ""]!);
    };
    return { asked, fetchPage };
  }
  it("follows nextCursor until a page has none", async () => {
    const { asked, fetchPage } = pages({ "": { tools: [1, 2], nextCursor: "b" }, b: { tools: [3], nextCursor: "c" }, c: { tools: [] } });
    expect(await listAllPages("tools/list", "tools", fetchPage)).toEqual([1, 2, 3]);
    expect(asked).toEqual([undefined, "b", "c"]);
  });
  it("stops when a page repeats its cursor and its items, as servers that echo their last cursor do", async () => {
    const { asked, fetchPage } = pages({ "": { tools: [1], nextCursor: "b" }, b: { tools: [2], nextCursor: "b" } });
    expect(await listAllPages("tools/list", "tools", fetchPage)).toEqual([1, 2]);
    expect(asked).toEqual([undefined, "b", "b"]);
  });
  it("gives up on a server that never stops paginating, and on a page without the list", async () => {
    let n = 0;
    const endless = () => Promise.resolve({ prompts: [n], nextCursor: `c${n++}` });
    await expect(listAllPages("prompts/list", "prompts", endless)).rejects.toThrow(`prompts/list did not stop paginating after ${MAX_LIST_PAGES} pages`);
    expect(n).toBe(MAX_LIST_PAGES);
    await expect(listAllPages("tools/list", "tools", () => Promise.resolve({ tools: "nope" }))).rejects.toThrow("tools/list answered without a tools array");
    await expect(listAllPages("tools/list", "tools", () => Promise.resolve({ tools: [1], nextCursor: 2 }))).rejects.toThrow("tools/list answered with a nextCursor that is not a string");
    expect(await listAllPages("tools/list", "tools", () => Promise.resolve({ tools: [1], nextCursor: null }))).toEqual([1]);
  });
  it("stops gathering once the items pass the size the gateway can carry", async () => {
    let n = 0;
    const bulky = () => Promise.resolve({ tools: ["x".repeat(1_000)], nextCursor: `c${n++}` });
    await expect(listAllPages("tools/list", "tools", bulky, 10_000)).rejects.toThrow("tools/list listed more than 10000 characters of tools, more than the gateway can carry");
    expect(n).toBe(10);
  });
});
