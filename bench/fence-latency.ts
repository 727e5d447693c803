import { startSandbox } from "../packages/sandbox/src/environment.js";
import { waitUntil } from "../test/support/daemon.js";
import { cpuWindow, type CpuWindow } from "./lib/cpu.js";
import { finishedRecovery, postWebhook, startLifeboat } from "./lib/lifeboat.js";
import { payloadMaker } from "./lib/payloads.js";
import { distribution, type Distribution } from "./lib/stats.js";
import { lifeboatConfigData, tempDir } from "../test/kit/config.js";
import { novaSaysDown } from "../test/kit/site.js";

/**
 * Benchmark 3: webhook received → fence command at the BMC, beyond the configured waits.
 *
 * `runs` hosts of a simulated site die at once and stay dead until Nova sees them down.
 * Then, one host at a time, the bench posts its ComputeNodeDown alert to `lifeboat serve`
 * (grace 0, one Nova check, no re-check interval) and records, on one clock in this process,
 * the instant before the POST and the instant the host's Redfish BMC receives the
 * ComputeSystem.Reset ForceOff. Every gate runs for real (Nova service state, BMC reachable,
 * capacity through Placement, storm guard), and each recovery runs to its end (isolate,
 * evacuate, notify) before the next alert, so runs do not overlap.
 */
export interface FenceLatencyOptions {
  runs: number;
  log?: (line: string) => void;
}

export interface FenceLatencyResult {
  options: Omit<FenceLatencyOptions, "log">;
  /** Webhook POST sent → BMC received ForceOff, ms, in run order. */
  samplesMs: number[];
  latencyMs: Distribution;
  /** The same without the first run (cold: first Nova/Placement/BMC connections, JIT). */
  warmLatencyMs: Distribution;
  outcomes: Record<string, number>;
  cpu: CpuWindow;
}

export async function benchFenceLatency(opts: FenceLatencyOptions): Promise<FenceLatencyResult> {
  const log = opts.log ?? (() => undefined);
  const site = await startSandbox({
    cloud: { generate: { hosts: opts.runs + 2, serversPerHost: 2 }, evacuationDurationMs: 200, serviceDownTimeSeconds: 2, reportIntervalSeconds: 1 },
    powerDelayMs: 100,
  });
  try {
    const victims = site.hosts.slice(0, opts.runs);
    const received = new Map<string, number>();
    for (const h of victims) {
      const sys = site.redfish.system(h);
      const wired = sys.beforeReset;
      sys.beforeReset = (type) => {
        if (type === "ForceOff" && !received.has(h)) received.set(h, performance.now());
        wired?.(type);
      };
      site.failHost(h);
    }
    await waitUntil("the failed hosts down in Nova", () => victims.every((h) => novaSaysDown(site, h)), { timeoutMs: 15_000 });

    const dir = tempDir();
    const lb = await startLifeboat(
      "fence-latency",
      lifeboatConfigData(
        {
          recovery: { grace_seconds: 0 },
          gates: {
            confirmations: [{ driver: "nova-service", stale_seconds: 2, checks: 1, interval_seconds: 0 }, { driver: "bmc" }],
            storm: { max_recoveries: opts.runs + 1, max_percent: 100 },
          },
          evacuation: { poll_interval_seconds: 0.05 },
        },
        { site, dir, pace: "paced", logLevel: process.env.LIFEBOAT_BENCH_DEBUG ? "debug" : "info" },
      ),
      { dir },
    );
    const samples: number[] = [];
    const outcomes: Record<string, number> = {};
    const window = cpuWindow({ lifeboat: lb.pid, bench: process.pid });
    try {
      for (const [i, host] of victims.entries()) {
        const body = payloadMaker("distinct", [host])(i);
        const sent = performance.now();
        const status = await postWebhook(lb.url, body);
        if (status !== 202) throw new Error(`webhook for ${host} answered ${status}`);
        await waitUntil(`ForceOff at ${host}'s BMC`, () => received.has(host), { timeoutMs: 30_000, intervalMs: 5 }).catch(async (err: unknown) => {
          const d = await finishedRecovery(lb, host, 1).catch(() => null);
          throw new Error(`${(err as Error).message}; recovery: ${d ? `${d.state} ${d.reason}` : "not finished"}\n${lb.output().slice(-3000)}`);
        });
        samples.push(received.get(host)! - sent);
        const d = await finishedRecovery(lb, host, 60_000);
        outcomes[d.state] = (outcomes[d.state] ?? 0) + 1;
        log(`fence latency: ${host} ${samples.at(-1)!.toFixed(1)} ms (${d.state})`);
        if (process.env.LIFEBOAT_BENCH_DEBUG) log(lb.output().slice(-20_000));
      }
    } finally {
      await lb.stop();
    }
    const cpu = window.end();
    const { log: _log, ...options } = opts;
    return { options, samplesMs: samples, latencyMs: distribution(samples), warmLatencyMs: distribution(samples.slice(1)), outcomes, cpu };
  } finally {
    await site.close();
  }
}
