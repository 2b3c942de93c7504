/**
 * @module How the Worker addresses a Connector Durable Object and what a relayed call returns: the contract between
 * src/mcp/ (the caller) and src/connectors/durable-object.ts (the callee).
 */
import type { RelayedNotification, RpcError } from "../link/protocol.ts";

/**
 * The Durable Object name of a connector. JSON keeps the pair unambiguous whatever characters the ids hold
 * ("a/b" + "c" and "a" + "b/c" must never meet in one object: that would cross tenants).
 */
export function connectorObjectName(tenant: string, connector: string): string {
  return JSON.stringify([tenant, connector]);
}

/** The outcome of one relayed call: expected failures are values (an RPC exception is logged as uncaught). */
export type CallOutcome = { ok: true; result: Record<string, unknown> } | { ok: false; error: RpcError };

/** Receives the notifications an upstream sends while serving a call (an RPC stub of the Worker's function). */
export type NotificationSink = (notification: RelayedNotification) => unknown;
