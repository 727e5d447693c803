import { afterEach, describe, expect, it } from "vitest";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import type { SandboxScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import { driverFor, servicePuts, type DriverHandle } from "./support/driver.js";

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

describe("the Nova side of a release", () => {
  it("counts the `done` evacuation records; Nova refuses to un-force while they are left, and the refusal is said in its words", async () => {
    const { cloud, h } = await afterRecovery();
    const release = h.driver.release;
    expect(await release.evacuationRecordsLeft("failed")).toBe(2);
    const err = await release.unforce("failed").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^Nova refused to un-force failed \(400\): /);
    expect(cloud.state.mustHost("failed").forcedDown).toBe(true);
  });

  it("after nova-compute started (done → completed): un-forces once, then says it is done already; enables once", async () => {
    const { cloud, h } = await afterRecovery();
    const release = h.driver.release;
    const putsBefore = servicePuts(cloud).length;
    cloud.startCompute("failed");
    cloud.settle();
    expect(await release.evacuationRecordsLeft("failed")).toBe(0);
    expect(cloud.state.migrations.map((m) => m.status)).toEqual(["completed", "completed"]);
    expect(await release.unforce("failed")).toMatchObject({ already: false, service: { forcedDown: false } });
    expect(await release.unforce("failed")).toMatchObject({ already: true });
    expect(await release.enable("failed")).toMatchObject({ result: "enabled", service: { status: "enabled", disabledReason: null } });
    expect(await release.enable("failed")).toMatchObject({ result: "already" });
    expect(servicePuts(cloud).slice(putsBefore)).toEqual([{ forced_down: false }, { status: "enabled" }]);
  });

  it("does not enable a host someone else disabled", async () => {
    const cloud = await startSandboxCloud({ scenario: scenario("hardware maintenance (jdoe)") });
    clouds.push(cloud);
    const h = driverFor(cloud);
    handles.push(h);
    const r = await h.driver.release.enable("ok-2");
    expect(r).toMatchObject({ result: "left-disabled" });
    expect(r.message).toContain("hardware maintenance (jdoe)");
    expect(servicePuts(cloud)).toEqual([]);
  });
});
