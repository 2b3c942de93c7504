/**
 * @module One drizzle client over the D1 binding, typed with the schema.
 */
import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema.ts";

function connect(d1: D1Database) {
  return drizzle(d1, { schema });
}
export type Database = ReturnType<typeof connect>;

/**
 * Clients already made, per binding: drizzle derives its relational configuration from the whole schema each time a
 * client is made (≈ 0.5 ms of CPU, the largest single item of a call's profile in workerd), and every request asks
 * for one. A binding object lives as long as its isolate; a new one (another isolate, a test's own) gets its own.
 */
const clients = new WeakMap<D1Database, Database>();

export function database(d1: D1Database): Database {
  let client = clients.get(d1);
  if (!client) {
    client = connect(d1);
    clients.set(d1, client);
  }
  return client;
}
