import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logging.js";
import { releaseHost, type ReleaseDeps } from "../../src/nova/release.js";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import type { SandboxScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import { driverFor, servicePuts, type DriverHandle } from "./support/driver.js";

const logger = createLogger({ level: "silent" });
const clouds: SandboxCloud[] = [];
const handles: DriverHandle[] = [];
afterEach(async () => {
  handles.splice(0).forEach((h) => h.session.close());
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

const scenario = (disabledReason?: string): SandboxScenario => ({
  projects: [{ name: "admin" }, { name: "acme" }],
  users: [{ name: "admin", password: "pw", roles: [{ project: "admin", role: "admin" }] }],
  flavors: [{ name: "small", vcpus: 1, ram: 512, disk: 5 }],
  hosts: [{ name: "failed" }, { name: "ok-1" }, { name: "ok-2", disabledReason }],
  servers: [
    { name: "a", host: "failed", project: "acme", flavor: "small" },
    { name: "b", host: "failed", project: "acme", flavor: "small" },
  ],
});

/** A host that failed, was isolated and evacuated: `done` migrations remain on it. */
async function afterRecovery(): Promise<{ cloud: SandboxCloud; h: DriverHandle }> {
  const cloud = await startSandboxCloud({ scenario: scenario(), evacuationDurationMs: 50, reportIntervalSeconds: 0.1, serviceDownTimeSeconds: 2 });
  clouds.push(cloud);
  const h = driverFor(cloud);
  handles.push(h);
  cloud.killHost("failed");
  await h.driver.isolate("failed", "lifeboat: recovery r-9 fenced 2026-11-25T13:00:00Z");
  for (const i of await h.driver.listInstances("failed")) {
    expect(await h.driver.evacuate(i, "failed", { attempt: 1, timeoutMs: 10_000 })).toMatchObject({ result: "evacuated" });
  }
  cloud.settle();
  expect(cloud.state.migrations.map((m) => m.status)).toEqual(["done", "done"]);
  return { cloud, h };
}

const fast = (h: DriverHandle, more: Partial<ReleaseDeps> = {}): ReleaseDeps => ({
  nova: h.driver.nova,
  logger,
  pollIntervalMs: 50,
  // updated_at has a one-second resolution: a start shows within a second or so.
  computeStartTimeoutMs: 3000,
  migrationsTimeoutMs: 2000,
  upTimeoutMs: 2000,
  ...more,
});

describe("release of a repaired host", () => {
  it("is refused while the host is still down: nova-compute never starts, nothing is un-forced", async () => {
    const { cloud, h } = await afterRecovery();
    const putsBefore = servicePuts(cloud).length;
    let powered = 0;
    const t0 = Date.now();
    const r = await releaseHost("failed", fast(h, { powerOn: () => Promise.resolve(powered++), computeStartTimeoutMs: 600 }));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(powered).toBe(1);
    expect(r.released).toBe(false);
    expect(r.steps.map((s) => `${s.step}:${s.ok}`)).toEqual(["precheck:true", "power-on:true", "compute-started:false"]);
    expect(r.message).toMatch(/refused at compute-started: nova-compute to start on failed .*not after 0\.6s/);
    expect(servicePuts(cloud)).toHaveLength(putsBefore);
    expect(r.service).toMatchObject({ forcedDown: true, status: "disabled" });
  });

  it("is refused before power-on when the caller says the host still fails", async () => {
    const { h } = await afterRecovery();
    let powered = 0;
    const r = await releaseHost("failed", fast(h, { powerOn: () => Promise.resolve(powered++), stillFailing: () => Promise.resolve("ComputeNodeDown still firing") }));
    expect(r).toMatchObject({ released: false });
    expect(r.message).toContain("ComputeNodeDown still firing");
    expect(powered).toBe(0);
  });

  it("after repair: nova-compute starts (done → completed), then un-force, up, enable — in that order", async () => {
    const { cloud, h } = await afterRecovery();
    const putsBefore = servicePuts(cloud).length;
    const r = await releaseHost(
      "failed",
      fast(h, {
        powerOn: () => {
          // The BMC powers the node on; it boots and nova-compute starts a little later.
          setTimeout(() => cloud.startCompute("failed"), 150);
          return Promise.resolve();
        },
      }),
    );
    expect(r.released).toBe(true);
    expect(r.steps.map((s) => s.step)).toEqual(["precheck", "power-on", "compute-started", "migrations-completed", "unforce", "up", "enable"]);
    expect(r.steps.every((s) => s.ok)).toBe(true);
    expect(servicePuts(cloud).slice(putsBefore)).toEqual([{ forced_down: false }, { status: "enabled" }]);
    expect(cloud.state.migrations.map((m) => m.status)).toEqual(["completed", "completed"]);
    expect(r.service).toMatchObject({ state: "up", status: "enabled", forcedDown: false, disabledReason: null });
    // Released again: nothing to do.
    const again = await releaseHost("failed", fast(h));
    expect(again).toMatchObject({ released: true });
    expect(again.steps[0]).toMatchObject({ step: "precheck", skipped: true });
  });

  it("waits for the `done` records to turn completed; if they never do, it stops before un-forcing", async () => {
    const { cloud, h } = await afterRecovery();
    // The host is up again but its `done` records are not completed (e.g. a broken evacuation).
    cloud.startCompute("failed");
    for (const m of cloud.state.migrations) m.status = "done";
    const r = await releaseHost("failed", fast(h, { migrationsTimeoutMs: 300 }));
    expect(r.released).toBe(false);
    expect(r.steps.at(-1)).toMatchObject({ step: "migrations-completed", ok: false });
    expect(r.message).toContain("the evacuation migrations from failed to become completed: not after 0.3s");
    expect(servicePuts(cloud).at(-1)).not.toEqual({ forced_down: false });
  });

  it("does not touch a host someone else disabled", async () => {
    const cloud = await startSandboxCloud({ scenario: scenario("hardware maintenance (jdoe)") });
    clouds.push(cloud);
    const h = driverFor(cloud);
    handles.push(h);
    const r = await releaseHost("ok-2", fast(h));
    expect(r.released).toBe(false);
    expect(r.message).toContain("disabled by someone else");
    expect(servicePuts(cloud)).toEqual([]);
  });
});
