import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ipmiDeviceSchema } from "../../src/fencing/config.js";
import { IpmiDevice } from "../../src/fencing/ipmi.js";
import { silentLogger } from "../../src/logging.js";
import { freeUdpPort, startIpmiSim, type IpmiSim, type IpmiSimEvent } from "../support/ipmi-sim.js";

// Real ipmitool against a real OpenIPMI ipmi_sim BMC.

const PASSWORD = "Fence-Pa55word!";
let sim: IpmiSim;

function device(overrides: Record<string, unknown> = {}): IpmiDevice {
  const config = ipmiDeviceSchema.parse({
    driver: "ipmi",
    address: sim.host,
    port: sim.port,
    username: "admin",
    password: PASSWORD,
    cipher_suite: 3, // ipmi_sim does not do suite 17 (api-facts 5.4)
    ipmitool_timeout_seconds: 1,
    ipmitool_retries: 1,
    retries: 1,
    retry_delay_seconds: 0.1,
    poll_interval_seconds: 0.2,
    power_timeout_seconds: 3,
    timeout_seconds: 15,
    ...overrides,
  });
  return new IpmiDevice(config, { logger: silentLogger() });
}

/** What the chassis saw since `from` events: "get 1" (a read that answered on), "set power 0"… */
async function chassisLog(from: number): Promise<string[]> {
  return (await sim.events()).slice(from).map((e: IpmiSimEvent) => (e.op === "get" ? `get ${e.value}` : `set ${e.parm} ${e.value}`));
}

beforeAll(async () => {
  sim = await startIpmiSim({ users: [{ name: "admin", password: PASSWORD }], power: "on" });
});
afterAll(async () => {
  await sim?.stop();
});

describe("ipmi device against ipmi_sim", () => {
  it("reads the chassis power state", async () => {
    await sim.setPower("on");
    expect(await device().status()).toEqual({ state: "on", raw: "Chassis Power is on" });
    await sim.setPower("off");
    expect(await device().status()).toEqual({ state: "off", raw: "Chassis Power is off" });
  });

  it("works with the cipher suite left to ipmitool", async () => {
    await sim.setPower("on");
    expect((await device({ cipher_suite: undefined }).status()).state).toBe("on");
  });

  it("powers off and confirms it by two status reads, the first right after the command", async () => {
    await sim.setPower("on");
    const before = (await sim.commands()).length;
    const seen = (await sim.events()).length;
    const r = await device().off();
    expect(r).toMatchObject({ ok: true, state: "off", already: false, attempts: 1 });
    expect(r.message).toContain("Chassis Power Control: Down/Off");
    expect(r.message).toContain("read back: Chassis Power is off (twice, 0.1s apart)");
    expect(await sim.power()).toBe("off");
    expect((await sim.commands()).slice(before)).toEqual(["power 0"]);
    // One read before, the command, then two fresh ipmitool reads that both said off.
    expect(await chassisLog(seen)).toEqual(["get 1", "set power 0", "get 0", "get 0"]);
  });

  it("does not take one 'off' for proof: a BMC that reads off once, then on again, is not confirmed", async () => {
    await sim.setPower("on");
    await sim.ignorePowerCommands(true);
    try {
      // The chassis ignores the command; the BMC's first answer afterwards wrongly says off.
      await sim.scriptPowerReads(["on", "off"]);
      const seen = (await sim.events()).length;
      const r = await device({ power_timeout_seconds: 1 }).off();
      expect(r).toMatchObject({ ok: false, state: "on", already: false, attempts: 1 });
      expect(r.message).toContain("did not read back off within 1s; last status: Chassis Power is on");
      expect(r.message).toContain("it read off once, but the next read said: Chassis Power is on");
      const log = await chassisLog(seen);
      expect(log.slice(0, 4)).toEqual(["get 1", "set power 0", "get 0", "get 1"]);
      expect(log.slice(4).every((e) => e === "get 1")).toBe(true);
      expect(await sim.power()).toBe("on");
    } finally {
      await sim.ignorePowerCommands(false);
      await sim.scriptPowerReads([]);
    }
  });

  it("treats an already-off chassis as success without sending off, once two reads agree", async () => {
    await sim.setPower("off");
    const before = (await sim.commands()).length;
    const seen = (await sim.events()).length;
    const r = await device().off();
    expect(r).toMatchObject({ ok: true, state: "off", already: true, attempts: 0 });
    expect(r.message).toContain("already off (Chassis Power is off, read twice, 0.1s apart); nothing sent");
    expect((await sim.commands()).length).toBe(before);
    expect(await chassisLog(seen)).toEqual(["get 0", "get 0"]);
  });

  it("sends off when a first 'off' before the command is not confirmed by the next read", async () => {
    await sim.setPower("on");
    await sim.scriptPowerReads(["off"]);
    const seen = (await sim.events()).length;
    const r = await device().off();
    expect(r).toMatchObject({ ok: true, state: "off", already: false, attempts: 1 });
    expect(await chassisLog(seen)).toEqual(["get 0", "get 1", "set power 0", "get 0", "get 0"]);
  });

  it("powers on", async () => {
    await sim.setPower("off");
    const r = await device().on();
    expect(r).toMatchObject({ ok: true, state: "on", already: false });
    expect(await sim.power()).toBe("on");
  });

  it("fails fast on a wrong password, in ipmitool's words", async () => {
    await sim.setPower("on");
    const t0 = Date.now();
    const r = await device({ password: "not-the-password" }).off();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.ok).toBe(false);
    expect(r.message).toContain("Unable to establish IPMI v2 / RMCP+ session");
    expect(await sim.power()).toBe("on");
    await expect(device({ password: "not-the-password" }).status()).rejects.toThrow(/Unable to establish IPMI v2/);
  });

  it("gives up on an unreachable BMC well before ipmitool's default 20 s", async () => {
    const nobody = await freeUdpPort();
    const t0 = Date.now();
    const r = await device({ port: nobody, ipmitool_timeout_seconds: 1, ipmitool_retries: 1, retries: 1 }).off();
    const elapsed = Date.now() - t0;
    expect(r.ok).toBe(false);
    expect(r.state).toBe("unknown");
    expect(r.message).toMatch(/Unable to establish IPMI v2/);
    // -N 1 -R 1 makes each ipmitool run give up in ~2 s; two runs plus backoff.
    expect(elapsed).toBeLessThan(10_000);
  });

  it("kills ipmitool at the command deadline", async () => {
    const nobody = await freeUdpPort();
    const t0 = Date.now();
    // ipmitool alone would try for ~80 s; our deadline is 1 s per command, no retries. (The
    // bound is generous: a loaded machine may take seconds to start and reap the process.)
    const r = await device({ port: nobody, ipmitool_timeout_seconds: 20, ipmitool_retries: 3, retries: 0, command_timeout_seconds: 1 }).off();
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/killed/);
    expect(Date.now() - t0).toBeLessThan(40_000);
  });

  it("reports failure when the power stays on after off, within power_timeout", async () => {
    await sim.setPower("on");
    await sim.ignorePowerCommands(true);
    try {
      const t0 = Date.now();
      const r = await device({ power_timeout_seconds: 2 }).off();
      const elapsed = Date.now() - t0;
      expect(r).toMatchObject({ ok: false, state: "on", already: false, attempts: 1 });
      expect(r.message).toContain("did not read back off within 2s");
      expect(r.message).toContain("Chassis Power is on");
      expect(elapsed).toBeGreaterThanOrEqual(2000);
      expect(elapsed).toBeLessThan(6000);
      expect(await sim.power()).toBe("on");
    } finally {
      await sim.ignorePowerCommands(false);
    }
  });

  it("does not retry a definite refusal (insufficient privilege)", async () => {
    await sim.setPower("on");
    const before = (await sim.commands()).length;
    const r = await device({ privilege: "USER", retries: 3, retry_delay_seconds: 1 }).off();
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/Insufficient privilege level/);
    expect(r.attempts).toBe(1);
    expect((await sim.commands()).length).toBe(before);
  });
});
