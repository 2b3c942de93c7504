/**
 * A generated corpus of malformed and hostile requests for /mcp, /admin/v1 and /connect (test/worker/hostile-input.test.ts).
 *
 * Deterministic: every random choice comes from the seeded mulberry32 of bench/prng.ts, so a failing case has the same
 * label and bytes on every run. Platform-free (no cloudflare:* import): the test supplies keys and tenant ids.
 *
 * Each case says what it expects, as far as the documented contract fixes it:
 * - `audits`: how many entries the request adds to the tenant's audit chain. Only two things write one (README,
 *   "The audit trail"): a call that reaches an audited handler (tools/call, prompts/get, resources/read,
 *   completion/complete) with params the MCP SDK's request schema accepts — allowed, denied, unknown or failed alike —
 *   and a refused key that names its tenant (disabled, expired), one `authenticate` entry. Everything refused
 *   before that (not JSON, not JSON-RPC, wrong shape, wrong method, wrong headers, too large, unknown or no key)
 *   writes nothing.
 * - `statuses`: the HTTP statuses allowed; never a 5xx from an unhandled exception.
 * - `answer`: "error" = every JSON-RPC message is an error `{code: number, message: string}`; "result" = a result;
 *   "either" = a request that is odd but valid JSON-RPC/MCP (a long string id, a name with an RTL override);
 *   "empty" = no body (202 for a notification, HEAD).
 */
import { prng } from "../../bench/prng.ts";
import { LINK_PROTOCOL_VERSION, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from "../../src/link/protocol.ts";

export type Answer = "error" | "result" | "either" | "empty";

/** Which credential a /mcp case sends; the test maps these to the seeded tenant's keys. */
export type KeyKind =
  | "valid"
  | "none"
  | "unknown"
  | "empty-bearer"
  | "basic"
  | "long"
  | "jwt-garbage"
  | "lowercase-scheme"
  | "disabled"
  | "expired"
  | "query-token";

export interface McpCase {
  category: string;
  label: string;
  method: string;
  key: KeyKind;
  /** Added to (or, with value null, removed from) the default headers: JSON content type, both Accept types. */
  headers: Record<string, string | null>;
  body?: string | Uint8Array | undefined;
  /** Appended to /mcp (query junk, a token in the URL). */
  query?: string;
  statuses: number[];
  answer: Answer;
  /** JSON-RPC error codes allowed when the answer is an error (empty: any numeric code). */
  codes?: number[];
  audits: number;
}

export interface AdminCase {
  category: string;
  label: string;
  method: string;
  /** Path under /admin/v1 with its query. */
  path: string;
  body?: string | Uint8Array | undefined;
  headers: Record<string, string>;
  statuses: number[];
  /** Admin error codes allowed (`{error: {code, message}}`); a 2xx answer is checked to be JSON instead. */
  codes: string[];
}

/** A frame a fake connector sends, and what the edge must do about it. */
export interface FrameCase {
  category: string;
  label: string;
  /** Text, or bytes sent as a binary frame. */
  frame: string | Uint8Array;
  /**
   * "error:<code>" = an error frame with that link error code comes back and the socket stays open;
   * "welcome" = the frame is a valid hello and is welcomed; "silent" = valid but nothing to answer (a result for an
   * unknown call id, a pong, the connector's own error frame); "close:<code>" = an error frame, then the edge
   * closes the socket with that code.
   */
  expect: `error:${string}` | "welcome" | "silent" | `close:${number}`;
}

export interface UpgradeCase {
  category: string;
  label: string;
  method: string;
  headers: Record<string, string>;
  /** Credential: a real connector token, or one of the wrong kinds. */
  credential: "connector" | "none" | "unknown" | "api-key" | "admin-key" | "platform" | "long" | "basic";
  statuses: number[];
}

// ---------------------------------------------------------------------------------------------------------------
// Building blocks

/** The corpus's random source, reset by each exported corpus function so every call yields the same cases. */
let rand = prng(0);
const SEED = 0x6d637067; // "mcpg"

const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;

const JSON_HEADERS = {};
const encoder = new TextEncoder();

const rpc = (method: unknown, params?: unknown, id: unknown = 1) =>
  JSON.stringify({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
const toolCall = (name: unknown, args?: unknown, id: unknown = 1) => rpc("tools/call", { name, ...(args === undefined ? {} : { arguments: args }) }, id);

/** Bytes: ASCII text with raw byte sequences spliced in at `marker`. */
function withRawBytes(text: string, marker: string, raw: number[]): Uint8Array {
  const [before, after] = text.split(marker) as [string, string];
  return new Uint8Array([...encoder.encode(before), ...raw, ...encoder.encode(after)]);
}

/** Printable junk, with JSON punctuation over-represented so parsers get deep before failing. */
function junk(length: number): string {
  const alphabet = '{}[]":,\\ \n\tabc019eE+-.nultrufals\u00e9\u2028\ud800';
  let text = "";
  for (let i = 0; i < length; i++) text += alphabet[int(alphabet.length)];
  return text;
}

const VALID_BODIES = [
  rpc("tools/list", {}),
  toolCall("crm__echo", { text: "hello" }),
  rpc("initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } }),
  rpc("resources/read", { uri: "crm://readme" }),
  rpc("prompts/get", { name: "crm__greet", arguments: { who: "x" } }),
];


// ---------------------------------------------------------------------------------------------------------------
// /mcp

/** Not JSON at all: -32700 from the SDK before anything is dispatched. */
function syntaxCases(): McpCase[] {
  const cases: McpCase[] = [];
  const fixed: [string, string][] = [
    ["empty body", ""],
    ["whitespace only", " \n\t "],
    ["a bare word", "tools/list"],
    ["single quotes", "{'jsonrpc':'2.0','id':1,'method':'tools/list'}"],
    ["a trailing comma", '{"jsonrpc":"2.0","id":1,"method":"tools/list",}'],
    ["two documents", `${rpc("tools/list", {})}${rpc("tools/list", {})}`],
    ["a comment", '{"jsonrpc":"2.0",/*x*/"id":1,"method":"tools/list"}'],
    ["NaN literal", '{"jsonrpc":"2.0","id":NaN,"method":"tools/list"}'],
    ["Infinity literal", '{"jsonrpc":"2.0","id":Infinity,"method":"tools/list"}'],
    ["unquoted keys", "{jsonrpc:\"2.0\",id:1,method:\"tools/list\"}"],
    ["an unterminated string", '{"jsonrpc":"2.0","id":1,"method":"tools/list'],
    ["a bad escape", '{"jsonrpc":"2.0","id":1,"method":"tools\\x2flist"}'],
    ["a raw control character in a string", '{"jsonrpc":"2.0","id":1,"method":"tools/\u0001list"}'],
    ["a hex number", '{"jsonrpc":"2.0","id":0x10,"method":"tools/list"}'],
    ["a leading zero", '{"jsonrpc":"2.0","id":01,"method":"tools/list"}'],
    ["unbalanced brackets", "[[[[{}]]"],
    ["10,000 opening brackets", "[".repeat(10_000)],
    ["10,000 opening braces", '{"a":'.repeat(10_000)],
  ];
  for (const [label, body] of fixed) cases.push(mcp("json-syntax", label, body, { statuses: [400], answer: "error", codes: [-32700] }));
  for (let i = 0; i < 60; i++) {
    const base = pick(VALID_BODIES);
    const cut = 1 + int(base.length - 2);
    cases.push(mcp("json-syntax", `truncated #${i}: ${base.slice(0, 30)}… cut at ${cut}/${base.length}`, base.slice(0, cut), { statuses: [400], answer: "error", codes: [-32700] }));
  }
  for (let i = 0; i < 50; i++) {
    // Starts with a brace and never closes it: whatever the junk, it cannot parse.
    const body = `{${junk(1 + int(400))}`;
    cases.push(mcp("json-syntax", `random junk #${i} (${body.length} chars)`, body, { statuses: [400], answer: "error", codes: [-32700] }));
  }
  return cases;
}

/** Valid JSON that is not a valid JSON-RPC request: -32600 (invalid request) or -32602, never dispatched. */
function shapeCases(): McpCase[] {
  const cases: McpCase[] = [];
  const methods = ["tools/list", "ping", "prompts/list", "tools/call"];
  const invalid: [string, (method: string) => unknown][] = [
    ["missing jsonrpc", (m) => ({ id: 1, method: m, params: {} })],
    ['jsonrpc "1.0"', (m) => ({ jsonrpc: "1.0", id: 1, method: m, params: {} })],
    ["jsonrpc 2 (a number)", (m) => ({ jsonrpc: 2, id: 1, method: m, params: {} })],
    ["jsonrpc null", (m) => ({ jsonrpc: null, id: 1, method: m, params: {} })],
    ['jsonrpc "2.0 "', (m) => ({ jsonrpc: "2.0 ", id: 1, method: m, params: {} })],
    ["id as an object", (m) => ({ jsonrpc: "2.0", id: { a: 1 }, method: m, params: {} })],
    ["id as an array", (m) => ({ jsonrpc: "2.0", id: [1], method: m, params: {} })],
    ["id true", (m) => ({ jsonrpc: "2.0", id: true, method: m, params: {} })],
    ["id false", (m) => ({ jsonrpc: "2.0", id: false, method: m, params: {} })],
    ["method 42", () => ({ jsonrpc: "2.0", id: 1, method: 42, params: {} })],
    ["method null", () => ({ jsonrpc: "2.0", id: 1, method: null, params: {} })],
    ["method an array", () => ({ jsonrpc: "2.0", id: 1, method: ["tools/list"], params: {} })],
    ["method an object", () => ({ jsonrpc: "2.0", id: 1, method: { name: "tools/list" }, params: {} })],
    ["params an array", (m) => ({ jsonrpc: "2.0", id: 1, method: m, params: [1, 2] })],
    ["params a string", (m) => ({ jsonrpc: "2.0", id: 1, method: m, params: "x" })],
    ["params a number", (m) => ({ jsonrpc: "2.0", id: 1, method: m, params: 7 })],
    ["params null", (m) => ({ jsonrpc: "2.0", id: 1, method: m, params: null })],
    ["params true", (m) => ({ jsonrpc: "2.0", id: 1, method: m, params: true })],
    ["an empty object", () => ({})],
    ["a JSON number", () => 42],
    ["a JSON string", () => "tools/list"],
    ["JSON null", () => null],
    ["JSON true", () => true],
  ];
  for (const [label, make] of invalid) {
    for (const method of methods) {
      cases.push(mcp("jsonrpc-shape", `${label} (${method})`, JSON.stringify(make(method)), { statuses: [200, 400], answer: "error" }));
    }
  }
  // A JSON-RPC response posted to the server is how a client answers a server's request (Streamable HTTP): accepted
  // with 202 and no body, and never dispatched to a handler.
  for (const [label, body] of [
    ["a result for a request the server never sent", { jsonrpc: "2.0", id: 1, result: {} }],
    ["an error for a request the server never sent", { jsonrpc: "2.0", id: 1, error: { code: 1, message: "x" } }],
    ["a result with a __proto__ payload", JSON.parse('{"jsonrpc":"2.0","id":"x","result":{"__proto__":{"polluted":true}}}')],
    ["an error with a huge id", { jsonrpc: "2.0", id: "e".repeat(10_000), error: { code: -32603, message: "x" } }],
  ] as [string, unknown][]) {
    cases.push(mcp("jsonrpc-shape", label, JSON.stringify(body), { statuses: [202], answer: "either" }));
  }
  // Ids that are odd but within JSON-RPC (a string or a number): answered normally, echoing the id. Listings only,
  // so nothing is audited whatever the verdict.
  const oddIds: [string, string][] = [
    ["id a float 1.5", "1.5"],
    ["id 2^53+1", "9007199254740993"],
    ["id 2^64", "18446744073709551616"],
    ["id a 400-digit integer", "9".repeat(400)],
    ["id 1e400 (overflows to Infinity)", "1e400"],
    ["id -0", "-0"],
    ["id negative", "-1"],
    ["id a 10,000-character string", JSON.stringify("i".repeat(10_000))],
    ["id an empty string", '""'],
    ["id a string with U+2028 and NUL", '"a\\u2028b\\u0000c"'],
    ["id null", "null"],
  ];
  for (const [label, id] of oddIds) {
    for (const method of ["tools/list", "ping"]) {
      cases.push(mcp("jsonrpc-shape", `${label} (${method})`, `{"jsonrpc":"2.0","id":${id},"method":"${method}","params":{}}`, { statuses: [200, 400], answer: "either" }));
    }
  }
  return cases;
}

/**
 * Batches: part of the 2025-03-26 revision this gateway still serves, so the SDK takes a batch of up to 100 valid
 * messages and runs each (every call in it audited like a single one); an empty, oversized or partly invalid batch is
 * refused whole with -32600 before anything in it runs.
 */
function batchCases(): McpCase[] {
  const cases: McpCase[] = [];
  const refused: [string, string][] = [
    ["an empty batch", "[]"],
    ["a batch of junk", "[1,2,3]"],
    ["a batch of nulls", "[null,null]"],
    ["a batch of empty objects", "[{},{}]"],
    ["a batch of 101 calls (above the SDK's 100)", `[${Array.from({ length: 101 }, (_, i) => toolCall("crm__echo", { i }, i)).join(",")}]`],
    ["a batch of 1,000 calls", `[${Array.from({ length: 1000 }, (_, i) => toolCall("crm__echo", { i }, i)).join(",")}]`],
    ["a nested batch", `[[${rpc("tools/list", {})}]]`],
    ["a valid call followed by junk", `[${toolCall("crm__echo", { text: "a" })},42]`],
    ["a valid call followed by a request without jsonrpc", `[${toolCall("crm__echo", { text: "a" })},{"id":2,"method":"tools/list"}]`],
  ];
  for (const [label, body] of refused) cases.push(mcp("batch", label, body, { statuses: [400], answer: "error", codes: [-32600] }));
  cases.push(mcp("batch", "a batch of one listing", `[${rpc("tools/list", {})}]`, { statuses: [200], answer: "result" }));
  cases.push(mcp("batch", "a batch of two calls (each relayed and audited)", `[${toolCall("crm__echo", { text: "a" })},${toolCall("crm__echo", { text: "b" }, 2)}]`, { statuses: [200], answer: "result", audits: 2 }));
  cases.push(mcp("batch", "a batch of a listing and an unknown tool (the call audited)", `[${rpc("tools/list", {})},${toolCall("crm__nope", {}, 2)}]`, { statuses: [200], answer: "either", audits: 1 }));
  cases.push(mcp("batch", "a batch of 100 unknown tools (each audited)", `[${Array.from({ length: 100 }, (_, i) => toolCall(`crm__nope_${i}`, {}, i)).join(",")}]`, { statuses: [200], answer: "error", codes: [-32602], audits: 100 }));
  cases.push(mcp("batch", "a batch of two calls with the same id", `[${toolCall("crm__nope", {}, 7)},${toolCall("crm__nope", {}, 7)}]`, { statuses: [200, 400], answer: "either", audits: 2 }));
  cases.push(mcp("batch", "a batch of notifications", `[{"jsonrpc":"2.0","method":"notifications/initialized"}]`, { statuses: [202], answer: "either" }));
  return cases;
}

/** Deep nesting in params and arguments: parsed and refused or handled, never a stack overflow. */
function nestingCases(): McpCase[] {
  const cases: McpCase[] = [];
  for (const depth of [65, 1_000, 10_000, 100_000]) {
    const arrays = `${"[".repeat(depth)}${"]".repeat(depth)}`;
    const objects = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    cases.push(mcp("nesting", `${depth} nested arrays in params of tools/list`, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":${arrays}}}`, { statuses: [200, 400], answer: "either" }));
    cases.push(mcp("nesting", `${depth} nested objects in _meta of ping`, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":${objects}}}`, { statuses: [200, 400], answer: "either" }));
    // An unknown tool's arguments are recorded (redacted, depth-limited) in the audit chain: one entry.
    cases.push(mcp("nesting", `${depth} nested arrays in arguments of an unknown tool`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__nope","arguments":{"x":${arrays}}}}`, { statuses: [200], answer: "error", codes: [-32602], audits: 1 }));
    // Relayed to the fake connector (which answers every call) and recorded: one entry.
    cases.push(mcp("nesting", `${depth} nested objects in arguments of crm__echo`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__echo","arguments":{"x":${objects}}}}`, { statuses: [200], answer: "either", audits: 1 }));
  }
  return cases;
}

/** Bodies around and far above the one message limit (4 MiB); a lying Content-Length. */
function sizeCases(): McpCase[] {
  const padded = (bytes: number) => {
    const head = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"';
    const tail = '"}}';
    return head + "x".repeat(bytes - head.length - tail.length) + tail;
  };
  const tooLarge = { statuses: [413], answer: "error" as const, codes: [-32600, -32000, -32010, -32011, -32094, -32095] };
  return [
    mcp("size", "exactly the limit (a listing padded to 4 MiB)", padded(MAX_MESSAGE_BYTES), { statuses: [200], answer: "result" }),
    mcp("size", "one byte above the limit", padded(MAX_MESSAGE_BYTES + 1), tooLarge),
    // 4 MiB characters, one of them two bytes in UTF-8: the limit is on bytes.
    mcp("size", "a multibyte body one byte above the limit", padded(MAX_MESSAGE_BYTES).replace('"pad":"x', '"pad":"\u00e9'), tooLarge),
    mcp("size", "twice the limit", padded(2 * MAX_MESSAGE_BYTES), tooLarge),
    mcp("size", "16 MiB", padded(16 * 1024 * 1024), tooLarge),
    mcp("size", "Content-Length 10 on a 5 MiB body", padded(5 * 1024 * 1024), { ...tooLarge, headers: { "content-length": "10" } }),
    mcp("size", "Content-Length of 1 TiB on a small body", rpc("tools/list", {}), { ...tooLarge, headers: { "content-length": String(2 ** 40) } }),
    mcp("size", "a negative Content-Length", rpc("tools/list", {}), { statuses: [200, 400, 413], answer: "either", headers: { "content-length": "-1" } }),
    mcp("size", "a non-numeric Content-Length", rpc("tools/list", {}), { statuses: [200, 400, 413], answer: "either", headers: { "content-length": "lots" } }),
    mcp("size", "a 3 MiB tool name (unknown tool, under the limit)", toolCall(`crm__${"n".repeat(3 * 1024 * 1024)}`, {}), { statuses: [200], answer: "error", codes: [-32602], audits: 1 }),
    mcp("size", "3 MiB of arguments to an unknown tool", toolCall("crm__nope", { blob: "a".repeat(3 * 1024 * 1024) }), { statuses: [200], answer: "error", codes: [-32602], audits: 1 }),
  ];
}

/** Content types and Accept headers the Streamable HTTP transport does not take. Listings only: nothing audited. */
function headerCases(): McpCase[] {
  const cases: McpCase[] = [];
  const body = rpc("tools/list", {});
  const contentTypes: [string, string | null][] = [
    ["no Content-Type", null],
    ["text/plain", "text/plain"],
    ["application/xml", "application/xml"],
    ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded"],
    ["multipart/form-data", "multipart/form-data; boundary=x"],
    ["application/jsonp", "application/jsonp"],
    ["text/json", "text/json"],
    ["an empty Content-Type", ""],
    ["a garbage Content-Type", ";;;==="],
  ];
  for (const [label, type] of contentTypes) cases.push(mcp("headers", `Content-Type: ${label}`, body, { statuses: [415, 400], answer: "error", headers: { "content-type": type } }));
  // Parameters on the JSON type are fine.
  cases.push(mcp("headers", "Content-Type with charset=utf-8", body, { statuses: [200], answer: "result", headers: { "content-type": "application/json; charset=utf-8" } }));
  const accepts: [string, string | null][] = [
    ["no Accept", null],
    ["Accept: text/html", "text/html"],
    ["Accept: application/xml", "application/xml"],
    ["an empty Accept", ""],
    ["Accept: garbage", ",,,;q=x"],
  ];
  for (const [label, accept] of accepts) cases.push(mcp("headers", label, body, { statuses: [406, 400], answer: "error", headers: { accept } }));
  for (const [label, accept] of [
    ["Accept: application/json only", "application/json"],
    ["Accept: text/event-stream only", "text/event-stream"],
    ["Accept: */*", "*/*"],
  ] as const) {
    cases.push(mcp("headers", label, body, { statuses: [200, 406], answer: "either", headers: { accept } }));
  }
  const other: [string, Record<string, string>][] = [
    ["a garbage MCP-Protocol-Version", { "mcp-protocol-version": "../../etc" }],
    ["MCP-Protocol-Version from the future", { "mcp-protocol-version": "2099-01-01" }],
    ["a 4 KB MCP-Session-Id", { "mcp-session-id": "s".repeat(4096) }],
    ["Mcp-Method disagreeing with the body", { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call" }],
  ];
  for (const [label, headers] of other) cases.push(mcp("headers", label, body, { statuses: [200, 400], answer: "either", headers }));
  cases.push(mcp("headers", "a foreign Origin", body, { statuses: [403], answer: "error", codes: [-32000], headers: { origin: "https://evil.example" } }));
  cases.push(mcp("headers", "Origin: null", body, { statuses: [403], answer: "error", codes: [-32000], headers: { origin: "null" } }));
  return cases;
}

/** Unicode and byte-level tricks in names, arguments and the body's encoding. */
function unicodeCases(): McpCase[] {
  const cases: McpCase[] = [];
  const names: [string, string][] = [
    ["a lone high surrogate", "crm__ec\\ud800ho"],
    ["a lone low surrogate", "crm__\\udc00echo"],
    ["a reversed surrogate pair", "crm__\\udc00\\ud800"],
    ["U+2028 and U+2029", "crm__echo\\u2028\\u2029"],
    ["an RTL override", "crm__\\u202eohce"],
    ["a zero-width joiner", "crm__ec\\u200dho"],
    ["NUL", "crm__echo\\u0000"],
    ["a BOM inside", "\\ufeffcrm__echo"],
    ["fullwidth letters", "crm__\\uff45\\uff43\\uff48\\uff4f"],
    ["a combining mark", "crm__echo\\u0301"],
    ["emoji", "crm__\\ud83d\\ude00"],
    ["U+FFFF", "crm__\\uffff"],
  ];
  for (const [label, name] of names) {
    // Valid JSON, valid name type: an unknown tool, recorded.
    cases.push(mcp("unicode", `tool name with ${label}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${name}","arguments":{}}}`, { statuses: [200], answer: "error", codes: [-32602], audits: 1 }));
    // In arguments of a real tool: relayed and recorded.
    cases.push(mcp("unicode", `argument with ${label}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__echo","arguments":{"text":"${name}","${name}":1}}}`, { statuses: [200], answer: "either", audits: 1 }));
    cases.push(mcp("unicode", `method with ${label}`, `{"jsonrpc":"2.0","id":1,"method":"${name}","params":{}}`, { statuses: [200, 400], answer: "error", codes: [-32601, -32600] }));
  }
  const list = rpc("tools/list", {});
  const call = toolCall("crm__RAW", {});
  // A body is UTF-8: an invalid sequence decodes to U+FFFD (WHATWG), so the document still parses. Raw bytes inside
  // a tool name give an unknown tool (recorded); a leading BOM is stripped by the decoder.
  const rawInName: [string, number[]][] = [
    ["an overlong '/' (C0 AF)", [0xc0, 0xaf]],
    ["an overlong '.' (E0 80 AE)", [0xe0, 0x80, 0xae]],
    ["an overlong NUL (C0 80)", [0xc0, 0x80]],
    ["a 4-byte overlong (F0 80 80 AF)", [0xf0, 0x80, 0x80, 0xaf]],
    ["FF FE", [0xff, 0xfe]],
    ["a lone continuation byte", [0x80]],
    ["an encoded surrogate (ED A0 80)", [0xed, 0xa0, 0x80]],
    ["a truncated sequence (E2 82)", [0xe2, 0x82]],
    ["a code point above U+10FFFF (F4 90 80 80)", [0xf4, 0x90, 0x80, 0x80]],
  ];
  for (const [label, raw] of rawInName) {
    cases.push(mcp("unicode", `raw bytes in a tool name: ${label}`, withRawBytes(call, "RAW", raw), { statuses: [200], answer: "error", codes: [-32602], audits: 1 }));
  }
  cases.push(mcp("unicode", "a UTF-8 BOM before a listing", new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode(list)]), { statuses: [200, 400], answer: "either" }));
  cases.push(mcp("unicode", "two BOMs before a listing", new Uint8Array([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, ...encoder.encode(list)]), { statuses: [400], answer: "error", codes: [-32700] }));
  cases.push(mcp("unicode", "a raw NUL byte between tokens", withRawBytes(list, ",", [0x2c, 0x00]), { statuses: [400], answer: "error", codes: [-32700] }));
  cases.push(mcp("unicode", "a raw NUL byte inside a string", withRawBytes(list, "tools/", [...encoder.encode("tools/"), 0x00]), { statuses: [400], answer: "error", codes: [-32700] }));
  cases.push(mcp("unicode", "raw overlong bytes between tokens", withRawBytes(list, ",", [0x2c, 0xc0, 0xa0]), { statuses: [400], answer: "error", codes: [-32700] }));
  const utf16 = new Uint8Array(list.length * 2 + 2);
  utf16.set([0xff, 0xfe]);
  for (let i = 0; i < list.length; i++) utf16[2 + i * 2] = list.charCodeAt(i);
  cases.push(mcp("unicode", "a UTF-16LE body labelled JSON", utf16, { statuses: [400], answer: "error", codes: [-32700] }));
  cases.push(mcp("unicode", "a UTF-16 charset label on a UTF-8 body", list, { statuses: [200, 400, 415], answer: "either", headers: { "content-type": "application/json; charset=utf-16" } }));
  return cases;
}

/** Prototype keys wherever a request has an object: they stay plain keys; Object.prototype is never touched. */
function prototypeCases(): McpCase[] {
  const cases: McpCase[] = [];
  for (const key of ["__proto__", "constructor", "prototype"]) {
    const poison = `{"${key}":{"polluted":true,"isAdmin":true,"roles":["admin"]}}`;
    cases.push(mcp("prototype", `${key} at the top level`, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{},"${key}":{"polluted":true}}`, { statuses: [200, 400], answer: "either" }));
    cases.push(mcp("prototype", `${key} in params of tools/list`, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":${poison}}`, { statuses: [200, 400], answer: "either" }));
    cases.push(mcp("prototype", `${key} in _meta`, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":${poison}}}`, { statuses: [200, 400], answer: "either" }));
    cases.push(mcp("prototype", `${key} in arguments of crm__echo`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__echo","arguments":${poison}}}`, { statuses: [200], answer: "either", audits: 1 }));
    cases.push(mcp("prototype", `${key} as the tool name`, toolCall(key, {}), { statuses: [200], answer: "error", codes: [-32602], audits: 1 }));
    cases.push(mcp("prototype", `crm__${key} as the tool name`, toolCall(`crm__${key}`, {}), { statuses: [200], answer: "error", codes: [-32602], audits: 1 }));
    cases.push(mcp("prototype", `${key} as the prompt name`, rpc("prompts/get", { name: key }), { statuses: [200], answer: "error", codes: [-32602], audits: 1 }));
    // context.arguments holds strings: an object under "constructor" or "prototype" is invalid params (-32602,
    // never dispatched); under "__proto__" the schema's record does not see the key, so the request is valid,
    // dispatched and recorded.
    cases.push(
      mcp("prototype", `${key} in a completion's context`, rpc("completion/complete", { ref: { type: "ref/prompt", name: "crm__greet" }, argument: { name: key, value: "x" }, context: { arguments: JSON.parse(poison) } }),
        key === "__proto__" ? { statuses: [200], answer: "either", audits: 1 } : INVALID_PARAMS),
    );
    cases.push(mcp("prototype", `${key} as a completion's argument name`, rpc("completion/complete", { ref: { type: "ref/prompt", name: "crm__greet" }, argument: { name: key, value: "x" } }), { statuses: [200], answer: "either", audits: 1 }));
    cases.push(mcp("prototype", `${key} as the method`, rpc(key, {}), { statuses: [200, 400], answer: "error", codes: [-32601] }));
    cases.push(mcp("prototype", `${key} in call's arguments`, toolCall("call", JSON.parse(`{"name":"crm__echo","arguments":${poison}}`)), { statuses: [200], answer: "either", audits: 1 }));
  }
  return cases;
}

/** Hostile tool, prompt and resource names: each an unknown target, recorded once. */
function nameCases(): McpCase[] {
  const cases: McpCase[] = [];
  const names = [
    "../../etc/passwd",
    "crm__../../etc/passwd",
    "crm__echo/../../admin",
    "crm__..%2f..%2fecho",
    "..\\..\\windows\\system32",
    "/etc/passwd",
    "crm__echo?x=1",
    "crm__echo#frag",
    "crm/echo",
    "crm.echo",
    "crm___echo",
    "crm____echo",
    "__echo",
    "crm__",
    "__",
    "",
    " ",
    "crm__echo ",
    " crm__echo",
    "CRM__ECHO",
    "gateway__call",
    "gateway__list_tools",
    "file:///etc/passwd",
    "${principal.tenant}",
    "'; DROP TABLE audit_entries; --",
    "crm__echo\"; --",
    "<script>alert(1)</script>",
    "%00",
    "crm__echo%00.txt",
    "x".repeat(257),
    `crm__${"e".repeat(10_000)}`,
    `${"a__".repeat(1000)}echo`,
  ];
  for (const name of names) {
    const shown = name.length > 40 ? `${name.slice(0, 20)}…(${name.length} chars)` : JSON.stringify(name);
    cases.push(mcp("names", `tools/call ${shown}`, toolCall(name, {}), { statuses: [200], answer: "error", codes: [-32602], audits: 1 }));
    cases.push(mcp("names", `prompts/get ${shown}`, rpc("prompts/get", { name }), { statuses: [200], answer: "error", codes: [-32602], audits: 1 }));
  }
  const uris = [
    "file:///etc/passwd",
    "crm://../../secret",
    "crm://readme/../../../etc/passwd",
    "crm:%2f%2freadme",
    "crm://items/%2e%2e%2f%2e%2e%2fsecret",
    "../crm://readme",
    "javascript:alert(1)",
    "data:text/plain,hello",
    "http://169.254.169.254/latest/meta-data/",
    "",
    "crm://" + "r".repeat(20_000),
    "\u0000",
  ];
  for (const uri of uris) {
    const shown = uri.length > 40 ? `${uri.slice(0, 20)}…(${uri.length} chars)` : JSON.stringify(uri);
    // A template `crm://items/{item}` matches some of these: then it is relayed (the fake connector answers); either
    // way one entry.
    cases.push(mcp("names", `resources/read ${shown}`, rpc("resources/read", { uri }), { statuses: [200], answer: "either", audits: 1 }));
  }
  return cases;
}

/**
 * Params the spec's schema refuses, on the methods whose handlers validate their own (src/mcp/gateway-server.ts
 * PARAMS): -32602 before anything is routed or charged, so nothing is recorded.
 */
const INVALID_PARAMS: Parameters<typeof mcp>[3] = { statuses: [200], answer: "error", codes: [-32602] };

/** tools/call with arguments of the wrong types, numeric edge values, and the gateway's own tools misused. */
function argumentCases(): McpCase[] {
  const cases: McpCase[] = [];
  // Not an object: the SDK's request schema refuses the params before the handler runs — nothing to record.
  for (const [label, args] of [
    ["a string", '"text"'],
    ["a number", "42"],
    ["an array", '["hi"]'],
    ["true", "true"],
  ] as const) {
    cases.push(mcp("arguments", `crm__echo with arguments ${label}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__echo","arguments":${args}}}`, { statuses: [200, 400], answer: "error", codes: [-32602, -32600] }));
  }
  for (const [label, params] of [
    ["name a number", '{"name":42}'],
    ["name null", '{"name":null}'],
    ["name an object", '{"name":{"toString":"crm__echo"}}'],
    ["name an array", '{"name":["crm__echo"]}'],
    ["no name", '{"arguments":{}}'],
    ["_meta a string", '{"name":"crm__echo","_meta":"x"}'],
    ["progressToken an object", '{"name":"crm__echo","_meta":{"progressToken":{"a":1}}}'],
  ] as const) {
    cases.push(mcp("arguments", `tools/call with ${label}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${params}}`, { statuses: [200, 400], answer: "error", codes: [-32602, -32600] }));
  }
  for (const [label, params] of [
    ["uri a number", '{"uri":42}'],
    ["no uri", "{}"],
  ] as const) {
    cases.push(mcp("arguments", `resources/read with ${label}`, `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":${params}}`, INVALID_PARAMS));
  }
  for (const [label, params] of [
    ["no ref", '{"argument":{"name":"a","value":"b"}}'],
    ["ref a string", '{"ref":"crm__greet","argument":{"name":"a","value":"b"}}'],
    ["argument value a number", '{"ref":{"type":"ref/prompt","name":"crm__greet"},"argument":{"name":"a","value":5}}'],
  ] as const) {
    cases.push(mcp("arguments", `completion/complete with ${label}`, `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":${params}}`, INVALID_PARAMS));
  }
  for (const [label, params] of [
    ["name a number", '{"name":42}'],
    ["arguments an array", '{"name":"crm__greet","arguments":["x"]}'],
    ["an argument value a number", '{"name":"crm__greet","arguments":{"who":5}}'],
  ] as const) {
    cases.push(mcp("arguments", `prompts/get with ${label}`, `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":${params}}`, INVALID_PARAMS));
  }
  // The object is fine, the values are not what the tool's inputSchema says: the gateway relays (the upstream
  // validates its own input) and records.
  const values: [string, string][] = [
    ["text a number", "42"],
    ["text null", "null"],
    ["text an object", '{"a":1}'],
    ["text an array", "[1,2]"],
    ["text true", "true"],
    ['text "NaN"', '"NaN"'],
    ['text "Infinity"', '"Infinity"'],
    ['text "-0"', '"-0"'],
    ["text 1e400 (Infinity when parsed)", "1e400"],
    ["text -1e400", "-1e400"],
    ["text 1e-400 (0 when parsed)", "1e-400"],
    ["text 2^64", "18446744073709551616"],
    ["text -0", "-0"],
    ["text 0.1e-7", "0.1e-7"],
    ["text a 400-digit number", "1".repeat(400)],
  ];
  for (const [label, value] of values) {
    cases.push(mcp("arguments", `crm__echo with ${label}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm__echo","arguments":{"text":${value}}}}`, { statuses: [200], answer: "either", audits: 1 }));
  }
  // The gateway's own tools with arguments of the wrong types: a tool execution error (isError, 2025-11-25) or
  // -32602, recorded as a call of that tool.
  const meta: [string, string][] = [
    ["call", '{"name":42}'],
    ["call", '{"name":"crm__echo","arguments":"x"}'],
    ["call", "{}"],
    ["call", '{"name":"call","arguments":{"name":"call","arguments":{"name":"crm__nope"}}}'],
    ["list_tools", '{"cursor":{"a":1}}'],
    ["list_tools", '{"server":["crm"]}'],
    ["server_status", '{"server":42}'],
    ["server_status", '{"server":"../../etc"}'],
    ["list_servers", '{"unexpected":1e400}'],
    ["usage", '{"from":"not a date","to":-1}'],
    ["usage", '{"groupBy":"__proto__"}'],
    ["audit_log", '{"limit":-1}'],
  ];
  for (const [tool, args] of meta) {
    cases.push(mcp("arguments", `${tool} with ${args.length > 50 ? `${args.slice(0, 50)}…` : args}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${tool}","arguments":${args}}}`, { statuses: [200], answer: "either", audits: 1 }));
  }
  return cases;
}

/** Methods no MCP server has, and notifications used wrongly. */
function methodCases(): McpCase[] {
  const cases: McpCase[] = [];
  const unknown = [
    "admin/dropTables",
    "tools/delete",
    "tools/call/",
    "/tools/call",
    "TOOLS/CALL",
    " tools/list",
    "tools/list ",
    "rpc.discover",
    "$/cancelRequest",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "tasks/get",
    "resources/subscribe",
    "logging/setLevel/extra",
    "",
    "x".repeat(10_000),
  ];
  for (const method of unknown) {
    const shown = method.length > 40 ? `${method.slice(0, 10)}…(${method.length} chars)` : JSON.stringify(method);
    // Some are real MCP methods this server does not offer (resources/subscribe without the capability): -32601.
    cases.push(mcp("methods", `unknown method ${shown}`, rpc(method, {}), { statuses: [200, 400], answer: "error", codes: [-32601, -32600, -32602] }));
  }
  for (let i = 0; i < 20; i++) {
    const method = `${pick(["tools", "prompts", "resources", "x", "gateway"])}/${junk(1 + int(12)).replace(/["\\\ud800]/g, "")}`;
    cases.push(mcp("methods", `random method #${i}`, rpc(method, {}), { statuses: [200, 400], answer: "error", codes: [-32601, -32600, -32602] }));
  }
  // Notifications carry no id; with one they are requests for a method nobody serves.
  for (const method of ["notifications/initialized", "notifications/cancelled", "notifications/progress", "notifications/roots/list_changed", "notifications/unknown"]) {
    cases.push(mcp("notifications", `${method} with an id`, rpc(method, {}, 5), { statuses: [200, 400], answer: "error", codes: [-32601, -32600, -32602] }));
    cases.push(mcp("notifications", `${method} without an id`, JSON.stringify({ jsonrpc: "2.0", method, params: {} }), { statuses: [202, 200, 400], answer: "either" }));
  }
  cases.push(mcp("notifications", "a cancellation of a request id that never existed", JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 987654, reason: "x" } }), { statuses: [202, 200, 400], answer: "either" }));
  cases.push(mcp("notifications", "a cancellation whose requestId is an object", JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: { a: 1 } } }), { statuses: [202, 200, 400], answer: "either" }));
  cases.push(mcp("notifications", "a progress notification for a foreign token", JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "x", progress: 1e400 } }), { statuses: [202, 200, 400], answer: "either" }));
  return cases;
}

/** HTTP methods other than POST: 405 (no sessions, no standalone stream). */
function httpMethodCases(): McpCase[] {
  const cases: McpCase[] = [];
  for (const method of ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
    const body = method === "GET" || method === "OPTIONS" ? undefined : rpc("tools/list", {});
    cases.push(mcp("http-methods", `${method} /mcp`, body, { method, statuses: [405], answer: "either" }));
    cases.push(mcp("http-methods", `${method} /mcp with Accept: text/event-stream only`, body, { method, statuses: [405], answer: "either", headers: { accept: "text/event-stream" } }));
  }
  cases.push(mcp("http-methods", "HEAD /mcp", undefined, { method: "HEAD", statuses: [405, 404], answer: "empty" }));
  return cases;
}

/** Bad credentials with hostile bodies: 401 before the body is read. A refused key of the tenant is recorded once. */
function authCases(): McpCase[] {
  const cases: McpCase[] = [];
  const kinds: [KeyKind, number][] = [
    ["none", 0],
    ["unknown", 0],
    ["empty-bearer", 0],
    ["basic", 0],
    ["long", 0],
    ["jwt-garbage", 0],
    ["query-token", 0],
    ["disabled", 1],
    ["expired", 1],
  ];
  const bodies = [
    "{not json",
    rpc("tools/list", {}),
    toolCall("crm__echo", { text: "x" }),
    `[${rpc("tools/list", {})}]`,
    `${"[".repeat(10_000)}`,
    `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"__proto__":{"polluted":true}}}`,
  ];
  for (const [key, audits] of kinds) {
    for (let i = 0; i < bodies.length; i++) {
      cases.push(mcp("auth", `${key} key, body #${i}`, bodies[i], { key, statuses: [401], answer: "error", codes: [-32001], audits }));
    }
    // Too large and unauthenticated: authentication comes first.
    cases.push(mcp("auth", `${key} key, a 5 MiB body`, `{"pad":"${"x".repeat(5 * 1024 * 1024)}"}`, { key, statuses: [401], answer: "error", codes: [-32001], audits }));
  }
  // Accepted: the scheme is case-insensitive (RFC 7235).
  cases.push(mcp("auth", "a lowercase bearer scheme", rpc("tools/list", {}), { key: "lowercase-scheme", statuses: [200], answer: "result" }));
  return cases;
}

function mcp(
  category: string,
  label: string,
  body: string | Uint8Array | undefined,
  options: {
    statuses: number[];
    answer: Answer;
    codes?: number[];
    audits?: number;
    key?: KeyKind;
    method?: string;
    headers?: Record<string, string | null>;
  },
): McpCase {
  return {
    category,
    label,
    method: options.method ?? "POST",
    key: options.key ?? "valid",
    headers: options.headers ?? JSON_HEADERS,
    body,
    statuses: options.statuses,
    answer: options.answer,
    ...(options.codes ? { codes: options.codes } : {}),
    audits: options.audits ?? 0,
  };
}

export function mcpCorpus(): McpCase[] {
  rand = prng(SEED);
  const cases = [
    ...syntaxCases(),
    ...shapeCases(),
    ...batchCases(),
    ...nestingCases(),
    ...sizeCases(),
    ...headerCases(),
    ...unicodeCases(),
    ...prototypeCases(),
    ...nameCases(),
    ...argumentCases(),
    ...methodCases(),
    ...httpMethodCases(),
    ...authCases(),
  ];
  return cases;
}

// ---------------------------------------------------------------------------------------------------------------
// /admin/v1 (with the tenant's admin key)

/** Ids no route may take: each refused as a malformed id (400) or not found (404), never used as a path. */
const HOSTILE_IDS = [
  "%2e%2e%2fconfig",
  "..%2f..%2fkeys",
  "%2e%2e",
  "%2F",
  "%00",
  "key-1%00",
  "key-1%0d%0aX-Injected:%201",
  "%20key-1",
  "-leading-dash",
  "_leading-underscore",
  "%E2%80%AEkey",
  "%F0%9F%98%80",
  "%C0%AF",
  "%ZZ",
  "%",
  "a".repeat(129),
  "__proto__",
  "constructor",
  "no-such-key",
  "x".repeat(128),
];

const BAD_JSON_BODIES: [string, string][] = [
  ["not JSON", "{not json"],
  ["truncated JSON", '{"name":"k","consumerId":"agent-1"'],
  ["an empty body", ""],
  ["JSON null", "null"],
  ["a JSON array", "[]"],
  ["a JSON string", '"x"'],
  ["a JSON number", "1e400"],
  ["10,000 nested arrays", `${"[".repeat(10_000)}${"]".repeat(10_000)}`],
  ["a __proto__ body", '{"__proto__":{"roles":["admin"]},"name":"k","consumerId":"agent-1"}'],
  ["a lone surrogate", '{"name":"\\ud800","consumerId":"\\udc00"}'],
];

function adminCases(tenant: string): AdminCase[] {
  const cases: AdminCase[] = [];
  const add = (category: string, label: string, method: string, path: string, statuses: number[], codes: string[], body?: string | Uint8Array, headers: Record<string, string> = {}) =>
    cases.push({ category, label, method, path, statuses, codes, body, headers });
  const json = { "content-type": "application/json" };

  // keys
  for (const [label, body] of BAD_JSON_BODIES) add("admin-keys", `POST keys, ${label}`, "POST", "/keys", [400], ["bad_request"], body, json);
  const wrongKeys: [string, unknown][] = [
    ["name a number", { name: 5, consumerId: "agent-1" }],
    ["name empty", { name: "", consumerId: "agent-1" }],
    ["name 257 characters", { name: "n".repeat(257), consumerId: "agent-1" }],
    ["consumerId with a path", { name: "k", consumerId: "../agent-1" }],
    ["consumerId an array", { name: "k", consumerId: ["agent-1"] }],
    ["roles a string", { name: "k", consumerId: "agent-1", roles: "admin" }],
    ["roles of numbers", { name: "k", consumerId: "agent-1", roles: [1, 2] }],
    ["65 roles", { name: "k", consumerId: "agent-1", roles: Array.from({ length: 65 }, (_, i) => `r${i}`) }],
    ["a role no policy grants", { name: "k", consumerId: "agent-1", roles: ["superuser"] }],
    ["expiresAt not a date", { name: "k", consumerId: "agent-1", expiresAt: "tomorrow" }],
    ["expiresAt in year 275760+", { name: "k", consumerId: "agent-1", expiresAt: "+275761-01-01T00:00:00Z" }],
    ["expiresAt in the past", { name: "k", consumerId: "agent-1", expiresAt: "1970-01-01T00:00:00Z" }],
    ["expiresAt a number", { name: "k", consumerId: "agent-1", expiresAt: 1e400 }],
    ["id with a slash", { name: "k", consumerId: "agent-1", id: "a/b" }],
    ["id already in use", { name: "k", consumerId: "agent-1", id: "key-1" }],
    ["ipFilter a string", { name: "k", consumerId: "agent-1", ipFilter: "10.0.0.0/8" }],
    ["ipFilter with a bad CIDR", { name: "k", consumerId: "agent-1", ipFilter: { allow: ["10.0.0.0/33"] } }],
    ["an unknown field tenant", { name: "k", consumerId: "agent-1", tenant: "other" }],
    ["an unknown field key", { name: "k", consumerId: "agent-1", key: "gw_chosen" }],
    ["an unknown field enabled", { name: "k", consumerId: "agent-1", enabled: true }],
  ];
  for (const [label, body] of wrongKeys) add("admin-keys", `POST keys, ${label}`, "POST", "/keys", [400, 409], ["bad_request", "conflict"], JSON.stringify(body), json);
  for (const type of ["text/plain", "application/yaml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]) {
    add("admin-keys", `POST keys as ${type || "an empty content type"}`, "POST", "/keys", [400], ["bad_request"], JSON.stringify({ name: "k", consumerId: "agent-1" }), { "content-type": type });
  }
  add("admin-keys", "POST keys above 1 MiB", "POST", "/keys", [413], ["too_large"], JSON.stringify({ name: "x".repeat(1024 * 1024), consumerId: "agent-1" }), json);
  add("admin-keys", "POST keys with a lying Content-Length", "POST", "/keys", [400, 413], ["bad_request", "too_large"], JSON.stringify({ name: "y".repeat(2 * 1024 * 1024), consumerId: "agent-1" }), { ...json, "content-length": "12" });
  for (const id of HOSTILE_IDS) {
    add("admin-ids", `DELETE keys/${id.slice(0, 30)}`, "DELETE", `/keys/${id}`, [400, 404], ["bad_request", "not_found"]);
    add("admin-ids", `POST keys/${id.slice(0, 30)}/rotate`, "POST", `/keys/${id}/rotate`, [400, 404], ["bad_request", "not_found"], "{}", json);
    add("admin-ids", `DELETE connectors/${id.slice(0, 30)}`, "DELETE", `/connectors/${id}`, [400, 404], ["bad_request", "not_found"]);
  }
  for (const [label, body] of [...BAD_JSON_BODIES.filter(([l]) => l !== "an empty body"), ["graceSeconds -1", '{"graceSeconds":-1}'], ["graceSeconds 1e400", '{"graceSeconds":1e400}'], ["graceSeconds 0.5", '{"graceSeconds":0.5}'], ["graceSeconds 8 days", '{"graceSeconds":691200}'], ["graceSeconds a string", '{"graceSeconds":"60"}'], ["an unknown field", '{"graceSeconds":1,"newKey":"gw_x"}']] as [string, string][]) {
    // Rotating a key that does not exist: the body is checked first (400), else 404.
    add("admin-keys", `POST keys/no-such-key/rotate, ${label}`, "POST", "/keys/no-such-key/rotate", [400, 404], ["bad_request", "not_found"], body, json);
  }
  for (const query of ["tenant=../etc", "tenant=", "tenant=%00", `tenant=${"t".repeat(200)}`, "tenant=other-tenant", "tenant=a&tenant=b"]) {
    // A tenant admin naming any other tenant is 403; a malformed id is 400.
    add("admin-query", `GET keys?${query.slice(0, 40)}`, "GET", `/keys?${query}`, [400, 403], ["bad_request", "forbidden"]);
  }
  add("admin-query", "GET keys with query junk", "GET", "/keys?limit=-1&x[]=1&__proto__[admin]=1", [200], []);

  // config
  const configBodies: [string, string, string][] = [
    ["not YAML", "tenant: [unclosed\n  - : :", "application/yaml"],
    ["not JSON", "{not json", "application/json"],
    ["a YAML list", "- a\n- b\n", "application/yaml"],
    ["a YAML scalar", "just text", "application/yaml"],
    ["an empty body", "", "application/yaml"],
    ["another tenant", "tenant: someone-else\n", "application/yaml"],
    ["a tenant with a path", "tenant: ../../etc\n", "application/yaml"],
    ["wrong types", `tenant: ${tenant}\npolicies: 42\nservers: "x"\n`, "application/yaml"],
    ["an unknown top-level key", `tenant: ${tenant}\nbackdoor: true\n`, "application/yaml"],
    ["a YAML alias bomb", `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\ntenant: ${tenant}\n`, "application/yaml"],
    ["a YAML custom tag", `tenant: !!js/function "function(){}"\n`, "application/yaml"],
    ["a __proto__ key", `tenant: ${tenant}\n__proto__:\n  admin: true\npolicies: []\nservers: []\nbogus: 1\n`, "application/yaml"],
    ["deeply nested YAML", `tenant: ${tenant}\nx: ${"[".repeat(5_000)}${"]".repeat(5_000)}\n`, "application/yaml"],
    ["a rateLimit of -1", `tenant: ${tenant}\nrateLimit:\n  defaultPerMinute: -1\n`, "application/yaml"],
    ["a policy with a regex bomb", `tenant: ${tenant}\npolicies:\n  - id: p\n    roles: [reader]\n    rules:\n      - action: allow\n        conditions:\n          - {param: a, operator: regex, value: "${"(a+)+".repeat(60)}"}\n`, "application/yaml"],
    ["JSON with wrong types", JSON.stringify({ tenant, policies: "all" }), "application/json"],
  ];
  for (const [label, body, type] of configBodies) {
    add("admin-config", `POST config/validate, ${label}`, "POST", "/config/validate", [400, 403, 422], ["bad_request", "forbidden", "invalid_config"], body, { "content-type": type });
    add("admin-config", `PUT config, ${label}`, "PUT", "/config", [400, 403, 422], ["bad_request", "forbidden", "invalid_config"], body, { "content-type": type });
  }
  for (const type of ["text/html", "image/png", "text/plain", "application/octet-stream", ""]) {
    add("admin-config", `PUT config as ${type || "an empty content type"}`, "PUT", "/config", [400], ["bad_request"], `tenant: ${tenant}\n`, { "content-type": type });
  }
  add("admin-config", "PUT config above 1 MiB", "PUT", "/config", [413], ["too_large"], `tenant: ${tenant}\n# ${"x".repeat(1024 * 1024)}\n`, { "content-type": "application/yaml" });
  add("admin-config", "PUT config with raw invalid UTF-8", "PUT", "/config", [400, 422], ["bad_request", "invalid_config"], withRawBytes(`tenant: ${tenant}\nbogusRAW: 1\n`, "RAW", [0xc0, 0xaf, 0xff]), { "content-type": "application/yaml" });
  add("admin-config", "GET config with query junk", "GET", "/config?x=%00&y=..%2f", [200], []);

  // audit
  const entriesQueries = [
    "limit=-1",
    "limit=0",
    "limit=501",
    "limit=99999999999999999999",
    "limit=abc",
    "limit=1.5",
    "limit=1e3",
    "limit=NaN",
    "limit=Infinity",
    "limit=",
    "cursor=",
    "cursor=not-a-cursor",
    "cursor=%00",
    `cursor=${"c".repeat(129)}`,
    "cursor=eyJzZXEiOi0xfQ",
    "cursor=999999999999999999999",
    "from=not-a-date",
    "from=99999999999999999",
    "from=-1",
    "from=%2B275760-09-13T00:00:01Z",
    "from=2026-13-45T99:99:99Z",
    "from=1e400",
    "to=0000-00-00",
    `to=${"9".repeat(65)}`,
    "status=everything",
    "status=",
    `consumer=${"c".repeat(1025)}`,
    "consumer=",
    "server=",
    "unknown=1",
    "__proto__=1",
    "limit=1&limit=2",
  ];
  for (const q of entriesQueries) {
    add("admin-audit", `GET audit/entries?${q.slice(0, 40)}`, "GET", `/audit/entries?${q}`, [400], ["bad_request"]);
  }
  // z.coerce.number() reads the parameter with Number(): "0x10" is 16, a valid limit, answered normally.
  add("admin-audit", "GET audit/entries?limit=0x10 (Number() reads hex)", "GET", "/audit/entries?limit=0x10", [200], []);
  for (const q of entriesQueries.filter((q) => !q.startsWith("limit") && !q.startsWith("cursor"))) {
    add("admin-audit", `GET audit/stats?${q.slice(0, 40)}`, "GET", `/audit/stats?${q}`, [400], ["bad_request"]);
  }
  for (const q of ["format=xml", "format=", "format=JSONL", "fromSeq=0", "fromSeq=-5", "fromSeq=abc", "fromSeq=1e400", "toSeq=99999999999999999999", "fromSeq=10&toSeq=2", "unknown=1", "format=csv&format=jsonl"]) {
    add("admin-audit", `GET audit/export?${q}`, "GET", `/audit/export?${q}`, [400], ["bad_request"]);
  }
  for (const [label, body] of [
    ["not JSON", "{not json"],
    ["fromSeq 0", '{"fromSeq":0}'],
    ["fromSeq a string", '{"fromSeq":"1"}'],
    ["fromSeq 1e400", '{"fromSeq":1e400}'],
    ["an unknown field", '{"fromSeq":1,"toSeq":2}'],
    ["a JSON array", "[]"],
  ] as const) {
    add("admin-audit", `POST audit/verify, ${label}`, "POST", "/audit/verify", [400], ["bad_request"], body, json);
  }
  add("admin-audit", "POST audit/verify as text/plain", "POST", "/audit/verify", [400], ["bad_request"], '{"fromSeq":1}', { "content-type": "text/plain" });

  // usage
  for (const q of ["by=everything", "by=", "consumer=../x", "consumer=%00", "from=yesterday", "from=99999999999999999", "to=-1", "from=2026-02-30", "unknown=1", "by=consumer&by=hour"]) {
    add("admin-usage", `GET usage?${q}`, "GET", `/usage?${q}`, [400], ["bad_request"]);
  }
  for (const q of ["period=2026-13", "period=26-01", "period=0000-00", "period=2026-01&from=2026-01-01", "format=xml", "period=%00", "unknown=1"]) {
    add("admin-usage", `GET usage/chargeback?${q}`, "GET", `/usage/chargeback?${q}`, [400], ["bad_request"]);
  }
  for (const q of ["", "period=", "period=2026-13", "period=9999-99", "period=../../", "period=2026-01&x=1"]) {
    add("admin-usage", `POST usage/stripe?${q}`, "POST", `/usage/stripe?${q}`, [400], ["bad_request"]);
  }
  // Unknown routes and methods under the base: 404 in the same shape.
  for (const [method, path] of [
    ["GET", "/tenants"],
    ["PATCH", "/keys"],
    ["PUT", "/keys/key-1"],
    // Dot segments (also %2e%2e) are resolved by the URL parser before the Worker sees the path, so only encoded
    // slashes can carry a traversal this far.
    ["GET", "/keys%2f..%2f..%2fconfig"],
    ["GET", "/..%2f..%2fhealthz"],
    ["POST", "/audit/entries"],
    ["DELETE", "/config"],
    ["GET", "/audit/entries/1"],
  ] as const) {
    add("admin-routes", `${method} ${path}`, method, path, [404], ["not_found"]);
  }
  return cases;
}

export function adminCorpus(tenant: string): AdminCase[] {
  return adminCases(tenant);
}

// ---------------------------------------------------------------------------------------------------------------
// /connect

export function upgradeCorpus(): UpgradeCase[] {
  const cases: UpgradeCase[] = [];
  for (const credential of ["none", "unknown", "api-key", "admin-key", "platform", "long", "basic"] as const) {
    cases.push({ category: "connect-upgrade", label: `upgrade with a ${credential} credential`, method: "GET", headers: { upgrade: "websocket" }, credential, statuses: [401] });
  }
  for (const [label, headers] of [
    ["no Upgrade header", {}],
    ["Upgrade: h2c", { upgrade: "h2c" }],
    ["Upgrade: websocket2", { upgrade: "websocket2" }],
    ["an empty Upgrade", { upgrade: "" }],
  ] as [string, Record<string, string>][]) {
    for (const credential of ["connector", "none"] as const) {
      cases.push({ category: "connect-upgrade", label: `${label}, ${credential} credential`, method: "GET", headers, credential, statuses: [426] });
    }
  }
  for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
    // Only GET routes to /connect. (In-process, workerd hands a request carrying Upgrade: websocket to the Worker as
    // a GET handshake whatever its method, so with an upgrade these still need a valid token.)
    cases.push({ category: "connect-upgrade", label: `${method} /connect without an upgrade`, method, headers: {}, credential: "connector", statuses: [404] });
    cases.push({ category: "connect-upgrade", label: `${method} /connect with an upgrade and no token`, method, headers: { upgrade: "websocket" }, credential: "none", statuses: [401] });
  }
  // The identity headers the Worker sets itself: a caller's own are replaced, never trusted.
  cases.push({
    category: "connect-upgrade",
    label: "forged identity headers without a token",
    method: "GET",
    headers: { upgrade: "websocket", "x-gateway-tenant": "someone", "x-gateway-connector": "local" },
    credential: "none",
    statuses: [401],
  });
  return cases;
}

const server = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  name: `${id} server`,
  health: "healthy",
  catalog: { tools: [{ name: "t", inputSchema: { type: "object" } }], resources: [], resourceTemplates: [], prompts: [] },
  ...extra,
});

const hello = (extra: Record<string, unknown> = {}) => JSON.stringify({ type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "hostile", replicaId: "r-hostile", servers: [server("hx-a")], ...extra });

/** Frames a connector may send that the edge must refuse (or shrug off) without losing the socket or the object. */
export function frameCorpus(): FrameCase[] {
  rand = prng(SEED + 1);
  const cases: FrameCase[] = [];
  const add = (category: string, label: string, frame: string | Uint8Array, expect: FrameCase["expect"]) => cases.push({ category, label, frame, expect });
  const invalid = "error:invalid_frame" as const;

  // Not JSON.
  for (const [label, text] of [
    ["an empty frame", ""],
    ["a bare word", "hello"],
    ["truncated JSON", '{"type":"hello","protocol":1'],
    ["single quotes", "{'type':'ping'}"],
    ["a raw NUL", "\u0000"],
    ["a lone surrogate", '{"type":"ping"\ud800}'],
    ["10,000 nested arrays", "[".repeat(10_000)],
  ] as const) {
    add("frames-not-json", label, text, invalid);
  }
  for (let i = 0; i < 60; i++) add("frames-not-json", `random junk #${i}`, `{${junk(1 + int(300))}`, invalid);
  // Valid frames cut short anywhere.
  const valid = [hello(), JSON.stringify({ type: "result", callId: "c1", result: { content: [] } }), JSON.stringify({ type: "status", server: server("hx-a") })];
  for (let i = 0; i < 40; i++) {
    const frame = pick(valid);
    const cut = 1 + int(frame.length - 2);
    add("frames-not-json", `truncated #${i}: ${frame.slice(0, 20)}… cut at ${cut}/${frame.length}`, frame.slice(0, cut), invalid);
  }

  // Binary.
  for (const [label, bytes] of [
    ["an empty binary frame", new Uint8Array(0)],
    ["a binary ping", encoder.encode('{"type":"ping"}')],
    ["random bytes", Uint8Array.from({ length: 256 }, () => int(256))],
    ["a 1 MiB binary frame", new Uint8Array(1024 * 1024)],
  ] as const) {
    add("frames-binary", label, bytes, invalid);
  }

  // JSON of the wrong shape.
  const shapes: [string, unknown][] = [
    ["null", null],
    ["a number", 1],
    ["a string", "ping"],
    ["an array", [{ type: "ping" }]],
    ["an empty object", {}],
    ["type a number", { type: 1 }],
    ["an unknown type", { type: "shell", command: "rm -rf /" }],
    ["an edge-only type rpc", { type: "rpc", callId: "c", serverId: "hx-a", request: { method: "tools/call" } }],
    ["an edge-only type welcome", { type: "welcome", tenant: "other", connector: "x" }],
    ["an edge-only type cancel", { type: "cancel", callId: "c" }],
    ["type with a trailing space", { type: "ping " }],
    ["type in upper case", { type: "PING" }],
    ["hello without servers", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r" }],
    ["hello with protocol a string", { type: "hello", protocol: "1", connectorVersion: "x", replicaId: "r", servers: [] }],
    ["hello with protocol 1.5", { type: "hello", protocol: 1.5, connectorVersion: "x", replicaId: "r", servers: [] }],
    ["hello with an empty replicaId", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "", servers: [] }],
    ["hello with a 129-char replicaId", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r".repeat(129), servers: [] }],
    ["hello with heartbeatMs 0", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", heartbeatMs: 0, servers: [] }],
    ["hello with servers an object", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: { a: 1 } }],
    ["hello with a server id with a path", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: [server("../etc")] }],
    ["hello with the reserved server id gateway", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: [server("gateway")] }],
    ["hello with a server id containing __", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: [server("a__b")] }],
    ["hello with an unknown health", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: [server("hx-b", { health: "great" })] }],
    ["hello with a tool without a name", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: [server("hx-b", { catalog: { tools: [{}], resources: [], resourceTemplates: [], prompts: [] } })] }],
    ["hello with a 257-char tool name", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: [server("hx-b", { catalog: { tools: [{ name: "t".repeat(257) }], resources: [], resourceTemplates: [], prompts: [] } })] }],
    ["hello with 257 servers", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: Array.from({ length: 257 }, (_, i) => server(`hx-${i}`)) }],
    ["hello with timeoutMs -1", { type: "hello", protocol: LINK_PROTOCOL_VERSION, connectorVersion: "x", replicaId: "r", servers: [server("hx-b", { timeoutMs: -1 })] }],
    ["status without a server", { type: "status" }],
    ["status with a bad server", { type: "status", server: { id: 42 } }],
    ["result without a callId", { type: "result", result: {} }],
    ["result with both result and error", { type: "result", callId: "c1", result: {}, error: { code: 1, message: "x" } }],
    ["result with neither", { type: "result", callId: "c1" }],
    ["result with a string result", { type: "result", callId: "c1", result: "x" }],
    ["result with an error code 1.5", { type: "result", callId: "c1", error: { code: 1.5, message: "x" } }],
    ["result with a 129-char callId", { type: "result", callId: "c".repeat(129), result: {} }],
    ["notification without a message", { type: "notification", callId: "c1" }],
    ["notification with a method 257 chars", { type: "notification", callId: "c1", message: { method: "m".repeat(257) } }],
    ["error with a 65-char code", { type: "error", code: "c".repeat(65), message: "x" }],
    ["error with a 2001-char message", { type: "error", code: "x", message: "m".repeat(2001) }],
    ["a __proto__ frame", JSON.parse('{"__proto__":{"type":"ping"}}')],
    ["a constructor frame", { constructor: { prototype: { type: "ping" } } }],
  ];
  for (const [label, frame] of shapes) add("frames-shape", label, JSON.stringify(frame), invalid);
  // Numbers JSON.parse turns into Infinity: never an integer.
  add("frames-shape", "hello with heartbeatMs 1e400", `{"type":"hello","protocol":${LINK_PROTOCOL_VERSION},"connectorVersion":"x","replicaId":"r","heartbeatMs":1e400,"servers":[]}`, invalid);
  add("frames-shape", "hello with protocol 1e400", `{"type":"hello","protocol":1e400,"connectorVersion":"x","replicaId":"r","servers":[]}`, invalid);

  // Valid frames that carry nothing the edge acts on: shrugged off, no answer.
  for (const [label, frame] of [
    ["a result for an unknown call id", { type: "result", callId: "never-issued", result: { content: [] } }],
    ["an error result for an unknown call id", { type: "result", callId: "never-issued-2", error: { code: -32000, message: "x" } }],
    ["a notification for an unknown call id", { type: "notification", callId: "never-issued", message: { method: "notifications/progress", params: { progress: 1 } } }],
    ["a result with a __proto__ result", JSON.parse('{"type":"result","callId":"never-issued-3","result":{"__proto__":{"polluted":true}}}')],
    ["the connector's own error frame", { type: "error", code: "oops", message: "connector-side problem" }],
    ["a pong nobody asked for", { type: "pong" }],
  ] as [string, unknown][]) {
    add("frames-unknown-ids", label, JSON.stringify(frame), "silent");
  }
  for (let i = 0; i < 20; i++) {
    add("frames-unknown-ids", `a result for a random call id #${i}`, JSON.stringify({ type: "result", callId: junk(1 + int(100)).replace(/[\ud800]/g, "x") || "x", result: {} }), "silent");
  }

  // Oversized.
  // {"type":"pong","pad":"…"} is 24 bytes plus the pad.
  add("frames-oversized", "exactly the frame limit (a pong, accepted and ignored)", JSON.stringify({ type: "pong", pad: "x".repeat(MAX_FRAME_BYTES - 24) }), "silent");
  add("frames-oversized", "one byte above the frame limit", JSON.stringify({ type: "pong", pad: "x".repeat(MAX_FRAME_BYTES - 23) }), "error:frame_too_large");
  add("frames-oversized", "twice the frame limit", JSON.stringify({ type: "ping", pad: "x".repeat(2 * MAX_FRAME_BYTES) }), "error:frame_too_large");
  add("frames-oversized", "a multibyte frame whose UTF-16 length is under the limit but UTF-8 over it", JSON.stringify({ type: "ping", pad: "\u00e9".repeat(Math.ceil(MAX_FRAME_BYTES / 2) + 16) }), "error:frame_too_large");

  // Hello twice, a status before hello on a fresh socket is in the test; huge catalogs.
  add("frames-hello", "hello (first)", hello(), "welcome");
  add("frames-hello", "hello again on the same socket", hello({ servers: [server("hx-a"), server("hx-b")] }), "welcome");
  add("frames-hello", "hello a third time with no servers", hello({ servers: [] }), "welcome");
  add("frames-hello", "hello with 256 servers", hello({ servers: Array.from({ length: 256 }, (_, i) => server(`hx-${i}`)) }), "welcome");
  const bigCatalog = { tools: Array.from({ length: 5_000 }, (_, i) => ({ name: `tool_${i}`, description: "d".repeat(200), inputSchema: { type: "object" } })), resources: [], resourceTemplates: [], prompts: [] };
  add("frames-hello", "hello with a 5,000-tool catalog (about 1.3 MB)", hello({ servers: [server("hx-big", { catalog: bigCatalog })] }), "welcome");
  // As many ~350-byte tools as fit in one frame with 32 KiB to spare: one server's catalog of about 4.1 MB.
  const tool = (i: number) => ({ name: `tool_${i}`, description: "d".repeat(300), inputSchema: { type: "object" } });
  const toolBytes = JSON.stringify(tool(99_999)).length + 1;
  const hugeCatalog = { tools: Array.from({ length: Math.floor((MAX_FRAME_BYTES - 32 * 1024) / toolBytes) }, (_, i) => tool(i)), resources: [], resourceTemplates: [], prompts: [] };
  add("frames-hello", `hello with a ${hugeCatalog.tools.length}-tool catalog (just under the frame limit)`, hello({ servers: [server("hx-huge", { catalog: hugeCatalog })] }), "welcome");
  add("frames-hello", "hello back to one small server", hello(), "welcome");
  return cases;
}

/** Frames that need a fresh socket: the first frame of a link (or one the edge closes the link for). */
export function freshSocketFrameCorpus(): FrameCase[] {
  return [
    ...[LINK_PROTOCOL_VERSION + 1, -1, 2 ** 31, 0].map((protocol) => ({
      category: "frames-protocol",
      label: `hello with protocol ${protocol}`,
      frame: hello({ protocol }),
      expect: "close:4000" as const,
    })),
    { category: "frames-protocol", label: "status before hello", frame: JSON.stringify({ type: "status", server: server("hx-a") }), expect: "error:not_ready" as const },
  ];
}
