import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrometheusClient } from "../../src/prometheus/client.js";
import { prometheusGate } from "../../src/gates/prometheus.js";
import type { Gate, GateVerdict } from "../../src/domain/ports/gate.js";
import { freePort } from "../support/daemon.js";
import { startPrometheus, type PrometheusServer } from "../support/prometheus.js";
import { startFakeComputeNodes, type FakeComputeNodes } from "../support/targets.js";
import { askGate, validatingRecovery } from "./ask.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";

/**
 * The PromQL confirmation against a real Prometheus scraping fake node-exporters: the
 * expression must hold for the host, and when most `up` series are 0 the monitoring itself
 * is blind — nothing is fenced.
 */

const HOSTS = ["compute-1", "compute-2", "compute-3", "compute-4", "compute-5"];
let nodes: FakeComputeNodes;
let prom: PrometheusServer;
let client: PrometheusClient;

beforeAll(async () => {
  nodes = await startFakeComputeNodes(HOSTS);
  prom = await startPrometheus({ scrapeConfigs: nodes.scrapeConfigs() });
  client = new PrometheusClient(prom.url, { timeoutMs: 3000 });
  await waitFor(async () => (await prom.query('count(up{job="node"} == 1)'))[0]?.value === HOSTS.length, 30_000, "all targets scraped");
}, 60_000);
afterAll(async () => {
  await prom?.stop();
  await nodes?.close();
});

const evaluate = (g: Gate, host: string): Promise<GateVerdict> => askGate(g, validatingRecovery(host));
const gate = (c: PrometheusClient): Gate => prometheusGate(c, { query: 'up{job="node", host="{{host}}"} == 0', blindCheck: true, blindRatio: 0.5, blindSelector: 'up{job="node"}' });

async function downCount(n: number): Promise<void> {
  await waitFor(async () => (await prom.query('count(up{job="node"} == 0) or vector(0)'))[0]?.value === n, 20_000, `${n} targets down`);
}

describe("prometheus confirmation (real Prometheus)", () => {
  it("blocks while the host's node-exporter answers, passes once it does not", async () => {
    const up = await evaluate(gate(client), "compute-1");
    expect(up.result).toBe("block");
    expect(up.reason).toMatch(/query returned nothing for compute-1/);
    await nodes.stop("compute-1");
    await downCount(1);
    const down = await evaluate(gate(client), "compute-1");
    expect(down.result).toBe("pass");
    expect(down.reason).toMatch(/query holds for compute-1/);
  });

  it("blocks everything when the monitoring is blind (most up series 0), even for a host that is down", async () => {
    await nodes.stop("compute-2");
    await nodes.stop("compute-3");
    await downCount(3); // 3 of 5 = 60 % > 50 %
    const v = await evaluate(gate(client), "compute-1");
    expect(v).toMatchObject({ result: "block", recheck: true });
    expect(v.reason).toBe('monitoring looks blind: 3 of 5 up{job="node"} series are 0 (> 50%)');
  });

  it("no fencing happens while the monitoring is blind; it proceeds once the monitoring sees again", async () => {
    const t = makeLifeboat(
      lifeboatConfig({
        prometheus: { url: prom.url },
        recovery: { recheck_interval_seconds: 0.3 },
        gates: { confirmations: [{ driver: "nova-service", stale_seconds: 30, checks: 1, interval_seconds: 0 }, { driver: "prometheus", query: 'up{job="node", host="{{host}}"} == 0', blind_selector: 'up{job="node"}' }] },
      }),
    );
    await t.app.start({ listen: "127.0.0.1:0" });
    try {
      t.world.kill("compute-1");
      await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
      const r = await waitFor(async () => {
        const x = (await t.app.store.listRecoveries({ host: "compute-1" }))[0];
        return x?.state === "blocked" ? x : undefined;
      }, 10_000, "blocked");
      expect(r.reason).toMatch(/prometheus: monitoring looks blind/);
      await new Promise((res) => setTimeout(res, 1000));
      expect(t.world.calls).toEqual([]);
      await nodes.start("compute-2");
      await nodes.start("compute-3");
      await downCount(1);
      await waitFor(async () => (await t.app.store.getRecovery(r.id))?.state === "completed", 20_000, "completed");
      expect(t.world.count("off compute-1")).toBe(1);
    } finally {
      await t.app.stop();
    }
  });

  it("cannot decide when Prometheus cannot be asked, or the query is wrong", async () => {
    const dead = new PrometheusClient(`http://127.0.0.1:${await freePort()}`, { timeoutMs: 1000 });
    expect((await evaluate(gate(dead), "compute-1")).result).toBe("undecided");
    const bad = prometheusGate(client, { query: "up{host=", blindCheck: false, blindRatio: 0.5, blindSelector: "up" });
    const v = await evaluate(bad, "compute-1");
    expect(v.result).toBe("undecided");
    expect(v.reason).toMatch(/cannot ask Prometheus: Prometheus answered 400/);
  });
});
