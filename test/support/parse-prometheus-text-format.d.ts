/** Types of parse-prometheus-text-format (it ships none): prom2json's shape. */
declare module "parse-prometheus-text-format" {
  export interface MetricFamily {
    name: string;
    help: string;
    type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
    metrics: (
      | { value: string; labels?: Record<string, string>; timestamp_ms?: string }
      | {
          buckets?: Record<string, string>;
          quantiles?: Record<string, string>;
          count: string;
          sum: string;
          labels?: Record<string, string>;
        }
    )[];
  }
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
