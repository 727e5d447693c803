import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parse, stringify } from "yaml";
import { startDaemon, type Daemon } from "./daemon.js";

/**
 * A real Prometheus (/usr/bin/prometheus) for tests: 127.0.0.1, a port chosen at run time,
 * a temporary TSDB, 1 s scrape and evaluation intervals by default.
 *
 * Rule files are the shipped ones (rules/*.rules.yml). Their `for:` durations are
 * production values (a minute and more); `forOverride` loads a copy of each file in which
 * every alerting rule that has a `for:` gets the given one instead (e.g. "2s"), so a test
 * sees pending → firing in seconds while the expressions, labels and annotations stay the
 * shipped ones.
 *
 * Prometheus applies discovered targets in 5 s steps, so the first scrape comes ~5-6 s
 * after start whatever the scrape interval: wait for `up` before anything else.
 */
export interface ScrapeTarget {
  job: string;
  /** host:port addresses. */
  targets: string[];
  /** Target labels added to every series (e.g. host, rack). */
  labels?: Record<string, string>;
  metricsPath?: string;
  honorLabels?: boolean;
}

export interface StartPrometheusOptions {
  /** Raw scrape_configs entries, as in prometheus.yml. */
  scrapeConfigs?: Record<string, unknown>[];
  /** Simple static targets; each becomes one scrape config (targets of one job are merged). */
  targets?: ScrapeTarget[];
  /** Rule files to load (copied into the temporary directory). */
  ruleFiles?: string[];
  /** Replaces every alerting rule's `for:` in the copies of ruleFiles. */
  forOverride?: string;
  /**
   * Divides every alerting rule's `for:` and every group's own `interval:` by this in the
   * copies of ruleFiles (10: a 30 s `for:` becomes 3 s), keeping their proportions.
   */
  timeScale?: number;
  /** Alertmanager base URL (http://127.0.0.1:PORT) to send alerts to. */
  alertmanagerUrl?: string;
  /** Default "1s". */
  scrapeInterval?: string;
  /** Default "1s". */
  evaluationInterval?: string;
  readyTimeoutMs?: number;
}

export interface InstantSample {
  metric: Record<string, string>;
  value: number;
}

export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

export interface PrometheusRule {
  name: string;
  query: string;
  type: "alerting" | "recording";
  /** An alerting rule's `for:`, in seconds. */
  duration?: number;
  health: string;
  lastError?: string;
  state?: string;
}

export interface PrometheusRuleGroup {
  name: string;
  file: string;
  rules: PrometheusRule[];
}

export interface PrometheusServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly daemon: Daemon;
  /**
   * Instant query at the current time. Vector results as they are, a scalar as one sample
   * without labels, a range-vector as the last value of each series. Throws with
   * Prometheus' own message on a bad query or an evaluation error.
   */
  query(expr: string): Promise<InstantSample[]>;
  /** Alerts the rule manager holds now (pending and firing). */
  alerts(): Promise<PrometheusAlert[]>;
  /** Loaded rule groups with each rule's health and last evaluation error. */
  rules(): Promise<PrometheusRuleGroup[]>;
  stop(): Promise<void>;
}

interface ApiAnswer<T> {
  status: "success" | "error";
  data?: T;
  errorType?: string;
  error?: string;
}

type QueryData =
  | { resultType: "vector"; result: { metric: Record<string, string>; value: [number, string] }[] }
  | { resultType: "matrix"; result: { metric: Record<string, string>; values: [number, string][] }[] }
  | { resultType: "scalar" | "string"; result: [number, string] };

export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusServer> {
  const daemon = await startDaemon({
    name: "prometheus",
    readyTimeoutMs: opts.readyTimeoutMs,
    spec: (port, dir) => {
      const ruleFiles = (opts.ruleFiles ?? []).map((file, i) => {
        const copy = join(dir, `${i}-${basename(file)}`);
        writeFileSync(copy, ruleFileCopy(file, opts.forOverride, opts.timeScale));
        return copy;
      });
      const config = {
        global: {
          scrape_interval: opts.scrapeInterval ?? "1s",
          scrape_timeout: opts.scrapeInterval ?? "1s",
          evaluation_interval: opts.evaluationInterval ?? "1s",
        },
        rule_files: ruleFiles,
        ...(opts.alertmanagerUrl === undefined
          ? {}
          : { alerting: { alertmanagers: [{ static_configs: [{ targets: [new URL(opts.alertmanagerUrl).host] }] }] } }),
        scrape_configs: [...(opts.scrapeConfigs ?? []), ...staticScrapeConfigs(opts.targets ?? [])],
      };
      writeFileSync(join(dir, "prometheus.yml"), stringify(config));
      return {
        command: "/usr/bin/prometheus",
        args: [
          `--config.file=${join(dir, "prometheus.yml")}`,
          `--storage.tsdb.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${port}`,
          `--web.external-url=http://127.0.0.1:${port}`,
          "--log.level=warn",
        ],
        readyPath: "/-/ready",
      };
    },
  });
  const url = daemon.url;

  async function api<T>(path: string): Promise<T> {
    const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as ApiAnswer<T>;
    if (body.status !== "success" || body.data === undefined) {
      throw new Error(`prometheus ${path}: ${body.errorType ?? res.status}: ${body.error ?? "no data"}`);
    }
    return body.data;
  }

  return {
    url,
    daemon,
    async query(expr) {
      const data = await api<QueryData>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      switch (data.resultType) {
        case "vector":
          return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
        case "matrix":
          return data.result.map((s) => ({ metric: s.metric, value: Number(s.values.at(-1)?.[1]) }));
        default:
          return [{ metric: {}, value: Number(data.result[1]) }];
      }
    },
    async alerts() {
      return (await api<{ alerts: PrometheusAlert[] }>("/api/v1/alerts")).alerts;
    },
    async rules() {
      return (await api<{ groups: PrometheusRuleGroup[] }>("/api/v1/rules")).groups;
    },
    stop: () => daemon.stop(),
  };
}

/** The text of a rule file, with every alerting rule's `for:` replaced or scaled down when asked. */
export function ruleFileCopy(file: string, forOverride?: string, timeScale?: number): string {
  const text = readFileSync(file, "utf8");
  if (forOverride === undefined && timeScale === undefined) return text;
  const doc = parse(text) as { groups?: { interval?: string; rules?: Record<string, unknown>[] }[] };
  const scaled = (d: string): string => `${Math.max(1, Math.round((durationSeconds(d) * 1000) / (timeScale ?? 1)))}ms`;
  for (const group of doc.groups ?? []) {
    if (timeScale !== undefined && group.interval !== undefined) group.interval = scaled(group.interval);
    for (const rule of group.rules ?? []) {
      if (typeof rule.alert !== "string" || typeof rule.for !== "string") continue;
      rule.for = forOverride ?? scaled(rule.for);
    }
  }
  return stringify(doc);
}

/** A Prometheus duration ("1m30s", "500ms", "2h") in seconds. */
export function durationSeconds(d: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };
  const parts = [...d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== d) throw new Error(`not a Prometheus duration: ${d}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2]!] ?? 0), 0);
}

function staticScrapeConfigs(targets: ScrapeTarget[]): Record<string, unknown>[] {
  const byJob = new Map<string, ScrapeTarget[]>();
  for (const t of targets) byJob.set(t.job, [...(byJob.get(t.job) ?? []), t]);
  return [...byJob.entries()].map(([job, list]) => ({
    job_name: job,
    ...(list[0]?.metricsPath === undefined ? {} : { metrics_path: list[0].metricsPath }),
    ...(list[0]?.honorLabels === undefined ? {} : { honor_labels: list[0].honorLabels }),
    static_configs: list.map((t) => ({ targets: t.targets, ...(t.labels === undefined ? {} : { labels: t.labels }) })),
  }));
}
