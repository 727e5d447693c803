import type { DetectionResult, ProfileResult, Segments } from "../detection.js";
import type { ConsoleResult } from "../console.js";
import type { EvacuationResult } from "../evacuation.js";
import type { FenceLatencyResult } from "../fence-latency.js";
import type { FloodCase, FloodResult } from "../flood.js";
import type { IntakeCase, IntakeResult } from "../intake.js";
import type { MemoryResult } from "../memory.js";
import type { StormResult, StormRun } from "../storm.js";
import { machineLine, type Machine } from "./machine.js";
import { distribution, MB, round } from "./stats.js";

export interface BenchResults {
  generatedAt: string;
  quick: boolean;
  machine: Machine;
  /** Share of the CPUs other processes used just before each benchmark started. */
  busyBefore: Partial<Record<BenchName, number>>;
  /** When each benchmark ran, when not all in this run (`--only` keeps the others' last figures). */
  measuredAt?: Partial<Record<BenchName, string>>;
  durationSeconds?: number;
  intake?: IntakeResult;
  evacuation?: EvacuationResult;
  fenceLatency?: FenceLatencyResult;
  memory?: MemoryResult;
  /** The memory burst again without the shipped node flags: informational. */
  memoryNodeDefaults?: MemoryResult;
  detection?: DetectionResult;
  flood?: FloodResult;
  console?: ConsoleResult;
  storm?: StormResult;
}

export const BENCHES = ["intake", "evacuation", "fence", "memory", "detection", "flood", "console", "storm"] as const;
export type BenchName = (typeof BENCHES)[number];

/** The fields of BenchResults that hold each benchmark's figures. */
export const BENCH_FIELDS: Record<BenchName, (keyof BenchResults)[]> = {
  intake: ["intake"],
  evacuation: ["evacuation"],
  fence: ["fenceLatency"],
  memory: ["memory", "memoryNodeDefaults"],
  detection: ["detection"],
  flood: ["flood"],
  console: ["console"],
  storm: ["storm"],
};

export interface Target {
  id: string;
  metric: string;
  value: string;
  target: string;
  pass: boolean;
}

export interface Report extends BenchResults {
  targets: Target[];
}

const P99_LIMIT_MS = 20;
const RATIO_FLOOR = 0.5;
const EVACUATION_CEILING = 1.1;
const FENCE_LIMIT_MS = 100;
const RSS_LIMIT = 150 * MB;
/** The detection targets: webhook → fence command with Nova already saying down; fence command → confirmed on ipmi_sim; fast profile death → fence command in production. */
const GATES_LIMIT_MS = 1000;
const CONFIRM_LIMIT_MS = 500;
const FAST_LIMIT_MS = 60_000;
const FLOOD_HEALTHZ_P99_MS = 50;
/** How much later than without the flood the real host may be fenced while it is routed. */
const FLOOD_FENCE_SLACK_MS = 100;
const PAGE_LIMIT_MS = 1000;
/** The storm targets: wall time within 15 % of the budget's floor, Nova requests per instance, webhook p99 and RSS while it runs. */
const STORM_CEILING = 1.15;
const STORM_REQUESTS_PER_INSTANCE = 4;
const STORM_WEBHOOK_P99_MS = 50;
const STORM_RSS_LIMIT = 200 * MB;

function intakeCase(r: IntakeResult, server: IntakeCase["server"], mix: IntakeCase["mix"]): IntakeCase | undefined {
  return r.cases.find((c) => c.server === server && c.mix === mix);
}

/** The targets of the brief, each judged from the measurements. */
export function targetsOf(r: BenchResults): Target[] {
  const out: Target[] = [];
  if (r.intake) {
    for (const mix of ["distinct", "duplicates"] as const) {
      const lb = intakeCase(r.intake, "lifeboat", mix);
      const bare = intakeCase(r.intake, "bare-express", mix);
      if (!lb || !bare) continue;
      const ratio = lb.load.requestsPerSecond / bare.load.requestsPerSecond;
      const clean = lb.load.non2xx === 0 && lb.load.errors === 0 && lb.journal?.ok !== false;
      out.push({
        id: `intake-${mix}-throughput`,
        metric: `Webhook intake (${mix}): lifeboat req/s ÷ bare express req/s`,
        value: `${round(ratio, 2)} (${Math.round(lb.load.requestsPerSecond)} vs ${Math.round(bare.load.requestsPerSecond)} req/s)${clean ? "" : `, ${lb.load.non2xx} non-2xx, ${lb.load.errors} errors${lb.journal?.ok === false ? ", journal mismatch" : ""}`}`,
        target: `≥ ${RATIO_FLOOR}`,
        pass: ratio >= RATIO_FLOOR && clean,
      });
      out.push({
        id: `intake-${mix}-p99`,
        metric: `Webhook intake (${mix}): lifeboat p99 latency`,
        value: `${round(lb.load.latencyMs.p99, 1)} ms (p50 ${round(lb.load.latencyMs.p50, 1)} ms)`,
        target: `< ${P99_LIMIT_MS} ms`,
        pass: lb.load.latencyMs.p99 < P99_LIMIT_MS,
      });
    }
  }
  if (r.evacuation) {
    for (const run of r.evacuation.runs) {
      const complete = run.evacuated === r.evacuation.options.instances && run.evacuateCalls === r.evacuation.options.instances;
      out.push({
        id: `evacuation-c${run.concurrency}`,
        metric: `Evacuation of ${r.evacuation.options.instances} instances, concurrency ${run.concurrency}: stage wall time ÷ ⌈n/c⌉ × ${r.evacuation.options.evacuationMs / 1000} s`,
        value: `${round(run.ratio, 3)} (${round(run.stageMs / 1000, 2)} s vs ${round(run.floorMs / 1000, 1)} s)${complete ? "" : `, ${run.evacuated} evacuated, ${run.evacuateCalls} evacuate calls`}`,
        target: `≤ ${EVACUATION_CEILING}`,
        pass: run.ratio <= EVACUATION_CEILING && complete,
      });
    }
  }
  if (r.fenceLatency) {
    const d = r.fenceLatency.latencyMs;
    out.push({
      id: "fence-latency",
      metric: `Webhook received → ForceOff at the BMC (grace 0), worst of ${d.n} runs`,
      value: `${round(d.max, 1)} ms (p50 ${round(d.p50, 1)}, p90 ${round(d.p90, 1)} ms)`,
      target: `< ${FENCE_LIMIT_MS} ms`,
      pass: d.max < FENCE_LIMIT_MS,
    });
  }
  if (r.detection) out.push(...detectionTargets(r.detection));
  if (r.memory) {
    const first = r.memory.cases[0];
    if (first) {
      const idle = Math.max(...r.memory.cases.map((c) => c.idleRss));
      out.push({ id: "memory-idle", metric: "RSS of lifeboat serve, idle", value: `${round(idle / MB, 1)} MB`, target: "< 150 MB", pass: idle < RSS_LIMIT });
    }
    for (const c of r.memory.cases) {
      const all = c.accepted === r.memory.options.alerts;
      out.push({
        id: `memory-${c.mix}`,
        metric: `RSS of lifeboat serve after ${r.memory.options.alerts.toLocaleString("en")} alerts (${c.mix}), settled`,
        value: `${round(c.settledRss / MB, 1)} MB (${c.settledAfterSeconds} s after the last was routed; right then: ${round(c.afterRss / MB, 1)} MB)`,
        target: "< 150 MB",
        pass: c.settledRss < RSS_LIMIT && all,
      });
      out.push({
        id: `memory-${c.mix}-peak`,
        metric: `Peak RSS of lifeboat serve while taking ${r.memory.options.alerts.toLocaleString("en")} alerts (${c.mix})`,
        value: `${round(c.peakRss / MB, 1)} MB`,
        target: "< 150 MB",
        pass: c.peakRss < RSS_LIMIT && all,
      });
    }
  }
  if (r.console) {
    const worst = r.console.pages.reduce((a, b) => (b.latencyMs.p99 > a.latencyMs.p99 ? b : a));
    out.push({
      id: "console-page",
      metric: `Console page with ${r.console.options.recoveries.toLocaleString("en")} recoveries in the journal: slowest page's p99`,
      value: `${round(worst.latencyMs.p99, 1)} ms (${worst.page}; p50 ${round(worst.latencyMs.p50, 1)} ms)`,
      target: `< ${PAGE_LIMIT_MS} ms`,
      pass: worst.latencyMs.p99 < PAGE_LIMIT_MS,
    });
  }
  if (r.flood) out.push(...floodTargets(r.flood));
  if (r.storm) out.push(...stormTargets(r.storm));
  return out;
}

const STORM_VARIANT: Record<StormRun["variant"], string> = { sqlite: "SQLite", etcd: "etcd", "ha-failover": "HA pair on etcd, leader SIGKILLed half-way" };

function stormTargets(st: StormResult): Target[] {
  const out: Target[] = [];
  const o = st.options;
  // Each variant runs `repeat` times on a shared 2-core machine: the wall ratio and the
  // webhook p99 are judged on their medians; every run must hold the budget, evacuate each
  // instance once and stay within the request bill and the memory bound.
  for (const variant of [...new Set(st.runs.map((r) => r.variant))]) {
    const runs = st.runs.filter((r) => r.variant === variant);
    const run = runs[0]!;
    const v = STORM_VARIANT[variant];
    const n = runs.length;
    const each = (f: (r: StormRun) => string): string => (n > 1 ? ` (runs: ${runs.map(f).join(", ")})` : "");
    const allOnce = runs.every((r) => r.evacuated === r.instances && r.evacuatedOnce === r.instances);
    const onceText = allOnce ? "" : `; ${runs.map((r) => `${r.evacuated}/${r.instances} evacuated, ${r.evacuatedOnce} exactly once`).join("; ")}`;
    if (variant !== "ha-failover") {
      const ratio = median(runs.map((r) => r.ratio));
      out.push({
        id: `storm-${variant}-wall`,
        metric: `Storm (${v}): ${run.instances} instances of a ${run.rackHosts}-host rack, approval → last instance ACTIVE ÷ ⌈${run.instances}/${o.siteBudget}⌉ × ${o.evacuationMs / 1000} s${n > 1 ? `, median of ${n} runs` : ""}`,
        value: `${round(ratio, 3)}${each((r) => `${round(r.ratio, 3)} (${round(r.wallMs / 1000, 2)} s)`)}${onceText}`,
        target: `≤ ${STORM_CEILING}`,
        pass: ratio <= STORM_CEILING && allOnce,
      });
    } else {
      out.push({
        id: `storm-${variant}-once`,
        metric: `Storm (${v}): instances evacuated exactly once (evacuations Nova accepted per server)${n > 1 ? `, in each of ${n} runs` : ""}`,
        value: runs
          .map(
            (r) =>
              // One run's figures joined by commas, the runs by semicolons: a table cell holds no "|".
              `${r.evacuatedOnce} / ${r.instances}${r.extraEvacuateCalls ? `, ${r.extraEvacuateCalls} evacuate call(s) beyond the first` : ""}${r.failover ? `, the other instance led ${round(r.failover.takeoverMs / 1000, 1)} s after the kill` : ""}, ${round(r.wallMs / 1000, 2)} s approval → last ACTIVE`,
          )
          .join("; "),
        target: `${run.instances} / ${run.instances}`,
        pass: allOnce,
      });
    }
    const maxInFlight = Math.max(...runs.map((r) => r.maxInFlight));
    out.push({
      id: `storm-${variant}-in-flight`,
      metric: `Storm (${v}): most evacuations in flight at once in Nova (site budget ${o.siteBudget})${n > 1 ? `, over ${n} runs` : ""}`,
      value: `${maxInFlight}`,
      target: `≤ ${o.siteBudget}`,
      pass: maxInFlight <= o.siteBudget && runs.every((r) => r.maxInFlight > 0),
    });
    const perInstance = Math.max(...runs.map((r) => r.novaRequestsPerInstance));
    out.push({
      id: `storm-${variant}-nova-requests`,
      metric: `Storm (${v}): Nova requests per evacuated instance (gates, isolation, evacuation, tracking)${n > 1 ? `, the most of ${n} runs` : ""}`,
      value: `${round(perInstance, 2)}${n > 1 ? ` (runs: ${runs.map((r) => `${round(r.novaRequestsPerInstance, 2)}`).join(", ")})` : ` (${run.novaRequests} requests)`}`,
      target: `≤ ${STORM_REQUESTS_PER_INSTANCE}`,
      pass: perInstance <= STORM_REQUESTS_PER_INSTANCE,
    });
    const p99 = median(runs.map((r) => r.webhookMs.p99));
    const failures = runs.reduce((k, r) => k + r.webhookFailures, 0);
    out.push({
      id: `storm-${variant}-webhook-p99`,
      metric: `Storm (${v}): webhook p99 while the storm runs (a delivery every ${o.trickleIntervalMs} ms)${n > 1 ? `, median of ${n} runs` : ""}`,
      value: `${round(p99, 1)} ms (p50 ${round(median(runs.map((r) => r.webhookMs.p50)), 1)} ms${each((r) => `p99 ${round(r.webhookMs.p99, 1)}`)}, ${runs.reduce((k, r) => k + r.webhookMs.n, 0)} deliveries${failures ? `, ${failures} not 202` : ""})`,
      target: `< ${STORM_WEBHOOK_P99_MS} ms`,
      pass: p99 < STORM_WEBHOOK_P99_MS && failures === 0 && runs.every((r) => r.webhookMs.n > 0),
    });
    const rss = Math.max(...runs.map((r) => Math.max(r.rssPeak, r.rssHwm)));
    out.push({
      id: `storm-${variant}-rss`,
      metric: `Storm (${v}): peak RSS of lifeboat serve while the storm runs${n > 1 ? `, the most of ${n} runs` : ""}`,
      value: `${round(rss / MB, 1)} MB (${round(median(runs.map((r) => r.cpuMsPerInstance)), 1)} ms of CPU per instance, median)`,
      target: "< 200 MB",
      pass: rss < STORM_RSS_LIMIT,
    });
  }
  return out;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function floodCase(f: FloodResult, name: FloodCase["name"]): FloodCase | undefined {
  return f.cases.find((c) => c.name === name);
}

function floodTargets(f: FloodResult): Target[] {
  const out: Target[] = [];
  const n = f.options.unknownHosts.toLocaleString("en");
  out.push({
    id: "flood-rss",
    metric: `Peak RSS of lifeboat serve through ${n}-unknown-host deliveries (and settled ${f.options.settleSeconds} s after)`,
    value: `${round(f.rss.peak / MB, 1)} MB (settled ${round(f.rss.settled / MB, 1)} MB; ${f.recoveries} recoveries, ${f.notices} notice mail(s))`,
    target: "< 150 MB",
    pass: f.rss.peak < RSS_LIMIT && f.recoveries === f.cases.length + 1,
  });
  const flooded = f.cases.filter((c) => c.name !== "without flood");
  if (flooded.length) {
    const worst = flooded.reduce((a, b) => (b.healthzMs.p99 > a.healthzMs.p99 ? b : a));
    out.push({
      id: "flood-healthz",
      metric: `/healthz p99 while ${n} alerts for unknown hosts are journaled and routed (worst case)`,
      value: `${round(worst.healthzMs.p99, 1)} ms (${worst.name}; max ${round(worst.healthzMs.max, 1)} ms, ${worst.healthzMs.n} checks)`,
      target: `< ${FLOOD_HEALTHZ_P99_MS} ms`,
      pass: worst.healthzMs.p99 < FLOOD_HEALTHZ_P99_MS,
    });
  }
  const without = floodCase(f, "without flood");
  const beside = floodCase(f, "flood, separate delivery");
  if (without && beside) {
    out.push({
      id: "flood-fence",
      metric: `A real host's webhook → ForceOff while ${n} alerts for unknown hosts arrive (separate delivery)`,
      value: `${round(beside.fenceMs, 1)} ms vs ${round(without.fenceMs, 1)} ms without the flood`,
      target: `≤ without + ${FLOOD_FENCE_SLACK_MS} ms`,
      pass: beside.fenceMs <= without.fenceMs + FLOOD_FENCE_SLACK_MS && beside.outcome === "completed",
    });
  }
  return out;
}

function detectionTargets(d: DetectionResult): Target[] {
  const g = d.gates.webhookToFenceMs;
  const confirm = distribution([...d.gates.runs.map((x) => x.fenceConfirmMs), ...d.profiles.flatMap((p) => p.runs.map((x) => x.measured.fence))]);
  const device = distribution([...d.gates.runs.map((x) => x.bmcConfirmMs), ...d.profiles.flatMap((p) => p.runs.map((x) => x.bmcConfirmedMs - x.fenceCommandMs))]);
  const fast = d.profiles.find((p) => p.profile === "fast");
  const out: Target[] = [
    {
      id: "detection-gates",
      metric: `Webhook → fence command with Nova already reporting the host down, every shipped gate at its shipped setting, grace 0, worst of ${g.n}`,
      value: `${round(g.max / 1000, 2)} s (p50 ${round(g.p50 / 1000, 2)} s${d.gates.configuredWaitMs > 0 ? `, of which ${d.gates.configuredWaitMs / 1000} s the nova-service gate's further checks` : ""})`,
      target: `≤ ${GATES_LIMIT_MS / 1000} s`,
      pass: g.max <= GATES_LIMIT_MS,
    },
    {
      id: "detection-fence-confirm",
      metric: `Fence command at the ipmi_sim BMC → fence confirmed by two "off" reads and journaled, worst of ${confirm.n}`,
      value: `${round(confirm.max / 1000, 2)} s (p50 ${round(confirm.p50 / 1000, 2)} s; at the BMC, command → second "off" answer: p50 ${round(device.p50 / 1000, 2)} s, worst ${round(device.max / 1000, 2)} s)`,
      target: `≤ ${CONFIRM_LIMIT_MS / 1000} s`,
      pass: confirm.max <= CONFIRM_LIMIT_MS,
    },
  ];
  if (fast) {
    const t = fast.productionMs.toFence;
    out.push({
      id: "detection-fast-to-fence",
      metric: `Fast profile, production intervals (equivalent of runs scaled ÷${d.options.scale}): node death → fence command, worst of ${t.n}`,
      value: `${round(t.max / 1000, 1)} s (p50 ${round(t.p50 / 1000, 1)} s)`,
      target: `≤ ${FAST_LIMIT_MS / 1000} s`,
      pass: t.max <= FAST_LIMIT_MS,
    });
  }
  return out;
}

export function buildReport(r: BenchResults): Report {
  return { ...r, targets: targetsOf(r) };
}

const pct = (v: number): string => (Number.isFinite(v) ? `${Math.round(v * 100)} %` : "n/a");
const ms = (v: number, d = 1): string => (Number.isFinite(v) ? `${round(v, d)}` : "n/a");

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

const SEGMENTS: [keyof Segments, string][] = [
  ["detect", "node death → webhook"],
  ["gate", "webhook → fence command"],
  ["fence", "fence command → confirmed"],
  ["evacuate", "confirmed → first evacuate"],
  ["toFence", "**node death → fence command**"],
  ["toEvacuate", "node death → first evacuate"],
];

const sec = (v: number, d = 1): string => (Number.isFinite(v) ? `${round(v / 1000, d)}` : "n/a");

function profileRows(p: ProfileResult): (string | number)[][] {
  return SEGMENTS.map(([key, label], i) => [
    i === 0 ? p.profile : "",
    label,
    `${sec(p.measured[key].p50, 2)} / ${sec(p.measured[key].max, 2)}`,
    `${sec(p.productionMs[key].p50)} / ${sec(p.productionMs[key].max)}`,
  ]);
}

function settingsRows(d: DetectionResult): (string | number)[][] {
  const k = d.options.scale;
  const [c, f] = [d.profiles.find((p) => p.profile === "conservative")?.production, d.profiles.find((p) => p.profile === "fast")?.production];
  if (!c || !f) return [];
  const row = (what: string, cv: number, fv: number): (string | number)[] => [what, `${cv} s → ${round(cv / k, 3)} s`, `${fv} s → ${round(fv / k, 3)} s`];
  return [
    row("node-exporter scrape interval", c.nodeScrape, f.nodeScrape),
    row("node-exporter scrape timeout", c.nodeScrapeTimeout, f.nodeScrapeTimeout),
    row("openstack-exporter scrape interval", c.exporterScrape, f.exporterScrape),
    row("rule evaluation interval", c.evaluation, f.evaluation),
    row("ComputeNodeDown `for:`", c.forSeconds, f.forSeconds),
    row("Alertmanager group_wait (lifeboat route)", c.groupWait, f.groupWait),
    row("Nova report_interval", c.novaReportInterval, f.novaReportInterval),
    row("Nova service_down_time", c.novaServiceDownTime, f.novaServiceDownTime),
    row("lifeboat grace_seconds", c.grace, f.grace),
    [
      "nova-service gate: stale_seconds (the stamps' whole seconds do not scale: see below)",
      `${c.novaGate.stale_seconds} s → ${c.scaledStaleSeconds} s`,
      `${f.novaGate.stale_seconds} s → ${f.scaledStaleSeconds} s`,
    ],
    row(`nova-service gate: ${c.novaGate.checks} check(s), interval_seconds`, c.novaGate.interval_seconds, f.novaGate.interval_seconds),
    row("lifeboat recheck_interval_seconds", c.recheckInterval, f.recheckInterval),
  ];
}

function detectionSection(d: DetectionResult): string[] {
  const k = d.options.scale;
  const g = d.gates;
  const fast = d.profiles.find((p) => p.profile === "fast");
  const parts: string[] = ["## 5. Detection timeline: node death → fence → first evacuate"];
  parts.push(
    table(
      ["profile", "segment", `measured, every duration ÷${k}: p50 / worst s`, "production equivalent: p50 / worst s"],
      d.profiles.flatMap((p) => profileRows(p)),
    ),
  );
  parts.push(
    table(
      ["Nova already says down; shipped gates unscaled, grace 0", "p50 / worst s"],
      [
        [`webhook → fence command (${g.runs.length} runs)`, `${sec(g.webhookToFenceMs.p50, 2)} / ${sec(g.webhookToFenceMs.max, 2)}`],
        [`of which configured: the nova-service gate's further checks (checks − 1) × interval_seconds`, sec(g.configuredWaitMs, 2)],
        ["of which lifeboat's own work (p50 less the configured wait)", sec(g.workMs, 2)],
        ["fence command → second \"off\" answer at the BMC", `${sec(g.bmcConfirmMs.p50, 2)} / ${sec(g.bmcConfirmMs.max, 2)}`],
        ["fence command → fence journaled as confirmed", `${sec(g.fenceConfirmMs.p50, 2)} / ${sec(g.fenceConfirmMs.max, 2)}`],
      ],
    ),
  );
  parts.push(table(["setting (production → scaled)", "conservative", "fast"], settingsRows(d)));
  for (const p of d.profiles) {
    parts.push(`${p.profile} runs, node death → fence command, measured (production equivalent), s: ${p.runs.map((x) => `${sec(x.measured.toFence, 2)} (${sec(x.productionMs.toFence)})`).join(", ")}; outcomes: ${p.runs.map((x) => x.outcome).join(", ")}.`);
  }
  const lines = [
    `Each profile runs on its own copy of the real parts: Prometheus evaluating the shipped rule file (\`rules/compute-node-down.rules.yml\` or \`rules/compute-node-down-fast.rules.yml\`) against fake node-exporters (in four racks) and a fake openstack-exporter that asks the simulated Nova at every scrape, as the real one does; Alertmanager with \`config/alertmanager.example.yml\` posting to \`lifeboat serve\` (through a relay that notes the arrival time); lifeboat with every shipped gate (nova-service, bmc, silences through that Alertmanager, capacity through Placement, storm guard sized for the runs, pause, cooldown); each victim fenced through ipmitool against one \`ipmi_sim\` BMC; the simulated cloud's Nova computing \`down\` from the heartbeat age. A node dies the way a powered-off one does: its node-exporter stops answering without refusing connections (scrapes run into their timeout) and its nova-compute stops heartbeating; the BMC still says on. The hosts die one after another (${d.options.runs} per profile), each recovery running to its end first.`,
    `Every duration of the set-up is divided by ${k} (table above). Times are taken on one clock: the relay's arrival time (webhook), the ipmi_sim chassis log (command, "off" answers), lifeboat's journal (fence step end), Nova's request log (first evacuate). Production equivalent: node death → webhook is ${k} × measured (it is all timers; Prometheus' and Alertmanager's own work, milliseconds, is multiplied too); webhook → fence command counts the timers in it ${k} times (the recovery's time in \`pending\`, lifeboat's grace, and in \`blocked\`, awaiting a re-check, as lifeboat's journal records them) and the rest, lifeboat's work, once; the fence and evacuate segments are device and API work and count once. They come from one loaded machine and a local BMC: a real BMC takes 0.2–1 s per ipmitool run, so fence command → confirmed takes 1–3 s there.`,
  ];
  if (fast) {
    const stale = fast.production.novaGate.stale_seconds;
    const blocked = d.profiles.flatMap((p) => p.runs).filter((x) => x.blocked).length;
    lines.push(
      `The nova-service gate judges nova-compute's heartbeat itself, on Nova's clock (the Date of Nova's answer): dead once it is ${stale} s old, without waiting for Nova's own \`down\` (service_down_time, ${fast.production.novaServiceDownTime} s). In both profiles the heartbeat is older than that when the alert arrives (the fast alert comes at least scrape_timeout + \`for:\` + group_wait = ${fast.production.nodeScrapeTimeout + fast.production.forSeconds + fast.production.groupWait} s after the death, and the last heartbeat came before it), so the gates pass on the first look and webhook → fence command is lifeboat's own work${blocked === 0 ? ": no run was blocked on its way" : `; yet ${blocked} run(s) were blocked first and waited for a re-check`}. The stamps the age is measured from have whole seconds, which do not shrink with the scale: lifeboat counts up to 2 s less age than has passed. The runs therefore use stale_seconds (${stale} + 2) ÷ ${k} − 2 = ${fast.production.scaledStaleSeconds} s: a heartbeat is judged dead after at most (${stale} + 2) ÷ ${k} s of real time, production's worst case scaled.`,
    );
  }
  lines.push(`The machine's CPUs were ${pct(d.cpu.machineBusy)} busy during the runs, this benchmark's own processes (lifeboat, Prometheus, Alertmanager, ipmi_sim, ipmitool) included; work-bound segments (lifeboat's work, ipmitool runs) stretch with that load, timers do not.`);
  parts.push(lines.join("\n\n"));
  return parts;
}

/** When some benchmarks' figures come from earlier runs (`--only`), say which and when. */
function measuredAtLine(r: BenchResults): string {
  const at = Object.entries(r.measuredAt ?? {});
  if (at.length === 0 || at.every(([, when]) => when === r.generatedAt)) return "";
  return ` Figures by benchmark: ${at.map(([bench, when]) => `${bench} ${when.slice(0, 16).replace("T", " ")} UTC`).join(", ")} (\`--only\` runs keep the others' last figures).`;
}

/** bench/RESULTS.md: the targets table first, then each benchmark's details and method. */
export function renderMarkdown(r: Report): string {
  const parts: string[] = [];
  parts.push("# lifeboat benchmarks");
  parts.push(
    `Measured ${r.generatedAt.slice(0, 16).replace("T", " ")} UTC by \`npm run bench\`${r.quick ? " (**--quick: short runs, not for quoting**)" : ""} in ${r.durationSeconds ?? "?"} s.${measuredAtLine(r)}\n\n**Machine:** ${machineLine(r.machine)}.`,
  );
  parts.push(table(["metric", "value", "target", "result"], r.targets.map((t) => [t.metric, t.value, t.target, t.pass ? "pass" : "**FAIL**"])));
  const busy = Object.entries(r.busyBefore).filter(([, v]) => v !== undefined && v >= 0.25);
  if (busy.length) {
    parts.push(`> The machine was shared: other processes kept ${busy.map(([k, v]) => `${pct(v)} of the CPUs busy before ${k}`).join(", ")}. See the "other load" columns.`);
  }

  if (r.intake) {
    const o = r.intake.options;
    parts.push("## 1. Webhook intake with durable journaling");
    parts.push(
      table(
        ["server", "deliveries", "req/s", "p50 ms", "p99 ms", "max ms", "server CPU ms / delivery", "journal check", "other load"],
        r.intake.cases.map((c) => [
          c.server === "lifeboat" ? "lifeboat serve" : "bare express",
          c.mix,
          Math.round(c.load.requestsPerSecond),
          ms(c.load.latencyMs.p50, 2),
          ms(c.load.latencyMs.p99, 2),
          ms(c.load.latencyMs.max, 1),
          ms(c.serverCpuPerDeliveryMs, 3),
          c.journal
            ? `${c.journal.ok ? "ok" : "**MISMATCH**"}: ${c.mix === "distinct" ? `${c.journal.rows} rows` : `${c.journal.rows} row, ${c.journal.deliveries} deliveries`} for ${c.journal.accepted} accepted`
            : "-",
          pct(c.cpu.otherBusy),
        ]),
      ),
    );
    parts.push(
      [
        `Load: autocannon in its own process, ${o.connections} connections, ${o.warmupSeconds} s warm-up then ${o.durationSeconds} s measured, per server and mix; servers started fresh for each case, one at a time.`,
        "Payloads have the shape of the Alertmanager delivery captured from a real instance (`bench/fixtures/webhook-firing.json`).",
        `*distinct*: every delivery is a new alert state (the host cycles through the ${o.hosts} hosts of the simulated site, with its own labels and fingerprint; startsAt moves on), so each one is a new journal row; lifeboat opens one recovery per host, whose gates block it (Nova still sees the hosts up), and routes every later event to it while the load runs.`,
        "*duplicates*: the captured delivery itself every time (repeat_interval re-sends, the second Alertmanager of an HA pair): one row whose delivery count grows.",
        "lifeboat is `lifeboat serve` from the built CLI with its real drivers against the simulated site; its journal is SQLite in WAL mode with group commit, each write settled once the WAL is synced after its commit, on a file in the OS temp directory (see the machine line for the disk). A 202 is sent only once the delivery's alerts are on disk (a delivery of repeats only, once its delivery counts are committed); the journal check counts, after the run, that every 202 left its row or delivery count.",
        `Why ${o.connections} connections: one Alertmanager sends one notification per alert group at a time, an HA pair twice that, so a few to a few dozen deliveries can be in flight to one receiver during a big outage; ${o.connections} is at the top of that range, enough to keep both servers busy (throughput is what is compared) while still representing a realistic queue for the p99. Why ${o.durationSeconds} s: tens of thousands of samples per case make p99 stable, and SQLite's WAL checkpoints (every 1000 pages) happen several times inside the measured window.`,
        "Latencies are per response from autocannon's response event (fractional ms). *server CPU ms / delivery* is the server process's CPU time divided by the deliveries it answered: it does not depend on how busy the machine was. *other load*: share of all CPUs used by processes other than the server, the load generator and this harness during the case.",
      ].join("\n\n"),
    );
  }

  if (r.evacuation) {
    const o = r.evacuation.options;
    parts.push("## 2. Evacuation of a failed host");
    parts.push(
      table(
        ["concurrency", "stage wall s", "floor s", "ratio", "evacuated", "evacuate calls", "per instance p50 / p99 ms", "lifeboat CPU s", "other load"],
        r.evacuation.runs.map((x) => [
          x.concurrency,
          ms(x.stageMs / 1000, 2),
          ms(x.floorMs / 1000, 1),
          ms(x.ratio, 3),
          `${x.evacuated} / ${o.instances}`,
          x.evacuateCalls,
          `${ms(x.perInstanceMs.p50, 0)} / ${ms(x.perInstanceMs.p99, 0)}`,
          ms((x.cpu.processes.lifeboat ?? Number.NaN) / 1000, 1),
          pct(x.cpu.otherBusy),
        ]),
      ),
    );
    parts.push(
      [
        `The simulated cloud (\`startSandboxCloud\`) holds ${o.instances} ACTIVE instances on compute-1 and four empty hosts; every evacuation takes exactly ${o.evacuationMs} ms in Nova (accepted → pre-migrating → done, server rebuilt on the target). compute-1 dies, Nova sees it down, and one ComputeNodeDown delivery goes to \`lifeboat serve\` with its real pipeline: gates, Redfish ForceOff, force-down + disable in Nova, then the evacuating stage with the nova driver (inspect, lock, evacuate, track the migration and the server, unlock; each instance journaled before and after).`,
        `*stage wall* is the recovery's own timeline, from its transition into \`evacuating\` to its transition out (listing the instances and journaling them included); the floor is ⌈${o.instances} / concurrency⌉ × ${o.evacuationMs / 1000} s. lifeboat looks at running evacuations every ${o.pollIntervalSeconds} s (evacuation.poll_interval_seconds): real evacuations take minutes and the default 2 s costs at most a few percent of them; with 1 s evacuations the interval is scaled down the same way, so that what is measured is lifeboat's own overhead rather than the polling quantum.`,
      ].join("\n\n"),
    );
  }

  if (r.fenceLatency) {
    const f = r.fenceLatency;
    parts.push("## 3. Webhook received → fence command at the BMC");
    parts.push(
      table(
        ["runs", "min ms", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms", "warm runs max ms", "outcomes", "other load"],
        [
          [
            f.latencyMs.n,
            ms(f.latencyMs.min),
            ms(f.latencyMs.p50),
            ms(f.latencyMs.p90),
            ms(f.latencyMs.p99),
            ms(f.latencyMs.max),
            ms(f.latencyMs.mean),
            ms(f.warmLatencyMs.max),
            Object.entries(f.outcomes)
              .map(([k, v]) => `${v} ${k}`)
              .join(", "),
            pct(f.cpu.otherBusy),
          ],
        ],
      ),
    );
    parts.push(`All runs in order (ms): ${f.samplesMs.map((v) => round(v, 1)).join(", ")}.`);
    parts.push(
      [
        `${f.options.runs} hosts of the simulated site die together; once Nova sees them down, the harness sends one ComputeNodeDown delivery at a time to \`lifeboat serve\` (grace_seconds 0; the nova-service confirmation checks once, interval 0; storm guard sized for the run) and timestamps, on one clock in its own process, the moment before the POST and the moment the host's Redfish BMC simulator receives ComputeSystem.Reset with ForceOff.`,
        "In between, lifeboat journals the delivery (fsync), answers 202, routes it to a new recovery, and runs every gate for real: maintenance, pause, approval, cooldown, Nova's service state, the BMC's power state over Redfish, capacity through Placement, the storm guard; each decision and state change is journaled before the next step. Each recovery runs to its end (isolate, evacuate two instances, notify) before the next alert, so runs do not overlap.",
      ].join("\n\n"),
    );
  }

  if (r.memory) {
    const m = r.memory;
    const rows = (res: MemoryResult, label: string): (string | number)[][] =>
      res.cases.map((c) => [label, c.mix, ms(c.idleRss / MB), ms(c.afterRss / MB), ms(c.settledRss / MB), ms(c.peakRss / MB), c.accepted, c.events, c.openRecoveries]);
    parts.push("## 4. Memory");
    parts.push(
      table(
        ["node flags", "alerts", "idle RSS MB", "right after MB", `${m.options.settleSeconds} s later MB`, "peak RSS MB", "accepted", "journal rows", "open recoveries"],
        [...rows(m, `${m.options.nodeArgs?.join(" ") ?? ""} (shipped)`), ...(r.memoryNodeDefaults ? rows(r.memoryNodeDefaults, "none (node's defaults)") : [])],
      ),
    );
    parts.push(
      [
        `One fresh \`lifeboat serve\` process per mix, with its real drivers against the simulated site. *idle*: ${m.options.idleSeconds} s after it answered its health check (connected to Keystone and Nova, coordinator running). Then ${m.options.alerts.toLocaleString("en")} deliveries over ${m.options.connections} connections, the same mixes as the intake benchmark, as fast as it takes them: a burst no Alertmanager sends, the worst case for the heap. *right after*: as soon as every journaled event has been routed; *${m.options.settleSeconds} s later*: the process back to idle, its 20 blocked recoveries still re-checking their gates; *peak*: VmHWM, the highest RSS of the process's life. RSS is VmRSS from /proc: what the kernel charges the process, including ~45 MB of pages of the node binary shared with other node processes.`,
        `Node flags: lifeboat ships with \`NODE_OPTIONS=${m.options.nodeArgs?.join(" ") ?? ""}\` (the container image's ENV, and the README's systemd unit); every lifeboat process of these benchmarks runs with them. Why: V8 sizes its heap from the memory it sees (${r.machine.ramGiB} GiB here): its old generation may fill to ~130 MB before the first full collection and its young generation grows to 16 MB semi-spaces under load, so a burst leaves RSS near 200 MB of which lifeboat's live heap is ~35 MB (the last row). The caps keep 7× the live heap for the old generation and small semi-spaces, so V8 collects early; they cannot be set from inside the process (V8 sizes the heap at start-up).`,
      ].join("\n\n"),
    );
  }
  if (r.detection) parts.push(...detectionSection(r.detection));
  if (r.flood) parts.push(...floodMarkdown(r.flood));
  if (r.storm) parts.push(...stormMarkdown(r.storm));
  if (r.console) {
    const c = r.console;
    parts.push("## 7. Console pages");
    parts.push(
      table(
        ["page", "path", "HTML kB", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        c.pages.map((p) => [p.page, `\`${p.path.replace(/r-[0-9a-z-]+$/, "<id>")}\``, ms(p.bytes / 1024), ms(p.latencyMs.p50), ms(p.latencyMs.p90), ms(p.latencyMs.p99), ms(p.latencyMs.max)]),
      ),
    );
    parts.push(
      [
        `Measured ${c.measuredAt.slice(0, 16).replace("T", " ")} UTC${r.busyBefore.console !== undefined ? ` (${pct(r.busyBefore.console)} of the CPUs busy with other work just before)` : ""}. A SQLite journal with ${c.options.recoveries.toLocaleString("en")} recoveries over ${c.options.hosts} hosts (${c.records.toLocaleString("en")} records: each recovery's transitions, ${9} gate decisions, its fence step in the device's words, 8 instances, 4 emails; 5 still blocked, some hosts held down), opened by \`lifeboat serve\` from the built CLI against the simulated site. One logged-in session asks each page ${c.options.requests} times in a row after 5 warm-up requests; the time is from the request to the last byte of the HTML, over loopback. The overview reads the status, the open and the last finished recoveries and looks for held hosts among the last 500; a list page reads its page of 50 (the oldest page reads every newer one first: offset pagination); a recovery page reads its whole journal.`,
      ].join("\n\n"),
    );
  }
  return `${parts.join("\n\n")}\n`;
}

function stormMarkdown(st: StormResult): string[] {
  const o = st.options;
  const first = st.runs[0];
  return [
    "## 8. Evacuation storm: a rack fails",
    table(
      ["variant", "instances", "approval → last ACTIVE s", "approval → first held evacuation s", "approve command s", "floor s", "ratio", "evacuated once", "max in flight", "Nova requests / instance", "webhook p50 / p99 ms", "webhook p99 ms: approval's first second / after", "peak RSS MB", "CPU ms / instance", "approved / let through", "accepted before approval", "other load"],
      st.runs.map((x) => [
        STORM_VARIANT[x.variant],
        x.instances,
        ms(x.wallMs / 1000, 2),
        ms(x.heldStartMs / 1000, 2),
        ms(x.approveCommandMs / 1000, 2),
        ms(x.floorMs / 1000, 1),
        ms(x.ratio, 3),
        `${x.evacuatedOnce} / ${x.instances}${x.extraEvacuateCalls ? ` (+${x.extraEvacuateCalls} calls)` : ""}`,
        x.maxInFlight,
        ms(x.novaRequestsPerInstance, 2),
        `${ms(x.webhookMs.p50)} / ${ms(x.webhookMs.p99)}`,
        x.webhookApprovalMs && x.webhookAfterApprovalMs ? `${ms(x.webhookApprovalMs.p99)} (${x.webhookApprovalMs.n}) / ${ms(x.webhookAfterApprovalMs.p99)} (${x.webhookAfterApprovalMs.n})` : "–",
        ms(Math.max(x.rssPeak, x.rssHwm) / MB),
        ms(x.cpuMsPerInstance),
        `${x.approved} / ${x.granted}`,
        x.acceptedBeforeApproval,
        pct(x.otherBusy),
      ]),
    ),
    ...st.runs.map((x) => `Nova requests (${STORM_VARIANT[x.variant]}): ${Object.entries(x.novaRequestKinds).map(([k, n]) => `${k} ${n}`).join(", ")}. Recoveries: ${Object.entries(x.outcomes).map(([k, n]) => `${n} ${k}`).join(", ")}${x.failover ? `. Leader killed with ${x.failover.activeAtKill} instances ACTIVE; the other instance led ${ms(x.failover.takeoverMs / 1000)} s later` : ""}.`),
    [
      `A simulated site of ${o.hosts} compute hosts in ${o.racks} racks and ${o.zones} availability zones (\`rackScenario\`), ${o.backgroundPerHost} instances on each host and ${o.instancesPerHost} on each host of ${o.rack}${first ? ` (${first.rackHosts} hosts, ${first.instances} instances)` : ""}. ${o.rack} loses power at once (\`POST /racks/${o.rack}/fail\`: every host off as its Redfish BMC reports, nova-compute silent); once Nova sees its hosts down, one Alertmanager delivery per host reaches \`lifeboat serve\`. Its storm guard (max_recoveries ${o.stormMaxRecoveries}) lets the first hosts through and holds the others; the harness waits until they are held by the storm guard alone, then runs \`lifeboat approve --blocked-by storm\` (the built CLI, the admin token in its environment). Every evacuation takes ${o.evacuationMs} ms in Nova; lifeboat may run ${o.siteBudget} at once over the whole site (\`evacuation.site_concurrency\`; \`evacuation.concurrency\` is as high, so one recovery alone may use all of it) and looks at running evacuations every ${o.pollIntervalSeconds} s.`,
      `Every figure but the webhook's and lifeboat's own process figures comes from the simulated Nova's records, not from lifeboat: *approval → last ACTIVE* runs from the approval as lifeboat journaled it (the first held recovery's way out of \`blocked\`; or from the first evacuation Nova accepted, when a recovery the guard let through started before it) to the end of the last rebuild (its migration's end); *approval → first held evacuation*: until Nova accepted the first evacuation of a host the guard had held (its gates, fencing and isolation in between); *approve command*: the command's own run, node's start-up and exit included. The floor is ⌈instances / budget⌉ × ${o.evacuationMs / 1000} s. *max in flight* is exact: every evacuation counts from its acceptance until its rebuild ended (\`GET /evacuations\` of the control API). *evacuated once*: instances of which Nova accepted exactly one evacuation. *Nova requests*: every compute API request from the rack's failure to the last recovery's end (gates, isolation, evacuation, tracking, unlocks, the tenants' lookups), divided by the instances. *webhook*: a delivery of the rack's alerts again every ${o.trickleIntervalMs} ms (Alertmanager's re-sends), from a process of its own, open loop, from the approve command to the last recovery's end; in the HA pair, to the instance that is not killed. That process is started and ready before the rack fails, so its own start-up costs the measured window nothing, and its first deliveries go out while the approve command runs. The target is on every delivery of the window; the table also splits them at one second after the approval (the deliveries sent until then, while the approve command runs and the approved recoveries' gates, fencing and isolation start, with their count in brackets; and those of the rest of the storm). *peak RSS*: VmRSS sampled every 200 ms and VmHWM; *CPU* from /proc/<pid>/stat from the rack's failure to the last recovery's end (in the pair, both instances). *accepted before approval*: evacuations of the recoveries the guard let through that Nova accepted before the approval (a head start the wall time does not see).`,
      "Variants: SQLite (one instance); etcd (one instance on a real single-member etcd); an HA pair on that etcd (lease TTL 3 s) whose leader is SIGKILLed once half the instances are ACTIVE: the other instance takes over and finishes, and no instance may be evacuated twice. The pair takes each of the rack's deliveries at both instances, as Alertmanager's receiver for a pair has one webhook_config per instance (docs/ha.md); its re-sends go to the instance that lives.",
    ].join("\n\n"),
  ];
}

function floodMarkdown(f: FloodResult): string[] {
  const n = f.options.unknownHosts.toLocaleString("en");
  const kb = (b: number | undefined): string => (b === undefined ? "-" : `${Math.round(b / 1024)} KB`);
  return [
    `## 5. ${n} alerts for unknown hosts while a real host fails`,
    table(
      ["run", "real host: webhook → ForceOff ms", "flood delivery", "202 after ms", "all routed after ms", "/healthz p50 / p99 / max ms", "Nova listings / per-host queries", "outcome"],
      f.cases.map((c) => [
        c.name,
        ms(c.fenceMs),
        kb(c.floodBytes),
        c.floodAnswerMs === undefined ? "-" : ms(c.floodAnswerMs, 0),
        ms(c.routedMs, 0),
        `${ms(c.healthzMs.p50)} / ${ms(c.healthzMs.p99)} / ${ms(c.healthzMs.max)}`,
        `${c.novaListings} / ${c.novaHostQueries}`,
        c.outcome,
      ]),
    ),
    `RSS: idle ${ms(f.rss.idle / MB)} MB, after the runs ${ms(f.rss.afterRuns / MB)} MB, ${f.options.settleSeconds} s later ${ms(f.rss.settled / MB)} MB, peak ${ms(f.rss.peak / MB)} MB. Journal afterwards: ${f.recoveries} recoveries (the warm-up and the three real hosts), ${f.eventsIgnored.toLocaleString("en")} events ignored; ${f.notices} unknown-hosts notice mail(s) to the operators. /healthz while idle: p50 ${ms(f.healthzIdleMs.p50)}, p99 ${ms(f.healthzIdleMs.p99)} ms. Other load during the benchmark: ${pct(f.cpu.otherBusy)}.`,
    [
      `A bad relabel in Prometheus (or a hostile sender holding the webhook token) makes one Alertmanager delivery carry ${n} ComputeNodeDown alerts for hosts that are neither in fencing.hosts nor in Nova. Four hosts of the simulated site die; \`lifeboat serve\` (grace 0, one Nova check, storm guard sized for four recoveries) recovers one unmeasured first (warm-up), then three runs, each to its end: a real host's alert alone; a flood delivery with the real host's alert posted 10 ms after it in its own delivery; a second flood delivery (${n} other names) whose last alert is the real host's. *webhook → ForceOff* is timed on one clock in the harness, from the real alert's POST (for the same-delivery run, the flood's POST) to the host's Redfish BMC receiving ForceOff.`,
      "A checker in its own process GETs /healthz every 10 ms, open loop (a slow answer does not delay the next check); each run's figures cover the checks sent from its first POST until every event was routed and the real host fenced. Nova's request log counts the os-services reads in the same window: listings of every nova-compute service (shared by every reader for 5 s) and questions about one host (the validation's own look at the real host).",
    ].join("\n\n"),
  ];
}
