import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fencingSchema, type FencingConfig } from "../../src/fencing/config.js";
import { createFencing } from "../../src/fencing/service.js";
import { createLogger, silentLogger } from "../../src/logging.js";
import { Metrics } from "../../src/metrics.js";
import { startRedfishSimulator, type RedfishSimulator } from "../../packages/sandbox/src/redfish.js";
import { freeUdpPort, startIpmiSim, type IpmiSim } from "../support/ipmi-sim.js";
import { memoryRegistry, memoryStats, type MemoryDeviceConfig } from "./support/memory-device.js";

// The per-host escalation chain: real ipmitool/ipmi_sim and the Redfish simulator for the
// headline cases, in-memory devices for the chain's own rules.

const FAST = { retries: 1, retry_delay_seconds: 0.05, power_wait_seconds: 0.1, poll_interval_seconds: 0.1, power_timeout_seconds: 1.5, timeout_seconds: 10 };
const IPMI_PW = "Ipmi-Chain-Pw1";
const RF_PW = "Redfish-Chain-Pw2";

let ipmi: IpmiSim;
let redfish: RedfishSimulator;

beforeAll(async () => {
  ipmi = await startIpmiSim({ users: [{ name: "admin", password: IPMI_PW }] });
  redfish = await startRedfishSimulator({ systems: [{ id: "1", powerState: "On" }], username: "root", password: RF_PW, powerDelayMs: 300 });
});
afterAll(async () => {
  await ipmi?.stop();
  await redfish?.close();
});
beforeEach(async () => {
  await ipmi.setPower("on");
  await ipmi.ignorePowerCommands(false);
  redfish.system("1").setPowerState("On");
  redfish.system("1").ignoreResets(false);
});

function metrics(): Metrics {
  return new Metrics({ version: "test", defaultMetrics: false });
}

async function counter(m: Metrics, labels: Partial<Record<"driver" | "operation" | "result", string>>): Promise<number> {
  const data = await m.fenceOperations.get();
  const keys = Object.keys(labels) as (keyof typeof labels)[];
  return data.values.filter((v) => keys.every((k) => v.labels[k] === labels[k])).reduce((a, v) => a + v.value, 0);
}

async function durationCount(m: Metrics, driver: string, operation: string): Promise<number> {
  const data = await m.fenceDuration.get();
  return data.values.find((v) => v.metricName === "lifeboat_fence_duration_seconds_count" && v.labels.driver === driver && v.labels.operation === operation)?.value ?? 0;
}

function memoryConfig(hosts: Record<string, MemoryDeviceConfig[]>): FencingConfig {
  return { unsafe_noop: false, hosts: Object.fromEntries(Object.entries(hosts).map(([h, devices]) => [h, { devices: devices as never }])) };
}

describe("fencing chain with real devices", () => {
  it("falls through an unreachable IPMI BMC to Redfish, which confirms off", async () => {
    const deadPort = await freeUdpPort();
    const config = fencingSchema.parse({
      hosts: {
        "compute-1": {
          devices: [
            { driver: "ipmi", address: "127.0.0.1", port: deadPort, username: "admin", password: IPMI_PW, cipher_suite: 3, ipmitool_timeout_seconds: 1, ipmitool_retries: 1, ...FAST },
            { driver: "redfish", address: redfish.url, username: "root", password: RF_PW, ...FAST },
          ],
        },
      },
    });
    const m = metrics();
    const fencing = createFencing(config, { logger: silentLogger(), metrics: m });
    expect(fencing.hosts()).toEqual(["compute-1"]);
    const labels = fencing.devices("compute-1").map((d) => d.label);
    expect(labels).toEqual([`ipmi 127.0.0.1:${deadPort}`, `redfish ${redfish.url}`]);

    const r = await fencing.fenceOff("compute-1");
    expect(r.ok).toBe(true);
    expect(r.device).toBe(labels[1]);
    expect(r.attempts.map((a) => [a.driver, a.result.ok])).toEqual([
      ["ipmi", false],
      ["redfish", true],
    ]);
    expect(r.attempts[0]?.result.message).toMatch(/Unable to establish IPMI v2/);
    expect(r.attempts[1]?.result.state).toBe("off");
    expect(redfish.system("1").powerState).toBe("Off");

    expect(await counter(m, { driver: "ipmi", operation: "off", result: "failure" })).toBe(1);
    expect(await counter(m, { driver: "redfish", operation: "off", result: "success" })).toBe(1);
    expect(await counter(m, { result: "success", driver: "ipmi" })).toBe(0);
    expect(await durationCount(m, "ipmi", "off")).toBe(1);
    expect(await durationCount(m, "redfish", "off")).toBe(1);
  });

  it("fails with every device's words when none confirms off", async () => {
    await ipmi.ignorePowerCommands(true);
    redfish.system("1").ignoreResets(true);
    const config = fencingSchema.parse({
      hosts: {
        "compute-1": {
          devices: [
            { driver: "ipmi", address: ipmi.host, port: ipmi.port, username: "admin", password: IPMI_PW, cipher_suite: 3, ...FAST },
            { driver: "redfish", address: redfish.url, username: "root", password: RF_PW, ...FAST },
          ],
        },
      },
    });
    const m = metrics();
    const r = await createFencing(config, { logger: silentLogger(), metrics: m }).fenceOff("compute-1");
    expect(r.ok).toBe(false);
    expect(r.device).toBeUndefined();
    expect(r.attempts).toHaveLength(2);
    expect(r.message).toMatch(/^no fencing device confirmed compute-1 off — /);
    expect(r.message).toContain("Chassis Power is on");
    expect(r.message).toContain("PowerState: On");
    expect(await ipmi.power()).toBe("on");
    expect(await counter(m, { operation: "off", result: "failure" })).toBe(2);
  });

  it("reports every device's status, and powers on with the first device that confirms", async () => {
    await ipmi.setPower("off");
    redfish.system("1").setPowerState("Off");
    const config = fencingSchema.parse({
      hosts: {
        "compute-1": {
          devices: [
            { driver: "ipmi", address: ipmi.host, port: ipmi.port, username: "admin", password: IPMI_PW, cipher_suite: 3, ...FAST },
            { driver: "redfish", address: redfish.url, username: "root", password: "wrong", ...FAST },
          ],
        },
      },
    });
    const m = metrics();
    const fencing = createFencing(config, { logger: silentLogger(), metrics: m });
    const status = await fencing.status("compute-1");
    expect(status[0]).toMatchObject({ driver: "ipmi", status: { state: "off", raw: "Chassis Power is off" } });
    expect(status[1]).toMatchObject({ driver: "redfish" });
    expect(status[1]?.error).toMatch(/HTTP 401/);
    expect(await counter(m, { operation: "status", result: "success" })).toBe(1);
    expect(await counter(m, { operation: "status", result: "failure" })).toBe(1);

    const on = await fencing.powerOn("compute-1");
    expect(on).toMatchObject({ ok: true, device: fencing.devices("compute-1")[0]?.label });
    expect(await ipmi.power()).toBe("on");
    expect(await counter(m, { driver: "ipmi", operation: "on", result: "success" })).toBe(1);
  });
});

describe("fencing chain rules", () => {
  it("says so when a host has no fencing", async () => {
    const fencing = createFencing(memoryConfig({}), { logger: silentLogger(), metrics: metrics(), registry: memoryRegistry() });
    expect(fencing.hasHost("compute-9")).toBe(false);
    expect(fencing.devices("compute-9")).toEqual([]);
    expect(await fencing.fenceOff("compute-9")).toEqual({ ok: false, attempts: [], message: "no fencing configured for compute-9" });
    expect(await fencing.status("compute-9")).toEqual([]);
  });

  it("turns a throwing device into a failure and moves on; stops at the first confirmation", async () => {
    memoryStats.calls.length = 0;
    const fencing = createFencing(
      memoryConfig({
        h: [
          { driver: "memory", name: "m-throw", behaviour: "throw" },
          { driver: "memory", name: "m-ok" },
          { driver: "memory", name: "m-never" },
        ],
      }),
      { logger: silentLogger(), metrics: metrics(), registry: memoryRegistry() },
    );
    const r = await fencing.fenceOff("h");
    expect(r.ok).toBe(true);
    expect(r.device).toBe("m-ok");
    expect(r.attempts[0]?.result).toMatchObject({ ok: false, state: "unknown", message: "m-throw exploded" });
    expect(memoryStats.calls).toEqual(["m-throw off", "m-ok off"]);
  });

  it("never takes a device's word for success without an 'off' read-back", async () => {
    const m = metrics();
    const fencing = createFencing(memoryConfig({ h: [{ driver: "memory", name: "m-lie", behaviour: "lie" }] }), { logger: silentLogger(), metrics: m, registry: memoryRegistry() });
    const r = await fencing.fenceOff("h");
    expect(r.ok).toBe(false);
    expect(r.attempts[0]?.result.ok).toBe(false);
    expect(r.message).toContain("device reported success but read back on");
    expect(await counter(m, { driver: "memory", operation: "off", result: "failure" })).toBe(1);
  });

  it("stops trying devices once aborted", async () => {
    memoryStats.calls.length = 0;
    const fencing = createFencing(memoryConfig({ h: [{ driver: "memory", name: "a" }] }), { logger: silentLogger(), metrics: metrics(), registry: memoryRegistry() });
    const ac = new AbortController();
    ac.abort(new Error("shutting down"));
    const r = await fencing.fenceOff("h", ac.signal);
    expect(r.ok).toBe(false);
    expect(r.message).toContain("aborted: shutting down");
    expect(memoryStats.calls).toEqual([]);
  });

  it("runs a noop chain only when allowed, warning loudly at setup and on every use", async () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (s: string) => void lines.push(s) } });
    const config = fencingSchema.parse({ unsafe_noop: true, hosts: { lab: { driver: "noop" } } });
    const fencing = createFencing(config, { logger, metrics: metrics() });
    const warnings = () => lines.filter((l) => l.includes("UNSAFE: noop fencing device")).length;
    expect(warnings()).toBe(1);
    const r = await fencing.fenceOff("lab");
    expect(r).toMatchObject({ ok: true, device: "noop" });
    expect(r.attempts[0]?.result.message).toContain("nothing was powered off");
    expect(warnings()).toBe(2);
    await fencing.status("lab");
    expect(warnings()).toBe(3);
  });

  it("names the host and device when a device cannot be set up", () => {
    const config = fencingSchema.parse({ hosts: { h: { driver: "redfish", address: "https://10.0.0.1", username: "u", password: "p", ca_file: "/nonexistent/ca.pem" } } });
    expect(() => createFencing(config, { logger: silentLogger(), metrics: metrics() })).toThrow(/^fencing\.hosts\.h\.devices\.0: cannot set up the redfish device: .*ENOENT/);
  });
});
