/**
 * lifeboat's benchmarks: `npm run bench` (builds first; the daemon under test is the built
 * `lifeboat serve`). Writes bench/results/latest.json and bench/RESULTS.md.
 *
 *   npm run bench                          everything, full length (about ten minutes)
 *   npm run bench -- --only intake,memory  some of: intake, evacuation, fence, memory, detection, flood,
 *                                          console, storm;
 *                                          the others keep their figures from latest.json
 *   npm run bench -- --only detection      the detection timeline alone (npm run bench:detection)
 *   npm run bench -- --quick               short runs to try the harness; results go to the OS temp directory
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchDetection } from "./detection.js";
import { benchConsole } from "./console.js";
import { benchEvacuation } from "./evacuation.js";
import { benchFenceLatency } from "./fence-latency.js";
import { benchFlood } from "./flood.js";
import { benchIntake } from "./intake.js";
import { waitForQuiet } from "./lib/cpu.js";
import { describeMachine, machineLine } from "./lib/machine.js";
import { ROOT } from "./lib/lifeboat.js";
import { BENCH_FIELDS, BENCHES, buildReport, renderMarkdown, type BenchName, type BenchResults, type Report } from "./lib/report.js";
import { benchMemory } from "./memory.js";
import { benchStorm } from "./storm.js";

const ALL = BENCHES;
type Bench = BenchName;

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    "max-wait": { type: "string", default: "180" },
  },
});
const only = new Set((values.only ? values.only.split(",") : ALL).map((s) => s.trim()) as Bench[]);
for (const b of only) if (!ALL.includes(b)) throw new Error(`unknown benchmark ${b}; choose from ${ALL.join(", ")}`);
const quick = values.quick;
const maxWaitMs = Number(values["max-wait"]) * 1000;

const log = (line: string): void => console.log(`[bench] ${line}`);
const started = Date.now();
const machine = describeMachine();
log(machineLine(machine));

/** Before each benchmark: give other work on the machine a chance to finish; say how busy it was. */
const quiet = async (name: string): Promise<number> => {
  const busy = await waitForQuiet({ threshold: 0.25, maxMs: quick ? 0 : maxWaitMs, log });
  if (busy >= 0.25) log(`${name}: starting although ${Math.round(busy * 100)}% of the CPUs are busy with other work; the numbers will suffer`);
  return busy;
};

const results: BenchResults = { generatedAt: new Date().toISOString(), quick, machine, busyBefore: {} };
if (only.has("intake")) {
  results.busyBefore.intake = await quiet("intake");
  results.intake = await benchIntake({ connections: 10, warmupSeconds: quick ? 1 : 3, durationSeconds: quick ? 3 : 10, hosts: 20, log });
}
if (only.has("evacuation")) {
  results.busyBefore.evacuation = await quiet("evacuation");
  results.evacuation = await benchEvacuation({
    instances: quick ? 40 : 200,
    evacuationMs: 1000,
    concurrencies: [8, 32],
    pollIntervalSeconds: 0.05,
    log,
  });
}
if (only.has("fence")) {
  results.busyBefore.fence = await quiet("fence");
  results.fenceLatency = await benchFenceLatency({ runs: quick ? 5 : 30, log });
}
if (only.has("memory")) {
  results.busyBefore.memory = await quiet("memory");
  const memory = { alerts: quick ? 2000 : 10_000, connections: 10, idleSeconds: quick ? 2 : 5, settleSeconds: quick ? 5 : 30, hosts: 20, log };
  results.memory = await benchMemory(memory);
  // The same burst under node's own heap sizing (no NODE_OPTIONS), for comparison.
  results.memoryNodeDefaults = await benchMemory({ ...memory, mixes: ["distinct"], nodeArgs: [] });
}
if (only.has("detection")) {
  results.busyBefore.detection = await quiet("detection");
  results.detection = await benchDetection({ runs: quick ? 2 : 5, gateRuns: quick ? 2 : 5, scale: 10, log });
}
if (only.has("flood")) {
  results.busyBefore.flood = await quiet("flood");
  results.flood = await benchFlood({ unknownHosts: quick ? 1000 : 4000, settleSeconds: quick ? 3 : 10, log });
}
if (only.has("console")) {
  results.busyBefore.console = await quiet("console");
  results.console = await benchConsole({ recoveries: quick ? 300 : 1000, hosts: 100, requests: quick ? 10 : 50, log });
}
if (only.has("storm")) {
  results.busyBefore.storm = await quiet("storm");
  // A rack of 10 hosts × 50 instances on a site of 200 hosts; --quick: 10 × 10 on 40 hosts.
  results.storm = await benchStorm({
    hosts: quick ? 40 : 200,
    zones: quick ? 2 : 4,
    racks: quick ? 4 : 20,
    rack: "rack-02",
    instancesPerHost: quick ? 10 : 50,
    backgroundPerHost: 2,
    evacuationMs: 1000,
    siteBudget: 50,
    novaRequestsPerSecond: 400,
    // A poll every 1/20 of an evacuation, as in the evacuation benchmark. The shipped 2 s
    // against evacuations of a minute or more in Nova is 1/30 or less: no faster than this.
    pollIntervalSeconds: 0.05,
    stormMaxRecoveries: 3,
    trickleIntervalMs: 50,
    variants: ["sqlite", "etcd", "ha-failover"],
    // One run on a shared 2-core machine is mostly its noise (ratio ±0.05, p99 ×2 between runs).
    repeat: quick ? 1 : 3,
    log,
  });
}
results.durationSeconds = Math.round((Date.now() - started) / 1000);

const dir = quick ? tmpdir() : join(ROOT, "bench", "results");
mkdirSync(dir, { recursive: true });
const jsonPath = join(dir, quick ? "lifeboat-bench-quick.json" : "latest.json");
results.measuredAt = Object.fromEntries([...only].map((b) => [b, results.generatedAt]));
// A partial run keeps the other benchmarks' last figures, so RESULTS.md stays whole.
if (!quick && only.size < ALL.length && existsSync(jsonPath)) {
  const previous = JSON.parse(readFileSync(jsonPath, "utf8")) as Report;
  for (const b of ALL.filter((x) => !only.has(x))) {
    const fields = BENCH_FIELDS[b];
    if (fields.every((f) => previous[f] === undefined)) continue;
    Object.assign(results, Object.fromEntries(fields.map((f) => [f, previous[f]])));
    if (previous.busyBefore[b] !== undefined) results.busyBefore[b] = previous.busyBefore[b];
    results.measuredAt[b] = previous.measuredAt?.[b] ?? previous.generatedAt;
  }
}

const report = buildReport(results);
const mdPath = quick ? join(dir, "lifeboat-bench-quick.md") : join(ROOT, "bench", "RESULTS.md");
writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(mdPath, renderMarkdown(report));
for (const t of report.targets) log(`${t.pass ? "PASS" : "FAIL"}  ${t.metric}: ${t.value} (target ${t.target})`);
log(`wrote ${jsonPath} and ${mdPath} in ${results.durationSeconds} s`);
