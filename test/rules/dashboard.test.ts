import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { exportedSampleNames, exprFacts, substituteGrafanaVariables } from "./promql.js";
import { DASHBOARD } from "./tools.js";

interface Target {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

interface Dashboard {
  schemaVersion: number;
  uid: string;
  title: string;
  templating: { list: { type: string; name: string; query?: unknown }[] };
  panels: Panel[];
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = panels.filter((p) => p.type !== "row");
const targets = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ref: t.refId ?? "", expr: t.expr ?? "" })));
// Values the variables take in the checks (test/rules/real-prometheus.test.ts evaluates
// every query against a real Prometheus with the same values).
const VARS = { job: "lifeboat", instance: ".*", datasource: "prometheus" };

describe("config/grafana-dashboard.json", () => {
  it("is a Grafana dashboard with schemaVersion >= 36 and a Prometheus datasource variable", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    const ds = dashboard.templating.list.find((v) => v.type === "datasource");
    expect(ds).toMatchObject({ name: "datasource", query: "prometheus" });
    for (const p of queryPanels) {
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      for (const t of p.targets ?? []) expect(t.datasource, `${p.title} ${t.refId}`).toEqual({ type: "prometheus", uid: "${datasource}" });
    }
  });

  it("has unique panel ids, unique refIds per panel, and panels that fit the grid without overlapping", () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of queryPanels) {
      const refs = (p.targets ?? []).map((t) => t.refId);
      expect(refs.length, p.title).toBeGreaterThan(0);
      expect(new Set(refs).size, p.title).toBe(refs.length);
    }
    const cells = new Map<string, string>();
    for (const p of panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const key = `${i},${j}`;
          expect(cells.get(key), `${p.title} overlaps ${cells.get(key)}`).toBeUndefined();
          cells.set(key, p.title);
        }
      }
    }
  });

  it("shows what an operator needs: outcomes, MTTR, milestones, stages, evacuations, fencing, gates, pause, storm, in-flight, notifications, webhook, build info", () => {
    const used = new Set(targets.flatMap((t) => exprFacts(substituteGrafanaVariables(t.expr, VARS)).metrics));
    for (const m of [
      "lifeboat_recoveries_total",
      "lifeboat_recovery_duration_seconds_bucket",
      "lifeboat_recovery_milestone_seconds_bucket",
      "lifeboat_stage_duration_seconds_bucket",
      "lifeboat_instances_evacuated_total",
      "lifeboat_fence_operations_total",
      "lifeboat_gate_decisions_total",
      "lifeboat_automation_paused",
      "lifeboat_storm_guard_tripped",
      "lifeboat_recoveries_in_progress",
      "lifeboat_notifications_total",
      "lifeboat_webhook_requests_total",
      "lifeboat_build_info",
    ]) {
      expect(used, m).toContain(m);
    }
  });

  it("queries only metrics lifeboat exports (src/metrics.ts) and up, in valid PromQL", async () => {
    const exported = await exportedSampleNames();
    expect(exported).toContain("lifeboat_recoveries_total");
    expect(targets.length).toBeGreaterThan(20);
    for (const t of targets) {
      const where = `${t.panel} ${t.ref}: ${t.expr}`;
      const facts = exprFacts(substituteGrafanaVariables(t.expr, VARS));
      expect(facts.errors, where).toEqual([]);
      expect(facts.unnamedSelectors, where).toEqual([]);
      expect(facts.metrics.length, where).toBeGreaterThan(0);
      expect(facts.metrics.filter((m) => m !== "up" && !exported.has(m)), where).toEqual([]);
    }
  });
});
