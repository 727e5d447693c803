/**
 * lifeboat's benchmarks: `npm run bench` (builds first; the daemon under test is the built
 * `lifeboat serve`). Writes bench/results/latest.json and bench/RESULTS.md.
 *
 *   npm run bench                          everything, full length (a few minutes)
 *   npm run bench -- --only intake,memory  some of: intake, evacuation, fence, memory, console
 *                                          (the others' last results are kept in the report)
 *   npm run bench -- --quick               short runs to try the harness; results go to the OS temp directory
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchConsole } from "./console.js";
import { benchEvacuation } from "./evacuation.js";
import { benchFenceLatency } from "./fence-latency.js";
import { benchIntake } from "./intake.js";
import { waitForQuiet } from "./lib/cpu.js";
import { describeMachine, machineLine } from "./lib/machine.js";
import { ROOT } from "./lib/lifeboat.js";
import { buildReport, renderMarkdown, type BenchResults } from "./lib/report.js";
import { benchMemory } from "./memory.js";

const ALL = ["intake", "evacuation", "fence", "memory", "console"] as const;
type Bench = (typeof ALL)[number];

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

const latestJson = join(ROOT, "bench", "results", "latest.json");
// A partial run keeps the last full results of the benchmarks it did not run.
const previous: Partial<BenchResults> = !quick && only.size < ALL.length && existsSync(latestJson) ? (JSON.parse(readFileSync(latestJson, "utf8")) as BenchResults) : {};
const results: BenchResults = {
  ...(only.has("intake") ? {} : { intake: previous.intake }),
  ...(only.has("evacuation") ? {} : { evacuation: previous.evacuation }),
  ...(only.has("fence") ? {} : { fenceLatency: previous.fenceLatency }),
  ...(only.has("memory") ? {} : { memory: previous.memory, memoryNodeDefaults: previous.memoryNodeDefaults }),
  ...(only.has("console") ? {} : { console: previous.console }),
  generatedAt: new Date().toISOString(),
  quick,
  machine,
  busyBefore: { ...previous.busyBefore },
};
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
if (only.has("console")) {
  results.busyBefore.console = await quiet("console");
  results.console = await benchConsole({ recoveries: quick ? 300 : 1000, hosts: 100, requests: quick ? 10 : 50, log });
}
results.durationSeconds = Math.round((Date.now() - started) / 1000);

const report = buildReport(results);
const dir = quick ? tmpdir() : join(ROOT, "bench", "results");
mkdirSync(dir, { recursive: true });
const jsonPath = join(dir, quick ? "lifeboat-bench-quick.json" : "latest.json");
const mdPath = quick ? join(dir, "lifeboat-bench-quick.md") : join(ROOT, "bench", "RESULTS.md");
writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(mdPath, renderMarkdown(report));
for (const t of report.targets) log(`${t.pass ? "PASS" : "FAIL"}  ${t.metric}: ${t.value} (target ${t.target})`);
log(`wrote ${jsonPath} and ${mdPath} in ${results.durationSeconds} s`);
