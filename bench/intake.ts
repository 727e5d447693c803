import Database from "better-sqlite3";
import type { Daemon } from "../test/support/daemon.js";
import { startSandbox } from "../src/sandbox/environment.js";
import type { LoadResult, LoadSpec } from "./load/webhook-load.js";
import { cpuWindow, type CpuWindow } from "./lib/cpu.js";
import { startLifeboat, WEBHOOK_TOKEN } from "./lib/lifeboat.js";
import type { Mix } from "./lib/payloads.js";
import { benchFile, runJsonScript, startBareExpress } from "./lib/process.js";
import { serveConfig } from "./lib/site.js";

/**
 * Benchmark 1: webhook intake with durable journaling.
 *
 * The server under test is `lifeboat serve` (built CLI, real HTTP app, SQLite journal in
 * WAL with synchronous=FULL and group commit, on a file in the OS temp directory), pointed at
 * a simulated site so its pipeline runs in the background as in production. The baseline is
 * a bare express handler (express.json + 202) in its own process. The load generator is
 * autocannon in a third process. Both mixes run against both servers in the same run.
 */
export interface IntakeOptions {
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Hosts of the simulated site; the `distinct` deliveries cycle through all of them. */
  hosts: number;
  log?: (line: string) => void;
}

export interface IntakeCase {
  server: "lifeboat" | "bare-express";
  mix: Mix;
  load: LoadResult;
  /** CPU use during the run (warm-up included): the server's, the load generator's, everyone else's. */
  cpu: CpuWindow;
  /** Server CPU time per delivery (warm-up included), ms: what a request costs, whatever the contention. */
  serverCpuPerDeliveryMs: number;
  /** lifeboat only: journal rows and deliveries counted in the SQLite file afterwards. */
  journal?: { rows: number; deliveries: number; expectedDeliveries: number };
}

export interface IntakeResult {
  options: Omit<IntakeOptions, "log">;
  cases: IntakeCase[];
}

const LOAD = benchFile("load/webhook-load.ts");

export async function benchIntake(opts: IntakeOptions): Promise<IntakeResult> {
  const log = opts.log ?? (() => undefined);
  const site = await startSandbox({ cloud: { generate: { hosts: opts.hosts, serversPerHost: 4 } } });
  const cases: IntakeCase[] = [];
  const measure = async (server: IntakeCase["server"], mix: Mix, daemon: Daemon, token?: string): Promise<IntakeCase> => {
    const spec: LoadSpec = {
      url: daemon.url,
      ...(token ? { token } : {}),
      mix,
      hosts: site.hosts,
      connections: opts.connections,
      warmupSeconds: opts.warmupSeconds,
      durationSeconds: opts.durationSeconds,
    };
    log(`intake: ${server}, ${mix} deliveries, ${opts.connections} connections, ${opts.warmupSeconds} s warm-up + ${opts.durationSeconds} s`);
    const window = cpuWindow({ server: daemon.pid, bench: process.pid });
    const load = await runJsonScript<LoadResult>(LOAD, spec);
    const cpu = window.end({ load: load.cpuMs });
    if (load.non2xx > 0 || load.errors > 0) log(`  warning: ${load.non2xx} non-2xx answers, ${load.errors} errors`);
    return { server, mix, load, cpu, serverCpuPerDeliveryMs: (cpu.processes.server ?? Number.NaN) / load.sent };
  };
  try {
    for (const mix of ["distinct", "duplicates"] as const) {
      const bare = await startBareExpress();
      try {
        cases.push(await measure("bare-express", mix, bare));
      } finally {
        await bare.stop();
      }
      const lb = await startLifeboat(`intake-${mix}`, (port, dir) => serveConfig(site, port, dir));
      try {
        const c = await measure("lifeboat", mix, lb, WEBHOOK_TOKEN);
        cases.push({ ...c, journal: { ...journalCounts(lb.dbPath), expectedDeliveries: c.load.sent } });
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

/** What the journal holds: every 202 must be a row (distinct) or a counted delivery (duplicates). */
function journalCounts(path: string): { rows: number; deliveries: number } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare("SELECT COUNT(*) AS rows, COALESCE(SUM(deliveries), 0) AS deliveries FROM events").get() as { rows: number; deliveries: number };
  } finally {
    db.close();
  }
}
