import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { startIpmiSim, type IpmiSim } from "../support/ipmi-sim.js";
import { ADMIN_TOKEN, tempDir, lifeboatConfigData } from "../kit/config.js";
import { CLI, serveLifeboat, type ServedLifeboat } from "../kit/served.js";

/**
 * `lifeboat fence status` (the check operators run after each BMC password rotation) and
 * `lifeboat fence off HOST --yes` (by hand, journaled like an automatic fence), as the
 * built command line runs them: a real ipmi_sim for one host, Redfish BMCs for the others.
 */

const run = promisify(execFile);
let site: Sandbox;
let ipmi: IpmiSim;
let dir: string;
let configFile: string;
let served: ServedLifeboat | undefined;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** The site's config with compute-1 behind the ipmi_sim BMC, known by this password. */
function configData(ipmiPassword: string, logLevel: string): Record<string, unknown> {
  const data = lifeboatConfigData({}, { site, dir, logLevel });
  const fencing = data.fencing as { hosts: Record<string, unknown> };
  fencing.hosts["compute-1"] = {
    driver: "ipmi",
    address: ipmi.host,
    port: ipmi.port,
    username: "lifeboat",
    password: ipmiPassword,
    cipher_suite: 3,
    power_wait_seconds: 0.2,
    poll_interval_seconds: 0.2,
    name: "ipmi-compute-1",
  };
  return data;
}

function writeConfig(file: string, ipmiPassword: string): void {
  writeFileSync(file, stringify(configData(ipmiPassword, "warn")));
}

beforeAll(async () => {
  site = await startSandbox();
  ipmi = await startIpmiSim({ users: [{ name: "lifeboat", password: "ipmi-s3cret", priv: "admin" }], power: "on" });
  dir = tempDir();
  configFile = join(dir, "lifeboat.yaml");
  writeConfig(configFile, "ipmi-s3cret");
}, 60_000);

afterAll(async () => {
  await served?.stop();
  await ipmi?.stop();
  await site?.close();
});

describe("lifeboat fence status", () => {
  it("reads every host's power state through its device and exits 0", async () => {
    const r = await cli(["fence", "status", "--config", configFile]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const h of site.hosts) expect(r.stdout).toMatch(new RegExp(`^${h}\\s+\\S+\\s+(ipmi|redfish)\\s+on\\b`, "m"));
    expect(r.stdout).toContain("ipmi-compute-1");
    expect(r.stdout).not.toContain("ipmi-s3cret");
  });

  it("after a BMC password rotation nobody told lifeboat about: that host fails, exit 1", async () => {
    const stale = join(dir, "stale.yaml");
    writeConfig(stale, "old-password");
    const r = await cli(["fence", "status", "compute-1", "compute-2", "--config", stale]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/compute-1.*ipmi.*(unknown|error)/i);
    expect(r.stdout).toMatch(/compute-2\s+\S+\s+redfish\s+on/);
    expect(r.stdout + r.stderr).not.toContain("old-password");
  });
});

describe("lifeboat fence off", () => {
  it("refuses without --yes, then powers the host off through ipmi_sim and records it as a recovery", async () => {
    served = await serveLifeboat(configData("ipmi-s3cret", "info"), { name: "fence-cli" });
    const url = served.url;

    const no = await cli(["fence", "off", "compute-1", "--url", url, "--token", ADMIN_TOKEN]);
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/add --yes/);
    expect(await ipmi.power()).toBe("on");

    const r = await cli(["fence", "off", "compute-1", "--yes", "--url", url, "--token", ADMIN_TOKEN]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/compute-1: powered off \(confirmed by read-back\)/);
    expect(await ipmi.power()).toBe("off");
    const id = /recorded as recovery (\S+)/.exec(r.stdout)?.[1];
    expect(id).toBeTruthy();
    const show = await cli(["show", id!, "--url", url, "--token", ADMIN_TOKEN, "--json"]);
    const d = JSON.parse(show.stdout) as { trigger: string; fenceState: string; timeline: { to: string }[]; instances: unknown[] };
    expect(d).toMatchObject({ trigger: "manual", fenceState: "off" });
    expect(d.timeline.map((t) => t.to)).toEqual(["pending", "fencing", "notifying", "completed"]);
    expect(d.instances).toEqual([]);
    const host = await cli(["host", "compute-1", "--url", url, "--token", ADMIN_TOKEN]);
    expect(host.stdout).toMatch(/held down by recovery/);
  }, 60_000);
});
