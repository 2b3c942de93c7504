/**
 * A node:http stand-in for the admin API's audit endpoints (docs/admin-api.md), for the `mcp-gateway audit …` tests:
 * entries with opaque cursors and a small page size (so paging is exercised), stats, and scripted streams for
 * verify (NDJSON) and export, which can be cut mid-way, stall, or wait for the test before going on.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { appendEntry } from "../../src/audit/chain.ts";
import type { AuditEntry } from "../../src/audit/entry.ts";
import { fields } from "./core-audit-fixtures.ts";
import { closeServer, listenOnLoopback } from "./loopback-server.ts";

export const AUDIT_ADMIN_KEY = "gw_audit_admin_key_for_tests";

export type Recorded = { method: string; path: string; query: URLSearchParams; headers: IncomingMessage["headers"]; body: string };

/** One step of a scripted streamed answer. */
export type StreamStep =
  | { write: string | Uint8Array }
  /** Waits until the test resolves it (e.g. once the CLI has shown what came before): proves the CLI reads as it arrives. */
  | { wait: Promise<void> }
  | { sleep: number }
  /** Destroys the socket: the answer is cut off mid-stream. */
  | { cut: true }
  /** Sends nothing more and never ends (for the idle timeout). */
  | { stall: true };

export type StreamScript = { status?: number; contentType?: string; steps: StreamStep[] };

export class FakeAuditApi {
  readonly requests: Recorded[] = [];
  /** Newest last, as appended; served newest first. */
  entries: AuditEntry[] = [];
  /** The most entries the fake puts in one page, whatever ?limit= says (the real gateway: 500). */
  pageCap = 4;
  stats: unknown = {
    total: 1234,
    byStatus: { ok: 1000, error: 100, denied: 80, limited: 4, unknown: 0, unauthenticated: 50 },
    byServer: [
      { server: "crm", count: 900 },
      { server: "billing", count: 334 },
    ],
    byTool: [
      { server: "crm", tool: "get_customer", count: 700 },
      { server: "billing", tool: "refund", count: 34 },
    ],
    byConsumer: [{ consumer: "agent-1", count: 1200 }],
    latencyMs: { p50: 12, p95: 80, p99: 210, max: 4012 },
  };
  verify: StreamScript = { steps: [] };
  exportScript: StreamScript = { steps: [] };
  /** Overrides every answer (a refusal, a proxy's page). */
  raw: { status: number; contentType: string; body: string } | undefined;
  url = "";
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (t: string) => (body += t));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://x");
        this.requests.push({ method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers, body });
        void this.handle(req, res, url);
      });
    });
  }

  /** `count` chained entries (seq 1..count); entry i's consumer is agent-(i % 3), every 5th has no tool. */
  fill(count: number): void {
    let head: AuditEntry | null = null;
    this.entries = [];
    for (let i = 1; i <= count; i++) {
      const entry: AuditEntry = appendEntry(head, fields(i, i % 5 === 0 ? { tool: null, method: "initialize", server: null } : {}));
      this.entries.push(entry);
      head = entry;
    }
  }

  async start(): Promise<void> {
    this.url = await listenOnLoopback(this.server);
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (this.raw) {
      res.writeHead(this.raw.status, { "content-type": this.raw.contentType }).end(this.raw.body);
      return;
    }
    const error = (status: number, code: string, message: string) => this.json(res, status, { error: { code, message } });
    if (req.headers.authorization !== `Bearer ${AUDIT_ADMIN_KEY}`) return error(401, "unauthenticated", "no or refused credential");
    const q = url.searchParams;
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case "GET /admin/v1/audit/entries": {
        const matching = [...this.entries]
          .reverse()
          .filter((e) => (!q.has("consumer") || e.consumer === q.get("consumer")) && (!q.has("status") || e.status === q.get("status")));
        const offset = q.has("cursor") ? Number(Buffer.from(q.get("cursor") as string, "base64url").toString()) : 0;
        const limit = Math.min(Number(q.get("limit") ?? 50), this.pageCap);
        const page = matching.slice(offset, offset + limit);
        const end = offset + page.length;
        return this.json(res, 200, { entries: page, nextCursor: end < matching.length ? Buffer.from(String(end)).toString("base64url") : null });
      }
      case "GET /admin/v1/audit/stats":
        return this.json(res, 200, this.stats);
      case "POST /admin/v1/audit/verify":
        return this.stream(res, this.verify, "application/x-ndjson");
      case "GET /admin/v1/audit/export":
        return this.stream(res, this.exportScript, q.get("format") === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson");
      default:
        return error(404, "not_found", "no such route");
    }
  }

  private async stream(res: ServerResponse, script: StreamScript, contentType: string): Promise<void> {
    res.writeHead(script.status ?? 200, { "content-type": script.contentType ?? contentType });
    res.flushHeaders();
    for (const step of script.steps) {
      if ("write" in step) {
        await new Promise<void>((resolve) => res.write(step.write, () => resolve()));
      } else if ("wait" in step) await step.wait;
      else if ("sleep" in step) await new Promise((resolve) => setTimeout(resolve, step.sleep));
      else if ("cut" in step) {
        res.socket?.destroy();
        return;
      } else return; // stall: the connection stays open, silent, until the server closes
    }
    res.end();
  }
}

/** A promise and its resolver: lets the fake wait for the test. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
