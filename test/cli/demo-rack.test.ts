import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const CLI = join(process.cwd(), "dist", "cli.js");

async function cli(args: string[], timeout: number): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("lifeboat demo --scenario rack (built output)", () => {
  it("a rack fails, the storm guard holds the hosts past its limit, one approval lets them go, every recovery completes", async () => {
    const r = await cli(["demo", "--scenario", "rack", "--fast"], 150_000);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/rack-02 loses power: 6 hosts, 24 instances/);
    expect(r.stdout).toMatch(/the storm guard tripped {2}4 recoveries in 600s > max_recoveries 3/);
    expect(r.stdout).toMatch(/\$ lifeboat approve --blocked-by storm\n {2}3 recovery\(ies\) approved/);
    expect(r.stdout).toMatch(/✔ rack-02 recovered {2}6\/6 recoveries completed/);
    expect(r.stdout.match(/held, approved +4\/4 +Off, down, forced down, disabled/g)).toHaveLength(3);
    expect(r.stdout).toMatch(/lifeboat_instances_evacuated_total\{result="evacuated"\} 24/);
  }, 160_000);

  it("an unknown scenario is refused with the choices", async () => {
    const r = await cli(["demo", "--scenario", "datacentre"], 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("option '--scenario <scenario>' argument 'datacentre' is invalid. Allowed choices are host, rack.");
  });
});
