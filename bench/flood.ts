import { spawn } from "node:child_process";
import Database from "better-sqlite3";
import { startSandbox, type Sandbox } from "../packages/sandbox/src/environment.js";
import type { SimRequest } from "../packages/sandbox/src/cloud-state.js";
import { waitUntil } from "../test/support/daemon.js";
import type { ProbeResult, ProbeSpec } from "./load/healthz-probe.js";
import { cpuWindow, type CpuWindow } from "./lib/cpu.js";
import { finishedRecovery, postWebhook, startLifeboat, type LifeboatProcess } from "./lib/lifeboat.js";
import { manyHostsBody, payloadMaker } from "./lib/payloads.js";
import { benchFile, tsCommand } from "./lib/process.js";
import { distribution, type Distribution } from "./lib/stats.js";
import { lifeboatConfigData, tempDir } from "../test/kit/config.js";
import { novaSaysDown } from "../test/kit/site.js";

/**
 * Benchmark 5: one delivery naming thousands of hosts lifeboat cannot act on (a bad relabel
 * in Prometheus: neither in fencing.hosts nor in Nova) while a real host fails.
 *
 * Four hosts of a simulated site die; `lifeboat serve` (grace 0, one Nova check, storm guard
 * sized for four recoveries) first recovers one of them unmeasured (warm-up). Then, one at a
 * time, each run to its end: a real host's alert alone ("without flood"); a delivery of
 * `unknownHosts` alerts for unknown names with the real host's alert posted right after it
 * ("flood, separate delivery"); another such delivery with the real host's alert as its last
 * alert ("flood, same delivery"). For each: webhook POST → ForceOff at the real host's BMC,
 * on one clock in this process. Meanwhile a checker in its own process GETs /healthz every
 * 10 ms, open loop; the simulated Nova's request log counts the service listings.
 */
export interface FloodOptions {
  unknownHosts: number;
  /** Quiet time after the last run before the settled RSS sample. */
  settleSeconds: number;
  log?: (line: string) => void;
}

export interface FloodCase {
  name: "without flood" | "flood, separate delivery" | "flood, same delivery";
  host: string;
  /** Webhook POST of the real host's alert → ForceOff at its BMC, ms. */
  fenceMs: number;
  /** The flood delivery: size, and how long lifeboat took to journal it and answer 202. */
  floodBytes?: number;
  floodAnswerMs?: number;
  /** First POST → every journaled event routed, ms. */
  routedMs: number;
  /** /healthz latency from the first POST until everything was routed and the host fenced. */
  healthzMs: Distribution;
  /** Nova os-services requests in that window: listings of every service, and questions about one host. */
  novaListings: number;
  novaHostQueries: number;
  outcome: string;
}

export interface FloodResult {
  options: Omit<FloodOptions, "log">;
  cases: FloodCase[];
  /** /healthz while idle (2 s before the first run). */
  healthzIdleMs: Distribution;
  rss: { idle: number; afterRuns: number; settled: number; peak: number };
  /** After all runs: recoveries in the journal (warm-up included), events ignored, unknown-hosts mails. */
  recoveries: number;
  eventsIgnored: number;
  notices: number;
  cpu: CpuWindow;
}

const PROBE = benchFile("load/healthz-probe.ts");

export async function benchFlood(opts: FloodOptions): Promise<FloodResult> {
  const log = opts.log ?? (() => undefined);
  const site = await startSandbox({
    cloud: { generate: { hosts: 6, serversPerHost: 2 }, evacuationDurationMs: 200, serviceDownTimeSeconds: 2, reportIntervalSeconds: 1 },
    powerDelayMs: 100,
  });
  try {
    const [warm, alone, beside, inside] = site.hosts as [string, string, string, string];
    const victims = [warm, alone, beside, inside];
    const forceOff = new Map<string, number>();
    for (const h of victims) {
      const sys = site.redfish.system(h);
      const wired = sys.beforeReset;
      sys.beforeReset = (type) => {
        if (type === "ForceOff" && !forceOff.has(h)) forceOff.set(h, performance.now());
        wired?.(type);
      };
      site.failHost(h);
    }
    await waitUntil("the failed hosts down in Nova", () => victims.every((h) => novaSaysDown(site, h)), { timeoutMs: 15_000 });

    // Built before lifeboat starts: the bench's own work must not compete with it.
    const startsAt = "2026-11-25T13:00:00.000Z";
    const names = (prefix: string): string[] => Array.from({ length: opts.unknownHosts }, (_, i) => `${prefix}-${String(i).padStart(5, "0")}.bad-relabel.example`);
    const floodBeside = manyHostsBody(names("node"), startsAt);
    const floodInside = manyHostsBody([...names("vm-host"), inside], startsAt);
    const single = (host: string, n: number): string => payloadMaker("distinct", [host])(n);

    const dir = tempDir();
    const lb = await startLifeboat(
      "flood",
      lifeboatConfigData(
        {
          server: { body_limit_bytes: 8 * 1024 * 1024 },
          recovery: { grace_seconds: 0 },
          gates: {
            confirmations: [{ driver: "nova-service", stale_seconds: 2, checks: 1, interval_seconds: 0 }, { driver: "bmc" }],
            storm: { max_recoveries: 5, max_percent: 100 },
          },
          evacuation: { poll_interval_seconds: 0.05 },
        },
        { site, dir, pace: "paced", logLevel: "info" },
      ),
      { dir },
    );
    const window = cpuWindow({ lifeboat: lb.pid, bench: process.pid });
    try {
      log("flood: warm-up recovery");
      await postOk(lb, single(warm, 0));
      await finishedRecovery(lb, warm, 60_000);
      const idleRss = lb.memory().rss;

      const probe = startProbe({ url: lb.url, intervalMs: 10, timeoutMs: 30_000 });
      const idleFrom = Date.now();
      await sleep(2000);
      const idleTo = Date.now();

      const cases: FloodCase[] = [];
      const run = async (name: FloodCase["name"], host: string, send: () => Promise<{ realSent: number; floodBytes?: number; floodAnswerMs?: number }>): Promise<void> => {
        log(`flood: ${name} (${host})`);
        const from = Date.now();
        const t0 = performance.now();
        const sent = await send();
        await waitUntil(`ForceOff at ${host}'s BMC`, () => forceOff.has(host), { timeoutMs: 120_000, intervalMs: 5 });
        const fenceMs = forceOff.get(host)! - sent.realSent;
        await routed(lb, 300_000);
        const routedMs = performance.now() - t0;
        const to = Date.now();
        const d = await finishedRecovery(lb, host, 120_000);
        const reads = osServices(site, from, to);
        cases.push({
          name,
          host,
          fenceMs,
          ...(sent.floodBytes !== undefined ? { floodBytes: sent.floodBytes } : {}),
          ...(sent.floodAnswerMs !== undefined ? { floodAnswerMs: sent.floodAnswerMs } : {}),
          routedMs,
          healthzMs: distribution([]), // filled in once the checker stopped
          novaListings: reads.filter((q) => q.query.host === undefined).length,
          novaHostQueries: reads.filter((q) => q.query.host !== undefined).length,
          outcome: d.state,
        });
        windows.push([from, to]);
        log(`flood: ${name}: ForceOff ${fenceMs.toFixed(1)} ms after the POST, all routed in ${routedMs.toFixed(0)} ms (${d.state})`);
      };
      const windows: [number, number][] = [];

      await run("without flood", alone, async () => {
        const realSent = performance.now();
        await postOk(lb, single(alone, 1));
        return { realSent };
      });
      await run("flood, separate delivery", beside, async () => {
        const f0 = performance.now();
        const flood = postWebhook(lb.url, floodBeside).then((status) => ({ status, ms: performance.now() - f0 }));
        await sleep(10);
        const realSent = performance.now();
        await postOk(lb, single(beside, 2));
        const f = await flood;
        if (f.status !== 202) throw new Error(`the flood delivery answered ${f.status}`);
        return { realSent, floodBytes: Buffer.byteLength(floodBeside), floodAnswerMs: f.ms };
      });
      await run("flood, same delivery", inside, async () => {
        const realSent = performance.now();
        const status = await postWebhook(lb.url, floodInside);
        if (status !== 202) throw new Error(`the flood delivery answered ${status}`);
        return { realSent, floodBytes: Buffer.byteLength(floodInside), floodAnswerMs: performance.now() - realSent };
      });

      const samples = (await probe.stop()).samples;
      const latencies = (from: number, to: number): number[] => samples.filter(([at]) => at >= from && at <= to).map(([, ms, status]) => (status === 200 ? ms : Number.POSITIVE_INFINITY));
      cases.forEach((c, i) => (c.healthzMs = distribution(latencies(...windows[i]!))));
      const afterRuns = lb.memory().rss;
      await sleep(opts.settleSeconds * 1000);
      const settled = lb.memory().rss;
      const peak = lb.memory().peak;
      const counts = journal(lb.dbPath);
      const notices = site.smtp.messages.filter((m) => m.subject.includes("cannot act on")).length;
      log(`flood: RSS idle ${mb(idleRss)} MB, after ${mb(afterRuns)} MB, settled ${mb(settled)} MB, peak ${mb(peak)} MB; ${counts.recoveries} recoveries, ${counts.ignored} events ignored, ${notices} notice mail(s)`);
      const { log: _log, ...options } = opts;
      return {
        options,
        cases,
        healthzIdleMs: distribution(latencies(idleFrom, idleTo)),
        rss: { idle: idleRss, afterRuns, settled, peak },
        recoveries: counts.recoveries,
        eventsIgnored: counts.ignored,
        notices,
        cpu: window.end(),
      };
    } finally {
      await lb.stop();
    }
  } finally {
    await site.close();
  }
}

async function postOk(lb: LifeboatProcess, body: string): Promise<void> {
  const status = await postWebhook(lb.url, body);
  if (status !== 202) throw new Error(`webhook answered ${status}`);
}

/** Nova os-services reads (GET) the simulated cloud answered between two instants. */
function osServices(site: Sandbox, from: number, to: number): SimRequest[] {
  return site.cloud.requests.filter((q) => q.method === "GET" && q.path === "/v2.1/os-services" && Date.parse(q.at) >= from && Date.parse(q.at) <= to);
}

/** Wait until lifeboat has routed every journaled event (read from its SQLite file). */
async function routed(lb: LifeboatProcess, timeoutMs: number): Promise<void> {
  const db = new Database(lb.dbPath, { readonly: true, fileMustExist: true });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = db.prepare("SELECT COUNT(*) AS left FROM events WHERE disposition = 'unprocessed'").get() as { left: number };
      if (row.left === 0) return;
      if (Date.now() > deadline) throw new Error(`${row.left} events still unrouted after ${timeoutMs} ms`);
      await sleep(20);
    }
  } finally {
    db.close();
  }
}

function journal(path: string): { recoveries: number; ignored: number } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const recoveries = (db.prepare("SELECT COUNT(*) AS n FROM recoveries").get() as { n: number }).n;
    const ignored = (db.prepare("SELECT COUNT(*) AS n FROM events WHERE disposition = 'ignored'").get() as { n: number }).n;
    return { recoveries, ignored };
  } finally {
    db.close();
  }
}

/** The /healthz checker in its own process; `stop()` ends it and returns its samples. */
function startProbe(spec: ProbeSpec): { stop(): Promise<ProbeResult> } {
  const { command, args } = tsCommand(PROBE, [JSON.stringify(spec)]);
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return {
    async stop() {
      child.stdin.end("stop\n");
      const code = await exited;
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !last) throw new Error(`the /healthz checker exited ${code}: ${err || out}`);
      return JSON.parse(last) as ProbeResult;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
