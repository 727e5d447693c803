import Database from "better-sqlite3";
import { waitUntil } from "../test/support/daemon.js";
import { startSandbox } from "../packages/sandbox/src/environment.js";
import type { LoadResult, LoadSpec } from "./load/webhook-load.js";
import { cpuWindow, type CpuWindow } from "./lib/cpu.js";
import { postWebhook, startLifeboat, WEBHOOK_TOKEN, type LifeboatProcess } from "./lib/lifeboat.js";
import { payloadMaker, type Mix } from "./lib/payloads.js";
import { benchFile, runJsonScript, startBareExpress } from "./lib/process.js";
import { lifeboatConfigData, tempDir } from "../test/kit/config.js";

/**
 * Benchmark 1: webhook intake with durable journaling.
 *
 * The server under test is `lifeboat serve` (built CLI, real HTTP app, SQLite journal in
 * WAL with group commit, each write settled once the WAL is synced, on a file in the OS temp directory), pointed at
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
  /** lifeboat only: deliveries sent before the load (one per host) to open the recoveries. */
  primed?: number;
  /** Server CPU time per delivery (warm-up included), ms: what a request costs, whatever the contention. */
  serverCpuPerDeliveryMs: number;
  /**
   * lifeboat only: journal rows and delivery counts in the SQLite file afterwards, against
   * the deliveries answered 202 (priming and warm-up included) and those sent at all
   * (a request still in flight when the load stopped may or may not have been journaled).
   */
  journal?: { rows: number; deliveries: number; accepted: number; sent: number; ok: boolean };
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
  const measure = async (server: IntakeCase["server"], mix: Mix, daemon: { url: string; pid: number }, lifeboat?: LifeboatProcess): Promise<IntakeCase> => {
    const spec: LoadSpec = {
      url: daemon.url,
      ...(lifeboat ? { token: WEBHOOK_TOKEN } : {}),
      mix,
      hosts: site.hosts,
      connections: opts.connections,
      warmupSeconds: opts.warmupSeconds,
      durationSeconds: opts.durationSeconds,
    };
    log(`intake: ${server}, ${mix} deliveries, ${opts.connections} connections, ${opts.warmupSeconds} s warm-up + ${opts.durationSeconds} s`);
    const primed = lifeboat ? await prime(lifeboat, mix, site.hosts) : undefined;
    if (primed !== undefined) spec.startAt = primed;
    const window = cpuWindow({ server: daemon.pid, bench: process.pid });
    const load = await runJsonScript<LoadResult>(LOAD, spec);
    const cpu = window.end({ load: load.cpuMs });
    if (load.non2xx > 0 || load.errors > 0) log(`  warning: ${load.non2xx} non-2xx answers, ${load.errors} errors`);
    return { server, mix, load, cpu, serverCpuPerDeliveryMs: (cpu.processes.server ?? Number.NaN) / load.sent, ...(primed !== undefined ? { primed } : {}) };
  };
  try {
    for (const mix of ["distinct", "duplicates"] as const) {
      const bare = await startBareExpress();
      try {
        cases.push(await measure("bare-express", mix, bare));
      } finally {
        await bare.stop();
      }
      const dir = tempDir();
      const lb = await startLifeboat(`intake-${mix}`, lifeboatConfigData({}, { site, dir, pace: "paced", logLevel: "info" }), { dir });
      try {
        const c = await measure("lifeboat", mix, lb, lb);
        const primed = c.primed ?? 0;
        const counts = journalCounts(lb.dbPath);
        const accepted = primed + c.load.acceptedTotal;
        const sent = primed + c.load.sent;
        // Every 202 left a row (distinct) or a counted delivery (duplicates); nothing more than was sent.
        const journaled = mix === "distinct" ? counts.rows : counts.deliveries;
        cases.push({ ...c, journal: { ...counts, accepted, sent, ok: journaled >= accepted && journaled <= sent } });
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

/**
 * Before the load: one delivery per host, then wait until lifeboat has settled the
 * recoveries they open (gates run, blocked, operators mailed), so the measurement is the
 * steady intake of an ongoing incident rather than the one-off start of 20 recoveries.
 * Returns the next delivery number, so that measured deliveries stay distinct from these.
 */
async function prime(lb: LifeboatProcess, mix: Mix, hosts: string[]): Promise<number> {
  const make = payloadMaker(mix, hosts);
  const count = mix === "distinct" ? hosts.length : 1;
  for (let i = 0; i < count; i++) {
    const status = await postWebhook(lb.url, make(i));
    if (status !== 202) throw new Error(`priming delivery answered ${status}`);
  }
  await waitUntil(
    "the primed recoveries to settle",
    async () => {
      const s = await lb.api<{ openRecoveries: Record<string, number> }>("/api/v1/status");
      const open = Object.values(s.openRecoveries).reduce((a, b) => a + b, 0);
      return open >= count && !s.openRecoveries.pending && !s.openRecoveries.validating;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  await new Promise((r) => setTimeout(r, 1000)); // their notifications go out just after
  return count;
}
