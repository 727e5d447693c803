import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAlertmanager, type AlertmanagerServer } from "../support/alertmanager.js";
import { waitUntil } from "../support/daemon.js";
import { startPrometheus, type PrometheusServer } from "../support/prometheus.js";
import { startFakeComputeNodes, type FakeComputeNodes } from "../support/targets.js";
import { startWebhookReceiver, type WebhookReceiver } from "../support/webhook-receiver.js";
import { ROOT } from "./tools.js";

/**
 * The fast detection profile for real: a real Prometheus evaluates
 * rules/compute-node-down-fast.rules.yml against fake node-exporters and a fake
 * openstack-exporter, with every duration ten times shorter than in production (scrape
 * 1.5 s with a 0.5 s timeout, rules every 0.5 s, `for: 30s` → 3 s), and sends to a real
 * Alertmanager running config/alertmanager.example.yml, which posts to a receiver standing
 * in for lifeboat.
 */

const SCALE = 10;
const FAST_RULES = resolve(ROOT, "rules/compute-node-down-fast.rules.yml");
const HOSTS = ["a1", "a2", "a3", "a4", "b1", "b2", "b3"];
const RACKS = Object.fromEntries(HOSTS.map((h) => [h, h.startsWith("a") ? "r1" : "r2"]));

let nodes: FakeComputeNodes;
let webhook: WebhookReceiver;
let alertmanager: AlertmanagerServer;
let prometheus: PrometheusServer;

const firingAt = (host: string): string[] =>
  webhook.deliveries.flatMap((d) => d.body.alerts.filter((a) => a.labels.host === host && a.status === "firing").map((a) => a.labels.alertname ?? ""));
const promAlerts = async (alertname: string): Promise<{ host?: string; rack?: string; state: string }[]> =>
  (await prometheus.alerts()).filter((a) => a.labels.alertname === alertname).map((a) => ({ host: a.labels.host, rack: a.labels.rack, state: a.state }));

beforeAll(async () => {
  nodes = await startFakeComputeNodes(HOSTS, { racks: RACKS });
  webhook = await startWebhookReceiver();
  alertmanager = await startAlertmanager({ webhookUrl: webhook.url, groupWait: `${1000 / SCALE}ms`, groupInterval: "1s" });
  // The example's node scrape (15 s, timeout 5 s), scaled like the rules.
  const scrapeConfigs = nodes.scrapeConfigs().map((job) => (job.job_name === "node" ? { ...job, scrape_timeout: `${5000 / SCALE}ms` } : job));
  prometheus = await startPrometheus({
    scrapeConfigs,
    ruleFiles: [FAST_RULES],
    timeScale: SCALE,
    alertmanagerUrl: alertmanager.url,
    scrapeInterval: `${15_000 / SCALE}ms`,
    evaluationInterval: `${15_000 / SCALE}ms`,
  });
  await waitUntil("every node scraped and up", async () => (await prometheus.query('up{job="node"} == 1')).length === HOSTS.length, { timeoutMs: 30_000 });
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await alertmanager?.stop();
  await webhook?.close();
  await nodes?.close();
});

describe("the fast detection profile in a real Prometheus and Alertmanager", () => {
  it("runs the shipped rules with their durations scaled down, the group every 0.5 s", async () => {
    const groups = await prometheus.rules();
    const cnd = groups.flatMap((g) => g.rules).find((r) => r.name === "ComputeNodeDown");
    expect(cnd?.duration).toBe(3);
    expect(cnd?.query).toContain("unless on (rack)");
  });

  it("a node that stops answering reaches lifeboat's webhook as ComputeNodeDown{detection=fast}, while Nova still says up", async () => {
    nodes.hang("b1"); // as a dead machine: nothing answers, the scrape times out
    const delivery = await waitUntil(
      "a firing ComputeNodeDown for b1 at the webhook",
      () => webhook.deliveries.find((d) => d.body.alerts.some((a) => a.labels.host === "b1" && a.status === "firing")),
      { timeoutMs: 30_000 },
    );
    expect(delivery.body.receiver).toBe("lifeboat");
    // Routed by the fast profile's own route.
    expect(delivery.body.groupKey).toContain('detection="fast"');
    expect(delivery.body.alerts[0]?.labels).toEqual({
      alertname: "ComputeNodeDown",
      detection: "fast",
      host: "b1",
      instance: nodes.nodeAddress("b1"),
      job: "node",
      rack: "r2",
      severity: "critical",
    });
    // Nova was never asked to say down: the exporter reports the service up all along.
    expect((await prometheus.query('openstack_nova_agent_state{hostname="b1"}')).map((s) => s.value)).toEqual([1]);
  });

  it("a rack that goes at once fires ComputeFailureDomainDown and never ComputeNodeDown; Alertmanager inhibits one that fired before", async () => {
    // a4 has been reported already (as if it had died a minute before its rack went).
    const earlier = { alertname: "ComputeNodeDown", detection: "fast", host: "a4", instance: nodes.nodeAddress("a4"), job: "node", rack: "r1", severity: "critical" };
    for (const h of ["a1", "a2", "a3"]) nodes.hang(h);
    await waitUntil("ComputeFailureDomainDown firing for r1", async () => (await promAlerts("ComputeFailureDomainDown")).some((a) => a.rack === "r1" && a.state === "firing"), {
      timeoutMs: 30_000,
    });
    await alertmanager.postAlerts([{ labels: earlier, startsAt: new Date().toISOString() }]);
    const inhibited = await waitUntil("a4's ComputeNodeDown inhibited in Alertmanager", async () => {
      const [a] = await alertmanager.alerts({ alertname: "ComputeNodeDown", host: "a4" });
      return a?.status.state === "suppressed" ? a : undefined;
    });
    const [source] = await alertmanager.alerts({ alertname: "ComputeFailureDomainDown", rack: "r1" });
    expect(inhibited.status.inhibitedBy).toEqual([source?.fingerprint]);

    // Twice the scaled `for:` (3 s) more: none of the rack's nodes ever fired, nothing of r1 reached lifeboat.
    await new Promise((r) => setTimeout(r, 6_000));
    expect((await promAlerts("ComputeNodeDown")).filter((a) => a.rack === "r1" && a.state === "firing")).toEqual([]);
    for (const h of ["a1", "a2", "a3", "a4"]) expect(firingAt(h), h).toEqual([]);
    // b1, in the other rack, is still reported.
    expect(firingAt("b1")).toContain("ComputeNodeDown");
  });
});
