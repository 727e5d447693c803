import { afterEach, describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { defaultScenario } from "../../packages/sandbox/src/cloud.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat, startStack, type Stack } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";
import { World } from "../kit/world.js";

let t: TestLifeboat | undefined;
let stack: Stack | undefined;
afterEach(async () => {
  await t?.app.stop();
  await stack?.close();
  t = undefined;
  stack = undefined;
});

describe("partition scenario: 40 % of 20 hosts fire within a minute", () => {
  it("the storm guard lets through at most the configured number, blocks the rest, and nothing beyond the bound is fenced", async () => {
    const hosts = Array.from({ length: 20 }, (_, i) => `compute-${String(i + 1).padStart(2, "0")}`);
    const world = World.standard(hosts, 2);
    t = makeLifeboat(lifeboatConfig({ gates: { storm: { max_recoveries: 3, max_percent: 50, window_seconds: 600, cooldown_seconds: 600 } } }), world);
    await t.app.start({ listen: "127.0.0.1:0" });
    const failing = hosts.slice(0, 8);
    for (const h of failing) world.kill(h);
    // All eight alerts within the same second, from the same Alertmanager group flush.
    const answers = await Promise.all(failing.map((h) => postAlert(t!.app.url, alertPayload({ host: h }))));
    expect(answers.every((a) => a.status === 202)).toBe(true);

    await waitFor(async () => {
      const rs = await t!.app.store.listRecoveries({});
      return rs.length === 8 && rs.every((r) => r.state === "completed" || r.state === "blocked");
    }, 20_000, "every recovery settled");
    const rs = await t.app.store.listRecoveries({});
    const completed = rs.filter((r) => r.state === "completed");
    const blocked = rs.filter((r) => r.state === "blocked");
    expect(completed).toHaveLength(3);
    expect(blocked).toHaveLength(5);
    for (const b of blocked) expect(b.reason).toMatch(/storm: storm guard: 4 recoveries in 600s > max_recoveries 3/);
    // Nothing beyond the bound was fenced, isolated or evacuated.
    expect(world.calls.filter((c) => c.startsWith("off "))).toHaveLength(3);
    expect(world.calls.filter((c) => c.startsWith("force-down "))).toHaveLength(3);
    for (const b of blocked) expect(world.host(b.host).power).toBe("on");
    // One operator notification for the storm; the guard's state is a metric.
    expect(t.notifier.storms).toHaveLength(1);
    const metrics = await (await fetch(`${t.app.url}/metrics`)).text();
    expect(metrics).toMatch(/^lifeboat_storm_guard_tripped 1$/m);
    expect(metrics).toMatch(/^lifeboat_storm_guard_trips_total 1$/m);
    expect(metrics).toMatch(/^lifeboat_recoveries_in_progress\{state="blocked"\} 5$/m);

    // Still blocked a while later (re-checks do not slip through)…
    await new Promise((r) => setTimeout(r, 500));
    expect(world.calls.filter((c) => c.startsWith("off "))).toHaveLength(3);
    // …until an operator approves one: only that one proceeds.
    const chosen = blocked[0]!;
    expect((await api(t.app.url, "POST", `/api/v1/recoveries/${chosen.id}/approve`)).status).toBe(200);
    await waitFor(async () => (await t!.app.store.getRecovery(chosen.id))?.state === "completed", 10_000, "approved one completed");
    const d = (await api(t.app.url, "GET", `/api/v1/recoveries/${chosen.id}`)).body as RecoveryDetail;
    expect(d.decisions.filter((x) => x.gate === "storm").at(-1)?.reason).toMatch(/^approved by tester over: storm guard/);
    expect(world.calls.filter((c) => c.startsWith("off "))).toHaveLength(4);
    expect((await t.app.store.listRecoveries({ state: "blocked" })).length).toBe(4);
  });
});

describe("capacity pre-check against the simulated cloud (Placement figures)", () => {
  it("insufficient capacity blocks before fencing, with the shortfall named", async () => {
    const scenario = defaultScenario({ hosts: 2, serversPerHost: 4 });
    // The only other host is small, with no overcommit.
    Object.assign(scenario.hosts[1]!, { vcpus: 4, memoryMb: 8192, cpuAllocationRatio: 1, ramAllocationRatio: 1 });
    stack = await startStack({ sandbox: { cloud: { scenario } }, config: { gates: { capacity: { mode: "block" } } } });
    stack.sandbox.failHost("compute-1");
    await new Promise((r) => setTimeout(r, 6500));
    await postAlert(stack.app.url, alertPayload({ host: "compute-1" }));
    const r = await waitFor(async () => {
      const x = (await stack!.app.store.listRecoveries({ host: "compute-1" }))[0];
      return x?.state === "blocked" ? x : undefined;
    }, 20_000, "blocked");
    expect(r.reason).toMatch(/capacity: insufficient capacity in zone nova: \d+ of 4 instance\(s\) do not fit \(short \d+ vCPU, \d+ MB RAM\)/);
    expect(stack.sandbox.redfish.system("compute-1").resets).toEqual([]);
    expect(stack.sandbox.view().hosts.find((h) => h.host === "compute-1")?.power).toBe("On");
  }, 60_000);
});
