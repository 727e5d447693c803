import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./daemon.js";

/**
 * A real single-member etcd for tests: loopback client and peer ports chosen at run time, a
 * temporary data directory, and SIGSTOP/SIGCONT to make it unreachable without closing
 * connections (what a partition or a hung etcd looks like to a client).
 */
export interface EtcdServer {
  /** http://127.0.0.1:PORT — give it to the client as its only host. */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly pid: number;
  /** SIGSTOP: connections stay open, nothing answers. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Terminate etcd and remove its data directory. */
  stop(): Promise<void>;
  /** What etcd wrote to stderr/stdout (diagnostics for a failed start). */
  output(): string;
}

export interface StartEtcdOptions {
  binary?: string;
  name?: string;
  /** How long to wait for /health, ms. */
  readyTimeoutMs?: number;
}

export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdServer> {
  // Another process may take a port between freePort() and etcd's bind: retry with new ports.
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function startOnce(opts: StartEtcdOptions): Promise<EtcdServer> {
  const name = opts.name ?? "lifeboat-test";
  const dataDir = await mkdtemp(join(tmpdir(), "lifeboat-etcd-"));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    "--name", name,
    "--data-dir", join(dataDir, "data"),
    "--listen-client-urls", clientUrl,
    "--advertise-client-urls", clientUrl,
    "--listen-peer-urls", peerUrl,
    "--initial-advertise-peer-urls", peerUrl,
    "--initial-cluster", `${name}=${peerUrl}`,
    "--initial-cluster-state", "new",
    "--logger", "zap",
    "--log-level", "error",
  ];
  const child: ChildProcess = spawn(opts.binary ?? "/usr/bin/etcd", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const append = (b: Buffer): void => {
    out += b.toString();
    if (out.length > 64_000) out = out.slice(-64_000);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = code ?? (signal ? -1 : null);
      resolve();
    });
  });
  child.once("error", (err) => {
    out += `\nspawn error: ${err.message}`;
  });

  const stop = async (): Promise<void> => {
    if (exited === undefined && child.pid !== undefined) {
      // A stopped process only acts on SIGTERM once continued.
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exit;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`etcd exited (${String(exited)}) before it was healthy:\n${out}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`etcd was not healthy within ${opts.readyTimeoutMs ?? 20_000} ms:\n${out}`);
    }
    if (await healthy(clientUrl)) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const pid = child.pid;
  if (pid === undefined) throw new Error("etcd has no pid");
  return {
    endpoint: clientUrl,
    clientPort,
    peerPort,
    dataDir,
    pid,
    pause: () => {
      process.kill(pid, "SIGSTOP");
      waitStopped(pid);
    },
    resume: () => {
      process.kill(pid, "SIGCONT");
    },
    stop,
    output: () => out,
  };
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
    if (!res.ok) return false;
    const body = (await res.json()) as { health?: unknown };
    return body.health === "true" || body.health === true;
  } catch {
    return false;
  }
}

/**
 * kill() returns once SIGSTOP is queued; etcd's threads stop one by one a moment later and
 * could still answer a request sent meanwhile. Wait until /proc shows every thread stopped.
 */
function waitStopped(pid: number): void {
  const stopped = (task: string): boolean => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
      // The state follows the command name, which is in parentheses.
      return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
    } catch {
      return true; // the thread is gone
    }
  };
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    if (readdirSync(`/proc/${pid}/task`).every(stopped)) return;
  }
  throw new Error(`etcd (pid ${pid}) did not stop within 2 s of SIGSTOP`);
}
