import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { exportedSampleNames, exprFacts } from "./promql.js";
import { alertingRules, PROMETHEUS_EXAMPLE, readYaml, RULE_FILES, RULE_TEST_FILES, run, type AlertingRule, type RuleFile } from "./tools.js";

interface RuleTestFile {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[] }[];
}

const allRules = RULE_FILES.flatMap((f) => alertingRules(f).map((r) => ({ ...r, file: basename(f) })));
/** Alert names, once each (the two detection profiles define several of the same). */
const allNames = [...new Set(allRules.map((r) => r.alert))].sort();
const ruleOf = (file: string, alert: string): AlertingRule | undefined => allRules.find((r) => r.file === file && r.alert === alert);
const CONSERVATIVE = "compute-node-down.rules.yml";
const FAST = "compute-node-down-fast.rules.yml";
const squeeze = (text: string): string => text.replace(/\s+/g, " ").trim();

describe("Prometheus rule files", () => {
  it("pass promtool check rules", async () => {
    const r = await run("promtool", ["check", "rules", ...RULE_FILES]);
    expect(r.output).not.toMatch(/FAILED/);
    expect(r.code, r.output).toBe(0);
    expect(allRules.length).toBeGreaterThanOrEqual(15);
  });

  it("pass their promtool unit tests", async () => {
    const r = await run("promtool", ["test", "rules", ...RULE_TEST_FILES]);
    expect(r.code, r.output).toBe(0);
    expect(r.output.match(/SUCCESS/g)).toHaveLength(RULE_TEST_FILES.length);
  });

  it("have a firing and a not-firing unit test case for every alert", () => {
    const cases = RULE_TEST_FILES.flatMap((f) =>
      readYaml<RuleTestFile>(f).tests.flatMap((t) => t.alert_rule_test ?? []),
    );
    for (const rule of allRules) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert}: no firing case`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert}: no not-firing case`).toBe(true);
    }
    // and no test names an alert that does not exist
    const names = new Set(allRules.map((r) => r.alert));
    expect(cases.map((c) => c.alertname).filter((n) => !names.has(n))).toEqual([]);
  });

  it("give every alert a severity, a summary and a description", () => {
    for (const rule of allRules) {
      expect(["critical", "warning"], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
    }
  });

  it("about lifeboat use only metrics lifeboat exports (src/metrics.ts) and up", async () => {
    const exported = await exportedSampleNames();
    const lifeboatRules = alertingRules(RULE_FILES.find((f) => f.endsWith("lifeboat.rules.yml")) ?? "");
    expect(lifeboatRules.length).toBeGreaterThan(0);
    for (const rule of lifeboatRules) {
      const facts = exprFacts(rule.expr);
      expect(facts.errors, rule.alert).toEqual([]);
      expect(facts.unnamedSelectors, rule.alert).toEqual([]);
      expect(facts.metrics.filter((m) => m !== "up" && !exported.has(m)), rule.alert).toEqual([]);
    }
  });

  it("about compute nodes use only up and the openstack-exporter's agent state, in both detection profiles", () => {
    for (const name of [CONSERVATIVE, FAST]) {
      const file = RULE_FILES.find((f) => basename(f) === name) ?? "";
      const used = new Set(alertingRules(file).flatMap((r) => exprFacts(r.expr).metrics));
      expect([...used].sort(), name).toEqual(["openstack_nova_agent_state", "up"]);
    }
  });

  it("conservative ComputeNodeDown carries the host label lifeboat maps and joins both signals on it", () => {
    const rule = ruleOf(CONSERVATIVE, "ComputeNodeDown");
    expect(rule?.labels).toEqual({ severity: "critical", detection: "conservative" });
    expect(rule?.expr).toMatch(/and on \(host\)/);
    expect(rule?.for).toBe("1m");
  });

  it("fast ComputeNodeDown carries the host label and leaves out every rack whose failure-domain condition holds", () => {
    const rule = ruleOf(FAST, "ComputeNodeDown");
    expect(rule?.labels).toEqual({ severity: "critical", detection: "fast" });
    expect(rule?.for).toBe("30s");
    const [trigger, excluded] = (rule?.expr ?? "").split("unless on (rack)");
    expect(trigger).toMatch(/and on \(host\)/);
    // The exclusion is ComputeFailureDomainDown's own expression, in parentheses.
    expect(squeeze(excluded ?? "")).toBe(`( ${squeeze(ruleOf(FAST, "ComputeFailureDomainDown")?.expr ?? "-")} )`);
  });

  it("fast ComputeNodeDown waits longer than the failed scrapes of one rack can be apart, so the exclusion is in place first", () => {
    const prometheus = readYaml<{ global: { scrape_interval: string }; scrape_configs: { job_name: string; scrape_interval?: string; scrape_timeout?: string }[] }>(PROMETHEUS_EXAMPLE);
    const node = prometheus.scrape_configs.find((j) => j.job_name === "node");
    const group = readYaml<RuleFile>(RULE_FILES.find((f) => basename(f) === FAST) ?? "").groups[0] as { interval?: string };
    const spread = seconds(node?.scrape_interval ?? prometheus.global.scrape_interval) + seconds(node?.scrape_timeout ?? "10s") + seconds(group.interval ?? "15s");
    expect(spread).toBeLessThan(seconds(ruleOf(FAST, "ComputeNodeDown")?.for ?? "0s"));
  });

  it("the two detection profiles share their other alerts: the same rules, word for word, but NodeExporterDown's text", () => {
    const names = (file: string): string[] => allRules.filter((r) => r.file === file).map((r) => r.alert).sort();
    expect(names(FAST)).toEqual(names(CONSERVATIVE));
    for (const alert of names(FAST).filter((a) => a !== "ComputeNodeDown")) {
      const [fast, conservative] = [ruleOf(FAST, alert), ruleOf(CONSERVATIVE, alert)];
      if (alert === "NodeExporterDown") {
        expect({ ...fast, file: "", annotations: {} }).toEqual({ ...conservative, file: "", annotations: {} });
      } else {
        expect({ ...fast, file: "" }, alert).toEqual({ ...conservative, file: "" });
      }
    }
  });
});

function seconds(d: string): number {
  const m = /^(\d+)(s|m)$/.exec(d);
  if (!m) throw new Error(`not a duration: ${d}`);
  return Number(m[1]) * (m[2] === "m" ? 60 : 1);
}

/**
 * The unit tests must be able to fail: each mutant below breaks every rule at once in a
 * copy of the rule files, and promtool must report a failed case for every rule it breaks.
 * The mutants run concurrently.
 */
describe("rule unit tests catch broken rules", () => {
  const work = mkdtempSync(join(tmpdir(), "lifeboat-rule-mutants-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  async function failingAlertsWith(mutant: string, mutate: (rule: Record<string, unknown>) => void): Promise<Set<string>> {
    const dir = join(work, mutant);
    mkdirSync(join(dir, "tests"), { recursive: true });
    for (const file of RULE_FILES) {
      const doc = readYaml<RuleFile>(file);
      for (const group of doc.groups) for (const rule of group.rules) mutate(rule as unknown as Record<string, unknown>);
      writeFileSync(join(dir, basename(file)), stringify(doc));
    }
    for (const file of RULE_TEST_FILES) copyFileSync(file, join(dir, "tests", basename(file)));
    const r = await run("promtool", ["test", "rules", ...RULE_TEST_FILES.map((f) => join(dir, "tests", basename(f)))]);
    if (r.code !== 1) throw new Error(`promtool passed the ${mutant} mutant (exit ${r.code}):\n${r.output}`);
    return new Set([...r.output.matchAll(/alertname: (\w+), time:/g)].map((m) => m[1] ?? ""));
  }

  let never: Set<string>, always: Set<string>, noFor: Set<string>;
  beforeAll(async () => {
    [never, always, noFor] = await Promise.all([
      failingAlertsWith("never", (rule) => {
        rule.expr = "vector(1) < 0";
      }),
      failingAlertsWith("always", (rule) => {
        rule.expr = "vector(1)";
        delete rule.for;
      }),
      // every rule loses its for:, except ComputeNodeDown, which loses its Nova half instead
      failingAlertsWith("no-for", (rule) => {
        if (rule.alert === "ComputeNodeDown") rule.expr = 'up{job="node"} == 0';
        else delete rule.for;
      }),
    ]);
  });

  it("an alert that never fires fails its firing cases", () => {
    expect([...never].sort()).toEqual(allNames);
  });

  it("an alert that always fires fails its not-firing cases", () => {
    expect([...always].sort()).toEqual(allNames);
  });

  it("an alert without its for: fails its pending cases", () => {
    const withFor = [...new Set(allRules.filter((r) => r.for !== undefined && r.alert !== "ComputeNodeDown").map((r) => r.alert))];
    expect(withFor.length).toBeGreaterThan(5);
    expect([...noFor].filter((a) => a !== "ComputeNodeDown").sort()).toEqual(withFor.sort());
  });

  it("ComputeNodeDown without the Nova half fails", () => {
    expect(noFor).toContain("ComputeNodeDown");
  });
});
