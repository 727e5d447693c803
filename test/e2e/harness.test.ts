import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAlertmanager, type AlertmanagerServer, type GettableAlert } from "../support/alertmanager.js";
import { waitUntil } from "../support/daemon.js";
import { startPrometheus, type PrometheusServer } from "../support/prometheus.js";
import { startFakeComputeNodes, type FakeComputeNodes } from "../support/targets.js";
import { startWebhookReceiver, type Delivery, type WebhookReceiver } from "../support/webhook-receiver.js";

/**
 * The harness and the shipped rules and route, for real: Prometheus scrapes fake
 * node-exporters and a fake openstack-exporter, evaluates rules/*.rules.yml (with `for:`
 * shortened to 1s), sends to Alertmanager running config/alertmanager.example.yml, which
 * posts to a small webhook receiver standing in for lifeboat.
 */

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const RULE_FILES = [resolve(ROOT, "rules/compute-node-down.rules.yml"), resolve(ROOT, "rules/lifeboat.rules.yml")];
const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

describe("Prometheus + Alertmanager harness with the shipped rules and route", () => {
  const token = randomBytes(16).toString("hex");
  let nodes: FakeComputeNodes;
  let webhook: WebhookReceiver;
  let alertmanager: AlertmanagerServer;
  let prometheus: PrometheusServer;

  const deliveredFor = (host: string, status: "firing" | "resolved"): Delivery[] =>
    webhook.deliveries.filter((d) => d.body.alerts.some((a) => a.labels.host === host && a.status === status));
  const amAlert = async (labels: Record<string, string>): Promise<GettableAlert | undefined> =>
    (await alertmanager.alerts(labels))[0];
  const promAlertsFor = async (host: string): Promise<string[]> =>
    (await prometheus.alerts()).filter((a) => a.labels.host === host).map((a) => `${a.labels.alertname}:${a.state}`);

  beforeAll(async () => {
    // One rack per host: the failure-domain alert (>= 3 nodes of one rack) stays quiet.
    nodes = await startFakeComputeNodes(["compute-1", "compute-2", "compute-3"], {
      racks: { "compute-1": "r1", "compute-2": "r2", "compute-3": "r3" },
    });
    webhook = await startWebhookReceiver();
    alertmanager = await startAlertmanager({ webhookUrl: webhook.url, bearerToken: token, groupWait: "500ms", groupInterval: "1s" });
    prometheus = await startPrometheus({
      scrapeConfigs: nodes.scrapeConfigs(),
      ruleFiles: RULE_FILES,
      forOverride: "1s",
      alertmanagerUrl: alertmanager.url,
      scrapeInterval: "500ms",
      evaluationInterval: "500ms",
    });
  });

  afterAll(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await webhook?.close();
    await nodes?.close();
  });

  it("scrapes every fake node and the openstack-exporter, and loads every shipped rule healthy", async () => {
    const up = await waitUntil("every target scraped and up", async () => {
      const samples = await prometheus.query('up{job=~"node|openstack-exporter"} == 1');
      return samples.length === 4 ? samples : undefined;
    });
    expect(up.filter((s) => s.metric.job === "node").map((s) => s.metric.host).sort()).toEqual(["compute-1", "compute-2", "compute-3"]);
    const agents = await prometheus.query('openstack_nova_agent_state{service="nova-compute"}');
    expect(agents.map((s) => [s.metric.hostname, s.value]).sort()).toEqual([["compute-1", 1], ["compute-2", 1], ["compute-3", 1]]);

    const groups = await waitUntil("rules evaluated", async () => {
      const g = await prometheus.rules();
      return g.flatMap((x) => x.rules).every((r) => r.health === "ok") ? g : undefined;
    });
    const names = groups.flatMap((g) => g.rules.map((r) => r.name));
    expect(names).toEqual(expect.arrayContaining(["ComputeNodeDown", "ComputeFailureDomainDown", "LifeboatDown", "LifeboatNoLeader"]));
    expect(groups.flatMap((g) => g.rules).filter((r) => r.lastError)).toEqual([]);
    // Prometheus runs a copy with the shortened `for:` (the shipped file keeps 1m).
    const cnd = groups.flatMap((g) => g.rules).find((r) => r.name === "ComputeNodeDown");
    expect(cnd?.duration).toBe(1);
    expect(cnd?.query).toContain("openstack_nova_agent_state");
  });

  it("a dead node (no scrape, Nova says down) fires ComputeNodeDown to the webhook; one signal alone does not", async () => {
    await nodes.stop("compute-1"); // node-exporter silent, Nova still hears nova-compute: no recovery
    await nodes.stop("compute-2");
    nodes.setAgentState("compute-2", 0);

    const [firing] = await waitUntil("a firing ComputeNodeDown for compute-2 at the webhook", () => {
      const d = deliveredFor("compute-2", "firing");
      return d.length > 0 ? d : undefined;
    });
    if (firing === undefined) throw new Error("unreachable");
    expect(firing.headers.authorization).toBe(`Bearer ${token}`);
    expect(firing.headers["content-type"]).toBe("application/json");
    expect(firing.headers["user-agent"]).toMatch(/^Alertmanager\//);
    expect(firing.body.version).toBe("4");
    expect(firing.body.status).toBe("firing");
    expect(firing.body.receiver).toBe("lifeboat");
    expect(firing.body.groupLabels).toEqual({ alertname: "ComputeNodeDown", host: "compute-2" });
    expect(firing.body.alerts).toHaveLength(1);
    const alert = firing.body.alerts[0];
    expect(alert?.status).toBe("firing");
    expect(alert?.endsAt).toBe(GO_ZERO_TIME);
    expect(alert?.labels).toEqual({
      alertname: "ComputeNodeDown",
      detection: "conservative",
      host: "compute-2",
      instance: nodes.nodeAddress("compute-2"),
      job: "node",
      rack: "r2",
      severity: "critical",
    });
    expect(alert?.annotations.summary).toBe("Compute node compute-2 is down");

    // compute-1's NodeExporterDown has the same (shortened) `for:` as ComputeNodeDown: once
    // it fires, a ComputeNodeDown for compute-1 would have fired or be pending too.
    await waitUntil("NodeExporterDown firing for compute-1", async () =>
      (await promAlertsFor("compute-1")).includes("NodeExporterDown:firing"),
    );
    expect((await promAlertsFor("compute-1")).filter((a) => a.startsWith("ComputeNodeDown"))).toEqual([]);
    expect(deliveredFor("compute-1", "firing")).toEqual([]);

    // Only the trigger alert is routed to lifeboat.
    expect(new Set(webhook.deliveries.flatMap((d) => d.body.alerts.map((a) => a.labels.alertname)))).toEqual(
      new Set(["ComputeNodeDown"]),
    );

    // The shipped inhibit rule mutes compute-2's single-signal alerts while ComputeNodeDown fires.
    const source = await amAlert({ alertname: "ComputeNodeDown", host: "compute-2" });
    for (const alertname of ["NodeExporterDown", "NovaComputeAgentDown"]) {
      const inhibited = await waitUntil(`${alertname} for compute-2 inhibited`, async () => {
        const a = await amAlert({ alertname, host: "compute-2" });
        return a?.status.state === "suppressed" ? a : undefined;
      });
      expect(inhibited.status.inhibitedBy).toEqual([source?.fingerprint]);
    }
    // compute-1's NodeExporterDown has no ComputeNodeDown to inhibit it.
    const alone = await waitUntil("NodeExporterDown for compute-1 in Alertmanager", () =>
      amAlert({ alertname: "NodeExporterDown", host: "compute-1" }),
    );
    expect(alone.status).toMatchObject({ state: "active", inhibitedBy: [], silencedBy: [] });
  });

  it("sends the resolved notification after the node comes back", async () => {
    await nodes.start("compute-1");
    await nodes.start("compute-2");
    nodes.setAgentState("compute-2", 1);

    const [resolved] = await waitUntil("a resolved ComputeNodeDown for compute-2 at the webhook", () => {
      const d = deliveredFor("compute-2", "resolved");
      return d.length > 0 ? d : undefined;
    });
    expect(resolved?.headers.authorization).toBe(`Bearer ${token}`);
    expect(resolved?.body.status).toBe("resolved");
    const alert = resolved?.body.alerts[0];
    expect(alert?.labels.host).toBe("compute-2");
    expect(alert?.endsAt).not.toBe(GO_ZERO_TIME);
    expect(Date.parse(alert?.endsAt ?? "")).toBeGreaterThan(Date.parse(alert?.startsAt ?? ""));
    // Same alert (fingerprint) as the firing one: lifeboat matches them up.
    expect(alert?.fingerprint).toBe(deliveredFor("compute-2", "firing")[0]?.body.alerts[0]?.fingerprint);
  });

  it('a silence on host="X" shows X\'s ComputeNodeDown as suppressed and holds it back; lifeboat="paused" does not', async () => {
    const hostSilence = await alertmanager.createSilence({ host: "compute-3" }, 10 * 60_000, "maintenance of compute-3");
    const pauseSilence = await alertmanager.createSilence({ lifeboat: "paused" }, 10 * 60_000, "pause all automation");
    const silences = await alertmanager.silences();
    expect(silences.filter((s) => s.status.state === "active").map((s) => s.id).sort()).toEqual([hostSilence, pauseSilence].sort());

    await nodes.stop("compute-3");
    nodes.setAgentState("compute-3", 0);

    const suppressed = await waitUntil("compute-3's ComputeNodeDown suppressed in Alertmanager", async () => {
      const a = await amAlert({ alertname: "ComputeNodeDown", host: "compute-3" });
      return a?.status.state === "suppressed" ? a : undefined;
    });
    expect(suppressed.status.silencedBy).toEqual([hostSilence]);
    expect(suppressed.labels).toMatchObject({ alertname: "ComputeNodeDown", host: "compute-3", severity: "critical" });

    // Well past group_wait (0.5 s) and group_interval (1 s): a silenced alert is never posted.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(deliveredFor("compute-3", "firing")).toEqual([]);

    // Expiring the host silence releases it, although lifeboat="paused" is still active:
    // that silence matches no alert; lifeboat reads it from /api/v2/silences itself.
    await alertmanager.expireSilence(hostSilence);
    const [released] = await waitUntil("compute-3's ComputeNodeDown at the webhook after the silence expired", () => {
      const d = deliveredFor("compute-3", "firing");
      return d.length > 0 ? d : undefined;
    });
    expect(released?.body.alerts[0]?.labels.alertname).toBe("ComputeNodeDown");
    expect((await amAlert({ alertname: "ComputeNodeDown", host: "compute-3" }))?.status.state).toBe("active");
    expect((await alertmanager.silences()).find((s) => s.id === pauseSilence)?.status.state).toBe("active");
  });
});
