import { describe, expect, it } from "vitest";
import {
  connectorFrameSchema,
  edgeFrameSchema,
  encodeFrame,
  exceedsBytes,
  HEARTBEAT_PING,
  LinkErrorCode,
  MAX_FRAME_BYTES,
  parseFrame,
  serverIdSchema,
  type ConnectorFrame,
  type EdgeFrame,
} from "../../src/link/protocol.ts";

const report = {
  id: "mcp-fred",
  name: "FRED",
  health: "healthy",
  catalog: {
    tools: [{ name: "get_series", description: "d", inputSchema: { type: "object" } }],
    resources: [{ uri: "docs://readme", name: "readme" }],
    resourceTemplates: [{ uriTemplate: "docs://items/{id}", name: "item" }],
    prompts: [{ name: "summarise" }],
  },
};

const connectorFrames: Record<string, unknown> = {
  hello: { type: "hello", protocol: 1, connectorVersion: "0.1.0", replicaId: "r1", servers: [report] },
  status: { type: "status", server: { ...report, health: "unhealthy", detail: "crashed 5 times" } },
  "result with result": { type: "result", callId: "c1", result: { content: [] } },
  "result with error": { type: "result", callId: "c1", error: { code: -32000, message: "boom" } },
  notification: { type: "notification", callId: "c1", message: { method: "notifications/progress", params: { progress: 1 } } },
  error: { type: "error", code: "unknown_server", message: "no server x", callId: "c1" },
  ping: { type: "ping" },
  pong: { type: "pong" },
};

const edgeFrames: Record<string, unknown> = {
  rpc: { type: "rpc", callId: "c1", serverId: "mcp-fred", request: { method: "tools/call", params: { name: "x" } } },
  cancel: { type: "cancel", callId: "c1", reason: "client went away" },
  welcome: { type: "welcome", tenant: "default", connector: "local" },
  error: { type: "error", code: "invalid_frame", message: "bad" },
  ping: { type: "ping" },
  pong: { type: "pong" },
};

function expectRefusal(result: ReturnType<typeof parseFrame>): { code: string; message: string; callId?: string | undefined } {
  expect(result.ok).toBe(false);
  if (result.ok) throw new Error("unreachable");
  expect(result.error.type).toBe("error");
  return result.error;
}

describe("parseFrame", () => {
  for (const [kind, frame] of Object.entries(connectorFrames)) {
    it(`accepts a connector ${kind} frame and returns it unchanged`, () => {
      const result = parseFrame(connectorFrameSchema, JSON.stringify(frame));
      expect(result).toEqual({ ok: true, frame });
    });
  }

  for (const [kind, frame] of Object.entries(edgeFrames)) {
    it(`accepts an edge ${kind} frame and returns it unchanged`, () => {
      const result = parseFrame(edgeFrameSchema, JSON.stringify(frame));
      expect(result).toEqual({ ok: true, frame });
    });
  }

  it("accepts the constant heartbeat ping text", () => {
    expect(parseFrame(connectorFrameSchema, HEARTBEAT_PING)).toEqual({ ok: true, frame: { type: "ping" } });
  });

  it("refuses an edge-only frame on the connector side and vice versa", () => {
    expect(expectRefusal(parseFrame(connectorFrameSchema, JSON.stringify(edgeFrames.rpc))).code).toBe("invalid_frame");
    expect(expectRefusal(parseFrame(edgeFrameSchema, JSON.stringify(connectorFrames.hello))).code).toBe("invalid_frame");
  });

  it("refuses binary frames", () => {
    const error = expectRefusal(parseFrame(connectorFrameSchema, new ArrayBuffer(16)));
    expect(error.code).toBe(LinkErrorCode.InvalidFrame);
    expect(error.message).toMatch(/binary/);
  });

  it("refuses text that is not JSON", () => {
    const error = expectRefusal(parseFrame(connectorFrameSchema, "{type: ping"));
    expect(error).toEqual({ type: "error", code: "invalid_frame", message: "frame is not valid JSON" });
  });

  it("refuses a frame one byte over MAX_FRAME_BYTES with frame_too_large", () => {
    const padding = "x".repeat(MAX_FRAME_BYTES + 1 - '{"type":"ping","p":""}'.length);
    const text = `{"type":"ping","p":"${padding}"}`;
    expect(text.length).toBe(MAX_FRAME_BYTES + 1);
    const error = expectRefusal(parseFrame(connectorFrameSchema, text));
    expect(error.code).toBe(LinkErrorCode.FrameTooLarge);
    expect(error.message).toContain(String(MAX_FRAME_BYTES));
  });

  it("accepts a frame of exactly MAX_FRAME_BYTES (unknown keys are stripped)", () => {
    const padding = "x".repeat(MAX_FRAME_BYTES - '{"type":"ping","p":""}'.length);
    const result = parseFrame(connectorFrameSchema, `{"type":"ping","p":"${padding}"}`);
    expect(result).toEqual({ ok: true, frame: { type: "ping" } });
  });

  it("counts multi-byte UTF-8 in bytes, not UTF-16 characters", () => {
    // "é" is 1 UTF-16 unit but 2 UTF-8 bytes: under the limit in chars, over it in bytes.
    const envelope = '{"type":"ping","p":""}';
    const chars = Math.ceil((MAX_FRAME_BYTES - envelope.length) / 2) + 1;
    const text = `{"type":"ping","p":"${"é".repeat(chars)}"}`;
    expect(text.length).toBeLessThan(MAX_FRAME_BYTES);
    expect(new TextEncoder().encode(text).byteLength).toBeGreaterThan(MAX_FRAME_BYTES);
    expect(expectRefusal(parseFrame(connectorFrameSchema, text)).code).toBe("frame_too_large");
  });

  // Regression: a plain z.union with a nested union made zod 4 report a path-less "Invalid input".
  it("names the path of the invalid field in a connector frame's message", () => {
    const bad = { ...(connectorFrames.hello as object), servers: [{ ...report, health: "fine" }] };
    const error = expectRefusal(parseFrame(connectorFrameSchema, JSON.stringify(bad)));
    expect(error.code).toBe("invalid_frame");
    expect(error.message).toContain("servers.0.health");
  });

  it("names the path on the edge side too (rpc serverId with '__')", () => {
    const bad = { ...(edgeFrames.rpc as object), serverId: "a__b" };
    const error = expectRefusal(parseFrame(edgeFrameSchema, JSON.stringify(bad)));
    expect(error.message).toMatch(/^invalid frame at serverId: /);
  });

  it("echoes the callId of an invalid frame that carries one", () => {
    const bad = { type: "result", callId: "call-42", result: "not an object" };
    const error = expectRefusal(parseFrame(connectorFrameSchema, JSON.stringify(bad)));
    expect(error.code).toBe("invalid_frame");
    expect(error.callId).toBe("call-42");
  });

  it("leaves callId out when the invalid frame has none or a non-string one", () => {
    const none = expectRefusal(parseFrame(connectorFrameSchema, JSON.stringify({ type: "bogus" })));
    expect(none).not.toHaveProperty("callId");
    const numeric = expectRefusal(parseFrame(connectorFrameSchema, JSON.stringify({ type: "result", callId: 7 })));
    expect(numeric).not.toHaveProperty("callId");
    const empty = expectRefusal(parseFrame(connectorFrameSchema, JSON.stringify({ type: "result", callId: "" })));
    expect(empty).not.toHaveProperty("callId");
  });

  it("truncates an echoed callId to 128 characters so the error frame stays valid", () => {
    const error = expectRefusal(parseFrame(connectorFrameSchema, JSON.stringify({ type: "result", callId: "c".repeat(500) })));
    expect(error.callId).toBe("c".repeat(128));
  });

  it("refuses JSON that is not an object (null, array, number)", () => {
    for (const text of ["null", "[]", "42"]) {
      expect(expectRefusal(parseFrame(connectorFrameSchema, text)).code).toBe("invalid_frame");
    }
  });
});

describe("encodeFrame", () => {
  it("serialises a frame to JSON text", () => {
    const frame: EdgeFrame = { type: "cancel", callId: "c1" };
    expect(encodeFrame(frame)).toEqual({ ok: true, text: '{"type":"cancel","callId":"c1"}' });
  });

  it("refuses a frame above MAX_FRAME_BYTES and reports its UTF-8 size", () => {
    const frame: ConnectorFrame = { type: "result", callId: "c1", result: { text: "é".repeat(MAX_FRAME_BYTES / 2) } };
    const encoded = encodeFrame(frame);
    expect(encoded.ok).toBe(false);
    if (encoded.ok) throw new Error("unreachable");
    expect(encoded.bytes).toBe(new TextEncoder().encode(JSON.stringify(frame)).byteLength);
    expect(encoded.bytes).toBeGreaterThan(MAX_FRAME_BYTES);
  });

  it("round-trips through parseFrame", () => {
    const frame = connectorFrames["result with error"] as ConnectorFrame;
    const encoded = encodeFrame(frame);
    if (!encoded.ok) throw new Error("expected ok");
    expect(parseFrame(connectorFrameSchema, encoded.text)).toEqual({ ok: true, frame });
  });
});

describe("exceedsBytes", () => {
  it("decides short texts by length and measures texts near the limit in UTF-8 bytes", () => {
    expect(exceedsBytes("abc", 3)).toBe(false);
    expect(exceedsBytes("abcd", 3)).toBe(true);
    expect(exceedsBytes("é", 1)).toBe(true); // 1 code unit, 2 bytes
    expect(exceedsBytes("é", 2)).toBe(false);
    expect(exceedsBytes("€€", 5)).toBe(true); // 2 code units, 6 bytes
    expect(exceedsBytes("€€", 6)).toBe(false);
    expect(exceedsBytes("😀", 3)).toBe(true); // a surrogate pair: 2 code units, 4 bytes
    expect(exceedsBytes("😀", 4)).toBe(false);
  });
});

describe("serverIdSchema", () => {
  it.each(["a", "mcp-fred", "A.b_c-1", "9lives", "x".repeat(64), "a_b"])("accepts %s", (id) => {
    expect(serverIdSchema.safeParse(id).success).toBe(true);
  });

  it.each([
    ["empty", ""],
    ["a double underscore", "crm__tools"],
    ["a leading double underscore", "__x"],
    ["a trailing double underscore", "x__"],
    // "a_" + "__" + "x" and "a" + "__" + "_x" would both read "a___x"
    ["a trailing underscore", "a_"],
    ["65 characters", "x".repeat(65)],
    ["a leading dash", "-x"],
    ["a leading underscore", "_x"],
    ["a space", "my server"],
    ["a slash", "a/b"],
    ["a colon", "a:b"],
    ["non-ASCII", "café"],
  ])("refuses %s", (_why, id) => {
    expect(serverIdSchema.safeParse(id).success).toBe(false);
  });
});
