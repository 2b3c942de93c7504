/**
 * @module The D1 statements that add a batch's usage ({@link foldUsage}) to `usage_hourly`, exactly once, inside the
 * very D1 batch (one transaction) that ships the batch's entries to `audit_entries` (src/audit/durable-object.ts).
 *
 * `usage_cursor` holds, per tenant, the last seq folded. The writer folds only the entries after the cursor value it
 * expects (`expectedCursor`) and every statement of the batch is guarded by "the cursor is still `expectedCursor`":
 *
 * - the usage upserts (`INSERT … SELECT … WHERE cursor = expected ON CONFLICT … DO UPDATE SET calls = calls +
 *   excluded.calls, …`) add nothing unless the guard holds;
 * - the batch's last statement moves the cursor to the last folded seq under the same guard, and RETURNs a row only
 *   when it did ({@link cursorMoved}).
 *
 * So a batch is folded at most once however often it is shipped (after a lost acknowledgement the cursor has moved
 * and the guard fails), and at least once: a writer whose guard failed reads the cursor ({@link readUsageCursor}) and
 * ships again, folding only what lies beyond it — a batch that overlaps the folded part only in part is counted for
 * the rest. A failure of any statement rolls back the whole batch, entries included.
 *
 * D1 binds at most 100 parameters per statement: an upsert carries {@link USAGE_COLUMNS}.length (28) values per row
 * plus 2 for the guard, so {@link ROWS_PER_STATEMENT} (3) rows = 86 parameters.
 */
import { eq, getTableColumns, sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { usageCursor, usageHourly } from "../db/schema.ts";
import { foldUsage, type FoldedEntry, type UsageDelta } from "./fold.ts";

// Built with drizzle's insert builder (`insert().select(sql…)`), not `db.run(sql…)`: drizzle 0.45 cannot put a raw
// statement with parameters into a D1 batch.

/** D1's limit of bound parameters per statement. */
export const D1_MAX_BOUND_PARAMETERS = 100;

type UsageColumn = keyof typeof usageHourly.$inferInsert;
const KEY_FIELDS = ["tenantId", "hour", "consumer", "server", "tool"] as const satisfies readonly UsageColumn[];
/** Every column of usage_hourly in the order drizzle lists them in an INSERT (the table's definition order). */
const ALL_FIELDS = Object.keys(getTableColumns(usageHourly)) as UsageColumn[];
/** The counters, each added on conflict. */
const COUNTER_FIELDS = ALL_FIELDS.filter((field) => !(KEY_FIELDS as readonly string[]).includes(field));
/** Every column an upsert row binds, in order (SQL names). */
export const USAGE_COLUMNS: readonly string[] = ALL_FIELDS.map((field) => getTableColumns(usageHourly)[field].name);
/** Parameters of the cursor guard: the tenant and the expected cursor. */
const GUARD_PARAMETERS = 2;
/** Usage rows per upsert statement, within D1's parameter limit. */
export const ROWS_PER_STATEMENT = Math.floor((D1_MAX_BOUND_PARAMETERS - GUARD_PARAMETERS) / USAGE_COLUMNS.length);

/** `calls = calls + excluded.calls`, … for every counter. */
const ADD_COUNTERS = Object.fromEntries(
  COUNTER_FIELDS.map((field) => {
    const column = sql.identifier(getTableColumns(usageHourly)[field].name);
    return [field, sql`${column} + excluded.${column}`];
  }),
);
const CONFLICT_TARGET = KEY_FIELDS.map((field) => getTableColumns(usageHourly)[field]);
/** The VALUES subquery's columns are column1, column2, … in SQLite. */
const VALUE_COLUMNS = sql.raw(USAGE_COLUMNS.map((_, i) => `column${i + 1}`).join(", "));

/** The guard: the tenant's cursor (0 without a row) is still where the writer expects it. */
function cursorIs(tenant: string, expected: number): SQL {
  return sql`COALESCE((SELECT seq FROM usage_cursor WHERE tenant_id = ${tenant}), 0) = ${expected}`;
}

/** One row's values, in {@link USAGE_COLUMNS} order. */
function rowValues(tenant: string, delta: UsageDelta): SQL {
  const { latencyBuckets, ...counts } = delta;
  const row: Record<string, string | number> = { ...counts, tenantId: tenant, ...Object.fromEntries(latencyBuckets.map((count, i) => [`latencyBucket${i}`, count])) };
  return sql`(${sql.join(
    ALL_FIELDS.map((field) => sql`${row[field] ?? 0}`),
    sql`, `,
  )})`;
}

/** The upserts adding `deltas` to the tenant's usage rows when its cursor is `expectedCursor`. */
export function usageUpserts(db: Database, tenant: string, deltas: readonly UsageDelta[], expectedCursor: number) {
  const statements = [];
  for (let i = 0; i < deltas.length; i += ROWS_PER_STATEMENT) {
    const rows = deltas.slice(i, i + ROWS_PER_STATEMENT).map((delta) => rowValues(tenant, delta));
    statements.push(
      db
        .insert(usageHourly)
        .select(sql`SELECT ${VALUE_COLUMNS} FROM (VALUES ${sql.join(rows, sql`, `)}) WHERE ${cursorIs(tenant, expectedCursor)}`)
        .onConflictDoUpdate({ target: CONFLICT_TARGET, set: ADD_COUNTERS }),
    );
  }
  return statements;
}

/** Moves the tenant's cursor from `expectedCursor` to `seq`; returns a row ({@link cursorMoved}) only when it did. */
export function moveUsageCursor(db: Database, tenant: string, expectedCursor: number, seq: number) {
  return db
    .insert(usageCursor)
    .select(sql`SELECT ${tenant}, ${seq} WHERE ${cursorIs(tenant, expectedCursor)}`)
    .onConflictDoUpdate({ target: usageCursor.tenantId, set: { seq: sql`excluded.seq` } })
    .returning({ seq: usageCursor.seq });
}

/** True when the batch result of {@link moveUsageCursor} says the cursor moved (its guard held). */
export function cursorMoved(result: unknown): boolean {
  return Array.isArray(result) && result.length === 1;
}

/** What a batch of entries adds to usage, given the cursor the writer expects. */
export interface UsageWrite {
  /** The statements to append to the shipping batch, the cursor's move last; empty when nothing is left to fold. */
  statements: (ReturnType<typeof usageUpserts>[number] | ReturnType<typeof moveUsageCursor>)[];
  /** The cursor after the batch, if its guard holds. */
  cursor: number;
  /** Whether the batch's last statement is the cursor's move (whose result {@link cursorMoved} reads). */
  movesCursor: boolean;
}

/**
 * The usage statements of a shipping batch of `entries` (in seq order) of one tenant: the entries after
 * `expectedCursor` folded, then the cursor moved to the last of them. Entries at or before the cursor were folded
 * already and add nothing.
 */
export function usageWrite(db: Database, tenant: string, entries: readonly (FoldedEntry & { seq: number })[], expectedCursor: number): UsageWrite {
  const fresh = entries.filter((entry) => entry.seq > expectedCursor);
  const last = fresh.at(-1);
  if (!last) return { statements: [], cursor: expectedCursor, movesCursor: false };
  return {
    statements: [...usageUpserts(db, tenant, foldUsage(fresh), expectedCursor), moveUsageCursor(db, tenant, expectedCursor, last.seq)],
    cursor: last.seq,
    movesCursor: true,
  };
}

/** The tenant's usage cursor in D1: the last seq folded, 0 when nothing was. */
export async function readUsageCursor(db: Database, tenant: string): Promise<number> {
  const row = await db.select({ seq: usageCursor.seq }).from(usageCursor).where(eq(usageCursor.tenantId, tenant)).get();
  return row?.seq ?? 0;
}
