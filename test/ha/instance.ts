import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * One `node dist/cli.js serve` child process: its JSON log lines, its URL (read from its
 * "listening" line, so the OS picks the port), and signals. setpriv's parent-death signal
 * kills it should the test worker die, so no lifeboat outlives its test.
 */
export const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
export const CLI = resolve(ROOT, "dist/cli.js");
const SETPRIV = "/usr/bin/setpriv";

export interface LogLine {
  level?: string;
  msg?: string;
  time?: string;
  [key: string]: unknown;
}

export interface Instance {
  readonly id: string;
  readonly pid: number;
  readonly url: string;
  readonly lines: LogLine[];
  /** Every line as written (also the ones that are not JSON). */
  output(): string;
  /** Leadership changes this instance logged, with the time it logged them (Date.now()). */
  leadership(): { leader: boolean; at: number }[];
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the process exited. */
  readonly exited: Promise<void>;
  /** SIGTERM and wait (SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export async function startInstance(id: string, configFile: string, opts: { readyTimeoutMs?: number } = {}): Promise<Instance> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const argv = [process.execPath, CLI, "serve", "--config", configFile];
  const [cmd, args] = existsSync(SETPRIV) ? [SETPRIV, ["--pdeathsig", "KILL", "--", ...argv]] : [argv[0]!, argv.slice(1)];
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_ENV: "test" } });
  live.add(child);
  const lines: LogLine[] = [];
  let raw = "";
  let partial = "";
  const onData = (b: Buffer): void => {
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
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", (b: Buffer) => {
    raw += b.toString("utf8");
  });
  let code: string | undefined;
  const exited = new Promise<void>((res) => {
    child.once("exit", (c, s) => {
      code = s ?? String(c);
      live.delete(child);
      res();
    });
  });

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  let url: string | undefined;
  while (!url) {
    const l = lines.find((x) => x.msg === "listening" && typeof x.listen === "string");
    if (l) url = `http://${String(l.listen)}`;
    else if (code !== undefined) throw new Error(`lifeboat ${id} exited (${code}) before listening:\n${raw}`);
    else if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`lifeboat ${id} did not listen within ${opts.readyTimeoutMs ?? 20_000} ms:\n${raw}`);
    } else await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid!;
  let stopping: Promise<void> | undefined;
  return {
    id,
    pid,
    url,
    lines,
    output: () => raw,
    leadership: () =>
      lines
        .filter((l) => typeof l.leader === "boolean" && /this instance (leads|follows)/.test(l.msg ?? ""))
        .map((l) => ({ leader: l.leader as boolean, at: Date.parse(String(l.time)) })),
    kill: (signal) => {
      if (code === undefined) child.kill(signal);
    },
    exited,
    stop: () =>
      (stopping ??= (async () => {
        if (code === undefined) {
          child.kill("SIGCONT");
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
          await exited;
          clearTimeout(timer);
        }
      })()),
  };
}
