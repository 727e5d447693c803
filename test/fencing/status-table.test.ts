import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fencingSchema, type FencingConfig } from "../../src/fencing/config.js";
import { createFencing } from "../../src/fencing/service.js";
import { anyStatusFailed, fenceStatusRows, formatStatusTable } from "../../src/fencing/status-table.js";
import { silentLogger } from "../../src/logging.js";
import { Metrics } from "../../src/metrics.js";
import { startRedfishSimulator, type RedfishSimulator } from "../../packages/sandbox/src/redfish.js";
import { memoryRegistry, memoryStats, type MemoryDeviceConfig } from "./support/memory-device.js";

let redfish: RedfishSimulator;
beforeAll(async () => {
  redfish = await startRedfishSimulator({
    systems: [
      { id: "a", powerState: "On" },
      { id: "b", powerState: "Off" },
    ],
    username: "root",
    password: "pw-table",
  });
});
afterAll(async () => {
  await redfish?.close();
});

const deps = () => ({ logger: silentLogger(), metrics: new Metrics({ version: "test", defaultMetrics: false }) });

describe("fence status table", () => {
  it("asks every device of every host and reports who did not answer", async () => {
    const rf = { driver: "redfish", address: redfish.url, username: "root", password: "pw-table", retries: 0 };
    const config = fencingSchema.parse({
      hosts: {
        "compute-2": { devices: [{ ...rf, system_id: "b" }, { ...rf, system_id: "a", password: "nope" }] },
        "compute-1": { ...rf, system_id: "a" },
      },
    });
    const fencing = createFencing(config, deps());
    const rows = await fenceStatusRows(fencing);
    expect(rows.slice(0, 2)).toEqual([
      { host: "compute-1", device: `redfish ${redfish.url} a`, driver: "redfish", state: "on", detail: "PowerState: On" },
      { host: "compute-2", device: `redfish ${redfish.url} b`, driver: "redfish", state: "off", detail: "PowerState: Off" },
    ]);
    expect(rows[2]).toMatchObject({ host: "compute-2", device: `redfish ${redfish.url} a`, driver: "redfish", state: "error" });
    expect(rows[2]?.detail).toMatch(/HTTP 401/);
    expect(rows).toHaveLength(3);
    expect(anyStatusFailed(rows)).toBe(true);
    expect(anyStatusFailed(rows.slice(0, 2))).toBe(false);

    const named = await fenceStatusRows(fencing, ["compute-1", "compute-9"]);
    expect(named.map((r) => [r.host, r.state, r.detail])).toEqual([
      ["compute-1", "on", "PowerState: On"],
      ["compute-9", "error", "no fencing configured for compute-9"],
    ]);
  });

  it("bounds how many hosts are asked at once", async () => {
    const hosts: Record<string, { devices: MemoryDeviceConfig[] }> = {};
    for (let i = 0; i < 20; i++) hosts[`h${String(i).padStart(2, "0")}`] = { devices: [{ driver: "memory", name: `m${i}`, delayMs: 20 }] };
    const fencing = createFencing({ unsafe_noop: false, hosts } as unknown as FencingConfig, { ...deps(), registry: memoryRegistry() });
    memoryStats.maxInFlight = 0;
    const rows = await fenceStatusRows(fencing, undefined, { concurrency: 4 });
    expect(rows).toHaveLength(20);
    expect(memoryStats.maxInFlight).toBeLessThanOrEqual(4);
    expect(memoryStats.maxInFlight).toBeGreaterThan(1);
  });

  it("prints an aligned plain-text table", () => {
    const text = formatStatusTable([
      { host: "compute-1", device: "ipmi 10.0.0.1:623", driver: "ipmi", state: "on", detail: "Chassis Power is on" },
      { host: "c-2", device: "redfish https://bmc-2", driver: "redfish", state: "error", detail: "GET /redfish/v1/: connect ECONNREFUSED\nsecond line" },
    ]);
    const lines = text.trimEnd().split("\n");
    expect(lines).toEqual([
      "HOST       DEVICE                 DRIVER   STATE  DETAIL",
      "compute-1  ipmi 10.0.0.1:623      ipmi     on     Chassis Power is on",
      "c-2        redfish https://bmc-2  redfish  error  GET /redfish/v1/: connect ECONNREFUSED second line",
    ]);
    expect(formatStatusTable([])).toBe("no hosts with fencing configured\n");
  });
});
