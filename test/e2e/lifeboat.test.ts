import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifeboat } from "../../src/app/lifecycle.js";
import type { Config } from "../../src/config/schema.js";
import { buildDrivers } from "../../src/app/drivers.js";
import type { ChainResult } from "../../src/domain/ports/fencing.js";
import type { InstanceResult, Recovery, RecoveryDetail } from "../../src/domain/model.js";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import { startSmtpCatcher, type CaughtMessage, type SmtpCatcher } from "../../packages/sandbox/src/smtp.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import { substituteGrafanaVariables } from "../rules/promql.js";
import { startAlertmanager, type AlertmanagerServer, type GettableAlert } from "../support/alertmanager.js";
import { freePort, waitUntil } from "../support/daemon.js";
import { freeUdpPort, startIpmiSim, type IpmiSim } from "../support/ipmi-sim.js";
import { startPrometheus, type PrometheusServer } from "../support/prometheus.js";
import { startFakeComputeNodes, type FakeComputeNodes } from "../support/targets.js";
import { ADMIN_TOKEN, WEBHOOK_TOKEN, tempDir, parseConfigData } from "../kit/config.js";
import { alertPayload, postAlert } from "../kit/http.js";
import { memoryLogger } from "../kit/lifeboat.js";

/**
 * lifeboat in the loop, end to end, everything on 127.0.0.1:
 *
 *   fake node-exporters + fake openstack-exporter (reporting the simulated Nova's view)
 *     → real Prometheus (shipped rules/, `for:` shortened) → real Alertmanager (shipped
 *     route, bearer token) → lifeboat's webhook → lifeboat with its real drivers:
 *     ipmitool against one real ipmi_sim BMC per host, Keystone + Nova of the simulated
 *     cloud, SMTP to a real SMTP server; Alertmanager's silences asked before fencing;
 *     Prometheus scraping lifeboat's /metrics for the Grafana dashboard.
 *
 * The simulated world is wired like a real site: a host that dies stops answering scrapes
 * and its nova-compute stops heartbeating while its BMC still says "on"; Nova reports the
 * service down after service_down_time, and the openstack-exporter reports what Nova says
 * (state, and adminState once lifeboat disabled the service). Powering a host off through
 * its BMC kills whatever still ran there (nova-compute, node-exporter).
 *
 * The run: compute-1 dies and is recovered; compute-2 dies under an Alertmanager silence
 * and is left alone, and, a second failure past the storm guard's limit (max_recoveries 1),
 * trips it; compute-3 dies during the storm and is held blocked. compute-1's first fence device (its BMC on a management network that does
 * not answer) fails and the chain escalates to the second: the fence-failure panel has data
 * for an honest reason.
 */

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const RULE_FILES = [resolve(ROOT, "rules/compute-node-down.rules.yml"), resolve(ROOT, "rules/lifeboat.rules.yml")];
const DASHBOARD = resolve(ROOT, "config/grafana-dashboard.json");
const HOSTS = ["compute-1", "compute-2", "compute-3", "compute-4"] as const;
type Host = (typeof HOSTS)[number];
// Two hosts per rack: ComputeFailureDomainDown (>= 3 nodes of a rack) stays quiet.
const RACKS: Record<Host, string> = { "compute-1": "r1", "compute-2": "r1", "compute-3": "r2", "compute-4": "r2" };
const OPERATOR = "ops@cloud.example";
const BMC_USER = "lifeboat";
// IPMI 1.5 passwords are at most 16 bytes (ipmi_sim truncates longer ones).
const BMC_PASSWORD = `bmc-${randomBytes(6).toString("hex")}`;
const SERVICE_DOWN_SECONDS = 3;
const PRIMARY_BMC = "compute-1 BMC via mgmt-a";
const SECONDARY_BMC = "compute-1 BMC via mgmt-b";
// The dashboard's variables as Grafana would fill them for this Prometheus.
const GRAFANA_VARS = { job: "lifeboat", instance: ".*", datasource: "prometheus" };

interface DashboardPanel {
  title: string;
  type: string;
  targets?: { refId?: string; expr?: string }[];
  panels?: DashboardPanel[];
}

let dir: string | undefined;
let nodes: FakeComputeNodes | undefined;
let cloud: SandboxCloud | undefined;
let smtp: SmtpCatcher | undefined;
const bmcs = new Map<Host, IpmiSim>();
let alertmanager: AlertmanagerServer | undefined;
let prometheus: PrometheusServer | undefined;
let app: Lifeboat | undefined;
let world: World | undefined;
let logs: string[] = [];
/** compute-1's servers before anything happened: id → name, project. */
let compute1Servers: { id: string; name: string; projectId: string; vmState: string }[] = [];
let silenceId = "";

function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`${what} did not start`);
  return v;
}

function bmc(host: Host): IpmiSim {
  return must(bmcs.get(host), `the BMC of ${host}`);
}

/**
 * The physical world around the simulators, advanced every 200 ms: a BMC whose power went
 * off kills its host (nova-compute stops heartbeating, node-exporter stops answering), and
 * the openstack-exporter reports Nova's current view of every nova-compute service.
 */
interface World {
  /** The host dies (kernel panic): no scrapes, no heartbeats; the BMC still says on. */
  die(host: Host): Promise<void>;
  errors: string[];
  stop(): Promise<void>;
}

function wireWorld(n: FakeComputeNodes, c: SandboxCloud, sims: Map<Host, IpmiSim>): World {
  const dead = new Set<Host>();
  const errors: string[] = [];
  let running = true;
  const die = async (host: Host): Promise<void> => {
    dead.add(host);
    await n.stop(host);
    c.killHost(host);
  };
  const tick = async (): Promise<void> => {
    for (const [host, sim] of sims) {
      if (!dead.has(host) && (await sim.power()) === "off") await die(host);
    }
    c.settle();
    for (const s of c.state.services()) {
      if (s.binary !== "nova-compute" || !(HOSTS as readonly string[]).includes(s.host)) continue;
      n.setAgentState(s.host, s.state === "up" ? 1 : 0);
      n.setAdminState(s.host, s.status, s.disabledReason ?? "");
    }
  };
  const loop = (async () => {
    while (running) {
      await tick().catch((err: unknown) => errors.push(String(err)));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    die,
    errors,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

async function latestRecovery(host: Host): Promise<Recovery | undefined> {
  return (await must(app, "lifeboat").store.listRecoveries({ host, limit: 1 }))[0];
}

async function detail(id: string): Promise<RecoveryDetail> {
  const d = await recoveryDetail(must(app, "lifeboat").store, id);
  if (!d) throw new Error(`no recovery ${id}`);
  return d;
}

/** Waits for the host's (latest) recovery to reach one of `states`. */
async function recoveryIn(host: Host, states: readonly string[], timeoutMs: number): Promise<RecoveryDetail> {
  try {
    const r = await waitUntil(`${host}'s recovery in ${states.join("|")}`, async () => {
      const latest = await latestRecovery(host);
      return latest && states.includes(latest.state) ? latest : undefined;
    }, { timeoutMs, intervalMs: 100 });
    return await detail(r.id);
  } catch (err) {
    // Say where it is stuck and why.
    const latest = await latestRecovery(host);
    const d = latest ? await detail(latest.id) : undefined;
    const why = d ? `${d.state}: ${d.reason}; decisions: ${d.decisions.map((x) => `${x.gate} ${x.result} ${x.reason}`).join(" | ")}` : "no recovery";
    throw new Error(`${(err as Error).message} — ${why}`);
  }
}

const instanceLine = (i: InstanceResult): string => `${i.name} (${i.instanceId}, project ${i.projectId}): evacuated to ${i.targetHost ?? "?"}`;

/** The addresses the sandbox's Keystone gives for a project: members (effective roles) and each server's creator, with an email. */
function keystoneRecipients(c: SandboxCloud, projectId: string, serverIds: string[]): string[] {
  const st = c.state;
  const roles = new Set(["member", "_member_"].map((name) => st.roleByName(name)?.id).filter((id): id is string => id !== undefined));
  const out = new Set<string>();
  for (const u of st.users.values()) {
    if (u.email && [...st.effectiveRoleIds(u.id, projectId)].some((r) => roles.has(r))) out.add(u.email.toLowerCase());
  }
  for (const id of serverIds) {
    const server = st.servers.get(id);
    const creator = server ? st.users.get(server.userId) : undefined;
    if (creator?.email) out.add(creator.email.toLowerCase());
    for (const a of (server?.metadata["lifeboat:notify"] ?? "").split(/[,;\s]+/).filter(Boolean)) out.add(a.toLowerCase());
  }
  return [...out].sort();
}

/**
 * The operators' mails about `host`, one per Message-ID: delivery is at least once, and a
 * relay that answers late on a loaded machine may get the same message twice.
 */
const operatorMails = (host: Host): CaughtMessage[] => {
  const seen = new Set<string>();
  return must(smtp, "smtp").messages.filter((m) => {
    if (!m.to.includes(OPERATOR) || !m.subject.includes(`${host}:`)) return false;
    const id = String(m.headers["message-id"] ?? m.subject);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
};
const subjects = (mails: CaughtMessage[]): string[] => mails.map((m) => `${m.subject} <${String(m.headers["message-id"] ?? "")}>`);

function configData(opts: { port: number; alertmanagerUrl: string; deadPort: number }): Record<string, unknown> {
  const c = must(cloud, "cloud");
  const ipmi = (host: Host, name?: string): Record<string, unknown> => ({
    driver: "ipmi",
    address: "127.0.0.1",
    port: bmc(host).port,
    name: name ?? `${host} BMC`,
  });
  return {
    server: { listen: `127.0.0.1:${opts.port}`, auth: { bearer_token: WEBHOOK_TOKEN }, admin_token: ADMIN_TOKEN },
    store: { path: join(must(dir, "dir"), "lifeboat.db") },
    alerts: { host_label: "host", trigger_alertnames: ["ComputeNodeDown"] },
    recovery: { grace_seconds: 1, recheck_interval_seconds: 1, step_retries: 2 },
    gates: {
      confirmations: [{ driver: "nova-service", stale_seconds: 2, checks: 1, interval_seconds: 0 }, { driver: "bmc" }],
      silences: { enabled: true, on_error: "block" },
      storm: { max_recoveries: 1, max_percent: 100, window_seconds: 600, cooldown_seconds: 600 },
      capacity: { mode: "block", scope: "zone" },
      cooldown_seconds: 0,
    },
    alertmanager: { url: opts.alertmanagerUrl, timeout_seconds: 5 },
    openstack: { auth: { ...c.admin }, retries: 2, timeout_seconds: 10 },
    fencing: {
      defaults: {
        ipmi: {
          username: BMC_USER,
          password: BMC_PASSWORD,
          interface: "lanplus",
          cipher_suite: 3, // ipmi_sim does not do suite 17
          privilege: "OPERATOR",
          ipmitool_timeout_seconds: 1,
          ipmitool_retries: 1,
          retries: 1,
          retry_delay_seconds: 0.1,
          power_wait_seconds: 0.2,
          poll_interval_seconds: 0.2,
          power_timeout_seconds: 5,
          timeout_seconds: 15,
        },
      },
      hosts: {
        // An escalation chain: the BMC on a management network that does not answer, then
        // the same BMC on a second network.
        "compute-1": {
          devices: [
            { driver: "ipmi", address: "127.0.0.1", port: opts.deadPort, name: PRIMARY_BMC, retries: 0, timeout_seconds: 6 },
            ipmi("compute-1", SECONDARY_BMC),
          ],
        },
        "compute-2": ipmi("compute-2"),
        "compute-3": ipmi("compute-3"),
        "compute-4": ipmi("compute-4"),
      },
    },
    evacuation: { poll_interval_seconds: 0.25 },
    notifications: {
      from: "lifeboat <lifeboat@cloud.example>",
      operators: [OPERATOR],
      smtp: { host: "127.0.0.1", port: must(smtp, "smtp").port, security: "none" },
      tenants: { enabled: true },
    },
  };
}

beforeAll(async () => {
  dir = tempDir();
  // The site: cloud (Nova says a silent nova-compute is down after 3 s), SMTP, one BMC per host.
  // One at a time (each takes milliseconds): whatever started is known to afterAll, even
  // when a later start fails.
  nodes = await startFakeComputeNodes(HOSTS, { racks: RACKS });
  cloud = await startSandboxCloud({ serviceDownTimeSeconds: SERVICE_DOWN_SECONDS, reportIntervalSeconds: 1, evacuationDurationMs: 1000 });
  smtp = await startSmtpCatcher();
  for (const host of HOSTS) {
    // The BMC user lifeboat is given may control power, nothing more.
    bmcs.set(host, await startIpmiSim({ users: [{ name: BMC_USER, password: BMC_PASSWORD, priv: "operator" }], power: "on" }));
  }
  compute1Servers = [...cloud.state.servers.values()]
    .filter((s) => s.host === "compute-1")
    .map((s) => ({ id: s.id, name: s.name, projectId: s.projectId, vmState: s.vmState }));
  world = wireWorld(nodes, cloud, bmcs);

  // lifeboat's port first: Alertmanager posts to it, Prometheus scrapes it, and lifeboat's
  // config names Alertmanager (the silences gate).
  const port = await freePort();
  alertmanager = await startAlertmanager({
    webhookUrl: `http://127.0.0.1:${port}/api/v1/alerts`,
    bearerToken: WEBHOOK_TOKEN,
    groupWait: "500ms",
    groupInterval: "1s",
  });
  prometheus = await startPrometheus({
    scrapeConfigs: [...nodes.scrapeConfigs(), { job_name: "lifeboat", metrics_path: "/metrics", static_configs: [{ targets: [`127.0.0.1:${port}`] }] }],
    ruleFiles: RULE_FILES,
    forOverride: "1s",
    alertmanagerUrl: alertmanager.url,
    scrapeInterval: "500ms",
    evaluationInterval: "500ms",
  });

  const config: Config = parseConfigData(configData({ port, alertmanagerUrl: alertmanager.url, deadPort: await freeUdpPort() }));
  const { logger, lines } = memoryLogger("debug");
  logs = lines;
  app = new Lifeboat({ config, logger, drivers: (ctx) => buildDrivers(config, ctx) });
  await app.start({ listen: `127.0.0.1:${port}` });

  const prom = prometheus;
  await waitUntil(
    "every node, the openstack-exporter and lifeboat scraped and up",
    async () => (await prom.query("up == 1")).length === HOSTS.length + 2,
    { timeoutMs: 30_000, intervalMs: 250 },
  );
}, 60_000);

afterAll(async () => {
  // Everything, even after a failed start; nothing is left running.
  await world?.stop();
  await app?.stop().catch(() => undefined);
  await Promise.allSettled([
    prometheus?.stop(),
    alertmanager?.stop(),
    ...[...bmcs.values()].map((b) => b.stop()),
    nodes?.close(),
    cloud?.close(),
    smtp?.close(),
  ]);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("lifeboat end to end with real Prometheus, Alertmanager, ipmi_sim BMCs and SMTP", () => {
  it("a node that dies ends in a completed recovery: fenced through ipmi_sim, isolated, every instance evacuated, the right mails", async () => {
    const c = must(cloud, "cloud");
    const w = must(world, "world");
    const am = must(alertmanager, "alertmanager");
    // compute-2 goes into maintenance first; it dies at the same moment as compute-1.
    silenceId = await am.createSilence({ host: "compute-2" }, 30 * 60_000, "BIOS update on compute-2");
    expect(compute1Servers.length).toBeGreaterThan(0);
    await Promise.all([w.die("compute-1"), w.die("compute-2")]);

    const d = await recoveryIn("compute-1", ["completed", "partial", "failed", "aborted"], 60_000);
    expect(d.state, d.reason).toBe("completed");
    expect(w.errors).toEqual([]);

    // Started by Prometheus → Alertmanager → webhook, not by hand.
    expect(d.trigger).toBe("alert");
    const events = await must(app, "lifeboat").store.listEvents({ host: "compute-1" });
    const firing = events.filter((e) => e.status === "firing");
    expect(firing.length).toBeGreaterThan(0);
    expect(firing[0]).toMatchObject({ source: "alertmanager", alertname: "ComputeNodeDown", receiver: "lifeboat", recoveryId: d.id });
    expect(firing[0]?.labels).toMatchObject({ host: "compute-1", rack: "r1", job: "node", instance: must(nodes, "nodes").nodeAddress("compute-1"), severity: "critical" });
    expect(firing[0]?.groupKey).toContain('host="compute-1"');
    expect(d.decisions.filter((x) => x.result !== "pass")).toEqual([]);
    expect(d.decisions.map((x) => x.gate)).toEqual(expect.arrayContaining(["silences", "nova-service", "bmc", "capacity", "storm"]));

    // Fenced through ipmitool against ipmi_sim: the unreachable first device failed, the
    // second powered the chassis off and read it back; the BMC really is off, once.
    expect(d.fenceState).toBe("off");
    expect(await bmc("compute-1").power()).toBe("off");
    expect(await bmc("compute-1").commands()).toEqual(["power 0"]);
    const fence = d.fence as ChainResult;
    expect(fence.ok).toBe(true);
    expect(fence.device).toBe(SECONDARY_BMC);
    expect(fence.attempts.map((a) => [a.device, a.driver, a.result.ok])).toEqual([
      [PRIMARY_BMC, "ipmi", false],
      [SECONDARY_BMC, "ipmi", true],
    ]);
    expect(fence.attempts[1]?.result.message).toContain("Chassis Power is off");

    // Isolated in Nova: forced down first, then disabled with lifeboat's reason.
    c.settle();
    const novaHost = c.state.hosts.get("compute-1");
    expect(novaHost).toMatchObject({ forcedDown: true, disabled: true });
    expect(novaHost?.disabledReason).toMatch(new RegExp(`^lifeboat: recovery ${d.id} fenced `));
    const puts = c.requests.filter((q) => q.method === "PUT" && q.path.startsWith("/v2.1/os-services/") && q.status === 200);
    expect(puts.map((q) => Object.keys(q.body as object).sort().join(","))).toEqual(["forced_down", "disabled_reason,status"]);

    // Every instance evacuated, once each, to where Nova now has it; none left on compute-1.
    expect(d.instances.map((i) => i.instanceId).sort()).toEqual(compute1Servers.map((s) => s.id).sort());
    expect(d.instances.filter((i) => i.state !== "evacuated")).toEqual([]);
    for (const i of d.instances) {
      const server = c.state.servers.get(i.instanceId);
      expect(i.targetHost).not.toBe("compute-1");
      expect(server?.host, i.name).toBe(i.targetHost);
      expect(server?.taskState, i.name).toBeNull();
      // A SHUTOFF instance stays SHUTOFF; the others run again.
      expect(server?.vmState, i.name).toBe(compute1Servers.find((s) => s.id === i.instanceId)?.vmState);
    }
    expect([...c.state.servers.values()].filter((s) => s.host === "compute-1")).toEqual([]);
    const evacuates = c.requests.filter((q) => q.method === "POST" && q.path.endsWith("/action") && typeof q.body === "object" && q.body !== null && "evacuate" in q.body);
    expect(evacuates.map((q) => q.path).sort()).toEqual(compute1Servers.map((s) => `/v2.1/servers/${s.id}/action`).sort());

    // The mails: one operator summary naming the host and each instance's fate, and one
    // tenant mail per affected project to each address Keystone gives; nothing else.
    const projects = [...new Set(compute1Servers.map((s) => s.projectId))].sort();
    const expectedTenantMails = projects.flatMap((p) =>
      keystoneRecipients(c, p, compute1Servers.filter((s) => s.projectId === p).map((s) => s.id)).map((to) => ({ project: p, to })),
    );
    expect(expectedTenantMails.length).toBeGreaterThanOrEqual(projects.length);
    const s = must(smtp, "smtp");
    await s.waitFor(1 + expectedTenantMails.length, 15_000);
    await new Promise((r) => setTimeout(r, 1_000)); // nothing more arrives
    expect(s.messages).toHaveLength(1 + expectedTenantMails.length);

    const summary = operatorMails("compute-1");
    expect(summary).toHaveLength(1);
    expect(summary[0]?.to).toEqual([OPERATOR]);
    expect(summary[0]?.subject).toContain("compute-1");
    expect(summary[0]?.subject).toContain(`${d.instances.length}/${d.instances.length} instances evacuated`);
    for (const i of d.instances) expect(summary[0]?.text).toContain(instanceLine(i));
    expect(summary[0]?.text).toContain(PRIMARY_BMC);
    expect(summary[0]?.text).toContain(`by ${SECONDARY_BMC}`);

    const tenantMails = s.messages.filter((m) => !m.to.includes(OPERATOR));
    const names = (p: string): string => c.state.projects.get(p)?.name ?? p;
    const actual = tenantMails.map((m) => {
      expect(m.to).toHaveLength(1);
      const project = projects.find((p) => m.subject.includes(names(p)));
      return { project: project ?? `? ${m.subject}`, to: m.to[0] ?? "" };
    });
    const key = (x: { project: string; to: string }): string => `${x.project} ${x.to}`;
    expect(actual.map(key).sort()).toEqual(expectedTenantMails.map(key).sort());
    for (const m of tenantMails) {
      const project = projects.find((p) => m.subject.includes(names(p)));
      // Each mail tells of its own project's instances, and only of those.
      for (const server of compute1Servers) {
        if (server.projectId === project) expect(m.text, m.subject).toContain(server.name);
        else expect(m.text, m.subject).not.toContain(server.name);
      }
    }
    // Delivered in the background after the recovery ended: every message sent, once.
    const delivered = await detail(d.id);
    expect(delivered.notifications.filter((n) => n.channel !== "planner" && n.state !== "sent")).toEqual([]);
    expect(delivered.delivery).toMatchObject({ state: "delivered", sent: 1 + expectedTenantMails.length });

    // No secret reached a log line.
    const text = logs.join("\n");
    expect(text).not.toContain(BMC_PASSWORD);
    expect(text).not.toContain(c.admin.password);
  }, 90_000);

  it('an Alertmanager silence on host="compute-2" keeps that dead host from being recovered', async () => {
    const am = must(alertmanager, "alertmanager");
    const lb = must(app, "lifeboat");
    // compute-2 died with compute-1: its ComputeNodeDown fires, silenced, and is never posted.
    const suppressed: GettableAlert = await waitUntil("compute-2's ComputeNodeDown suppressed in Alertmanager", async () => {
      const [a] = await am.alerts({ alertname: "ComputeNodeDown", host: "compute-2" });
      return a?.status.state === "suppressed" ? a : undefined;
    });
    expect(suppressed.status.silencedBy).toEqual([silenceId]);
    // compute-1's alert went out within group_wait long ago; compute-2's never did.
    expect(await lb.store.listEvents({ host: "compute-2" })).toEqual([]);
    expect(await latestRecovery("compute-2")).toBeUndefined();

    // Posted by hand (as if the silence were ignored upstream): lifeboat's own gate stops it.
    const payload = alertPayload({
      host: "compute-2",
      startsAt: suppressed.startsAt,
      fingerprint: suppressed.fingerprint,
      extraLabels: suppressed.labels,
    });
    expect((await postAlert(lb.url, payload)).status).toBe(202);
    const d = await recoveryIn("compute-2", ["blocked", "fencing", "isolating", "evacuating", "notifying", "completed", "partial", "failed"], 20_000);
    expect(d.state, d.reason).toBe("blocked");
    const silences = d.decisions.filter((x) => x.gate === "silences");
    expect(silences.map((x) => x.result)).toEqual(["block"]);
    expect(silences[0]?.reason).toContain("compute-2 is silenced in Alertmanager");
    expect(silences[0]?.reason).toContain(silenceId);
    // The host is dead and fenceable: the evidence passes, the silence holds it. A second
    // failure within the window past max_recoveries 1 is a storm, whatever else holds it:
    // the storm guard holds it too.
    const verdict = (gate: string): string | undefined => d.decisions.find((x) => x.gate === gate)?.result;
    expect([verdict("nova-service"), verdict("bmc"), verdict("capacity")]).toEqual(["pass", "pass", "pass"]);
    expect(d.decisions.filter((x) => x.result !== "pass").map((x) => x.gate)).toEqual(["silences", "storm"]);
    expect((await lb.metrics.stormGuardTripped.get()).values.map((v) => v.value)).toEqual([1]);

    // It stays blocked across re-checks, and nothing is done to compute-2.
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await lb.store.getRecovery(d.id))?.state).toBe("blocked");
    expect(await bmc("compute-2").power()).toBe("on");
    expect(await bmc("compute-2").commands()).toEqual([]);
    const c = must(cloud, "cloud");
    c.settle();
    expect(c.state.hosts.get("compute-2")).toMatchObject({ forcedDown: false, disabled: false });
    const service = c.state.hosts.get("compute-2")?.serviceUuid ?? "?";
    expect(c.requests.filter((q) => q.method === "PUT" && q.path.includes(service))).toEqual([]);
    const onCompute2 = [...c.state.servers.values()].filter((s) => s.host === "compute-2");
    expect(onCompute2.length).toBeGreaterThan(0);
    expect(onCompute2.filter((s) => s.taskState !== null)).toEqual([]);
    // Operators are told once why it waits.
    const mails = await waitUntil("the blocked mail for compute-2", () => (operatorMails("compute-2").length > 0 ? operatorMails("compute-2") : undefined));
    expect(mails).toHaveLength(1);
    expect(mails[0]?.text).toContain("silences");
    // An approval does not lift a silence: the mail says what does, and asks for no approval.
    expect(mails[0]?.subject).not.toContain("needs approval");
    expect(mails[0]?.text).toContain(`What lifts it: the end of silence ${silenceId}`);
    expect(mails[0]?.text).toContain(`amtool silence expire ${silenceId}`);
  }, 60_000);

  it("a third dead host past the storm guard's max_recoveries is held blocked, nothing fenced", async () => {
    await must(world, "world").die("compute-3");
    const d = await recoveryIn("compute-3", ["blocked", "fencing", "isolating", "evacuating", "notifying", "completed", "partial", "failed", "aborted"], 40_000);
    expect(d.state, d.reason).toBe("blocked");
    expect(d.trigger).toBe("alert");
    expect(d.decisions.filter((x) => x.result !== "pass").map((x) => [x.gate, x.result])).toEqual([["storm", "block"]]);
    expect(d.decisions.find((x) => x.gate === "storm")?.reason).toContain("max_recoveries 1");
    expect((await must(app, "lifeboat").metrics.stormGuardTripped.get()).values.map((v) => v.value)).toEqual([1]);
    expect((await must(app, "lifeboat").metrics.stormGuardTrips.get()).values.map((v) => v.value)).toEqual([1]);

    await new Promise((r) => setTimeout(r, 2_000));
    expect((await must(app, "lifeboat").store.getRecovery(d.id))?.state).toBe("blocked");
    expect(await bmc("compute-3").power()).toBe("on");
    expect(await bmc("compute-3").commands()).toEqual([]);
    // The spare was never touched either.
    expect(await bmc("compute-4").commands()).toEqual([]);
    const c = must(cloud, "cloud");
    c.settle();
    expect(c.state.hosts.get("compute-3")).toMatchObject({ forcedDown: false, disabled: false });

    // Prometheus sees the trip, and the shipped lifeboat rules fire on lifeboat's own metrics.
    const prom = must(prometheus, "prometheus");
    await waitUntil("lifeboat_storm_guard_tripped == 1 in Prometheus", async () => (await prom.query('lifeboat_storm_guard_tripped{job="lifeboat"} == 1')).length === 1, {
      timeoutMs: 20_000,
    });
    const firing = await waitUntil("LifeboatStormGuardTripped and LifeboatFenceOperationsFailing firing", async () => {
      const names = (await prom.alerts()).filter((a) => a.state === "firing").map((a) => a.labels.alertname ?? "");
      return names.includes("LifeboatStormGuardTripped") && names.includes("LifeboatFenceOperationsFailing") ? names : undefined;
    }, { timeoutMs: 20_000 });
    expect(firing).not.toContain("LifeboatRecoveryFailed");
    expect(firing).not.toContain("LifeboatDown");
  }, 60_000);

  it("sent exactly the expected mails over the whole run: summary and tenant mails for compute-1, one blocked mail each for compute-2 and compute-3, one storm mail", async () => {
    const s = must(smtp, "smtp");
    await waitUntil("the storm and blocked mails for compute-3", () => operatorMails("compute-3").length > 0 && s.messages.some((m) => /storm/i.test(m.subject)));
    await new Promise((r) => setTimeout(r, 1_500)); // nothing more arrives
    const toOperators = s.messages.filter((m) => m.to.includes(OPERATOR));
    const tenants = s.messages.filter((m) => !m.to.includes(OPERATOR));
    expect(toOperators.map((m) => m.to)).toEqual(toOperators.map(() => [OPERATOR]));
    const storm = toOperators.filter((m) => /storm/i.test(m.subject));
    expect(storm).toHaveLength(1);
    // The guard tripped on compute-2; compute-3 joined the storm later, without a second mail.
    expect(storm[0]?.text).toContain("compute-2");
    expect(subjects(operatorMails("compute-1"))).toEqual([expect.any(String)]);
    expect(subjects(operatorMails("compute-2"))).toEqual([expect.any(String)]);
    expect(subjects(operatorMails("compute-3").filter((m) => !storm.includes(m)))).toEqual([expect.any(String)]);
    expect(new Set(toOperators.map((m) => String(m.headers["message-id"] ?? m.subject))).size).toBe(4);
    // The tenant mails are compute-1's only (checked in detail above): blocked hosts' tenants are not told.
    const compute1Mails = (await detail((await latestRecovery("compute-1"))?.id ?? "")).notifications.filter((n) => n.kind === "tenant");
    expect(tenants.map((m) => m.to[0]).sort()).toEqual(compute1Mails.map((n) => n.recipient).sort());
    for (const host of ["compute-2", "compute-3"] as const) {
      const blocked = await detail((await latestRecovery(host))?.id ?? "");
      expect(blocked.notifications.filter((n) => n.kind === "tenant")).toEqual([]);
    }
  }, 30_000);

  it("every Grafana panel's query returns data from Prometheus, which scraped lifeboat during the recovery", async () => {
    const prom = must(prometheus, "prometheus");
    // lifeboat was scraped while compute-1's recovery was under way, stage by stage.
    for (const state of ["validating", "fencing", "evacuating"]) {
      const [seen] = await prom.query(`max_over_time(lifeboat_recoveries_in_progress{job="lifeboat", state="${state}"}[10m])`);
      expect(seen?.value, state).toBeGreaterThanOrEqual(1);
    }
    await waitUntil("the end of compute-1's recovery in Prometheus", async () => {
      const [done] = await prom.query('lifeboat_recoveries_total{job="lifeboat", outcome="completed"}');
      return done?.value === 1;
    }, { timeoutMs: 20_000 });
    const [evacuated] = await prom.query('lifeboat_instances_evacuated_total{job="lifeboat", result="evacuated"}');
    expect(evacuated?.value).toBe(compute1Servers.length);

    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: DashboardPanel[] };
    const targets = dashboard.panels
      .flatMap((p) => [p, ...(p.panels ?? [])])
      .flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ref: t.refId ?? "", expr: t.expr ?? "" })));
    expect(targets.length).toBeGreaterThan(20);
    const empty: string[] = [];
    const noNumber: string[] = [];
    const answers = new Map<string, { metric: Record<string, string>; value: number }[]>();
    for (const t of targets) {
      const expr = substituteGrafanaVariables(t.expr, GRAFANA_VARS);
      const samples = await prom.query(expr);
      answers.set(`${t.panel} ${t.ref}`, samples);
      if (samples.length === 0) empty.push(`${t.panel} ${t.ref}: ${expr}`);
      else if (samples.every((x) => Number.isNaN(x.value))) noNumber.push(`${t.panel} ${t.ref}: ${expr}`);
    }
    expect(empty).toEqual([]);
    // A histogram quantile of nothing observed is NaN: every panel shows at least one number.
    expect(noNumber).toEqual([]);

    // What the panels show matches what happened.
    const value = (panel: string, labels: Record<string, string> = {}, ref = "A"): number | undefined =>
      answers.get(`${panel} ${ref}`)?.find((x) => Object.entries(labels).every(([k, v]) => x.metric[k] === v))?.value;
    expect(value("Storm guard")).toBe(1);
    expect(value("In flight")).toBe(2); // compute-2 and compute-3, blocked
    expect(value("Recoveries in flight, by state", { state: "blocked" })).toBe(2);
    expect(Math.round(value("Outcomes over the time range", { outcome: "completed" }) ?? NaN)).toBe(1);
    expect(Math.round(value("Outcomes over the time range", { outcome: "failed" }) ?? NaN)).toBe(0);
    expect(Math.round(value("Instances over the time range, by result", { result: "evacuated" }) ?? NaN)).toBe(compute1Servers.length);
    expect(Math.round(value("Storm guard trips") ?? NaN)).toBe(1);
    expect(value("Time to recover over the time range, by outcome", { outcome: "completed" })).toBeGreaterThan(0);
    for (const milestone of ["validated", "fenced", "isolated", "instance_active", "done"]) {
      expect(value("Detection to milestone, p90 over the time range", { milestone }), milestone).toBeGreaterThan(0);
    }
    for (const stage of ["pending", "validating", "fencing", "isolating", "evacuating", "notifying"]) {
      expect(value("Time in each stage, p90 over the time range", { stage }), stage).toBeGreaterThan(0);
    }
    expect(value("Fence operation time, p90 over the time range", { driver: "ipmi", operation: "off" })).toBeGreaterThan(0);
    expect(value("Version")).toBe(1);
    expect(value("Leader")).toBe(1);
  }, 30_000);
});
