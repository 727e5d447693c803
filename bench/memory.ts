import Database from "better-sqlite3";
import { startSandbox } from "../packages/sandbox/src/environment.js";
import type { LoadResult, LoadSpec } from "./load/webhook-load.js";
import { SHIPPED_NODE_ARGS, startLifeboat, WEBHOOK_TOKEN, type LifeboatProcess } from "./lib/lifeboat.js";
import type { Mix } from "./lib/payloads.js";
import { benchFile, runJsonScript } from "./lib/process.js";
import { lifeboatConfigData, tempDir } from "../test/kit/config.js";

/**
 * Benchmark 4: resident memory of a `lifeboat serve` process, idle and after 10,000 alerts.
 *
 * One fresh process per mix, pointed at the simulated site (so its drivers, sessions and
 * background recoveries exist as in production). RSS is read from /proc: once the process
 * has been idle for `idleSeconds` after start-up; right after the alerts were sent and every
 * journaled event was routed; once it has settled back to idle; and the peak (VmHWM) over
 * the whole life.
 */
export interface MemoryOptions {
  alerts: number;
  connections: number;
  idleSeconds: number;
  /** Quiet time after the last event was routed before the settled sample. */
  settleSeconds: number;
  /** Node flags of the lifeboat processes (default: the shipped ones; [] for node's own defaults), and the mixes to run. */
  nodeArgs?: readonly string[];
  mixes?: Mix[];
  /** Hosts of the simulated site; distinct alerts cycle through all of them. */
  hosts: number;
  log?: (line: string) => void;
}

export interface MemoryCase {
  mix: Mix;
  idleRss: number;
  /** As soon as every journaled event was routed. */
  afterRss: number;
  /** `settleSeconds` later, the process back to idle (see settle). */
  settledRss: number;
  settledAfterSeconds: number;
  peakRss: number;
  /** Deliveries answered 202 (must be all of them). */
  accepted: number;
  /** Journal rows and open recoveries afterwards. */
  events: number;
  openRecoveries: number;
}

export interface MemoryResult {
  options: Omit<MemoryOptions, "log">;
  cases: MemoryCase[];
}

const LOAD = benchFile("load/webhook-load.ts");

export async function benchMemory(opts: MemoryOptions): Promise<MemoryResult> {
  const log = opts.log ?? (() => undefined);
  const site = await startSandbox({ cloud: { generate: { hosts: opts.hosts, serversPerHost: 4 } } });
  const cases: MemoryCase[] = [];
  try {
    for (const mix of opts.mixes ?? (["distinct", "duplicates"] as const)) {
      const dir = tempDir();
      const lb = await startLifeboat(`memory-${mix}`, lifeboatConfigData({}, { site, dir, pace: "paced", logLevel: "info" }), { nodeArgs: opts.nodeArgs ?? SHIPPED_NODE_ARGS, dir });
      try {
        await sleep(opts.idleSeconds * 1000);
        const idle = lb.memory();
        log(`memory: ${mix}: idle RSS ${mb(idle.rss)} MB; sending ${opts.alerts} alerts`);
        const spec: LoadSpec = { url: lb.url, token: WEBHOOK_TOKEN, mix, hosts: site.hosts, connections: opts.connections, warmupSeconds: 0, durationSeconds: 0, amount: opts.alerts };
        const load = await runJsonScript<LoadResult>(LOAD, spec);
        const events = await routed(lb);
        const after = lb.memory();
        const settled = await settle(lb, opts.settleSeconds);
        const peak = lb.memory().peak;
        const status = await lb.api<{ openRecoveries: Record<string, number> }>("/api/v1/status");
        const openRecoveries = Object.values(status.openRecoveries).reduce((a, b) => a + b, 0);
        log(`memory: ${mix}: after ${load.ok} alerts RSS ${mb(after.rss)} MB, ${mb(settled.rss)} MB ${settled.seconds} s later, peak ${mb(peak)} MB`);
        cases.push({ mix, idleRss: idle.rss, afterRss: after.rss, settledRss: settled.rss, settledAfterSeconds: settled.seconds, peakRss: peak, accepted: load.ok, events, openRecoveries });
      } finally {
        await lb.stop();
      }
    }
  } finally {
    await site.close();
  }
  const { log: _log, ...options } = opts;
  return { options: { ...options, nodeArgs: opts.nodeArgs ?? SHIPPED_NODE_ARGS }, cases };
}

/** Wait until the coordinator has routed every journaled event; returns how many rows the journal has. */
async function routed(lb: LifeboatProcess): Promise<number> {
  const db = new Database(lb.dbPath, { readonly: true, fileMustExist: true });
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const row = db.prepare("SELECT COUNT(*) AS rows, SUM(disposition = 'unprocessed') AS left FROM events").get() as { rows: number; left: number | null };
      if (!row.left) return row.rows;
      if (Date.now() > deadline) throw new Error(`${row.left} events still unrouted after 120 s`);
      await sleep(200);
    }
  } finally {
    db.close();
  }
}

/**
 * After a burst V8 keeps the garbage it made until its memory reducer runs, 10 to 20 s into
 * quiet (the blocked recoveries keep re-checking their gates meanwhile, as they would). One
 * sample `settleSeconds` after the last event was routed.
 */
async function settle(lb: LifeboatProcess, seconds: number): Promise<{ rss: number; seconds: number }> {
  await sleep(seconds * 1000);
  return { rss: lb.memory().rss, seconds };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
