import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { answers200, spawnGuarded } from "../support/daemon.js";
import { ADMIN_TOKEN, parseConfigData } from "./config.js";
import { makeTempDir } from "./temp-dirs.js";

/**
 * One `node dist/cli.js serve` child process: lifeboat exactly as operators run it. Its
 * config is written to a file in a directory of its own; it listens where the config says
 * (127.0.0.1:0: the OS picks the port, read from its "listening" line). Its JSON log lines,
 * signals, a restart on the same config and journal, and what the benchmarks read (memory,
 * the control API). setpriv's parent-death signal kills it should the test worker die, so no
 * lifeboat outlives its test.
 */
export const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
export const CLI = resolve(ROOT, "dist/cli.js");

export interface LogLine {
  level?: string;
  msg?: string;
  time?: string;
  [key: string]: unknown;
}

export interface ServeOptions {
  /** Names the process in its log and errors (default "lifeboat"). */
  name?: string;
  /** Flags for node itself, before the CLI (default none). */
  nodeArgs?: readonly string[];
  /** What must answer before start resolves: the "listening" line alone, or a path answering 200 (default /healthz). */
  ready?: "listening" | `/${string}`;
  readyTimeoutMs?: number;
}

export interface ServedLifeboat {
  readonly id: string;
  readonly pid: number;
  readonly url: string;
  /** The config file it runs on. */
  readonly configFile: string;
  /** Its SQLite journal ("" on the etcd store). */
  readonly dbPath: string;
  readonly lines: LogLine[];
  /** Everything it wrote (also the lines that are not JSON), the last 4 MB. */
  output(): string;
  /** Leadership changes it logged, with the time it logged them. */
  leadership(): { leader: boolean; at: number }[];
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the process exited. */
  readonly exited: Promise<void>;
  /** SIGTERM and wait (SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
  /** Stop it (if it still runs) and start it again on the same config and journal. */
  restart(): Promise<ServedLifeboat>;
  /** Resident set size now (VmRSS) and at its peak (VmHWM), bytes. */
  memory(): { rss: number; peak: number };
  /** GET a control API path with the admin token; throws on a non-2xx. */
  api<T>(path: string): Promise<T>;
}


/** Start `lifeboat serve` on this config (plain data, as lifeboatConfigData builds it; checked here first). */
export async function serveLifeboat(data: Record<string, unknown>, opts: ServeOptions = {}): Promise<ServedLifeboat> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const config = parseConfigData(data);
  // Its URL is read from its "listening" line, written at info.
  if (!["trace", "debug", "info"].includes(config.logging.level)) throw new Error(`a served lifeboat logs at info or below (its URL is read from its "listening" line), not ${config.logging.level}`);
  // Kept for restarts until the test file ends (temp-dirs.ts).
  const dir = makeTempDir(opts.name ?? "lifeboat");
  const configFile = join(dir, "lifeboat.yaml");
  writeFileSync(configFile, stringify(data), { mode: 0o600 });
  return startProcess(configFile, config.store.driver === "sqlite" ? config.store.path : "", opts);
}

async function startProcess(configFile: string, dbPath: string, opts: ServeOptions): Promise<ServedLifeboat> {
  const id = opts.name ?? "lifeboat";
  let raw = "";
  const proc = spawnGuarded(process.execPath, [...(opts.nodeArgs ?? []), CLI, "serve", "--config", configFile], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: "test" },
    onError: (err) => {
      raw += `\nspawn error: ${err.message}`;
    },
  });
  const child = proc.child;
  const lines: LogLine[] = [];
  let partial = "";
  child.stdout?.on("data", (b: Buffer) => {
    const text = partial + b.toString("utf8");
    raw += b.toString("utf8");
    if (raw.length > 4_000_000) raw = raw.slice(-4_000_000);
    const parts = text.split("\n");
    partial = parts.pop() ?? "";
    for (const p of parts) {
      if (!p.trim()) continue;
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        lines.push({ msg: p });
      }
    }
  });
  child.stderr?.on("data", (b: Buffer) => {
    raw += b.toString("utf8");
  });
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const failed = (why: string): Error => {
    child.kill("SIGKILL");
    return new Error(`lifeboat ${id} ${why}:\n${raw}`);
  };
  let url: string | undefined;
  while (!url) {
    const l = lines.find((x) => x.msg === "listening" && typeof x.listen === "string");
    if (l) url = `http://${String(l.listen)}`;
    else if (proc.ended !== undefined) throw failed(`exited (${proc.ended}) before listening`);
    else if (Date.now() > deadline) throw failed(`did not listen within ${timeoutMs} ms`);
    else await new Promise((r) => setTimeout(r, 50));
  }
  const ready = opts.ready ?? "/healthz";
  if (ready !== "listening") {
    while (!(await answers200(`${url}${ready}`))) {
      if (proc.ended !== undefined) throw failed(`exited (${proc.ended}) before ${ready} answered`);
      if (Date.now() > deadline) throw failed(`was not ready (${ready}) within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const pid = child.pid!;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= proc.terminate(10_000));
  const base = url;
  return {
    id,
    pid,
    url,
    configFile,
    dbPath,
    lines,
    output: () => raw,
    leadership: () =>
      lines
        .filter((l) => typeof l.leader === "boolean" && /this instance (leads|follows)/.test(l.msg ?? ""))
        .map((l) => ({ leader: l.leader as boolean, at: Date.parse(String(l.time)) })),
    kill: (signal) => {
      if (proc.ended === undefined) child.kill(signal);
    },
    exited: proc.exited,
    stop,
    restart: async () => {
      await stop();
      return startProcess(configFile, dbPath, opts);
    },
    memory: () => processMemory(pid),
    api: async <T>(path: string): Promise<T> => {
      const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${text}`);
      return JSON.parse(text) as T;
    },
  };
}

/** VmRSS and VmHWM of a process (Linux /proc), in bytes. */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}
