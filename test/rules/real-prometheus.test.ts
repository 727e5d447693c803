import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../../src/metrics.js";
import { waitUntil } from "../support/daemon.js";
import { startPrometheus, type PrometheusServer } from "../support/prometheus.js";
import { startFakeComputeNodes, type FakeComputeNodes } from "../support/targets.js";
import { recordSampleRecovery, serveMetrics } from "./metrics-server.js";
import { substituteGrafanaVariables } from "./promql.js";
import { DASHBOARD, PROMETHEUS_EXAMPLE, readYaml } from "./tools.js";

interface ScrapeConfig {
  job_name: string;
  static_configs?: { targets: string[]; labels?: Record<string, string> }[];
  scrape_interval?: string;
  scrape_timeout?: string;
  [key: string]: unknown;
}

interface DashboardPanel {
  title: string;
  type: string;
  targets?: { refId?: string; expr?: string }[];
  panels?: DashboardPanel[];
}

/**
 * One real Prometheus runs config/prometheus.example.yml — its own scrape jobs (relabelling,
 * honor_labels, metrics path) and rule files, with only the target addresses swapped for
 * loopback fakes and the intervals shortened — and scrapes lifeboat's real metrics registry
 * as job "lifeboat". The dashboard's queries are then evaluated against it.
 * (One Prometheus for both: each new one takes ~6 s before its first scrape.)
 */
const example = readYaml<{ rule_files: string[]; scrape_configs: ScrapeConfig[] }>(PROMETHEUS_EXAMPLE);
const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: DashboardPanel[] };
const targets = dashboard.panels
  .flatMap((p) => [p, ...(p.panels ?? [])])
  .flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ref: t.refId ?? "", expr: t.expr ?? "" })));
const VARS = { job: "lifeboat", instance: ".*", datasource: "prometheus" };

let nodes: FakeComputeNodes;
let lifeboat: Awaited<ReturnType<typeof serveMetrics>>;
let prometheus: PrometheusServer;

beforeAll(async () => {
  nodes = await startFakeComputeNodes(["compute-1", "compute-2", "unlabelled"]);
  const metrics = new Metrics({ version: "1.2.3-test" });
  recordSampleRecovery(metrics); // includes leader = 1, as a running single instance reports it
  lifeboat = await serveMetrics(metrics);
  const addresses: Record<string, ScrapeConfig["static_configs"]> = {
    node: [
      { targets: [nodes.nodeAddress("compute-1")], labels: { host: "compute-1", rack: "r1" } },
      { targets: [nodes.nodeAddress("compute-2")], labels: { host: "compute-2", rack: "r1" } },
      // listed without a host label: the example's relabelling derives it from the address
      { targets: [nodes.nodeAddress("unlabelled")] },
    ],
    // a `service` target label, as a Kubernetes ServiceMonitor adds: honor_labels keeps the
    // exporter's own `service`
    "openstack-exporter": [{ targets: [nodes.openstackExporterAddress], labels: { service: "openstack-exporter" } }],
    lifeboat: [{ targets: [lifeboat.address] }],
  };
  const scrapeConfigs = example.scrape_configs.map((job) => {
    const { scrape_interval: _i, scrape_timeout: _t, ...rest } = job;
    const staticConfigs = addresses[job.job_name];
    if (staticConfigs === undefined) throw new Error(`the test has no targets for job ${job.job_name}`);
    return { ...rest, static_configs: staticConfigs };
  });
  prometheus = await startPrometheus({
    scrapeConfigs,
    ruleFiles: example.rule_files.map((f) => resolve(dirname(PROMETHEUS_EXAMPLE), f)),
    forOverride: "1s",
    scrapeInterval: "500ms",
    evaluationInterval: "500ms",
  });
  // every target up, and lifeboat scraped three times (rate()/increase() need two samples)
  await waitUntil("all five targets up and lifeboat scraped three times", async () => {
    const up = await prometheus.query("up == 1");
    const [scrapes] = await prometheus.query('count_over_time(up{job="lifeboat"}[1m])');
    return up.length === 5 && (scrapes?.value ?? 0) >= 3;
  });
});

afterAll(async () => {
  await prometheus?.stop();
  await lifeboat?.close();
  await nodes?.close();
});

describe("config/prometheus.example.yml in a real Prometheus", () => {
  it("scrapes every job, with the host label given or derived from the address", async () => {
    const up = await prometheus.query("up == 1");
    expect(up.map((s) => s.metric.job).sort()).toEqual(["lifeboat", "node", "node", "node", "openstack-exporter"]);
    expect(up.filter((s) => s.metric.job === "node").map((s) => s.metric.host).sort()).toEqual(["127.0.0.1", "compute-1", "compute-2"]);
  });

  it("keeps the exporter's service label despite a service target label", async () => {
    const agents = await prometheus.query('openstack_nova_agent_state{service="nova-compute"}');
    expect(agents.map((s) => s.metric.hostname).sort()).toEqual(["compute-1", "compute-2", "unlabelled"]);
    expect(agents.every((s) => s.metric.exported_service === undefined)).toBe(true);
  });

  it("loads the rule files it references, healthy, with nothing pending or firing while all is well", async () => {
    // two evaluation rounds after every target was up
    const start = Date.now();
    const rules = await waitUntil("two rule evaluations after all targets were up", async () => {
      const r = (await prometheus.rules()).flatMap((g) => g.rules);
      return Date.now() - start > 1_000 && r.length > 0 && r.every((x) => x.health === "ok") ? r : undefined;
    });
    expect(rules.map((r) => r.name)).toEqual(expect.arrayContaining(["ComputeNodeDown", "LifeboatDown", "LifeboatNoLeader"]));
    expect((await prometheus.alerts()).map((a) => a.labels.alertname)).toEqual([]);
  });
});

describe("the Grafana dashboard's queries against lifeboat's real metrics", () => {
  it("all answer without error, with data", async () => {
    expect(targets.length).toBeGreaterThan(20);
    const empty: string[] = [];
    for (const t of targets) {
      const expr = substituteGrafanaVariables(t.expr, VARS);
      const samples = await prometheus.query(expr).catch((err: unknown) => {
        throw new Error(`${t.panel} ${t.ref}: ${expr}: ${String(err)}`);
      });
      if (samples.length === 0) empty.push(`${t.panel} ${t.ref}: ${expr}`);
    }
    expect(empty).toEqual([]);
  });

  it("show the version and the failed fence operation", async () => {
    const version = targets.find((t) => t.panel === "Version");
    const [info] = await prometheus.query(substituteGrafanaVariables(version?.expr ?? "", VARS));
    expect(info?.metric.version).toBe("1.2.3-test");
    const failures = targets.find((t) => t.panel === "Fence failures, by driver");
    const samples = await prometheus.query(substituteGrafanaVariables(failures?.expr ?? "", VARS));
    expect(samples.map((s) => s.metric.driver)).toEqual(["ipmi"]);
  });
});
