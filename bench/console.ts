import { join } from "node:path";
import { startSandbox } from "../packages/sandbox/src/environment.js";
import { SqliteStore } from "../src/store/sqlite.js";
import { ADMIN_TOKEN, startLifeboat } from "./lib/lifeboat.js";
import { distribution, type Distribution } from "./lib/stats.js";
import { lifeboatConfigData, removeDir, tempDir } from "../test/kit/config.js";

/**
 * Benchmark 5: console pages with a full journal.
 *
 * A SQLite journal holds `recoveries` recoveries over `hosts` hosts, each with the records
 * a real one has (transitions, gate decisions, a fence step in the device's words,
 * instances, notifications), a few still blocked and some hosts held down. `lifeboat serve`
 * (built CLI) opens it; one browser session asks each page `requests` times in a row, and
 * the time from request to the last byte of the HTML is measured.
 */
export interface ConsoleBenchOptions {
  recoveries: number;
  hosts: number;
  requests: number;
  log?: (line: string) => void;
}

export interface ConsolePageResult {
  page: string;
  path: string;
  bytes: number;
  latencyMs: Distribution;
}

export interface ConsoleResult {
  options: Omit<ConsoleBenchOptions, "log">;
  measuredAt: string;
  /** Records written to the journal before the run. */
  records: number;
  pages: ConsolePageResult[];
}

const INSTANCES = 8;
const GATES = ["maintenance", "pause", "silences", "approval", "cooldown", "nova-service", "bmc", "capacity", "storm"];

/** Write a journal that looks like months of use, through the store itself. */
async function fillJournal(path: string, o: ConsoleBenchOptions): Promise<{ records: number; sampleId: string; sampleHost: string }> {
  const store = new SqliteStore(path);
  await store.init();
  let records = 0;
  let sampleId = "";
  const start = Date.UTC(2026, 0, 1);
  for (let i = 0; i < o.recoveries; i++) {
    const host = `node-${String(i % o.hosts).padStart(3, "0")}`;
    const at = new Date(start + i * 3_600_000).toISOString();
    const blocked = i >= o.recoveries - 5;
    const r = await store.createRecovery({ host, incidentKey: `${host}@${at}`, kind: "alert", trigger: "alert", dryRun: false, confirmedOff: false, detectedAt: at, graceUntil: at, reason: `ComputeNodeDown firing for ${host} since ${at}` });
    // One evaluation of every gate, written together as the gate runner does.
    await store.recordDecisions(GATES.map((gate) => ({ recoveryId: r.id, gate, result: blocked && gate === "storm" ? "block" : "pass", reason: `${gate}: checked for ${host}`, at })));
    await store.transition(r.id, "pending", "validating", "grace period over (30s) and the alert still fires");
    if (blocked) {
      await store.transition(r.id, "validating", "blocked", "storm: storm guard: 4 recoveries in 600s > max_recoveries 3", { block: { gates: ["storm"], recheck: true, approvable: true, at, episode: at, signature: "storm:block", since: at } });
      records += GATES.length + 3;
      continue;
    }
    await store.transition(r.id, "validating", "fencing", "all gates pass");
    const device = `bmc-${host}`;
    await store.putStep({
      recoveryId: r.id,
      key: "fence",
      state: "succeeded",
      attempts: 1,
      startedAt: at,
      finishedAt: at,
      result: { ok: true, device, attempts: [{ device, driver: "redfish", result: { ok: true, state: "off", already: false, message: "off: ForceOff accepted (HTTP 204); read back: PowerState: Off", durationMs: 420, attempts: 1 } }], message: `${host} is off` },
    });
    await store.transition(r.id, "fencing", "isolating", `powered off, confirmed by ${device}`, { fenceState: "off" });
    await store.transition(r.id, "isolating", "evacuating", "compute service forced down and disabled");
    const more: Promise<unknown>[] = [];
    for (let n = 0; n < INSTANCES; n++) {
      more.push(
        store.putInstance({ recoveryId: r.id, instanceId: `${r.id}-vm-${n}`, name: `vm-${n}`, projectId: `project-${n % 3}`, originalStatus: "ACTIVE", state: "evacuated", priority: 0, targetHost: `node-${String((i + n + 1) % o.hosts).padStart(3, "0")}`, attempts: 1 }),
      );
    }
    for (const [n, who] of ["ops@example.com", "alice@acme.example", "carol@globex.example", "erin@initech.example"].entries()) {
      more.push(store.putNotification({ recoveryId: r.id, dedupKey: `${r.id}:${n}`, channel: "email", kind: n ? "tenant" : "operator-summary", recipient: who, subject: `Recovery of ${host}`, state: "sent", attempts: 1, sentAt: at }));
    }
    await Promise.all(more);
    await store.transition(r.id, "evacuating", "notifying", `${INSTANCES} instance(s) evacuated`);
    await store.transition(r.id, "notifying", "completed", "recovery completed; people notified", { outcome: "completed" });
    if (i >= o.recoveries - o.hosts) await store.putHostState({ host, fenced: i % 5 === 0, recoveryId: r.id, by: device, at }, (await store.getHostState(host))?.version ?? 0);
    records += GATES.length + 7 + 1 + INSTANCES + 4;
    sampleId = r.id;
  }
  await store.close();
  return { records: records + o.recoveries, sampleId, sampleHost: "node-007" };
}

export async function benchConsole(o: ConsoleBenchOptions): Promise<ConsoleResult> {
  const log = o.log ?? (() => undefined);
  const dir = tempDir();
  const dbPath = join(dir, "lifeboat.db");
  const site = await startSandbox({ cloud: { generate: { hosts: 4, serversPerHost: 2 } } });
  try {
    log(`console: writing ${o.recoveries} recoveries over ${o.hosts} hosts to the journal…`);
    const { records, sampleId, sampleHost } = await fillJournal(dbPath, o);
    // At info (its URL is read from the "listening" line): lifeboat writes no line per request, so the pages cost the same as at warn.
    const lb = await startLifeboat("bench-console", lifeboatConfigData({ store: { path: dbPath } }, { site, dir, pace: "paced", logLevel: "info" }));
    try {
      const login = await fetch(`${lb.url}/console/login`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${ADMIN_TOKEN}` });
      const cookie = login.headers.get("set-cookie")?.split(";")[0];
      if (login.status !== 303 || !cookie) throw new Error(`console login answered ${login.status}`);
      const lastPage = Math.ceil(o.recoveries / 50);
      const pages: [string, string][] = [
        ["overview", "/console"],
        ["recoveries, page 1", "/console/recoveries"],
        [`recoveries, page ${lastPage} (the oldest)`, `/console/recoveries?page=${lastPage}`],
        ["recoveries of one host", `/console/recoveries?host=${sampleHost}`],
        ["recoveries in one state", "/console/recoveries?state=completed&page=5"],
        ["one recovery", `/console/recoveries/${sampleId}`],
        ["one host", `/console/hosts/${sampleHost}`],
      ];
      const out: ConsolePageResult[] = [];
      for (const [page, path] of pages) {
        const times: number[] = [];
        let bytes = 0;
        for (let i = 0; i < o.requests + 5; i++) {
          const t0 = performance.now();
          const res = await fetch(`${lb.url}${path}`, { headers: { cookie }, signal: AbortSignal.timeout(10_000) });
          const body = await res.text();
          const ms = performance.now() - t0;
          if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
          bytes = Buffer.byteLength(body);
          if (i >= 5) times.push(ms); // the first few warm the code paths
        }
        const d = distribution(times);
        out.push({ page, path, bytes, latencyMs: d });
        log(`console: ${page}: p50 ${d.p50.toFixed(1)} ms, p99 ${d.p99.toFixed(1)} ms, ${Math.round(bytes / 1024)} kB`);
      }
      return { options: { recoveries: o.recoveries, hosts: o.hosts, requests: o.requests }, measuredAt: new Date().toISOString(), records, pages: out };
    } finally {
      await lb.stop();
    }
  } finally {
    await site.close();
    removeDir(dir);
  }
}
