import { execFile, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "../kit/config.js";
import { waitFor } from "../kit/http.js";

const run = promisify(execFile);
const CLI = join(process.cwd(), "dist", "cli.js");

async function cli(args: string[], env: NodeJS.ProcessEnv = {}, timeout = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("lifeboat command line (built output)", () => {
  it("check-config accepts the shipped example when its variables are set, and names what is missing otherwise", async () => {
    const ok = await cli(["check-config", "config/example.yaml"], { LIFEBOAT_WEBHOOK_TOKEN: "webhook-0123456789abcdef", LIFEBOAT_ADMIN_TOKEN: "admin-0123456789abcdef" });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/config\/example\.yaml: OK \(4 host\(s\) with fencing/);
    const bad = await cli(["check-config", "config/example.yaml"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("server.auth.bearer_token: environment variable LIFEBOAT_WEBHOOK_TOKEN is not set");
    expect(bad.stderr).toContain("server.admin_token: environment variable LIFEBOAT_ADMIN_TOKEN is not set");
  });

  it("serve refuses a bad config with every problem and its path, and exits 1", async () => {
    const dir = tempDir();
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "server:\n  auth: {bearer_token: x}\n  admin_token: y\nfencing:\n  hosts:\n    compute-1: {driver: ipmi, username: admin, password: pw}\nrecovery: {grace: 1}\n");
    const r = await cli(["serve", "--config", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refusing to start");
    expect(r.stderr).toContain("fencing.hosts.compute-1.address: required");
    expect(r.stderr).toContain("recovery.grace: unknown key");
    expect(r.stderr).not.toContain("pw");
  });

  it("serve refuses a --listen port out of range rather than dying on it", async () => {
    const dir = tempDir();
    const file = join(dir, "ok.yaml");
    writeFileSync(file, `server:\n  auth: none\n  admin_token: admin-0123456789abcdef\nstore: {path: ${join(dir, "lifeboat.db")}}\n`);
    const r = await cli(["serve", "--config", file, "--listen", "127.0.0.1:99999"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refusing to start: --listen 127.0.0.1:99999: port 99999 is out of range (0–65535; 0: any free port)");
  });

  it("the demo runs on embedded defaults, recovers the failed node, mails people, and leaves nothing running", async () => {
    const r = await cli(["demo", "--fast"], {}, 120_000);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✔ completed/);
    expect(r.stdout).toMatch(/Emails sent \([1-9]\d*\)/);
    expect(r.stdout).toMatch(/compute-1\s+Off\s+down, forced down, disabled\s+0/);
    expect(r.stdout).toMatch(/duplicate delivery: same incident, same recovery/);
    expect(r.stdout).toMatch(/the console: http:\/\/127\.0\.0\.1:\d+\/console {2}\(log in with the admin token demo-admin-token/);
    // Not at a terminal: nobody can press Enter, so it does not wait for it.
    expect(r.stdout).not.toContain("Press Enter");
    // The process ended by itself: every server and timer of the demo was closed.
  }, 150_000);

  it("sandbox loads the simulated site, serves it until SIGTERM, then stops cleanly", async () => {
    const child = spawn(process.execPath, [CLI, "sandbox", "--cloud-port", "0", "--redfish-port", "0", "--smtp-port", "0", "--control-port", "0", "--hosts", "2"], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const control = await waitFor(() => /control API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], 30_000, "the sandbox's banner");
      expect(out).toMatch(/Keystone auth URL\s+http:\/\/127\.0\.0\.1:\d+\/identity\/v3/);
      const state = (await (await fetch(`${control}/state`)).json()) as { hosts: { host: string }[] };
      expect(state.hosts.map((h) => h.host)).toEqual(["compute-1", "compute-2"]);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(err).toBe("");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 60_000);

  it("sandbox --racks lays the hosts out in racks and zones; a rack fails whole through the control API; a bad count is refused naming the option", async () => {
    const child = spawn(process.execPath, [CLI, "sandbox", "--cloud-port", "0", "--redfish-port", "0", "--smtp-port", "0", "--control-port", "0", "--hosts", "6", "--racks", "3", "--zones", "1", "--servers-per-host", "1"], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const control = await waitFor(() => /control API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], 30_000, "the sandbox's banner");
      expect(out).toMatch(/racks\s+rack-01 \(2 hosts, az-1\), rack-02 \(2 hosts, az-1\), rack-03 \(2 hosts, az-1\)/);
      const { racks } = (await (await fetch(`${control}/racks`)).json()) as { racks: Record<string, string[]> };
      expect(racks["rack-02"]).toEqual(["compute-003", "compute-004"]);
      const failed = (await (await fetch(`${control}/racks/rack-02/fail`, { method: "POST" })).json()) as { hosts: string[] };
      expect(failed.hosts).toEqual(["compute-003", "compute-004"]);
      const state = (await (await fetch(`${control}/state`)).json()) as { hosts: { host: string; power: string }[] };
      expect(state.hosts.filter((h) => h.power === "Off").map((h) => h.host)).toEqual(["compute-003", "compute-004"]);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    const bad = await run(process.execPath, [CLI, "sandbox", "--hosts", "6", "--racks", "three"]).catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 1 });
    expect((bad as { stderr: string }).stderr).toContain('--racks must be a whole number ≥ 1, not "three"');
  }, 60_000);
});
