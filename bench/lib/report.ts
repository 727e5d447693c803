import type { ConsoleResult } from "../console.js";
import type { EvacuationResult } from "../evacuation.js";
import type { FenceLatencyResult } from "../fence-latency.js";
import type { IntakeCase, IntakeResult } from "../intake.js";
import type { MemoryResult } from "../memory.js";
import { machineLine, type Machine } from "./machine.js";
import { MB, round } from "./stats.js";

export interface BenchResults {
  generatedAt: string;
  quick: boolean;
  machine: Machine;
  /** Share of the CPUs other processes used just before each benchmark started. */
  busyBefore: Partial<Record<"intake" | "evacuation" | "fence" | "memory" | "console", number>>;
  durationSeconds?: number;
  intake?: IntakeResult;
  evacuation?: EvacuationResult;
  fenceLatency?: FenceLatencyResult;
  memory?: MemoryResult;
  /** The memory burst again without the shipped node flags: informational. */
  memoryNodeDefaults?: MemoryResult;
  console?: ConsoleResult;
}

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
const PAGE_LIMIT_MS = 1000;

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

/** bench/RESULTS.md: the targets table first, then each benchmark's details and method. */
export function renderMarkdown(r: Report): string {
  const parts: string[] = [];
  parts.push("# lifeboat benchmarks");
  parts.push(
    `Measured ${r.generatedAt.slice(0, 16).replace("T", " ")} UTC by \`npm run bench\`${r.quick ? " (**--quick: short runs, not for quoting**)" : ""} in ${r.durationSeconds ?? "?"} s.\n\n**Machine:** ${machineLine(r.machine)}.`,
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
        "lifeboat is `lifeboat serve` from the built CLI with its real drivers against the simulated site; its journal is SQLite in WAL mode with synchronous=FULL and group commit, on a file in the OS temp directory (see the machine line for the disk). A 202 is sent only once the delivery is on disk; the journal check counts, after the run, that every 202 left its row or delivery count.",
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
  if (r.console) {
    const c = r.console;
    parts.push("## 5. Console pages");
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
