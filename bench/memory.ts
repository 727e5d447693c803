import Database from "better-sqlite3";
import { startSandbox } from "../src/sandbox/environment.js";
import type { LoadResult, LoadSpec } from "./load/webhook-load.js";
import { startLifeboat, WEBHOOK_TOKEN, type LifeboatProcess } from "./lib/lifeboat.js";
import type { Mix } from "./lib/payloads.js";
import { benchFile, runJsonScript } from "./lib/process.js";
import { serveConfig } from "./lib/site.js";

/**
 * Benchmark 4: resident memory of a `lifeboat serve` process, idle and after 10,000 alerts.
 *
 * One fresh process per mix, pointed at the simulated site (so its drivers, sessions and
 * background recoveries exist as in production). RSS is read from /proc: once the process
 * has been idle for `idleSeconds` after start-up, then after the alerts were sent and
 * every journaled event was routed; the peak (VmHWM) over the whole life is kept too.
 */
export interface MemoryOptions {
  alerts: number;
  connections: number;
  idleSeconds: number;
  /** Hosts of the simulated site; distinct alerts cycle through all of them. */
  hosts: number;
  log?: (line: string) => void;
}

export interface MemoryCase {
  mix: Mix;
  idleRss: number;
  afterRss: number;
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
    for (const mix of ["distinct", "duplicates"] as const) {
      const lb = await startLifeboat(`memory-${mix}`, (port, dir) => serveConfig(site, port, dir));
      try {
        await sleep(opts.idleSeconds * 1000);
        const idle = lb.memory();
        log(`memory: ${mix}: idle RSS ${mb(idle.rss)} MB; sending ${opts.alerts} alerts`);
        const spec: LoadSpec = { url: lb.url, token: WEBHOOK_TOKEN, mix, hosts: site.hosts, connections: opts.connections, warmupSeconds: 0, durationSeconds: 0, amount: opts.alerts };
        const load = await runJsonScript<LoadResult>(LOAD, spec);
        const events = await routed(lb);
        await sleep(1000);
        const after = lb.memory();
        const status = await lb.api<{ openRecoveries: Record<string, number> }>("/api/v1/status");
        const openRecoveries = Object.values(status.openRecoveries).reduce((a, b) => a + b, 0);
        log(`memory: ${mix}: after ${load.ok} alerts RSS ${mb(after.rss)} MB, peak ${mb(after.peak)} MB`);
        cases.push({ mix, idleRss: idle.rss, afterRss: after.rss, peakRss: after.peak, accepted: load.ok, events, openRecoveries });
      } finally {
        await lb.stop();
      }
    }
  } finally {
    await site.close();
  }
  const { log: _log, ...options } = opts;
  return { options, cases };
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
