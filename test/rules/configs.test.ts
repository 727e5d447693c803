import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { testConfig } from "../support/alertmanager.js";
import { exprFacts } from "./promql.js";
import { ALERTMANAGER_EXAMPLE, alertingRules, PROMETHEUS_EXAMPLE, readYaml, RULE_FILES, run } from "./tools.js";

interface Route {
  receiver?: string;
  matchers?: string[];
  group_by?: string[];
  group_wait?: string;
  continue?: boolean;
  routes?: Route[];
}

interface AlertmanagerConfig {
  route: Route;
  receivers: { name: string; webhook_configs?: Record<string, unknown>[] }[];
  inhibit_rules?: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
}

interface PrometheusConfig {
  rule_files: string[];
  alerting: { alertmanagers: unknown[] };
  scrape_configs: { job_name: string; metrics_path?: string; honor_labels?: boolean }[];
}

const alertNames = new Set(RULE_FILES.flatMap((f) => alertingRules(f).map((r) => r.alert)));

/** Receivers amtool routes an alert with these labels to, in routing-tree order. */
async function routedTo(...labels: string[]): Promise<string[]> {
  const r = await run("amtool", ["config", "routes", "test", `--config.file=${ALERTMANAGER_EXAMPLE}`, ...labels]);
  expect(r.code, r.output).toBe(0);
  const line = r.output.split("\n").find((l) => l.trim() !== "" && !l.startsWith("Warning"));
  return (line ?? "").trim().split(",");
}

/** alertname values named by matchers like alertname="X" or alertname=~"X|Y". */
function alertnamesIn(matchers: string[]): string[] {
  return matchers.flatMap((m) => {
    const match = /^alertname(=~?)"(.*)"$/.exec(m);
    if (!match) return [];
    return match[1] === "=~" ? (match[2] ?? "").split("|") : [match[2] ?? ""];
  });
}

describe("config/alertmanager.example.yml", () => {
  const config = readYaml<AlertmanagerConfig>(ALERTMANAGER_EXAMPLE);
  const work = mkdtempSync(join(tmpdir(), "lifeboat-am-config-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("passes amtool check-config", async () => {
    const r = await run("amtool", ["check-config", ALERTMANAGER_EXAMPLE]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS/);
    expect(r.output).toMatch(/2 inhibit rules/);
  });

  it("routes ComputeNodeDown to lifeboat once (and to people), whatever its detection profile, everything else to people only", async () => {
    expect(await routedTo("alertname=ComputeNodeDown", "host=compute-1", "severity=critical")).toEqual(["lifeboat", "operators"]);
    for (const detection of ["fast", "conservative"]) {
      expect(await routedTo("alertname=ComputeNodeDown", "host=compute-1", "severity=critical", `detection=${detection}`), detection).toEqual(["lifeboat", "operators"]);
    }
    for (const other of ["NodeExporterDown", "NovaComputeAgentDown", "ComputeFailureDomainDown", "LifeboatDown", "LifeboatRecoveryFailed"]) {
      expect(await routedTo(`alertname=${other}`, "host=compute-1"), other).toEqual(["operators"]);
    }
  });

  it("has one lifeboat route per detection profile, each grouping per host with a short group_wait", () => {
    const routes = (config.route.routes ?? []).filter((r) => r.receiver === "lifeboat");
    expect(routes.map((r) => r.matchers)).toEqual([
      ['alertname="ComputeNodeDown"', 'detection="fast"'],
      ['alertname="ComputeNodeDown"', 'detection!="fast"'],
    ]);
    for (const route of routes) {
      expect(route.group_by).toEqual(["alertname", "host"]);
      expect(parseDurationSeconds(route.group_wait ?? "")).toBeLessThanOrEqual(10);
      expect(route.continue).toBe(true);
    }
    // The fast profile's own seconds: Prometheus' for: has debounced already.
    expect(parseDurationSeconds(routes[0]?.group_wait ?? "")).toBeLessThanOrEqual(1);
  });

  it("posts resolved alerts to lifeboat with a bearer token file", () => {
    const receiver = config.receivers.find((r) => r.name === "lifeboat");
    const hooks = receiver?.webhook_configs ?? [];
    expect(hooks.length).toBeGreaterThanOrEqual(1);
    for (const hook of hooks) {
      expect(hook.url).toMatch(/\/api\/v1\/alerts$/);
      expect(hook.send_resolved).toBe(true);
      // Debian's Alertmanager 0.25 rejects `timeout` (added in 0.28).
      expect(hook).not.toHaveProperty("timeout");
      expect(hook.http_config).toEqual({ authorization: { type: "Bearer", credentials_file: expect.any(String) as string } });
    }
  });

  it("inhibit rules and routes name only alerts that the shipped rules define", () => {
    const named = [
      ...(config.inhibit_rules ?? []).flatMap((r) => [...alertnamesIn(r.source_matchers), ...alertnamesIn(r.target_matchers)]),
      ...(config.route.routes ?? []).flatMap((r) => alertnamesIn(r.matchers ?? [])),
    ];
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((n) => !alertNames.has(n))).toEqual([]);
  });

  it("the harness's derived configuration (test webhook, short timers) is valid too", async () => {
    const tokenFile = join(work, "token");
    writeFileSync(tokenFile, "x");
    const file = join(work, "alertmanager.yml");
    writeFileSync(file, testConfig(JSON.stringify(config), { webhookUrl: "http://127.0.0.1:1/api/v1/alerts" }, tokenFile));
    const r = await run("amtool", ["check-config", file]);
    expect(r.code, r.output).toBe(0);
    const derived = readYaml<AlertmanagerConfig>(file);
    expect(derived.receivers.find((x) => x.name === "operators")).toEqual({ name: "operators" });
    expect(derived.inhibit_rules).toEqual(config.inhibit_rules);
  });
});

describe("config/prometheus.example.yml", () => {
  const config = readYaml<PrometheusConfig>(PROMETHEUS_EXAMPLE);

  it("passes promtool check config, with the shipped rule files of either detection profile", async () => {
    const r = await run("promtool", ["check", "config", PROMETHEUS_EXAMPLE]);
    expect(r.code, r.output).toBe(0);
    const fast = RULE_FILES.find((f) => f.endsWith("/compute-node-down-fast.rules.yml")) ?? "";
    for (const f of RULE_FILES.filter((x) => x !== fast)) expect(r.output).toContain(f.slice(f.lastIndexOf("/rules/") + 1));
    expect(r.output).not.toMatch(/FAILED/);

    // The fast profile in place of the conservative one, as the example's comment says.
    const dir = mkdtempSync(join(tmpdir(), "lifeboat-prom-config-"));
    try {
      const swapped = { ...config, rule_files: config.rule_files.map((f) => resolve(dirname(PROMETHEUS_EXAMPLE), f.replace("compute-node-down.rules.yml", "compute-node-down-fast.rules.yml"))) };
      writeFileSync(join(dir, "prometheus.yml"), stringify(swapped));
      const s = await run("promtool", ["check", "config", join(dir, "prometheus.yml")]);
      expect(s.code, s.output).toBe(0);
      expect(s.output).toContain("compute-node-down-fast.rules.yml");
      expect(s.output).not.toMatch(/FAILED/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("scrapes every job the rules select on, and sends alerts to Alertmanager", () => {
    const jobs = new Set(config.scrape_configs.map((s) => s.job_name));
    const selected = RULE_FILES.flatMap((f) => alertingRules(f))
      .flatMap((r) => exprFacts(r.expr).matchers)
      .filter((m) => m.name === "job" && m.op === "=")
      .map((m) => m.value);
    expect(new Set(selected)).toEqual(new Set(["node", "openstack-exporter", "lifeboat"]));
    for (const job of selected) expect(jobs, job).toContain(job);
    expect(config.alerting.alertmanagers.length).toBeGreaterThan(0);
    expect(config.rule_files).toEqual(["../rules/compute-node-down.rules.yml", "../rules/lifeboat.rules.yml"]);
  });
});

function parseDurationSeconds(d: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d);
  if (!m) throw new Error(`not a duration: ${d}`);
  const n = Number(m[1]);
  return { ms: n / 1000, s: n, m: n * 60, h: n * 3600 }[m[2] as "ms" | "s" | "m" | "h"];
}
