import { AlertmanagerClient } from "../alertmanager/client.js";
import type { Config } from "../config/schema.js";
import type { CloudPort } from "../domain/ports/cloud.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import { PrometheusClient } from "../prometheus/client.js";
import type { NotifierPort } from "../domain/ports/notifier.js";
import type { FencingPort } from "../domain/ports/fencing.js";
import type { Store } from "../domain/journal.js";
import type { Clock } from "../util/clock.js";
import { alertsGate } from "../gates/alerts.js";
import { bmcGate } from "../gates/bmc.js";
import { capacityGate, type Resource } from "../gates/capacity.js";
import { novaServiceGate } from "../gates/nova-service.js";
import { approvalGate, cooldownGate, exclusionGate, pauseGate } from "../gates/policy.js";
import { prometheusGate } from "../gates/prometheus.js";
import { silencesGate } from "../gates/silences.js";
import { stormGate } from "../gates/storm.js";
import type { Gate } from "../domain/ports/gate.js";

export interface GateDeps {
  config: Config;
  store: Store;
  fencing: FencingPort;
  evacuation: CloudPort;
  notifier: NotifierPort;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
}

const RESOURCE: Record<"vcpus" | "ram" | "disk", Resource> = { vcpus: "vcpus", ram: "ramMb", disk: "diskGb" };

export function alertmanagerClient(config: Config): AlertmanagerClient | null {
  const a = config.alertmanager;
  return a.url ? new AlertmanagerClient(a.url, { timeoutMs: a.timeout_seconds * 1000, ...(a.bearer_token ? { bearerToken: a.bearer_token } : {}) }) : null;
}

export function prometheusClient(config: Config): PrometheusClient | null {
  const p = config.prometheus;
  return p.url ? new PrometheusClient(p.url, { timeoutMs: p.timeout_seconds * 1000, ...(p.bearer_token ? { bearerToken: p.bearer_token } : {}) }) : null;
}

/**
 * The gate chain, in the order its decisions are listed: policy first (maintenance, pause,
 * silences, approval, cooldown), then the evidence that the host is dead, then capacity,
 * and the storm guard, which counts the failure whatever the other gates decide.
 */
export function buildGates(deps: GateDeps): Gate[] {
  const { config } = deps;
  const g = config.gates;
  const now = (): number => deps.clock.now();
  const am = alertmanagerClient(config);
  const prom = prometheusClient(config);
  const gates: Gate[] = [exclusionGate(g.exclude_hosts), pauseGate(deps.store)];
  if (g.silences.enabled && am) {
    gates.push(
      silencesGate(am, {
        pauseMatcher: g.silences.pause_matcher,
        onError: g.silences.on_error,
        hostLabel: config.alerts.host_label,
        triggerAlertnames: config.alerts.trigger_alertnames,
        metrics: deps.metrics,
      }),
    );
  }
  gates.push(approvalGate(g.require_approval), cooldownGate(deps.store, g.cooldown_seconds, now));
  for (const c of g.confirmations) {
    switch (c.driver) {
      case "nova-service":
        gates.push(novaServiceGate(deps.evacuation, { staleSeconds: c.stale_seconds, checks: c.checks, intervalSeconds: c.interval_seconds }));
        break;
      case "bmc":
        gates.push(bmcGate(deps.fencing));
        break;
      case "alerts":
        gates.push(am ? alertsGate(am, { alertnames: c.alertnames, hostLabel: config.alerts.host_label }) : missing("alerts", "alertmanager.url"));
        break;
      case "prometheus":
        gates.push(
          prom
            ? prometheusGate(prom, { query: c.query, blindCheck: c.blind_check, blindRatio: c.blind_up_ratio, blindSelector: c.blind_selector })
            : missing("prometheus", "prometheus.url"),
        );
        break;
    }
  }
  if (g.capacity.mode !== "off") {
    gates.push(
      capacityGate(deps.evacuation, {
        mode: g.capacity.mode,
        scope: g.capacity.scope,
        headroomPercent: g.capacity.headroom_percent,
        resources: g.capacity.resources.map((r) => RESOURCE[r]),
        evacuation: config.evacuation,
        journal: deps.store,
        staleSeconds: staleSeconds(config),
        ...(am ? { alerts: { client: am, alertnames: config.alerts.trigger_alertnames, hostLabel: config.alerts.host_label } } : {}),
      }),
    );
  }
  gates.push(stormGate({ store: deps.store, evacuation: deps.evacuation, config: g.storm, now, metrics: deps.metrics, logger: deps.logger, notifier: deps.notifier }));
  return gates;
}

/** When a heartbeat is stale: the nova-service confirmation's threshold, else the monitor's (the same meaning). */
function staleSeconds(config: Config): number {
  const nova = config.gates.confirmations.find((c) => c.driver === "nova-service");
  return nova?.driver === "nova-service" ? nova.stale_seconds : config.monitor.stale_seconds;
}

/** A confirmation configured without the API it needs cannot decide: it blocks. */
function missing(name: string, key: string): Gate {
  return {
    name,
    kind: "evidence",
    evaluate: () => Promise.resolve({ result: "undecided", reason: `${key} is not configured`, recheck: false }),
  };
}
