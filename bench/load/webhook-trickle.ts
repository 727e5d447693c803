/**
 * The steady trickle of Alertmanager deliveries of the storm benchmark, in its own process (so
 * the simulated cloud working in the harness's process does not delay or time it): POST the
 * given bodies in turn to lifeboat's webhook every `intervalMs`, open loop (each delivery
 * leaves on its tick whether or not the previous one was answered, as Alertmanager's group
 * timers do), from the first line on stdin ("go") until the next one (or stdin's end). The bearer token comes from the environment
 * (LIFEBOAT_WEBHOOK_TOKEN), never from the command line.
 *
 *   node --import tsx bench/load/webhook-trickle.ts '<json TrickleSpec>'
 *
 * Prints "ready" once it waits for the go, and at the end one JSON line (TrickleResult): every delivery's send time (ms since the Unix epoch),
 * latency and status, so the caller can cut out the window it wants.
 */
import { Agent, request } from "node:http";

export interface TrickleSpec {
  /** lifeboat's base URL. */
  url: string;
  intervalMs: number;
  /** Give up on one delivery after this long (counted as a sample of this latency, status 0). */
  timeoutMs: number;
  /** The deliveries' JSON texts, sent in turn. */
  bodies: string[];
}

export interface TrickleResult {
  /** [sent at (epoch ms), latency ms, HTTP status or 0 on error] */
  samples: [number, number, number][];
}

function post(url: URL, agent: Agent, token: string, body: string, timeoutMs: number): Promise<[number, number]> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: "POST",
        agent,
        timeout: timeoutMs,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: `Bearer ${token}`, "user-agent": "Alertmanager/0.25.0" },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve([performance.now() - t0, res.statusCode ?? 0]));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve([performance.now() - t0, 0]));
    req.end(body);
  });
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? "{}") as TrickleSpec;
  const token = process.env.LIFEBOAT_WEBHOOK_TOKEN ?? "";
  const url = new URL("/api/v1/alerts", spec.url);
  const agent = new Agent({ keepAlive: true });
  const samples: Promise<[number, number, number]>[] = [];
  let stopped = false;
  // One line starts the deliveries, the next stops them (lines may arrive in one chunk).
  let lines = 0;
  let go: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (go = resolve));
  process.stdin.on("data", (b: Buffer) => {
    lines += b.toString().split("\n").length - 1;
    if (lines >= 1) go();
    if (lines >= 2) stopped = true;
  });
  process.stdin.once("end", () => {
    stopped = true;
    go();
  });
  process.stdout.write("ready\n");
  await started;
  const start = Date.now();
  for (let tick = 0; !stopped; tick++) {
    const at = Date.now();
    const body = spec.bodies[tick % spec.bodies.length]!;
    samples.push(post(url, agent, token, body, spec.timeoutMs).then(([ms, status]) => [at, ms, status]));
    const next = start + (tick + 1) * spec.intervalMs;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
  const result: TrickleResult = { samples: await Promise.all(samples) };
  agent.destroy();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stdin.destroy();
}

await main();
