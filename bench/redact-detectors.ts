/**
 * @module PII detector benchmark: `findPii` with every detector on 1 MiB of realistic mixed text with sprinkled PII
 * and on three pathological inputs (a run of digits, `a@` repeated, `1.` repeated), each at 1 MiB and 4 MiB. The
 * linearity ratio (4 MiB time / 1 MiB time, ≈ 4 when linear, 16 when quadratic) is the figure with a target.
 */
import { DETECTOR_NAMES, findPii } from "../src/redact/detectors.ts";
import type { Benchmark, BenchContext, Figure } from "./run.ts";
import { prng } from "./prng.ts";

const MIB = 1024 * 1024;
/** A linear detector takes ≈ 4× as long for 4× the text; quadratic would be 16×. Headroom for GC and caches. */
const LINEARITY_TARGET = 6;


const WORDS = (
  "the customer asked for a refund of order invoice ticket status shipped pending account user server request " +
  "response error timeout retry payment address billing region report export query result total amount due " +
  "please contact support about this issue and we will get back to you within two business days thanks"
).split(" ");

/** PII and near-misses as they appear in tool results: roughly one in six is something a detector must find. */
const SPRINKLES = [
  "jane.doe@example.com",
  "mailto:ops+alerts@corp.example.org",
  "(415) 555-0132",
  "+44 20 7946 0958",
  "4242 4242 4242 4242",
  "378282246310005",
  "123-45-6789",
  "DE89 3704 0044 0532 0130 00",
  "203.0.113.42",
  "2001:db8::1",
  "AKIAIOSFODNN7EXAMPLE",
  "ghp_0123456789abcdefghijABCDEFGHIJklmnopqr",
  // Near-misses and ordinary noise.
  "2026-11-25T10:30:45.123Z",
  "v1.2.3",
  "order #1234567812345670",
  "https://api.example.com/v1/items?page=2&limit=50",
  "550e8400-e29b-41d4-a716-446655440000",
  "12:30:45",
  "$1,234.56",
  "1.2.3.4.5",
];

export function mixedText(bytes: number, seed = 7): string {
  const random = prng(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    const r = random();
    let piece: string;
    if (r < 0.06) piece = SPRINKLES[Math.floor(random() * SPRINKLES.length)] as string;
    else if (r < 0.1) piece = String(Math.floor(random() * 100_000));
    else if (r < 0.12) piece = random() < 0.5 ? "\n" : `{"id": ${Math.floor(random() * 1e6)}, "name": "`;
    else piece = WORDS[Math.floor(random() * WORDS.length)] as string;
    parts.push(piece);
    length += piece.length + 1;
  }
  return parts.join(" ").slice(0, bytes);
}

function repeat(unit: string, bytes: number): string {
  return unit.repeat(Math.ceil(bytes / unit.length)).slice(0, bytes);
}

interface Case {
  label: string;
  make(bytes: number): string;
}

const CASES: Case[] = [
  { label: "mixed text", make: (bytes) => mixedText(bytes) },
  { label: "digits", make: (bytes) => repeat("8", bytes) },
  { label: "'a@' repeated", make: (bytes) => repeat("a@", bytes) },
  { label: "'1.' repeated", make: (bytes) => repeat("1.", bytes) },
];

function measure(ctx: BenchContext, text: string, runs: number): number {
  findPii(text, DETECTOR_NAMES);
  return ctx.timeOnce(() => findPii(text, DETECTOR_NAMES), runs);
}

const bench: Benchmark = {
  name: "redact-detectors",
  run(ctx) {
    const figures: Figure[] = [];
    for (const c of CASES) {
      const small = c.make(MIB);
      const large = c.make(4 * MIB);
      const smallMs = measure(ctx, small, 7);
      const largeMs = measure(ctx, large, 5);
      if (c.label === "mixed text") ctx.log(`mixed text: ${findPii(small, DETECTOR_NAMES).length} findings in 1 MiB`);
      figures.push(
        { name: `${c.label}, 1 MiB`, unit: "ms", value: smallMs, note: `findPii() with all ${DETECTOR_NAMES.length} detectors (median of 7)` },
        { name: `${c.label}, 1 MiB throughput`, unit: "MiB/s", value: 1000 / smallMs, higherIsBetter: true, note: "1 MiB / median time" },
        { name: `${c.label}, 4 MiB`, unit: "ms", value: largeMs, note: "median of 5" },
        {
          name: `${c.label}, linearity 4 MiB / 1 MiB`,
          unit: "×",
          value: largeMs / smallMs,
          target: LINEARITY_TARGET,
          note: "≈ 4 when linear, 16 when quadratic",
        },
      );
    }
    return figures;
  },
};

export default bench;
