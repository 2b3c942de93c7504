/**
 * Global setup of the worker project, run in Node before the tests: a real HTTP receiver for the audit webhook on
 * 127.0.0.1 (a random port), whose base URL reaches the tests in workerd by `inject("auditWebhookReceiver")`.
 *
 * Each test uses its own channel (any path segment), so test files and tests never see each other's requests:
 * - `POST /hook/<channel>`: a delivery. Recorded (headers and raw body) and answered 204, or as told below.
 * - `POST /control/<channel>/fail` with `{"count": N, "status"?: 500, "hang"?: false}`: the next N deliveries get
 *   `status` (default 500), or, with `hang`, no answer at all until the caller gives up.
 * - `GET /control/<channel>/requests`: every delivery so far, in arrival order, as {@link ReceivedDelivery} objects.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";

export interface ReceivedDelivery {
  /** 1, 2, 3… per channel, in arrival order. */
  n: number;
  method: string;
  contentType: string | null;
  signature: string | null;
  deliveryId: string | null;
  /** The raw body, as received (what the signature covers). */
  body: string;
  /** What the receiver answered: a status, or "hung" when it never answered. */
  answered: number | "hung";
  receivedAt: number;
}

interface Channel {
  requests: ReceivedDelivery[];
  failures: { count: number; status: number; hang: boolean };
}

function header(request: IncomingMessage, name: string): string | null {
  const value = request.headers[name];
  return typeof value === "string" ? value : null;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function json(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const channels = new Map<string, Channel>();
  const channel = (name: string): Channel => {
    let found = channels.get(name);
    if (!found) channels.set(name, (found = { requests: [], failures: { count: 0, status: 500, hang: false } }));
    return found;
  };
  const server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? "/", "http://receiver");
      const [kind, name, action] = url.pathname.split("/").filter(Boolean);
      if (kind === "hook" && name && request.method === "POST") {
        const state = channel(name);
        const body = await readBody(request);
        const record: ReceivedDelivery = {
          n: state.requests.length + 1,
          method: request.method,
          contentType: header(request, "content-type"),
          signature: header(request, "x-mcp-gateway-signature"),
          deliveryId: header(request, "x-mcp-gateway-delivery"),
          body,
          answered: 204,
          receivedAt: Date.now(),
        };
        state.requests.push(record);
        if (state.failures.count > 0) {
          state.failures.count--;
          if (state.failures.hang) {
            record.answered = "hung";
            return; // never answered; the sender's timeout ends it
          }
          record.answered = state.failures.status;
          json(response, state.failures.status, { error: "told to fail" });
          return;
        }
        response.writeHead(204).end();
        return;
      }
      if (kind === "control" && name && action === "fail" && request.method === "POST") {
        const told = JSON.parse((await readBody(request)) || "{}") as { count?: number; status?: number; hang?: boolean };
        channel(name).failures = { count: told.count ?? 1, status: told.status ?? 500, hang: told.hang ?? false };
        json(response, 200, { ok: true });
        return;
      }
      if (kind === "control" && name && action === "requests" && request.method === "GET") {
        json(response, 200, channel(name).requests);
        return;
      }
      json(response, 404, { error: "not found" });
    } catch (error) {
      json(response, 500, { error: (error as Error).message });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  project.provide("auditWebhookReceiver", `http://127.0.0.1:${port}`);
  return async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}
