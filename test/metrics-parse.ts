/**
 * Reading a /metrics exposition back with a real parser of the Prometheus text format, for the node and worker
 * tests alike: the npm package parse-prometheus-text-format (its sample-line state machine is a port of the
 * official Python client's parser, with the format's three escapes).
 *
 * That package folds every labelled histogram of a family into one object (upstream issue #13, fix #8 unmerged),
 * so histograms are read from the same parser's samples instead: {@link samples} parses the sample lines with the
 * comments left out, where every line is its own untyped sample with all its labels, and {@link histograms} groups
 * them. Families, HELP, TYPE and counters come from the full parse ({@link families}).
 */
import parsePrometheusTextFormat, { type ParsedFamily } from "parse-prometheus-text-format";

/** The families of an exposition by name, from the parser's full parse; throws on a repeated family. */
export function families(text: string): Map<string, ParsedFamily> {
  const byName = new Map<string, ParsedFamily>();
  for (const family of parsePrometheusTextFormat(text)) {
    if (byName.has(family.name)) throw new Error(`family ${family.name} appears twice`);
    byName.set(family.name, family);
  }
  return byName;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Every sample line, parsed. A repeated series (same name and labels, which a Prometheus scrape refuses) throws:
 * the parser merges consecutive repeats, so those show as fewer samples than lines, and the others are looked for.
 */
export function samples(text: string): Sample[] {
  const lines = text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
  const parsed = parsePrometheusTextFormat(`${lines.join("\n")}\n`).flatMap((family) =>
    family.metrics.map((metric) => ({ name: family.name, labels: metric.labels ?? {}, value: Number(metric.value) })),
  );
  if (parsed.length !== lines.length) throw new Error(`${lines.length} sample lines but ${parsed.length} distinct samples: a series is repeated`);
  const seen = new Set<string>();
  for (const sample of parsed) {
    const key = JSON.stringify([sample.name, Object.entries(sample.labels).sort(([a], [b]) => (a < b ? -1 : 1))]);
    if (seen.has(key)) throw new Error(`series ${key} is repeated`);
    seen.add(key);
  }
  return parsed;
}

/** The samples of one family (counter or untyped) as `labels → value`, keyed by the labels' JSON in their order. */
export function counterValues(text: string, name: string): Map<string, number> {
  return new Map(samples(text).filter((s) => s.name === name).map((s) => [JSON.stringify(s.labels), s.value]));
}

export interface ParsedHistogram {
  /** The labels without `le`. */
  labels: Record<string, string>;
  /** [le, cumulative count] in the order the lines came. */
  buckets: [string, number][];
  sum: number | undefined;
  count: number | undefined;
}

/** The histograms of family `name`, one per label set (without `le`), from its _bucket, _sum and _count samples. */
export function histograms(text: string, name: string): ParsedHistogram[] {
  const byLabels = new Map<string, ParsedHistogram>();
  const of = (labels: Record<string, string>) => {
    const key = JSON.stringify(labels);
    let histogram = byLabels.get(key);
    if (!histogram) byLabels.set(key, (histogram = { labels, buckets: [], sum: undefined, count: undefined }));
    return histogram;
  };
  for (const sample of samples(text)) {
    if (sample.name === `${name}_bucket`) {
      const { le, ...labels } = sample.labels;
      if (le === undefined) throw new Error(`${name}_bucket without le`);
      of(labels).buckets.push([le, sample.value]);
    } else if (sample.name === `${name}_sum`) of(sample.labels).sum = sample.value;
    else if (sample.name === `${name}_count`) of(sample.labels).count = sample.value;
  }
  return [...byLabels.values()];
}
