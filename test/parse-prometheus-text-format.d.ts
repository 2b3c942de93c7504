// Types of the npm package parse-prometheus-text-format (it ships none): the prom2json-shaped families it returns.
declare module "parse-prometheus-text-format" {
  export interface ParsedSample {
    value?: string;
    labels?: Record<string, string>;
    timestamp_ms?: string;
    buckets?: Record<string, string>;
    quantiles?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  export interface ParsedFamily {
    name: string;
    help: string;
    /** Upper case: COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED. */
    type: string;
    metrics: ParsedSample[];
  }
  /** Throws InvalidLineError on a line it cannot parse. */
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[];
}
