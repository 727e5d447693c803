import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logging.js";
import { checkFailedHosts, NovaServiceMonitor } from "../../src/nova/monitor.js";
import { type MonitorEvent } from "../../src/intake/monitor-events.js";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import type { SandboxScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import { driverFor, type DriverHandle } from "./support/driver.js";

const logger = createLogger({ level: "silent" });
const clouds: SandboxCloud[] = [];
const handles: DriverHandle[] = [];
afterEach(async () => {
  handles.splice(0).forEach((h) => h.session.close());
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

const scenario: SandboxScenario = {
  projects: [{ name: "admin" }],
  users: [{ name: "admin", password: "pw", roles: [{ project: "admin", role: "admin" }] }],
  flavors: [{ name: "small", vcpus: 1, ram: 512, disk: 5 }],
  hosts: [
    { name: "dead", alive: false },
    { name: "maintenance", alive: false, disabledReason: "BIOS update (jdoe)" },
    { name: "isolated", alive: false, forcedDown: true, disabledReason: "lifeboat: recovery r-1 fenced 2026-11-25T13:00:00Z" },
    { name: "forcing", alive: false, forcedDown: true },
    { name: "healthy" },
  ],
  servers: [],
};

async function setup(): Promise<{ cloud: SandboxCloud; h: DriverHandle }> {
  const cloud = await startSandboxCloud({ scenario, serviceDownTimeSeconds: 60, reportIntervalSeconds: 0.1 });
  clouds.push(cloud);
  const h = driverFor(cloud);
  handles.push(h);
  return { cloud, h };
}

describe("native Nova monitor", () => {
  it("finds down, enabled, not-forced hosts; ignores maintenance and hosts being handled", async () => {
    const { h } = await setup();
    const failed = await checkFailedHosts(h.driver.nova, { staleSeconds: 30 });
    expect(failed.map((f) => f.host)).toEqual(["dead"]);
    expect(failed[0]!.zone).toBe("nova");
    expect(failed[0]!.updatedAt).toMatch(/Z$/);
    expect(Date.parse(failed[0]!.updatedAt!)).toBeLessThan(Date.now() - 60_000);
  });

  it("polls every interval: firing while failed (repeated), resolved once it is back; new failures appear", async () => {
    const { cloud, h } = await setup();
    const batches: MonitorEvent[][] = [];
    const monitor = new NovaServiceMonitor(h.driver.nova, { intervalMs: 50, staleSeconds: 30, logger, onEvents: (e) => void batches.push(e) });
    monitor.start();
    try {
      await waitFor(() => batches.length >= 2);
      expect(batches[0]).toEqual([expect.objectContaining({ host: "dead", status: "firing", source: "nova-monitor" })]);
      expect(batches[1]![0]!.since).toBe(batches[0]![0]!.since);
      expect(monitor.failedHosts()).toEqual(["dead"]);

      cloud.startCompute("dead");
      await waitFor(() => batches.some((b) => b.some((e) => e.status === "resolved")));
      expect(batches.flat().find((e) => e.status === "resolved")).toMatchObject({ host: "dead" });

      cloud.killHost("healthy");
      cloud.clock.advance(61_000);
      await waitFor(() => batches.at(-1)!.some((e) => e.host === "healthy" && e.status === "firing"));
      expect(monitor.failedHosts()).toEqual(["healthy"]);
    } finally {
      await monitor.stop();
    }
    const n = batches.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(batches.length).toBe(n);
  });

  it("a failing poll keeps the last known state and the loop goes on", async () => {
    const { cloud, h } = await setup();
    const batches: MonitorEvent[][] = [];
    const monitor = new NovaServiceMonitor(h.driver.nova, { intervalMs: 50, staleSeconds: 30, logger, onEvents: (e) => void batches.push(e) });
    await monitor.poll();
    cloud.faults.fail(500, { times: 20, match: { path: "/v2.1/os-services" } });
    monitor.start();
    try {
      await waitFor(() => cloud.faults.list().length === 0, 10_000);
      await waitFor(() => batches.length >= 2);
      expect(batches.flat().every((e) => e.status === "firing" && e.host === "dead")).toBe(true);
    } finally {
      await monitor.stop();
    }
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
