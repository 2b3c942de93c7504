// The link client against a small in-test gateway (a `ws` WebSocket server): handshake, frames both ways,
// validation, size limits, reconnects and heartbeats. The supervisor is a stand-in so each behaviour is isolated.
import { afterEach, describe, expect, it } from "vitest";
import { LinkClient, type LinkSupervisor } from "../../connector/link-client.ts";
import { jsonLogger, type LogFields } from "../../connector/log.ts";
import type { NotificationSink, RelayOutcome } from "../../connector/relay.ts";
import { Supervisor } from "../../connector/supervisor.ts";
import { JsonRpcErrorCode, UpstreamErrorCode } from "../../src/link/errors.ts";
import { HEARTBEAT_PING, HEARTBEAT_PONG, LINK_PROTOCOL_VERSION, MAX_FRAME_BYTES, type RelayedRequest, type ServerReport } from "../../src/link/protocol.ts";
import { Gateway } from "./connector-fixtures/test-gateway.ts";

const report = (id: string, health: ServerReport["health"] = "healthy"): ServerReport => ({
  id,
  name: id,
  health,
  catalog: { tools: [{ name: "search", inputSchema: { type: "object" } }], resources: [], resourceTemplates: [], prompts: [] },
});

/** A supervisor stand-in whose relay is scripted per test. */
class FakeSupervisor implements LinkSupervisor {
  listeners = new Set<(r: ServerReport) => void>();
  cancelled: string[] = [];
  relayed: { serverId: string; callId: string; request: RelayedRequest }[] = [];
  answer: (request: RelayedRequest, notify: NotificationSink) => Promise<RelayOutcome> = async () => ({ result: { ok: true } });
  reports(): ServerReport[] {
    return [report("crm")];
  }
  relay(serverId: string, callId: string, request: RelayedRequest, notify: NotificationSink): Promise<RelayOutcome> {
    this.relayed.push({ serverId, callId, request });
    return this.answer(request, notify);
  }
  cancel(callId: string): boolean {
    this.cancelled.push(callId);
    return true;
  }
  onReport(listener: (r: ServerReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { heartbeatIntervalMs?: number; supervisor?: LinkSupervisor; refuse?: number } = {}) {
  const gateway = new Gateway();
  await gateway.listening;
  gateway.refuse = options.refuse ?? 0;
  const supervisor = options.supervisor ?? new FakeSupervisor();
  // The production logger, so tests see the JSON lines an operator would.
  const logs: ({ level: string; event: string } & LogFields)[] = [];
  const log = jsonLogger((line) => logs.push(JSON.parse(line) as { level: string; event: string } & LogFields));
  const link = new LinkClient({
    url: gateway.url,
    token: "connector-token-123",
    replicaId: "replica-a",
    connectorVersion: "0.1.0",
    supervisor,
    log,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 60_000,
    reconnect: { initialMs: 25, maxMs: 200, jitter: 0 },
  });
  cleanups.push(() => gateway.close(), () => link.stop());
  link.start();
  return { gateway, link, supervisor, logs };
}

describe("link client", () => {
  it("dials with the bearer token and says hello with its servers", async () => {
    const { gateway } = await setup();
    const peer = await gateway.peer(0);
    expect(peer.request.headers.authorization).toBe("Bearer connector-token-123");
    expect(peer.request.url).toBe("/connect");
    expect(await peer.next((f) => f.type === "hello")).toEqual({
      type: "hello",
      protocol: LINK_PROTOCOL_VERSION,
      connectorVersion: "0.1.0",
      replicaId: "replica-a",
      heartbeatMs: 60_000,
      servers: [report("crm")],
    });
  });

  it("announces the heartbeat interval within the protocol's range", async () => {
    const { gateway } = await setup({ heartbeatIntervalMs: 50 });
    const peer = await gateway.peer(0);
    // Pings go every 50 ms (tests); the protocol's floor is 100 ms, which only makes the edge a little more patient.
    expect(await peer.next((f) => f.type === "hello")).toMatchObject({ heartbeatMs: 100 });
  });

  it("relays an rpc and answers with its notifications, then its result", async () => {
    const { gateway, supervisor } = await setup();
    const fake = supervisor as FakeSupervisor;
    fake.answer = async (_request, notify) => {
      notify({ method: "notifications/progress", params: { progress: 1, total: 2 } });
      return { result: { content: [{ type: "text", text: "found" }] } };
    };
    const peer = await gateway.peer(0);
    peer.send({ type: "welcome", tenant: "t", connector: "c" });
    peer.send({ type: "rpc", callId: "call-1", serverId: "crm", request: { method: "tools/call", params: { name: "search" } } });
    const result = await peer.next((f) => f.type === "result");
    expect(result).toEqual({ type: "result", callId: "call-1", result: { content: [{ type: "text", text: "found" }] } });
    const types = peer.frames.filter((f) => f.callId === "call-1").map((f) => f.type);
    expect(types).toEqual(["notification", "result"]);
    expect(fake.relayed).toEqual([{ serverId: "crm", callId: "call-1", request: { method: "tools/call", params: { name: "search" } } }]);
  });

  it("answers an rpc for a server it does not run with an error naming the server", async () => {
    const supervisor = new Supervisor({ servers: [], hostEnv: {}, connectorVersion: "0.1.0", log: () => {} });
    const { gateway } = await setup({ supervisor });
    const peer = await gateway.peer(0);
    peer.send({ type: "rpc", callId: "c-2", serverId: "ghost", request: { method: "tools/list" } });
    const result = await peer.next((f) => f.type === "result");
    expect(result).toMatchObject({ callId: "c-2", error: { code: UpstreamErrorCode.Unavailable, message: expect.stringContaining('"ghost"') } });
  });

  it("answers an invalid frame with an error frame and keeps the connection", async () => {
    const { gateway, logs } = await setup();
    const peer = await gateway.peer(0);
    peer.send("{not json");
    peer.send({ type: "rpc", callId: "c-3", serverId: "crm" });
    expect(await peer.next((f) => f.type === "error" && f.callId === undefined)).toMatchObject({ code: "invalid_frame", message: "frame is not valid JSON" });
    expect(await peer.next((f) => f.type === "error" && f.callId === "c-3")).toMatchObject({ code: "invalid_frame" });
    peer.send(HEARTBEAT_PING);
    await peer.next((f) => f.type === "pong");
    expect(gateway.peers).toHaveLength(1);
    expect(logs.filter((l) => l.event === "link_frame_invalid")).toHaveLength(2);
  });

  it("answers a result too large for a frame with a TooLarge error instead", async () => {
    const { gateway, supervisor } = await setup();
    (supervisor as FakeSupervisor).answer = async () => ({ result: { text: "x".repeat(MAX_FRAME_BYTES) } });
    const peer = await gateway.peer(0);
    peer.send({ type: "rpc", callId: "big", serverId: "crm", request: { method: "tools/call" } });
    expect(await peer.next((f) => f.type === "result")).toMatchObject({ callId: "big", error: { code: UpstreamErrorCode.TooLarge } });
  });

  it("passes cancel frames on, and sends status frames when a server changes", async () => {
    const { gateway, supervisor } = await setup();
    const fake = supervisor as FakeSupervisor;
    const peer = await gateway.peer(0);
    await peer.next((f) => f.type === "hello");
    peer.send({ type: "cancel", callId: "c-9", reason: "agent went away" });
    peer.send(HEARTBEAT_PING); // frames are handled in order: once the pong is back, the cancel has been handled
    await peer.next((f) => f.type === "pong");
    expect(fake.cancelled).toEqual(["c-9"]);
    for (const listener of fake.listeners) listener(report("crm", "unhealthy"));
    expect(await peer.next((f) => f.type === "status")).toEqual({ type: "status", server: report("crm", "unhealthy") });
  });

  it("redials after the gateway closes the socket, and cancels the calls that were in flight", async () => {
    const { gateway, supervisor } = await setup();
    const fake = supervisor as FakeSupervisor;
    fake.answer = () => new Promise(() => {});
    const first = await gateway.peer(0);
    first.send({ type: "rpc", callId: "in-flight", serverId: "crm", request: { method: "tools/call" } });
    await new Promise((r) => setTimeout(r, 50));
    first.socket.close(1012, "deploy");
    const second = await gateway.peer(1);
    expect(await second.next((f) => f.type === "hello")).toMatchObject({ replicaId: "replica-a" });
    expect(fake.cancelled).toEqual(["in-flight"]);
  });

  it("keeps tracking a call for cancellation when a frame reuses its id", async () => {
    const { gateway, supervisor } = await setup();
    const fake = supervisor as FakeSupervisor;
    // The first call never ends; its duplicate is refused at once (as the real supervisor does).
    fake.answer = () => (fake.relayed.length === 1 ? new Promise(() => {}) : Promise.resolve({ error: { code: JsonRpcErrorCode.InvalidRequest, message: "already in flight" } }));
    const first = await gateway.peer(0);
    first.send({ type: "rpc", callId: "twice", serverId: "crm", request: { method: "tools/call" } });
    first.send({ type: "rpc", callId: "twice", serverId: "crm", request: { method: "tools/call" } });
    expect(await first.next((f) => f.type === "result")).toMatchObject({ callId: "twice", error: { message: "already in flight" } });
    expect(fake.relayed).toHaveLength(2);
    first.socket.close(1012, "deploy");
    await gateway.peer(1);
    // The original is still in flight: losing the link must cancel it, although the duplicate has ended.
    expect(fake.cancelled).toEqual(["twice"]);
  });

  it("logs every error frame from the gateway as a warning with its code and message (name_conflict, server_conflict)", async () => {
    const { gateway, logs } = await setup();
    const peer = await gateway.peer(0);
    await peer.next((f) => f.type === "hello");
    const nameConflict = 'server "crm": tools search, export withheld: server "legacy-crm" (older) has the same names';
    peer.send({ type: "error", code: "name_conflict", message: nameConflict });
    peer.send({ type: "error", code: "server_conflict", message: 'server "crm" belongs to connector "other"' });
    peer.send(HEARTBEAT_PING);
    await peer.next((f) => f.type === "pong");
    expect(logs.filter((l) => l.event === "link_error_frame")).toEqual([
      expect.objectContaining({ level: "warn", code: "name_conflict", message: nameConflict }),
      expect.objectContaining({ level: "warn", code: "server_conflict", message: 'server "crm" belongs to connector "other"' }),
    ]);
    expect(gateway.peers).toHaveLength(1);
  });

  it("keeps redialling with growing delays while the handshake is refused (401)", async () => {
    const { gateway, logs } = await setup({ refuse: 3 });
    const peer = await gateway.peer(0);
    await peer.next((f) => f.type === "hello");
    expect(gateway.handshakes).toHaveLength(4);
    const gaps = gateway.handshakes.slice(1).map((t, i) => t - gateway.handshakes[i]!);
    // Backoff 25, 50, 100 ms (no jitter): lower bounds only, a slow machine may add to them.
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(25 * 2 ** i - 5));
    expect(logs.filter((l) => l.event === "link_closed")).toHaveLength(3);
  });

  it("closes and redials when the gateway stops answering heartbeats", async () => {
    const { gateway } = await setup({ heartbeatIntervalMs: 50 });
    const silent = await gateway.peer(0);
    await silent.next((f) => f.type === "hello");
    // The stand-in never answers pings: after two intervals of silence the client must give up on the socket.
    const next = await gateway.peer(1, 3_000);
    expect(silent.raw).toContain(HEARTBEAT_PING);
    expect(await next.next((f) => f.type === "hello")).toMatchObject({ type: "hello" });
  });

  it("stays on a link whose gateway answers heartbeats", async () => {
    const { gateway } = await setup({ heartbeatIntervalMs: 50 });
    const peer = await gateway.peer(0);
    peer.socket.on("message", (data) => {
      if (String(data) === HEARTBEAT_PING) peer.send(HEARTBEAT_PONG);
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(gateway.peers).toHaveLength(1);
    expect(peer.raw.filter((r) => r === HEARTBEAT_PING).length).toBeGreaterThan(3);
  });
});
