// A gateway stand-in for the connector's tests: a `ws` WebSocket server on 127.0.0.1 that records handshakes and
// every frame each connection sends, and can refuse handshakes with 401.
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export type Frame = Record<string, unknown> & { type: string };

/** One accepted socket and every text frame it received (heartbeat pings included, as raw strings). */
export class Peer {
  readonly frames: Frame[] = [];
  readonly raw: string[] = [];
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  #waiters: (() => void)[] = [];
  constructor(socket: WebSocket, request: IncomingMessage) {
    this.socket = socket;
    this.request = request;
    socket.on("message", (data) => {
      const text = String(data);
      this.raw.push(text);
      this.frames.push(JSON.parse(text) as Frame);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }
  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }
  async next(accept: (f: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(accept);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching frame; got ${this.raw.join(" ").slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

/** A gateway stand-in. `refuse` answers that many handshakes with 401 first. */
export class Gateway {
  readonly server: WebSocketServer;
  readonly peers: Peer[] = [];
  readonly handshakes: number[] = [];
  readonly listening: Promise<void>;
  refuse = 0;
  #waiters: (() => void)[] = [];
  constructor() {
    this.server = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      verifyClient: (_info, done) => {
        this.handshakes.push(Date.now());
        if (this.refuse > 0) {
          this.refuse--;
          done(false, 401, "Unauthorized");
        } else done(true);
      },
    });
    this.listening = new Promise((resolve) => this.server.once("listening", () => resolve()));
    this.server.on("connection", (socket, request) => {
      this.peers.push(new Peer(socket, request));
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }
  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/connect`;
  }
  async peer(index: number, timeoutMs = 5_000): Promise<Peer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.peers[index]) {
      if (Date.now() > deadline) throw new Error(`connection #${index + 1} never came`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.peers[index]!;
  }
  close(): Promise<void> {
    for (const client of this.server.clients) client.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
