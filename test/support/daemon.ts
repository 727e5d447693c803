import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Runs a real server binary (Prometheus, Alertmanager) for a test: on 127.0.0.1, a port
 * chosen at run time, a temporary directory, a readiness wait, and no leftovers — the
 * process is killed on stop(), when the test process exits, and (through setpriv's
 * parent-death signal, where setpriv exists) even when the test process is killed.
 */
export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** A temporary directory owned by this daemon, removed on stop(). */
  readonly dir: string;
  /** The last 64 kB of what the process wrote to stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the temporary directory. Idempotent. */
  stop(): Promise<void>;
}

export interface DaemonSpec {
  command: string;
  args: string[];
  /** Path polled until it answers 200, e.g. "/-/ready". */
  readyPath: string;
}

export interface StartDaemonOptions {
  name: string;
  /** Builds the command line once the port and the temporary directory are known. */
  spec(port: number, dir: string): DaemonSpec | Promise<DaemonSpec>;
  readyTimeoutMs?: number;
}

const SETPRIV = "/usr/bin/setpriv";
const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // "exit" handlers must be synchronous: kill and remove without waiting.
  process.once("exit", () => {
    for (const child of running) child.kill("SIGKILL");
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A child process a test started: killed when the test process exits, or is killed. */
export interface GuardedChild {
  readonly child: ChildProcess;
  /** How it ended (signal or exit code, "spawn error"); undefined while it runs. */
  readonly ended: string | undefined;
  /** Resolves once it exited. */
  readonly exited: Promise<void>;
  /** SIGCONT (a stopped one must see it), SIGTERM, SIGKILL after `graceMs`; resolves once it exited. */
  terminate(graceMs: number): Promise<void>;
}

/**
 * Spawn a command for a test, with its stdout and stderr piped. setpriv execs it in place
 * (same pid) after asking the kernel to SIGKILL it when its parent dies, so a killed test
 * worker leaves no process behind; the test process's exit kills it too.
 */
export function spawnGuarded(command: string, args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; onError?: (err: Error) => void }): GuardedChild {
  installExitHook();
  const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ["--pdeathsig", "KILL", "--", command, ...args]] : [command, [...args]];
  const child = spawn(cmd, argv, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"], ...(opts.env ? { env: opts.env } : {}) });
  running.add(child);
  let ended: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      ended = signal ?? String(code);
      running.delete(child);
      resolve();
    });
  });
  child.once("error", (err) => {
    ended ??= "spawn error";
    opts.onError?.(err);
  });
  return {
    child,
    get ended() {
      return ended;
    },
    exited,
    async terminate(graceMs) {
      if (ended !== undefined) return;
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A loopback TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a value other than undefined/false, or throws on timeout. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

export async function startDaemon(opts: StartDaemonOptions): Promise<Daemon> {
  // Another process may take the port between freePort() and the daemon's bind: retry.
  let lastError: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err;
      if (!(err instanceof PortTakenError)) break;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

class PortTakenError extends Error {}

async function startOnce(opts: StartDaemonOptions): Promise<Daemon> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), `lifeboat-${opts.name}-`));
  tempDirs.add(dir);
  const port = await freePort();
  const spec = await opts.spec(port, dir);
  const url = `http://127.0.0.1:${port}`;

  let out = "";
  const proc = spawnGuarded(spec.command, spec.args, {
    cwd: dir,
    onError: (err) => {
      out += `\nspawn error: ${err.message}`;
    },
  });
  const child = proc.child;
  const append = (b: Buffer): void => {
    out += b.toString();
    if (out.length > 64_000) out = out.slice(-64_000);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await proc.terminate(5_000);
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    })();
    return stopped;
  };

  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.ended !== undefined) {
      await stop();
      const msg = `${opts.name} exited (${proc.ended}) before it was ready:\n${out}`;
      throw /address already in use/i.test(out) ? new PortTakenError(msg) : new Error(msg);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${opts.name} was not ready within ${timeoutMs} ms:\n${out}`);
    }
    if (await answers200(`${url}${spec.readyPath}`)) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const pid = child.pid;
  if (pid === undefined) throw new Error(`${opts.name} has no pid`);
  return { name: opts.name, pid, port, url, dir, output: () => out, stop };
}

/** A GET of `url` answered 200 within a second. */
export async function answers200(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** GET/POST/DELETE a JSON API on a daemon; throws with the answer's body on a non-2xx. */
export async function jsonRequest<T>(method: string, url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${text}`);
  return (text === "" ? undefined : JSON.parse(text)) as T;
}
