import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import type { DoctorReport, DoctorRow } from "../../src/doctor/types.js";
import type { Sandbox } from "../../packages/sandbox/src/environment.js";
import { lifeboatConfigData } from "../kit/config.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CLI = join(ROOT, "dist/cli.js");

/** A lifeboat config file for the simulated site (test overrides deep-merged), written to dir. */
export function writeSiteConfig(sandbox: Sandbox, dir: string, overrides: Record<string, unknown> = {}, name = "lifeboat.yaml"): string {
  const data = lifeboatConfigData(overrides, { site: sandbox, dir });
  const file = join(dir, name);
  writeFileSync(file, stringify(data));
  return file;
}

export function writeConfig(dir: string, data: Record<string, unknown>, name = "lifeboat.yaml"): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(data));
  return file;
}

export function rowsOf(r: DoctorReport, check: string): DoctorRow[] {
  return r.rows.filter((x) => x.check === check);
}

export function rowOf(r: DoctorReport, check: string): DoctorRow {
  const rows = rowsOf(r, check);
  if (rows.length !== 1) throw new Error(`expected one ${check} row, got ${rows.length}: ${JSON.stringify(r.rows, null, 1)}`);
  return rows[0]!;
}

/** `lifeboat doctor --config FILE` as operators run it (from dist/). */
export async function runDoctorCli(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, "doctor", "--config", configFile], {
      env: { PATH: process.env.PATH, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== "number") throw err;
    return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** A TCP peer that accepts connections and never says a word: a hung BMC, API or mail server. */
export async function silentServer(): Promise<{ url: string; port: number; connections: () => number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Server = createServer((s) => {
    count++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: () => count,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A loopback port nobody listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
