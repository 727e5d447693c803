import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startDaemon, type Daemon } from "../../test/support/daemon.js";

/** `node --import tsx FILE`: a TypeScript bench script in its own process. */
export function tsCommand(file: string, args: string[] = []): { command: string; args: string[] } {
  return { command: process.execPath, args: ["--import", import.meta.resolve("tsx"), file, ...args] };
}

export function benchFile(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}

/** Run a bench script to completion and parse the JSON line it prints last. */
export async function runJsonScript<T>(file: string, arg: unknown): Promise<T> {
  const { command, args } = tsCommand(file, [JSON.stringify(arg)]);
  return new Promise<T>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    child.once("error", reject);
    child.once("exit", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !last) {
        reject(new Error(`${file} exited ${code}: ${err || out}`));
        return;
      }
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${file} printed no JSON: ${out}`));
      }
    });
  });
}

/** The bare express baseline server in its own process. */
export function startBareExpress(): Promise<Daemon> {
  return startDaemon({
    name: "bare-express",
    spec: (port) => ({ ...tsCommand(benchFile("servers/bare-express.ts"), [String(port)]), readyPath: "/healthz" }),
  });
}

/**
 * A bench script in its own process that starts its work when told to go (a line on stdin),
 * runs until told to stop (another line) and then prints its JSON result; `env` is added to
 * its environment (tokens go there, not in argv). Start it well before `go()`: starting a
 * node process and compiling the script costs a core for a fraction of a second, which must
 * not land inside the measured window.
 */
export function startStoppableScript<T>(file: string, arg: unknown, env: NodeJS.ProcessEnv = {}): { pid: number | undefined; ready: Promise<void>; go(): void; stop(): Promise<T> } {
  const { command, args } = tsCommand(file, [JSON.stringify(arg)]);
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  // It says "ready" on a line of its own once it waits for the go.
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", () => {
      if (/^ready$/m.test(out)) resolve();
    });
    void exited.then((code) => reject(new Error(`${file} exited ${code} before it was ready: ${err || out}`)));
  });
  ready.catch(() => undefined);
  return {
    pid: child.pid,
    ready,
    go() {
      child.stdin.write("go\n");
    },
    async stop() {
      child.stdin.end("stop\n");
      const code = await exited;
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !last) throw new Error(`${file} exited ${code}: ${err || out}`);
      return JSON.parse(last) as T;
    },
  };
}
