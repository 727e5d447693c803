import type { FencingConfig } from "../fencing/config.js";
import { createFencing } from "../fencing/service.js";
import { STATUS_CONCURRENCY, fenceStatusRows, type FenceStatusRow } from "../fencing/status-table.js";
import type { Logger } from "../logging.js";
import { Metrics } from "../metrics.js";
import { VERSION } from "../version.js";
import { raceDeadline } from "./runner.js";
import type { DoctorCheck, DoctorRow } from "./types.js";

/**
 * Every configured host's fencing chain: each device asked for the power state, as
 * `lifeboat fence status` does (a BMC that answers with the configured credentials is a
 * BMC that can fence). Hosts go a few at a time, each bounded by its slowest device's
 * timeout_seconds, so a dead BMC costs its own deadline and nothing more.
 */
export function fencingCheck(config: FencingConfig, deps: { logger: Logger }): DoctorCheck {
  const hosts = Object.keys(config.hosts).sort();
  const hostTimeoutMs = (host: string): number => Math.max(...(config.hosts[host]?.devices ?? []).map((d) => d.timeout_seconds), 1) * 1000 + 2000;
  const waves = Math.max(1, Math.ceil(hosts.length / STATUS_CONCURRENCY));
  const slowest = Math.max(2000, ...hosts.map(hostTimeoutMs));
  return {
    check: "fencing",
    target: `${hosts.length} host(s)`,
    timeoutMs: waves * slowest + 5000,
    run: async (signal) => {
      if (hosts.length === 0) return [];
      const fencing = createFencing(config, { logger: deps.logger, metrics: new Metrics({ version: VERSION, defaultMetrics: false }) });
      // fence status's own walk over the hosts, each host bounded by its deadline.
      const bounded = { hosts: () => hosts, hasHost: (h: string) => fencing.hasHost(h), status: (h: string, s?: AbortSignal) => raceDeadline((d) => fencing.status(h, d), hostTimeoutMs(h), s) };
      const rows = await fenceStatusRows(bounded, hosts, { signal });
      return rows.map(toRow);
    },
  };
}

function toRow(r: FenceStatusRow): DoctorRow {
  const target = r.device === "-" ? r.host : `${r.host} ${r.device}`;
  if (r.state === "error") return { check: "fencing", target, result: "fail", detail: r.detail };
  if (r.state === "unknown") return { check: "fencing", target, result: "warn", detail: `answers, power state unknown: ${r.detail}` };
  return { check: "fencing", target, result: "ok", detail: `power ${r.state} (${r.detail})${r.state === "off" ? "; the host is off now" : ""}` };
}
