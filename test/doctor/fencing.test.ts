import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSecrets } from "../../src/doctor/doctor.js";
import { fencingCheck } from "../../src/doctor/fencing.js";
import { runChecks } from "../../src/doctor/runner.js";
import { silentLogger } from "../../src/logging.js";
import { startIpmiSim, type IpmiSim } from "../support/ipmi-sim.js";
import { lifeboatConfig } from "../kit/config.js";

/**
 * Every device of a host's escalation chain is asked, each with its own credentials: here a
 * real BMC (OpenIPMI's ipmi_sim) through the real ipmitool, once with the right password
 * and once with a wrong one.
 */
let bmc: IpmiSim;
beforeAll(async () => {
  bmc = await startIpmiSim({ users: [{ name: "lifeboat", password: "ipmi-good-pass", priv: "admin" }], power: "on" });
});
afterAll(async () => {
  await bmc?.stop();
});

function ipmi(password: string, name: string): Record<string, unknown> {
  return { driver: "ipmi", name, address: bmc.host, port: bmc.port, username: "lifeboat", password, timeout_seconds: 10, power_timeout_seconds: 5, ipmitool_retries: 1 };
}

describe("fencing rows", () => {
  it("one row per device of the chain: the good one reads the power, the wrong password fails, no password shown", async () => {
    const cfg = lifeboatConfig({ fencing: { hosts: { "compute-7": { devices: [ipmi("ipmi-good-pass", "bmc-good"), ipmi("ipmi-bad-pass", "bmc-bad")] } } } });
    const r = await runChecks([fencingCheck(cfg.fencing, { logger: silentLogger() })], { secrets: configSecrets(cfg) });
    expect(r.rows.map((x) => [x.target, x.result])).toEqual([
      ["compute-7 bmc-good", "ok"],
      ["compute-7 bmc-bad", "fail"],
    ]);
    expect(r.rows[0]!.detail).toBe("power on (Chassis Power is on)");
    // ipmitool's own words.
    expect(r.rows[1]!.detail).toMatch(/^ipmitool chassis power status exited 1: .*Unable to establish IPMI v2 \/ RMCP\+ session/);
    expect(JSON.stringify(r)).not.toMatch(/ipmi-good-pass|ipmi-bad-pass/);
    // Read only: nothing was sent to the chassis.
    expect(await bmc.commands()).toEqual([]);
  }, 60_000);

  it("a host that is off answers ok and says so", async () => {
    await bmc.setPower("off");
    try {
      const cfg = lifeboatConfig({ fencing: { hosts: { "compute-8": ipmi("ipmi-good-pass", "bmc-8") } } });
      const r = await runChecks([fencingCheck(cfg.fencing, { logger: silentLogger() })]);
      expect(r.rows).toMatchObject([{ check: "fencing", target: "compute-8 bmc-8", result: "ok", detail: "power off (Chassis Power is off); the host is off now" }]);
    } finally {
      await bmc.setPower("on");
    }
  }, 60_000);

  it("no hosts: no rows", async () => {
    const r = await runChecks([fencingCheck(lifeboatConfig().fencing, { logger: silentLogger() })]);
    expect(r.rows).toEqual([]);
  });
});
