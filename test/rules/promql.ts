import { parser } from "@prometheus-io/lezer-promql";
import { Metrics } from "../../src/metrics.js";

/**
 * PromQL helpers for the rules and dashboard checks, on Prometheus' own PromQL grammar
 * (@prometheus-io/lezer-promql): which metric names and label matchers an expression uses,
 * and where it does not parse.
 */

export interface LabelMatcher {
  name: string;
  op: string;
  value: string;
}

export interface ExprFacts {
  /** Metric names of every vector selector (by name or by an exact __name__ matcher). */
  metrics: string[];
  /** Every label matcher of every selector. */
  matchers: LabelMatcher[];
  /** Offsets of syntax errors (empty when the expression parses). */
  errors: number[];
  /** Selectors whose metric name cannot be told (e.g. a __name__ regex). */
  unnamedSelectors: string[];
}

export function exprFacts(expr: string): ExprFacts {
  const tree = parser.parse(expr);
  const facts: ExprFacts = { metrics: [], matchers: [], errors: [], unnamedSelectors: [] };
  const text = (from: number, to: number): string => expr.slice(from, to);
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) facts.errors.push(ref.from);
      if (ref.name === "UnquotedLabelMatcher") {
        const name = ref.node.getChild("LabelName");
        const op = ref.node.getChild("MatchOp");
        const value = ref.node.getChild("StringLiteral");
        if (name && op && value) {
          facts.matchers.push({ name: text(name.from, name.to), op: text(op.from, op.to), value: unquote(text(value.from, value.to)) });
        }
      }
      if (ref.name === "VectorSelector") {
        const id = ref.node.getChild("Identifier");
        if (id) {
          facts.metrics.push(text(id.from, id.to));
          return;
        }
        // {__name__="metric"} form
        let named: string | undefined;
        const matchers = ref.node.getChild("LabelMatchers");
        for (const m of matchers?.getChildren("UnquotedLabelMatcher") ?? []) {
          const name = m.getChild("LabelName");
          const op = m.getChild("MatchOp");
          const value = m.getChild("StringLiteral");
          if (name && op && value && text(name.from, name.to) === "__name__" && text(op.from, op.to) === "=") {
            named = unquote(text(value.from, value.to));
          }
        }
        if (named === undefined) facts.unnamedSelectors.push(text(ref.from, ref.to));
        else facts.metrics.push(named);
      }
    },
  });
  return facts;
}

function unquote(literal: string): string {
  if (literal.startsWith("`")) return literal.slice(1, -1);
  return JSON.parse(literal.startsWith("'") ? `"${literal.slice(1, -1).replace(/"/g, '\\"')}"` : literal) as string;
}

/**
 * Every sample name lifeboat exposes on /metrics, derived from src/metrics.ts's registry
 * (default process metrics included): histograms as _bucket/_sum/_count, summaries as
 * the name, _sum and _count, counters and gauges by name (a counter not ending in _total
 * also as name_total, as OpenMetrics exposes it).
 */
export async function exportedSampleNames(): Promise<Set<string>> {
  const metrics = new Metrics({ version: "test" });
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    switch (String(m.type)) {
      case "histogram":
        for (const s of ["_bucket", "_sum", "_count"]) names.add(m.name + s);
        break;
      case "summary":
        for (const s of ["", "_sum", "_count"]) names.add(m.name + s);
        break;
      case "counter":
        names.add(m.name);
        if (!m.name.endsWith("_total")) names.add(`${m.name}_total`);
        break;
      default:
        names.add(m.name);
    }
  }
  return names;
}

/**
 * Grafana's variables replaced by values Prometheus accepts: $__rate_interval, $__interval
 * → 1m, $__range → 1h, and dashboard variables from `vars`. Unknown variables throw.
 */
export function substituteGrafanaVariables(expr: string, vars: Record<string, string>): string {
  const builtins: Record<string, string> = {
    __rate_interval: "1m",
    __interval: "1m",
    __range: "1h",
    __range_s: "3600",
    __interval_ms: "60000",
  };
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? "";
    const value = builtins[name] ?? vars[name];
    if (value === undefined) throw new Error(`unknown Grafana variable $${name} in ${expr}`);
    return value;
  });
}
