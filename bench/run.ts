/**
 * @module The benchmark runner: `npm run bench` (or `node bench/run.ts [name…]` for some of them). Runs every
 * registered benchmark in this Node process, prints a table, writes `bench/results/latest.json` (machine-readable)
 * and `bench/results/latest.md`, and exits 1 when a figure misses its target.
 *
 * A benchmark is a module whose default export is a {@link Benchmark}; register it with one line in BENCHMARKS.
 * Benchmarks get their timing helpers from the {@link BenchContext} passed to `run` (they import only types from
 * here, so the runner stays the one entry point).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { arch, cpus, platform } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One line per benchmark module. */
const BENCHMARKS: (() => Promise<{ default: Benchmark }>)[] = [
  () => import("./policy.ts"),
  () => import("./redact-detectors.ts"),
  () => import("./redact-engine.ts"),
  () => import("./audit-chain.ts"),
  () => import("./mcp-compare.ts"),
];

export interface Benchmark {
  /** Short and stable: it prefixes every figure's name in the results. */
  name: string;
  run(ctx: BenchContext): Promise<Figure[]> | Figure[];
}

/** One measured figure. */
export interface Figure {
  name: string;
  unit: string;
  value: number;
  /** The bound the figure must stay within (at most, or at least with `higherIsBetter`); none = informational. */
  target?: number;
  higherIsBetter?: boolean;
  /** What the figure measures, for the markdown table. */
  note?: string;
}

export interface Timing {
  /** Microseconds per operation. */
  median: number;
  p99: number;
  min: number;
  samples: number;
}

export interface BenchContext {
  /**
   * Times `op` (called with a running counter): `samples` samples of `batch` calls each, after `warmup` untimed
   * calls. Reports microseconds per call; the median is the headline, p99 shows the tail (GC pauses included).
   */
  time(op: (i: number) => unknown, options?: { samples?: number; batch?: number; warmup?: number }): Timing;
  /** Milliseconds for one call of `op`, median of `runs`. */
  timeOnce(op: () => unknown, runs?: number): number;
  log(message: string): void;
}

export interface Result {
  benchmark: string;
  name: string;
  unit: string;
  value: number;
  target: number | null;
  pass: boolean | null;
  note?: string;
}

/** Keeps results reachable so the JIT cannot drop the work that produced them. */
let sink: unknown;

const context: BenchContext = {
  time(op, { samples = 2_000, batch = 50, warmup = 5_000 } = {}) {
    let i = 0;
    for (; i < warmup; i++) sink = op(i);
    const perCall: number[] = [];
    for (let s = 0; s < samples; s++) {
      const start = process.hrtime.bigint();
      for (let b = 0; b < batch; b++) sink = op(i++);
      perCall.push(Number(process.hrtime.bigint() - start) / 1_000 / batch);
    }
    perCall.sort((a, b) => a - b);
    const at = (q: number) => perCall[Math.min(perCall.length - 1, Math.floor(q * perCall.length))] as number;
    return { median: at(0.5), p99: at(0.99), min: perCall[0] as number, samples };
  },
  timeOnce(op, runs = 5) {
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const start = performance.now();
      sink = op();
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)] as number;
  },
  log(message) {
    console.log(`  ${message}`);
  },
};

function verdict(figure: Figure): boolean | null {
  if (figure.target === undefined) return null;
  return figure.higherIsBetter ? figure.value >= figure.target : figure.value <= figure.target;
}

function round(value: number): number {
  return Number(value.toPrecision(value >= 100 ? 6 : 3));
}

function markdown(results: readonly Result[], meta: Record<string, string>): string {
  const lines = [
    "# Benchmark results",
    "",
    Object.entries(meta)
      .map(([k, v]) => `${k}: ${v}`)
      .join(" · "),
    "",
    "| benchmark | figure | value | target | pass | what |",
    "|---|---|---:|---:|:---:|---|",
  ];
  for (const r of results) {
    const target = r.target === null ? "" : `${r.target} ${r.unit}`;
    const pass = r.pass === null ? "" : r.pass ? "✅" : "❌";
    lines.push(`| ${r.benchmark} | ${r.name} | ${r.value} ${r.unit} | ${target} | ${pass} | ${r.note ?? ""} |`);
  }
  return `${lines.join("\n")}\n`;
}

async function main(filters: readonly string[]): Promise<number> {
  const results: Result[] = [];
  for (const load of BENCHMARKS) {
    const bench = (await load()).default;
    if (filters.length > 0 && !filters.some((f) => bench.name.includes(f))) continue;
    console.log(`${bench.name}`);
    for (const figure of await bench.run(context)) {
      const result: Result = {
        benchmark: bench.name,
        name: figure.name,
        unit: figure.unit,
        value: round(figure.value),
        target: figure.target ?? null,
        pass: verdict(figure),
        ...(figure.note ? { note: figure.note } : {}),
      };
      results.push(result);
      const mark = result.pass === null ? " " : result.pass ? "✓" : "✗";
      const target = result.target === null ? "" : `  (target ${figure.higherIsBetter ? "≥" : "≤"} ${result.target} ${result.unit})`;
      console.log(`  ${mark} ${result.name}: ${result.value} ${result.unit}${target}`);
    }
  }
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${platform()} ${arch()}`,
    cpu: `${cpus()[0]?.model ?? "unknown"} ×${cpus().length}`,
  };
  const dir = join(dirname(fileURLToPath(import.meta.url)), "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "latest.json"), `${JSON.stringify({ ...meta, results }, null, 2)}\n`);
  writeFileSync(join(dir, "latest.md"), markdown(results, meta));
  console.log(`wrote ${join(dir, "latest.json")} and latest.md`);
  if (sink === Symbol.for("never")) console.log(sink);
  const failed = results.filter((r) => r.pass === false);
  if (failed.length > 0) console.error(`${failed.length} figure(s) missed their target: ${failed.map((r) => `${r.benchmark}/${r.name}`).join(", ")}`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
