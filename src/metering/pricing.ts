/**
 * @module Cost of usage under a price table (gateway.yaml `metering.prices`, src/metering/schema.ts). Pure.
 *
 * **Which entry prices a call**: the most specific entry whose globs match the call's server and tool — rank 3 an
 * entry with `server` and `tool`, 2 `tool` only, 1 `server` only, 0 neither (the catch-all); among entries of the
 * same rank the first listed wins. A call no entry matches costs nothing, and so does a row without a tool (the
 * protocol's own methods: initialize, tools/list…).
 *
 * **What is priced**: calls that reached their server — status `ok` or `error` ("billable calls"); a denied,
 * rate-limited, unknown-tool or unauthenticated call costs nothing. `perKB` prices the request and response bytes
 * the usage row records, per 1,000 bytes.
 *
 * **Exactness**: prices have at most six decimals and are turned into integer micro-units (1e-6) by reading their
 * decimal text, never by multiplying floats. A per-KB price in micro-units is exactly that many nano-units (1e-9)
 * per byte, so every cost is an integer number of nano-units, added up as a BigInt: no drift however many rows.
 * Costs are reported once, at the end, rounded half-up to micro-units (six decimals), from the exact sum — a
 * total is the rounded exact total, not the sum of rounded parts.
 */
import { compileGlob, type GlobMatcher } from "../policy/glob.ts";
import { PRICE_DECIMALS, type PriceEntry } from "./schema.ts";

export const MICROS_PER_UNIT = 1_000_000n;
export const NANOS_PER_MICRO = 1_000n;
/** Bytes in the KB of `perKB`. */
export const BYTES_PER_KB = 1_000;

/** A price as exact integer micro-units: 0.002 → 2000n. Throws for a negative, non-finite or over-precise number. */
export function toMicros(price: number): bigint {
  if (!Number.isFinite(price) || price < 0) throw new RangeError(`a price must be a finite number ≥ 0, not ${price}`);
  const text = price.toFixed(PRICE_DECIMALS);
  if (Number(text) !== price) throw new RangeError(`${price} has more than ${PRICE_DECIMALS} decimal places`);
  const [whole, fraction = ""] = text.split(".");
  return BigInt(whole as string) * MICROS_PER_UNIT + BigInt(fraction.padEnd(PRICE_DECIMALS, "0"));
}

/** Nano-units rounded half-up to micro-units. */
export function nanosToMicros(nanos: bigint): bigint {
  if (nanos < 0n) throw new RangeError("a cost cannot be negative");
  return (nanos + NANOS_PER_MICRO / 2n) / NANOS_PER_MICRO;
}

/** Micro-units as a decimal string without trailing zeros: 12_500_000n → "12.5", 3n → "0.000003", 0n → "0". */
export function microsToDecimal(micros: bigint): string {
  const whole = micros / MICROS_PER_UNIT;
  const fraction = (micros % MICROS_PER_UNIT).toString().padStart(PRICE_DECIMALS, "0").replace(/0+$/, "");
  return fraction === "" ? whole.toString() : `${whole}.${fraction}`;
}

/** A cost in nano-units as the decimal string of its rounded micro-units. */
export function costText(nanos: bigint): string {
  return microsToDecimal(nanosToMicros(nanos));
}

/**
 * A cost in nano-units as a JSON number: the double nearest its six-decimal text, which JSON prints as exactly
 * that text (exact up to about 9 billion units).
 */
export function costNumber(nanos: bigint): number {
  return Number(costText(nanos));
}

/** One entry of the table, ready to price. */
export interface CompiledPrice {
  /** Its index in `metering.prices`. */
  index: number;
  entry: PriceEntry;
  /** 3 server+tool, 2 tool, 1 server, 0 neither. */
  rank: number;
  perCallMicros: bigint;
  perKBMicros: bigint;
}

export interface PriceTable {
  readonly prices: readonly CompiledPrice[];
  /** The entry that prices calls of `tool` on `server`, or undefined (free). "" stands for an absent server or tool. */
  priceOf(server: string, tool: string): CompiledPrice | undefined;
}

/** Compiles `metering.prices` (validated by the schema: globs compile, prices have ≤ 6 decimals). */
export function compilePriceTable(entries: readonly PriceEntry[]): PriceTable {
  const compiled = entries.map((entry, index) => ({
    index,
    entry,
    rank: (entry.tool !== undefined ? 2 : 0) + (entry.server !== undefined ? 1 : 0),
    perCallMicros: toMicros(entry.perCall ?? 0),
    perKBMicros: toMicros(entry.perKB ?? 0),
    server: entry.server === undefined ? undefined : compileGlob(entry.server),
    tool: entry.tool === undefined ? undefined : compileGlob(entry.tool),
  }));
  // Most specific first; a stable sort keeps the file's order within a rank.
  const ordered = [...compiled].sort((a, b) => b.rank - a.rank);
  const cache = new Map<string, CompiledPrice | undefined>();
  const matches = (glob: GlobMatcher | undefined, name: string) => glob === undefined || glob.test(name);
  const publicOf = ({ index, entry, rank, perCallMicros, perKBMicros }: (typeof compiled)[number]): CompiledPrice => ({ index, entry, rank, perCallMicros, perKBMicros });
  const prices = compiled.map(publicOf);
  return {
    prices,
    priceOf(server, tool) {
      if (tool === "") return undefined;
      const key = `${server}\u0000${tool}`;
      if (cache.has(key)) return cache.get(key);
      const found = ordered.find((p) => matches(p.server, server) && matches(p.tool, tool));
      const value = found === undefined ? undefined : prices[found.index];
      if (cache.size < 10_000) cache.set(key, value);
      return value;
    },
  };
}

/** What a price applies to: the calls that reached their server and the bytes of the request and response. */
export interface PricedAmounts {
  billableCalls: number | bigint;
  bytes: number | bigint;
}

/** The exact cost in nano-units of `amounts` at `price` (0 without one). */
export function costNanos(price: CompiledPrice | undefined, amounts: PricedAmounts): bigint {
  if (price === undefined) return 0n;
  return price.perCallMicros * NANOS_PER_MICRO * BigInt(amounts.billableCalls) + price.perKBMicros * BigInt(amounts.bytes);
}

/** The columns of a usage row pricing reads. */
export interface PricedUsageRow {
  server: string;
  tool: string;
  ok: number;
  errors: number;
  requestBytes: number;
  responseBytes: number;
}

/** Calls of a row that are priced: those that reached their server. */
export const billableCalls = (row: Pick<PricedUsageRow, "ok" | "errors">): number => row.ok + row.errors;

/** The exact cost in nano-units of usage rows under a table. */
export function costOfRows(table: PriceTable, rows: Iterable<PricedUsageRow>): bigint {
  let total = 0n;
  for (const row of rows) total += costNanos(table.priceOf(row.server, row.tool), { billableCalls: billableCalls(row), bytes: row.requestBytes + row.responseBytes });
  return total;
}
