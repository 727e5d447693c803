import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Recovery, RecoveryDetail } from "../../src/domain/model.js";
import { ADMIN_TOKEN, parseConfigData, removeDir, WEBHOOK_TOKEN } from "../../test/kit/config.js";
import { CLI, ROOT, serveLifeboat, type ServedLifeboat } from "../../test/kit/served.js";
import { TERMINAL } from "../../test/kit/site.js";

export { ADMIN_TOKEN, CLI, ROOT, WEBHOOK_TOKEN };

/**
 * The node flags lifeboat ships with: the NODE_OPTIONS of the container image (the README's
 * systemd unit sets the same). Read from the Dockerfile so the benchmarks measure what runs.
 */
export const SHIPPED_NODE_ARGS: readonly string[] = (() => {
  const m = /^ENV NODE_OPTIONS="([^"]*)"/m.exec(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
  if (!m) throw new Error("the Dockerfile sets no NODE_OPTIONS");
  return m[1]!.split(/\s+/).filter(Boolean);
})();

/** A `lifeboat serve` process started from the built CLI: the daemon exactly as operators run it. */
export type LifeboatProcess = ServedLifeboat;

export interface BenchServeOptions {
  /** Flags for node itself: SHIPPED_NODE_ARGS unless given ([] for node's defaults). */
  nodeArgs?: readonly string[];
  /** The config's store may be etcd (the benchmarks otherwise insist on SQLite). */
  etcd?: boolean;
  /** A directory made for this process alone (its journal): removed once it stopped. */
  dir?: string;
}

/**
 * Start `node dist/cli.js serve` on `config` (plain data, as lifeboatConfigData builds it;
 * validated first so a bad bench config fails with its problems, not a dead process). It
 * listens where the config says (127.0.0.1:0 by default; the URL is read from its log).
 * LIFEBOAT_BENCH_PROFILE and LIFEBOAT_NODE_ARGS add node flags (see profileArgs).
 */
export async function startLifeboat(name: string, config: Record<string, unknown>, opts: BenchServeOptions = {}): Promise<LifeboatProcess> {
  let lb: ServedLifeboat;
  try {
    if (parseConfigData(config).store.driver !== "sqlite" && !opts.etcd) throw new Error("this benchmark uses the SQLite store (pass etcd: true for an etcd one)");
    lb = await serveLifeboat(config, { name, nodeArgs: [...(opts.nodeArgs ?? SHIPPED_NODE_ARGS), ...profileArgs()] });
  } catch (err) {
    if (opts.dir) removeDir(opts.dir);
    throw err;
  }
  return {
    ...lb,
    stop: async () => {
      await lb.stop();
      // The directory its config file was written to is this process's alone.
      removeDir(dirname(lb.configFile));
      if (opts.dir) removeDir(opts.dir);
    },
  };
}

/** LIFEBOAT_BENCH_PROFILE=DIR: every lifeboat process writes a V8 CPU profile there when it stops. */
function profileArgs(): string[] {
  const dir = process.env.LIFEBOAT_BENCH_PROFILE;
  return [...(dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : []), ...(process.env.LIFEBOAT_NODE_ARGS ?? "").split(" ").filter(Boolean)];
}

/** POST one Alertmanager payload to lifeboat's webhook; returns the status. */
export async function postWebhook(url: string, body: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${WEBHOOK_TOKEN}` },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Wait until `host` has a recovery that ended; its detail (timeline, instances…) from the control API. */
export async function finishedRecovery(lb: LifeboatProcess, host: string, timeoutMs: number): Promise<RecoveryDetail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { recoveries } = await lb.api<{ recoveries: Recovery[] }>(`/api/v1/recoveries?host=${encodeURIComponent(host)}&limit=1`);
    const r = recoveries[0];
    if (r && TERMINAL.includes(r.state)) return lb.api<RecoveryDetail>(`/api/v1/recoveries/${encodeURIComponent(r.id)}`);
    if (Date.now() > deadline) throw new Error(`no finished recovery of ${host} after ${timeoutMs} ms (last: ${r ? r.state : "none"})\n${lb.output().slice(-4000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
