import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { gatesSchema } from "../src/gates/config.js";
import { startSandbox, type Sandbox } from "../packages/sandbox/src/environment.js";
import { durationSeconds, startPrometheus } from "../test/support/prometheus.js";
import { startAlertmanager } from "../test/support/alertmanager.js";
import { waitUntil } from "../test/support/daemon.js";
import { startIpmiSim, type IpmiSim, type IpmiSimEvent } from "../test/support/ipmi-sim.js";
import { startFakeComputeNodes } from "../test/support/targets.js";
import { cpuWindow, type CpuWindow } from "./lib/cpu.js";
import { finishedRecovery, postWebhook, ROOT, startLifeboat, WEBHOOK_TOKEN } from "./lib/lifeboat.js";
import { payloadMaker } from "./lib/payloads.js";
import { startRelay } from "./lib/relay.js";
import { distribution, round, type Distribution } from "./lib/stats.js";
import type { Transition } from "../src/domain/model.js";
import { lifeboatConfigData, tempDir } from "../test/kit/config.js";
import { novaSaysDown } from "../test/kit/site.js";

/**
 * Benchmark 5: the detection timeline, node death → webhook → fence command → fence
 * confirmed → first evacuate, for both detection profiles, on the real parts: Prometheus
 * evaluating the shipped rule file, Alertmanager routing with the shipped example, an
 * ipmi_sim BMC fenced with ipmitool, `lifeboat serve` with every shipped gate, and the
 * simulated cloud, whose Nova stops hearing a dead host's heartbeat and says "down" after
 * service_down_time. The fake openstack-exporter asks that Nova at every scrape.
 *
 * Every duration of the set-up is divided by `scale` alike (scrape and evaluation
 * intervals, rule `for:`, Alertmanager group_wait, Nova's report_interval and
 * service_down_time, lifeboat's grace, gate intervals, re-check interval, storm window).
 * What cannot be scaled is the work itself: lifeboat's processing, the ipmitool runs, the
 * Nova API calls. So the production equivalent of node death → webhook (all timers) is
 * `scale` times its measured length; of webhook → fence command, the timers in it (the
 * recovery's time in `pending`, lifeboat's grace, and in `blocked`, awaiting a re-check, as
 * lifeboat's journal records them) `scale` times and the rest, lifeboat's work, once; the
 * device and API segments are what they measured.
 *
 * One wait is not scaled alike: the nova-service gate's stale_seconds. lifeboat measures the
 * heartbeat's age from two stamps with whole seconds (the Date of Nova's answer, truncated;
 * an updated_at read as up to a second later), so it counts up to 2 s less age than has
 * passed, at every scale. Against the production 30 s that is noise; against 30 s ÷ 10 it
 * would be most of the threshold. The runs keep the production threshold's worst case
 * instead: a heartbeat is judged dead once (stale_seconds + 2 s) ÷ scale of real time has
 * passed, i.e. stale_seconds (30 + 2) ÷ 10 − 2 = 1.2 s (scaledStaleSeconds).
 *
 * Scenario 3 measures webhook → fence command when Nova already reports the host down, with
 * the shipped gate settings unscaled (one nova-service check) and grace 0: the issue's first
 * target. Its excess over the configured waits (none with one check) is lifeboat's own work.
 */
export interface DetectionOptions {
  /** Hosts killed per profile, one after another. */
  runs: number;
  /** Recoveries of scenario 3. */
  gateRuns: number;
  /** Every duration divided by this. */
  scale: number;
  log?: (line: string) => void;
}

export type ProfileName = "conservative" | "fast";

/** One host's timeline, Date.now() milliseconds. */
export interface DetectionRun {
  host: string;
  deathMs: number;
  /** Alertmanager's first firing ComputeNodeDown for the host reached lifeboat's webhook. */
  webhookMs: number;
  /** The BMC received the power-off command. */
  fenceCommandMs: number;
  /** The BMC answered the second consecutive "off" read. */
  bmcConfirmedMs: number;
  /** lifeboat journaled the fence as confirmed (the fence step's end). */
  fenceConfirmedMs: number;
  /** Nova received the first evacuate of one of the host's servers. */
  firstEvacuateMs: number;
  outcome: string;
  /** The recovery was blocked on its way (a gate said no at first): the fence waited for a re-check. */
  blocked: boolean;
  /** Of webhook → fence command, the time the recovery spent waiting on timers (pending: grace; blocked: re-checks), ms. */
  waitedMs: number;
}

/** Segment lengths of one run, ms. */
export interface Segments {
  detect: number;
  gate: number;
  fence: number;
  evacuate: number;
  toFence: number;
  toEvacuate: number;
}

export interface ProfileResult {
  profile: ProfileName;
  /** The production settings this profile stands for, seconds. */
  production: ProfileSettings;
  runs: (DetectionRun & { measured: Segments; productionMs: Segments })[];
  measured: Record<keyof Segments, Distribution>;
  productionMs: Record<keyof Segments, Distribution>;
  /** BMC command → second "off" answer, ms (the device's side of the fence). */
  bmcConfirmMs: Distribution;
}

export interface GateScenarioRun {
  host: string;
  /** Webhook POST sent → power-off command at the BMC. */
  webhookToFenceMs: number;
  /** Power-off command → the BMC's second consecutive "off" answer. */
  bmcConfirmMs: number;
  /** Power-off command → the fence journaled as confirmed. */
  fenceConfirmMs: number;
  outcome: string;
}

export interface GateScenarioResult {
  runs: GateScenarioRun[];
  /** Webhook POST sent → power-off command at the BMC, ms. */
  webhookToFenceMs: Distribution;
  /** The configured waits in it: the nova-service gate's (checks − 1) × interval, ms. */
  configuredWaitMs: number;
  /** lifeboat's own work: median webhook → fence command less the configured waits, ms. */
  workMs: number;
  /** BMC command → second "off" answer, ms. */
  bmcConfirmMs: Distribution;
  /** BMC command → fence journaled as confirmed, ms. */
  fenceConfirmMs: Distribution;
  outcomes: Record<string, number>;
}

export interface DetectionResult {
  options: Omit<DetectionOptions, "log">;
  profiles: ProfileResult[];
  gates: GateScenarioResult;
  cpu: CpuWindow;
}

/** What one profile runs with in production, seconds (from the shipped files and defaults). */
export interface ProfileSettings {
  ruleFile: string;
  nodeScrape: number;
  nodeScrapeTimeout: number;
  evaluation: number;
  exporterScrape: number;
  exporterScrapeTimeout: number;
  forSeconds: number;
  groupWait: number;
  grace: number;
  novaReportInterval: number;
  novaServiceDownTime: number;
  recheckInterval: number;
  novaGate: { stale_seconds: number; checks: number; interval_seconds: number };
  /** The nova-service gate's stale_seconds in the scaled runs (scaledStaleSeconds). */
  scaledStaleSeconds: number;
}

/** The whole-second resolution of the stamps the heartbeat's age is measured from: age lifeboat may not count, s. */
const STAMP_RESOLUTION_SECONDS = 2;

/**
 * stale_seconds for a run with every duration ÷ `scale`: the same worst-case real time to a
 * "dead" verdict as production's, scaled — (stale + resolution) ÷ scale — less the
 * resolution, which does not scale.
 */
export function scaledStaleSeconds(staleSeconds: number, scale: number): number {
  return Math.max(0.1, round((staleSeconds + STAMP_RESOLUTION_SECONDS) / scale - STAMP_RESOLUTION_SECONDS, 3));
}

/** The nova-service confirmation lifeboat ships (src/gates/config.ts). */
function shippedNovaGate(): { stale_seconds: number; checks: number; interval_seconds: number } {
  const c = gatesSchema.parse({}).confirmations.find((x) => x.driver === "nova-service");
  if (c?.driver !== "nova-service") throw new Error("the shipped gates have no nova-service confirmation");
  return { stale_seconds: c.stale_seconds, checks: c.checks, interval_seconds: c.interval_seconds };
}

/** Shipped defaults of lifeboat (src/config/schema.ts, src/gates/config.ts) and of Nova. */
const LIFEBOAT = { graceSeconds: 30, recheckIntervalSeconds: 15, novaGate: shippedNovaGate(), stormWindowSeconds: 600 };
const NOVA = { reportIntervalSeconds: 10, serviceDownTimeSeconds: 60 };
/** The README's advice for the fast profile: no grace of lifeboat's own on top of `for: 30s`. */
const FAST_GRACE_SECONDS = 0;
const BMC_USER = { name: "lifeboat", password: "Bench-Fence-pw1" };

/** The shipped examples the set-up follows. */
const PROMETHEUS_EXAMPLE = join(ROOT, "config/prometheus.example.yml");
const ALERTMANAGER_EXAMPLE = join(ROOT, "config/alertmanager.example.yml");

function readYaml<T>(file: string): T {
  return parse(readFileSync(file, "utf8")) as T;
}

interface PrometheusExample {
  global: { scrape_interval: string; evaluation_interval: string };
  scrape_configs: { job_name: string; scrape_interval?: string; scrape_timeout?: string }[];
}
interface AlertmanagerExample {
  route: { routes?: { receiver?: string; matchers?: string[]; group_wait?: string }[] };
}
interface RuleFileDoc {
  groups: { interval?: string; rules: { alert?: string; for?: string }[] }[];
}

export function profileSettings(profile: ProfileName, scale: number): ProfileSettings {
  const ruleFile = profile === "fast" ? "rules/compute-node-down-fast.rules.yml" : "rules/compute-node-down.rules.yml";
  const prom = readYaml<PrometheusExample>(PROMETHEUS_EXAMPLE);
  const job = (name: string) => prom.scrape_configs.find((j) => j.job_name === name);
  const rules = readYaml<RuleFileDoc>(join(ROOT, ruleFile));
  const group = rules.groups.find((g) => g.rules.some((r) => r.alert === "ComputeNodeDown"));
  const trigger = group?.rules.find((r) => r.alert === "ComputeNodeDown");
  const route = readYaml<AlertmanagerExample>(ALERTMANAGER_EXAMPLE).route.routes?.find(
    (r) => r.receiver === "lifeboat" && (r.matchers ?? []).includes(profile === "fast" ? 'detection="fast"' : 'detection!="fast"'),
  );
  if (!trigger?.for || !route?.group_wait) throw new Error(`the ${profile} profile's rule or route is missing`);
  const scrape = prom.global.scrape_interval;
  return {
    ruleFile,
    nodeScrape: durationSeconds(job("node")?.scrape_interval ?? scrape),
    nodeScrapeTimeout: durationSeconds(job("node")?.scrape_timeout ?? "10s"),
    evaluation: durationSeconds(group?.interval ?? prom.global.evaluation_interval),
    exporterScrape: durationSeconds(job("openstack-exporter")?.scrape_interval ?? scrape),
    exporterScrapeTimeout: durationSeconds(job("openstack-exporter")?.scrape_timeout ?? "10s"),
    forSeconds: durationSeconds(trigger.for),
    groupWait: durationSeconds(route.group_wait),
    grace: profile === "fast" ? FAST_GRACE_SECONDS : LIFEBOAT.graceSeconds,
    novaReportInterval: NOVA.reportIntervalSeconds,
    novaServiceDownTime: NOVA.serviceDownTimeSeconds,
    recheckInterval: LIFEBOAT.recheckIntervalSeconds,
    novaGate: LIFEBOAT.novaGate,
    scaledStaleSeconds: scaledStaleSeconds(LIFEBOAT.novaGate.stale_seconds, scale),
  };
}

const ms = (seconds: number): string => `${Math.max(1, Math.round(seconds * 1000))}ms`;

/** The first "off" answer of two in a row after `from` (the fence command's event index). */
function secondOffRead(events: IpmiSimEvent[], from: number): IpmiSimEvent | undefined {
  let streak = 0;
  for (const e of events.slice(from)) {
    if (e.op !== "get") continue;
    streak = e.value === "0" ? streak + 1 : 0;
    if (streak === 2) return e;
  }
  return undefined;
}

/** The host's nova-compute as the simulated Nova reports it now, for the fake openstack-exporter. */
function novaView(site: Sandbox, host: string): { state: 0 | 1; adminState: "enabled" | "disabled"; disabledReason: string } | undefined {
  site.cloud.settle();
  const s = site.cloud.state.services().find((x) => x.binary === "nova-compute" && x.host === host);
  return s ? { state: s.state === "up" ? 1 : 0, adminState: s.status, disabledReason: s.disabledReason ?? "" } : undefined;
}

/** When Nova received the first evacuate of a server of `host` at or after `sinceMs`. */
function firstEvacuateAt(site: Sandbox, host: string, sinceMs: number): number | undefined {
  // Servers whose evacuation left this host: Nova's migration records say so.
  const moved = new Set(site.cloud.state.migrations.filter((m) => m.sourceCompute === host).map((m) => m.instanceUuid));
  for (const q of site.cloud.requests) {
    if (q.service !== "compute" || q.method !== "POST" || Date.parse(q.at) < sinceMs) continue;
    const id = /^\/v2\.1\/servers\/([^/]+)\/action$/.exec(q.path)?.[1];
    if (id !== undefined && moved.has(id) && typeof q.body === "object" && q.body !== null && "evacuate" in q.body) return Date.parse(q.at);
  }
  return undefined;
}

/** Devices for the victims: ipmitool against the one ipmi_sim BMC (runs never overlap). */
function ipmiDevice(bmc: IpmiSim): Record<string, unknown> {
  return {
    driver: "ipmi",
    name: `ipmi_sim ${bmc.port}`,
    address: bmc.host,
    port: bmc.port,
    username: BMC_USER.name,
    password: BMC_USER.password,
    cipher_suite: 3, // ipmi_sim does not do suite 17
    ipmitool_timeout_seconds: 1,
    ipmitool_retries: 1,
  };
}

function withVictimsOnIpmi(config: Record<string, unknown>, victims: string[], bmc: IpmiSim): Record<string, unknown> {
  const fencing = config.fencing as { hosts: Record<string, unknown> };
  for (const h of victims) fencing.hosts[h] = ipmiDevice(bmc);
  return config;
}

/** Time a recovery spent in `pending` (grace) and `blocked` (awaiting a re-check) before it fenced, from its journal, ms. */
function timerWaitMs(timeline: Transition[]): number {
  const steps = [...timeline].sort((a, b) => a.seq - b.seq);
  let total = 0;
  for (const [i, t] of steps.entries()) {
    const next = steps[i + 1];
    if (!next || t.to === "fencing") break;
    if (t.to === "pending" || t.to === "blocked") total += Date.parse(next.at) - Date.parse(t.at);
  }
  return total;
}

function segmentsOf(r: DetectionRun): Segments {
  return {
    detect: r.webhookMs - r.deathMs,
    gate: r.fenceCommandMs - r.webhookMs,
    fence: r.fenceConfirmedMs - r.fenceCommandMs,
    evacuate: r.firstEvacuateMs - r.fenceConfirmedMs,
    toFence: r.fenceCommandMs - r.deathMs,
    toEvacuate: r.firstEvacuateMs - r.deathMs,
  };
}

/** Production equivalent of a scaled run: waits × scale; lifeboat's work and the device and API segments once. */
export function productionSegments(m: Segments, scale: number, waitedMs: number): Segments {
  const detect = m.detect * scale;
  const waited = Math.min(m.gate, waitedMs);
  const gate = waited * scale + (m.gate - waited);
  return { detect, gate, fence: m.fence, evacuate: m.evacuate, toFence: detect + gate, toEvacuate: detect + gate + m.fence + m.evacuate };
}

function distributions(rows: Segments[]): Record<keyof Segments, Distribution> {
  const keys: (keyof Segments)[] = ["detect", "gate", "fence", "evacuate", "toFence", "toEvacuate"];
  return Object.fromEntries(keys.map((k) => [k, distribution(rows.map((r) => r[k]))])) as Record<keyof Segments, Distribution>;
}

async function runProfile(profile: ProfileName, opts: DetectionOptions): Promise<Omit<ProfileResult, "productionMs" | "runs"> & { raw: DetectionRun[] }> {
  const log = opts.log ?? (() => undefined);
  const k = opts.scale;
  const p = profileSettings(profile, k);
  const site = await startSandbox({
    cloud: {
      generate: { hosts: opts.runs + 3, serversPerHost: 2 },
      serviceDownTimeSeconds: p.novaServiceDownTime / k,
      reportIntervalSeconds: p.novaReportInterval / k,
      evacuationDurationMs: 1000,
    },
    powerDelayMs: 100,
  });
  const cleanup: (() => Promise<unknown>)[] = [() => site.close()];
  try {
    // Four racks: a victim never takes half of one down, so no failure-domain alert.
    const racks = Object.fromEntries(site.hosts.map((h, i) => [h, `r${i % 4}`]));
    const nodes = await startFakeComputeNodes(site.hosts, { racks, novaView: (h) => novaView(site, h) });
    cleanup.push(() => nodes.close());
    const bmc = await startIpmiSim({ users: [BMC_USER], power: "on" });
    cleanup.push(() => bmc.stop());
    const relay = await startRelay();
    cleanup.push(() => relay.close());
    const am = await startAlertmanager({ webhookUrl: relay.url, bearerToken: WEBHOOK_TOKEN, groupWait: ms(p.groupWait / k), groupInterval: ms(60 / k), repeatInterval: "1h" });
    cleanup.push(() => am.stop());
    const scrapeConfigs = nodes.scrapeConfigs().map((job) =>
      job.job_name === "node"
        ? { ...job, scrape_interval: ms(p.nodeScrape / k), scrape_timeout: ms(p.nodeScrapeTimeout / k) }
        : { ...job, scrape_interval: ms(p.exporterScrape / k), scrape_timeout: ms(p.exporterScrapeTimeout / k) },
    );
    const prometheus = await startPrometheus({
      scrapeConfigs,
      ruleFiles: [join(ROOT, p.ruleFile)],
      timeScale: k,
      alertmanagerUrl: am.url,
      scrapeInterval: ms(p.nodeScrape / k),
      evaluationInterval: ms(durationSeconds(readYaml<PrometheusExample>(PROMETHEUS_EXAMPLE).global.evaluation_interval) / k),
    });
    cleanup.push(() => prometheus.stop());
    const victims = site.hosts.slice(0, opts.runs);
    const dir = tempDir();
    const lb = await startLifeboat(
      `detection-${profile}`,
      withVictimsOnIpmi(
        lifeboatConfigData(
          {
            recovery: { grace_seconds: p.grace / k, recheck_interval_seconds: p.recheckInterval / k },
            gates: {
              confirmations: [
                { driver: "nova-service", stale_seconds: p.scaledStaleSeconds, checks: p.novaGate.checks, interval_seconds: p.novaGate.interval_seconds / k },
                { driver: "bmc" },
              ],
              storm: { max_recoveries: opts.runs + 1, max_percent: 100, window_seconds: LIFEBOAT.stormWindowSeconds / k, cooldown_seconds: LIFEBOAT.stormWindowSeconds / k },
            },
            alertmanager: { url: am.url },
          },
          { site, dir, pace: "paced", logLevel: "info" },
        ),
        victims,
        bmc,
      ),
      { dir },
    );
    cleanup.push(() => lb.stop());
    relay.target = lb.url;
    // A Prometheus in production has long scraped both jobs: no victim dies before the
    // exporter's first scrape, which the trigger rule of either profile needs (the exporter
    // is scraped every minute ÷ scale; a death before it would wait for it, at most a scrape
    // interval, and count that as detection).
    await waitUntil(
      "every node and the exporter's view of every host scraped",
      async () =>
        (await prometheus.query('up{job="node"} == 1')).length === site.hosts.length &&
        (await prometheus.query('openstack_nova_agent_state{service="nova-compute"}')).length === site.hosts.length,
      { timeoutMs: 60_000 },
    );

    const raw: DetectionRun[] = [];
    for (const host of victims) {
      await bmc.setPower("on");
      const seen = (await bmc.events()).length;
      const deathMs = Date.now();
      nodes.hang(host);
      site.failHost(host);
      const within = 300_000 / k;
      const webhook = await waitUntil(
        `ComputeNodeDown for ${host} at lifeboat's webhook`,
        () => relay.notifications.find((n) => n.atMs >= deathMs && n.alerts.some((a) => a.status === "firing" && a.labels.alertname === "ComputeNodeDown" && a.labels.host === host)),
        { timeoutMs: within, intervalMs: 10 },
      );
      if (webhook.status !== 202) throw new Error(`lifeboat answered ${webhook.status} to ${host}'s alert\n${lb.output().slice(-3000)}`);
      const command = await waitUntil(
        `the power-off command at ${host}'s BMC`,
        async () => (await bmc.events()).slice(seen).find((e) => e.op === "set" && e.parm === "power" && e.value === "0"),
        { timeoutMs: within, intervalMs: 10 },
      ).catch(async (err: unknown) => {
        const d = await finishedRecovery(lb, host, 1).catch(() => null);
        throw new Error(`${(err as Error).message}; recovery: ${d ? `${d.state} ${d.reason}` : "not finished"}\n${lb.output().slice(-3000)}`);
      });
      const detail = await finishedRecovery(lb, host, within);
      const events = await bmc.events();
      const fence = detail.steps.find((s) => s.key === "fence");
      const confirmedByBmc = secondOffRead(events, events.findIndex((e, j) => j >= seen && e.op === "set" && e.value === "0"));
      const evacuate = firstEvacuateAt(site, host, deathMs);
      if (!fence?.finishedAt || !confirmedByBmc || evacuate === undefined) {
        throw new Error(`${host}: incomplete timeline (fence ${fence?.finishedAt ?? "?"}, BMC confirmation ${confirmedByBmc ? "seen" : "missing"}, evacuate ${evacuate ?? "missing"}); recovery ${detail.state}: ${detail.reason}`);
      }
      const run: DetectionRun = {
        host,
        deathMs,
        webhookMs: webhook.atMs,
        fenceCommandMs: command.atMs,
        bmcConfirmedMs: confirmedByBmc.atMs,
        fenceConfirmedMs: Date.parse(fence.finishedAt),
        firstEvacuateMs: evacuate,
        outcome: detail.state,
        blocked: detail.timeline.some((t) => t.to === "blocked"),
        waitedMs: timerWaitMs(detail.timeline),
      };
      raw.push(run);
      const s = segmentsOf(run);
      const prod = productionSegments(s, k, run.waitedMs);
      log(
        `detection ${profile}: ${host} death → webhook ${s.detect} ms, → fence command ${s.gate} ms, → confirmed ${s.fence} ms, → first evacuate ${s.evacuate} ms (${detail.state}${run.blocked ? ", blocked on the way" : ""}); production equivalent death → fence command ${(prod.toFence / 1000).toFixed(1)} s`,
      );
      // The node is repaired; Nova keeps it disabled (lifeboat's hold), so it cannot trigger again.
      await nodes.start(host);
    }
    const segments = raw.map(segmentsOf);
    return {
      profile,
      production: p,
      raw,
      measured: distributions(segments),
      bmcConfirmMs: distribution(raw.map((r) => r.bmcConfirmedMs - r.fenceCommandMs)),
    };
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  }
}

/** Scenario 3: Nova already says down; the shipped gates, unscaled, with grace 0. */
async function runGateScenario(opts: DetectionOptions): Promise<GateScenarioResult> {
  const log = opts.log ?? (() => undefined);
  const k = opts.scale;
  const site = await startSandbox({
    cloud: { generate: { hosts: opts.gateRuns + 3, serversPerHost: 2 }, serviceDownTimeSeconds: NOVA.serviceDownTimeSeconds / k, reportIntervalSeconds: NOVA.reportIntervalSeconds / k, evacuationDurationMs: 500 },
    powerDelayMs: 100,
  });
  const cleanup: (() => Promise<unknown>)[] = [() => site.close()];
  try {
    const bmc = await startIpmiSim({ users: [BMC_USER], power: "on" });
    cleanup.push(() => bmc.stop());
    const relay = await startRelay();
    cleanup.push(() => relay.close());
    // Only asked for silences (the silences gate): nothing is routed through it here.
    const am = await startAlertmanager({ webhookUrl: relay.url, bearerToken: WEBHOOK_TOKEN });
    cleanup.push(() => am.stop());
    const victims = site.hosts.slice(0, opts.gateRuns);
    const gate = LIFEBOAT.novaGate;
    const dir = tempDir();
    const lb = await startLifeboat(
      "detection-gates",
      withVictimsOnIpmi(
        lifeboatConfigData(
          {
            recovery: { grace_seconds: 0 },
            gates: {
              // Nova's clock is scaled: so is the heartbeat age it is judged by; the checks are not.
              confirmations: [{ driver: "nova-service", stale_seconds: scaledStaleSeconds(gate.stale_seconds, k), checks: gate.checks, interval_seconds: gate.interval_seconds }, { driver: "bmc" }],
              storm: { max_recoveries: opts.gateRuns + 1, max_percent: 100 },
            },
            alertmanager: { url: am.url },
          },
          { site, dir, pace: "paced", logLevel: "info" },
        ),
        victims,
        bmc,
      ),
      { dir },
    );
    cleanup.push(() => lb.stop());
    for (const h of victims) site.failHost(h);
    await waitUntil("the failed hosts down in Nova, heartbeats stale", () => victims.every((h) => novaSaysDown(site, h)), { timeoutMs: 60_000 });

    const runs: GateScenarioRun[] = [];
    const outcomes: Record<string, number> = {};
    for (const [i, host] of victims.entries()) {
      await bmc.setPower("on");
      const seen = (await bmc.events()).length;
      const body = payloadMaker("distinct", [host])(i);
      const sent = Date.now();
      const status = await postWebhook(lb.url, body);
      if (status !== 202) throw new Error(`webhook for ${host} answered ${status}`);
      const command = await waitUntil(`the power-off command at ${host}'s BMC`, async () => (await bmc.events()).slice(seen).find((e) => e.op === "set" && e.value === "0"), {
        timeoutMs: 60_000,
        intervalMs: 5,
      });
      const detail = await finishedRecovery(lb, host, 60_000);
      outcomes[detail.state] = (outcomes[detail.state] ?? 0) + 1;
      const events = await bmc.events();
      const confirmed = secondOffRead(events, events.findIndex((e, j) => j >= seen && e.op === "set" && e.value === "0"));
      const fence = detail.steps.find((s) => s.key === "fence");
      if (!confirmed || !fence?.finishedAt) throw new Error(`${host}: no confirmed fence (recovery ${detail.state}: ${detail.reason})`);
      const run = { host, webhookToFenceMs: command.atMs - sent, bmcConfirmMs: confirmed.atMs - command.atMs, fenceConfirmMs: Date.parse(fence.finishedAt) - command.atMs, outcome: detail.state };
      runs.push(run);
      log(`detection gates: ${host} webhook → fence command ${run.webhookToFenceMs} ms, command → confirmed ${run.fenceConfirmMs} ms (${detail.state})`);
    }
    const configuredWaitMs = (gate.checks - 1) * gate.interval_seconds * 1000;
    const webhookToFenceMs = distribution(runs.map((x) => x.webhookToFenceMs));
    return {
      runs,
      webhookToFenceMs,
      configuredWaitMs,
      workMs: Math.max(0, webhookToFenceMs.p50 - configuredWaitMs),
      bmcConfirmMs: distribution(runs.map((x) => x.bmcConfirmMs)),
      fenceConfirmMs: distribution(runs.map((x) => x.fenceConfirmMs)),
      outcomes,
    };
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  }
}

export async function benchDetection(opts: DetectionOptions): Promise<DetectionResult> {
  // Every process of the set-up (lifeboat, Prometheus, Alertmanager, ipmi_sim) counts as
  // other load here: the window tells how busy the machine was, not who was.
  const window = cpuWindow({});
  const gates = await runGateScenario(opts);
  const profiles: ProfileResult[] = [];
  for (const name of ["conservative", "fast"] as const) {
    const r = await runProfile(name, opts);
    const runs = r.raw.map((run) => {
      const measured = segmentsOf(run);
      return { ...run, measured, productionMs: productionSegments(measured, opts.scale, run.waitedMs) };
    });
    profiles.push({
      profile: r.profile,
      production: r.production,
      runs,
      measured: r.measured,
      productionMs: distributions(runs.map((x) => x.productionMs)),
      bmcConfirmMs: r.bmcConfirmMs,
    });
  }
  const { log: _log, ...options } = opts;
  return { options, profiles, gates, cpu: window.end() };
}
