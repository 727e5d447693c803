import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { Recovery, RecoveryDetail } from "../../src/domain/model.js";
import { parseOrThrow } from "../../test/support/stack.js";
import { ADMIN_TOKEN, WEBHOOK_TOKEN } from "../../test/support/lifeboat.js";
import { startDaemon, type Daemon } from "../../test/support/daemon.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CLI = join(ROOT, "dist", "cli.js");
export { ADMIN_TOKEN, WEBHOOK_TOKEN };

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
export interface LifeboatProcess extends Daemon {
  /** The SQLite journal of this process ("" on the etcd store). */
  readonly dbPath: string;
  /** Resident set size now (VmRSS) and at its peak (VmHWM), in bytes. */
  memory(): { rss: number; peak: number };
  /** GET a control API path with the admin token. */
  api<T>(path: string): Promise<T>;
}

/**
 * Start `node dist/cli.js serve` with the config `configFor(port, dir)` returns (plain data,
 * validated here first so a bad bench config fails with its problems, not a dead process).
 * `nodeArgs` go to node itself, SHIPPED_NODE_ARGS unless given ([] for node's defaults).
 * `etcd`: the config's store may be etcd (the benchmarks otherwise insist on SQLite).
 */
export async function startLifeboat(
  name: string,
  configFor: (port: number, dir: string) => Record<string, unknown>,
  opts: { nodeArgs?: string[]; etcd?: boolean } = {},
): Promise<LifeboatProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm run bench does)`);
  let dbPath = "";
  const daemon = await startDaemon({
    name,
    spec: (port, dir) => {
      const data = configFor(port, dir);
      const config = parseOrThrow(data);
      if (config.store.driver !== "sqlite" && !opts.etcd) throw new Error("this benchmark uses the SQLite store (pass etcd: true for an etcd one)");
      dbPath = config.store.driver === "sqlite" ? config.store.path : "";
      const file = join(dir, "lifeboat.yaml");
      writeFileSync(file, stringify(data), { mode: 0o600 });
      return { command: process.execPath, args: [...(opts.nodeArgs ?? SHIPPED_NODE_ARGS), ...profileArgs(), CLI, "serve", "--config", file], readyPath: "/healthz" };
    },
  });
  return {
    ...daemon,
    dbPath,
    memory: () => processMemory(daemon.pid),
    api: async <T>(path: string): Promise<T> => {
      const res = await fetch(`${daemon.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${text}`);
      return JSON.parse(text) as T;
    },
  };
}

/** LIFEBOAT_BENCH_PROFILE=DIR: every lifeboat process writes a V8 CPU profile there when it stops. */
function profileArgs(): string[] {
  const dir = process.env.LIFEBOAT_BENCH_PROFILE;
  return [...(dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : []), ...(process.env.LIFEBOAT_NODE_ARGS ?? "").split(" ").filter(Boolean)];
}

/** VmRSS and VmHWM of a process (Linux /proc), in bytes. */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/** POST one Alertmanager payload to lifeboat's webhook; returns the status and the elapsed ms. */
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

const TERMINAL = ["completed", "partial", "failed", "aborted"];

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
