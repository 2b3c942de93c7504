/**
 * @module Chargeback: each consumer's calls and cost for a period (a calendar month `2026-11`, or whole UTC hours
 * `[from, to)`), as JSON or CSV, from the usage store (src/metering/usage-store.ts).
 *
 * A consumer's cost is its usage priced and rounded to six decimals (src/metering/pricing.ts); the total is the
 * exact sum of those lines, as on an invoice, so the CSV adds up. Usage that names no consumer (unauthenticated
 * calls, which cost nothing) is left out. `complete` is false while the period has not ended yet.
 *
 * CSV: {@link CHARGEBACK_CSV_HEADER}, then one row per consumer, "\r\n"-separated; cells go through the audit
 * export's `csvCell` (quoted as RFC 4180 wants, and a leading = + - @ guarded so no spreadsheet runs it).
 */
import { csvCell } from "../audit/export-format.ts";
import { costNumber, NANOS_PER_MICRO, toMicros } from "./pricing.ts";
import { DEFAULT_METERING, type MeteringConfig } from "./schema.ts";
import { readUsage, type UsageReport } from "./usage-store.ts";

export interface ChargebackPeriod {
  /** ISO 8601 UTC, inclusive. */
  from: string;
  /** ISO 8601 UTC, exclusive. */
  to: string;
  /** `YYYY-MM` when the period is that calendar month, else null. */
  month: string | null;
}

export interface ChargebackLine {
  consumer: string;
  /** Every call the audit log recorded for the consumer (any status). */
  calls: number;
  /** Calls that reached their server (ok + error): the ones `perCall` prices. */
  billableCalls: number;
  /** Request + response bytes: what `perKB` prices. */
  bytes: number;
  cost: number;
}

export interface Chargeback {
  tenant: string;
  period: ChargebackPeriod;
  /** False while the period has not ended: the numbers can still grow. */
  complete: boolean;
  currency: string;
  /** By cost, then calls, descending; then by consumer id. */
  consumers: ChargebackLine[];
  totals: { calls: number; billableCalls: number; bytes: number; cost: number };
}

/** `YYYY-MM` for a period that is exactly one calendar month (UTC), else null. */
export function monthLabel(from: number, to: number): string | null {
  const start = new Date(from);
  if (start.getUTCDate() !== 1 || from % 3_600_000 !== 0 || start.getUTCHours() !== 0) return null;
  if (Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1) !== to) return null;
  return start.toISOString().slice(0, 7);
}

/** Pure: the chargeback of a usage report grouped by consumer. */
export function chargebackOf(report: UsageReport, now: number): Chargeback {
  if (report.by !== "consumer") throw new Error("a chargeback is built from usage grouped by consumer");
  const consumers: ChargebackLine[] = report.rows
    .filter((row): row is typeof row & { consumer: string } => typeof row.consumer === "string" && row.consumer !== "")
    .map((row) => ({ consumer: row.consumer, calls: row.calls, billableCalls: row.billableCalls, bytes: row.bytes, cost: row.cost }));
  let micros = 0n;
  for (const line of consumers) micros += toMicros(line.cost);
  const from = Date.parse(report.from);
  const to = Date.parse(report.to);
  return {
    tenant: report.tenant,
    period: { from: report.from, to: report.to, month: monthLabel(from, to) },
    complete: to <= now,
    currency: report.currency,
    consumers,
    totals: {
      calls: consumers.reduce((a, l) => a + l.calls, 0),
      billableCalls: consumers.reduce((a, l) => a + l.billableCalls, 0),
      bytes: consumers.reduce((a, l) => a + l.bytes, 0),
      cost: costNumber(micros * NANOS_PER_MICRO),
    },
  };
}

/** The chargeback of `[from, to)` (whole hours) from D1. */
export async function readChargeback(
  d1: D1Database,
  tenant: string,
  period: { from: number; to: number },
  metering: MeteringConfig = DEFAULT_METERING,
  now: number = Date.now(),
): Promise<Chargeback> {
  return chargebackOf(await readUsage(d1, tenant, { from: period.from, to: period.to, by: "consumer" }, metering), now);
}

export const CHARGEBACK_CSV_COLUMNS = ["period_start", "period_end", "consumer", "calls", "billable_calls", "bytes", "cost", "currency"] as const;
export const CHARGEBACK_CSV_HEADER = CHARGEBACK_CSV_COLUMNS.join(",");

/** The CSV text: the header, one row per consumer, each line ended by "\r\n". */
export function chargebackCsv(chargeback: Chargeback): string {
  const rows = chargeback.consumers.map((line) =>
    [chargeback.period.from, chargeback.period.to, line.consumer, line.calls, line.billableCalls, line.bytes, line.cost, chargeback.currency].map(csvCell).join(","),
  );
  return [CHARGEBACK_CSV_HEADER, ...rows].map((line) => `${line}\r\n`).join("");
}
