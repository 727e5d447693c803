/**
 * The load generator of the intake benchmark, run as its own process (never inside the
 * server under test): autocannon POSTing Alertmanager deliveries to /api/v1/alerts.
 *
 *   node --import tsx bench/load/webhook-load.ts '<json LoadSpec>'
 *
 * Prints one JSON line (LoadResult) on stdout. Latencies are taken from autocannon's
 * per-response event (fractional milliseconds) rather than its integer-millisecond histogram.
 */
import autocannon from "autocannon";
import { payloadMaker, type Mix } from "../lib/payloads.js";
import { distribution, type Distribution } from "../lib/stats.js";

export interface LoadSpec {
  url: string;
  token?: string;
  mix: Mix;
  hosts: string[];
  connections: number;
  /** Seconds of load not measured first (JIT, connection set-up, first journal pages). */
  warmupSeconds: number;
  /** Measured seconds; ignored when `amount` is set. */
  durationSeconds: number;
  /** Send exactly this many deliveries instead (memory benchmark). */
  amount?: number;
  /** First delivery number (keeps `distinct` deliveries distinct across several runs on one server). */
  startAt?: number;
}

export interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSeconds: number;
  requestsPerSecond: number;
  latencyMs: Distribution;
  /** Deliveries this run sent, and those answered 2xx, warm-up included. */
  sent: number;
  acceptedTotal: number;
  /** CPU time this load generator used, ms. */
  cpuMs: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? "{}") as LoadSpec;
  const make = payloadMaker(spec.mix, spec.hosts);
  let n = spec.startAt ?? 0;
  let accepted = 0;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (spec.token) headers.authorization = `Bearer ${spec.token}`;

  const run = (opts: { seconds?: number; amount?: number }, latencies: number[] | null): Promise<autocannon.Result> =>
    new Promise((resolve, reject) => {
      const instance = autocannon(
        {
          url: spec.url,
          connections: spec.connections,
          ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.seconds ?? 1 }),
          timeout: 10,
          headers,
          requests: [{ method: "POST", path: "/api/v1/alerts", setupRequest: (req) => ({ ...req, body: make(n++) }) }],
        },
        (err: unknown, result: autocannon.Result) => (err ? reject(err instanceof Error ? err : new Error(JSON.stringify(err))) : resolve(result)),
      );
      instance.on("response", (_client, statusCode, _bytes, responseTime) => {
        if (statusCode < 200 || statusCode >= 300) return;
        accepted++;
        latencies?.push(responseTime);
      });
    });

  if (spec.warmupSeconds > 0 && spec.amount === undefined) await run({ seconds: spec.warmupSeconds }, null);
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  const r = await run(spec.amount !== undefined ? { amount: spec.amount } : { seconds: spec.durationSeconds }, latencies);
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const ok = r["2xx"];
  const result: LoadResult = {
    requests: ok + r.non2xx,
    ok,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    durationSeconds: spec.amount !== undefined ? elapsed : r.duration,
    requestsPerSecond: ok / (spec.amount !== undefined ? elapsed : r.duration),
    latencyMs: distribution(latencies),
    sent: n - (spec.startAt ?? 0),
    acceptedTotal: accepted,
    cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
