import type { PrometheusClient } from "../prometheus/client.js";
import { errorMessage } from "../util/errors.js";
import type { Gate } from "../domain/ports/gate.js";

/**
 * A PromQL expression must return something for the host. By default it also checks that
 * the monitoring is not blind: when more than `blindRatio` of all `up` series are 0, the
 * failure is more likely Prometheus' (or the network's) than the hosts'.
 */
export function prometheusGate(
  prom: PrometheusClient,
  opts: { query: string; blindCheck: boolean; blindRatio: number; blindSelector: string },
): Gate {
  return {
    name: "prometheus",
    kind: "evidence",
    async evaluate({ recovery, signal }) {
      const expr = opts.query.replaceAll("{{host}}", recovery.host);
      try {
        if (opts.blindCheck) {
          const sel = opts.blindSelector;
          const [down, total] = await Promise.all([prom.query(`count(${sel} == 0)`, signal), prom.query(`count(${sel})`, signal)]);
          const d = Number(down[0]?.value[1] ?? 0);
          const t = Number(total[0]?.value[1] ?? 0);
          if (t === 0) return { result: "undecided", reason: `Prometheus has no ${sel} series: it cannot judge`, recheck: true };
          if (d / t > opts.blindRatio) {
            return {
              result: "block",
              reason: `monitoring looks blind: ${d} of ${t} ${sel} series are 0 (> ${Math.round(opts.blindRatio * 100)}%)`,
              recheck: true,
              details: { down: d, total: t },
            };
          }
        }
        const result = await prom.query(expr, signal);
        if (result.length === 0) return { result: "block", reason: `query returned nothing for ${recovery.host}: ${expr}`, recheck: true };
        return { result: "pass", reason: `query holds for ${recovery.host} (${result.length} series): ${expr}` };
      } catch (err) {
        if (signal.aborted) throw err;
        return { result: "undecided", reason: `cannot ask Prometheus: ${errorMessage(err)}`, recheck: true };
      }
    },
  };
}
