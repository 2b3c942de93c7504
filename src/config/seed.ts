/**
 * @module The SQL text that applies a gateway.yaml (and registers one connector) in a database reached through
 * `wrangler d1 execute --file`, which takes no parameters: what `npm start`, `npm run provision` and the
 * end-to-end tests run before the Worker (and so the admin API) is up.
 *
 * The statements are the admin API's own (apply.ts), with every parameter inlined as an escaped literal, so both
 * paths write exactly the same rows. Only digests reach the database (decision D5).
 */
import { configApplyStatements, type SqlValue, type Statement } from "./apply.ts";
import type { GatewayConfig } from "./schema.ts";

export interface SeedConnector {
  id: string;
  name: string;
  /** SHA-256 hex of the connector token (the token itself stays with the connector process). */
  tokenHash: string;
}

/** SQL text, one statement per line, with every value inlined as an escaped literal. */
export async function seedStatements(config: GatewayConfig, connector: SeedConnector, digest: string | null = null): Promise<string> {
  const statements: Statement[] = [
    ...(await configApplyStatements(config, { digest, now: Date.now() })),
    {
      sql:
        "INSERT INTO connectors (tenant_id, id, name, token_hash, enabled) VALUES (?, ?, ?, ?, 1) " +
        "ON CONFLICT(tenant_id, id) DO UPDATE SET name = excluded.name, token_hash = excluded.token_hash, enabled = 1",
      params: [config.tenant, connector.id, connector.name, connector.tokenHash],
    },
  ];
  return statements.map((s) => `${inline(s)};`).join("\n") + "\n";
}

/** The statement with each `?` replaced by its parameter as a literal. No statement has a `?` inside quotes. */
function inline(statement: Statement): string {
  let next = 0;
  const text = statement.sql.replace(/\?/g, () => literal(statement.params[next++] ?? null));
  if (next !== statement.params.length) throw new Error(`statement has ${next} placeholders for ${statement.params.length} parameters`);
  return text;
}

/** An SQLite literal: numbers as they are, text single-quoted with quotes doubled, NUL refused. */
export function literal(value: SqlValue): string {
  if (value === null) return "NULL";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  if (value.includes("\u0000")) throw new Error("text with a NUL character cannot be stored");
  return `'${value.replace(/'/g, "''")}'`;
}
