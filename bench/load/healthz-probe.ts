/**
 * The health checker of the flood benchmark, in its own process: GET /healthz every
 * `intervalMs`, open loop (each request leaves on its tick whether or not the previous one
 * was answered, as independent checkers do), until a line arrives on stdin.
 *
 *   node --import tsx bench/load/healthz-probe.ts '<json ProbeSpec>'
 *
 * Prints one JSON line (ProbeResult): every sample's send time (ms since the Unix epoch) and
 * latency, so the caller can cut out the window it wants.
 */
import { Agent, request } from "node:http";

export interface ProbeSpec {
  url: string;
  intervalMs: number;
  /** Give up on one request after this long (counted as a sample of this latency). */
  timeoutMs: number;
}

export interface ProbeResult {
  /** [sent at (epoch ms), latency ms, HTTP status or 0 on error] */
  samples: [number, number, number][];
}

function probe(url: URL, agent: Agent, timeoutMs: number): Promise<[number, number]> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on("end", () => resolve([performance.now() - t0, res.statusCode ?? 0]));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve([performance.now() - t0, 0]));
    req.end();
  });
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? "{}") as ProbeSpec;
  const url = new URL("/healthz", spec.url);
  const agent = new Agent({ keepAlive: true });
  const samples: Promise<[number, number, number]>[] = [];
  let stopped = false;
  process.stdin.once("data", () => (stopped = true));
  process.stdin.once("end", () => (stopped = true));
  const start = Date.now();
  for (let tick = 0; !stopped; tick++) {
    const at = Date.now();
    samples.push(probe(url, agent, spec.timeoutMs).then(([ms, status]) => [at, ms, status]));
    const next = start + (tick + 1) * spec.intervalMs;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
  const result: ProbeResult = { samples: await Promise.all(samples) };
  agent.destroy();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stdin.destroy();
}

await main();
