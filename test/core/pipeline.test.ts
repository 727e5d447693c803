import { afterEach, describe, expect, it } from "vitest";
import type { RecoveryDetail, RecoveryState } from "../../src/domain/model.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";
import { World } from "../kit/world.js";

let running: TestLifeboat[] = [];
afterEach(async () => {
  await Promise.all(running.map((t) => t.app.stop().catch(() => undefined)));
  running = [];
});

async function start(t: TestLifeboat): Promise<TestLifeboat> {
  running.push(t);
  await t.app.start({ listen: "127.0.0.1:0" });
  return t;
}

async function detail(t: TestLifeboat, id: string): Promise<RecoveryDetail> {
  const res = await api(t.app.url, "GET", `/api/v1/recoveries/${id}`);
  expect(res.status).toBe(200);
  return res.body as RecoveryDetail;
}

async function untilState(t: TestLifeboat, host: string, states: RecoveryState[], timeoutMs = 10_000): Promise<RecoveryDetail> {
  const r = await waitFor(
    async () => (await t.app.store.listRecoveries({ host, limit: 1 }))[0],
    timeoutMs,
    `a recovery for ${host}`,
  );
  await waitFor(async () => states.includes((await t.app.store.getRecovery(r.id))!.state), timeoutMs, `${host} in ${states.join("|")}`);
  return detail(t, r.id);
}

const path = (d: RecoveryDetail): string[] => d.timeline.map((t) => t.to);

describe("recovery state machine", () => {
  it("pending → validating → fencing → isolating → evacuating → notifying → completed", async () => {
    const t = await start(makeLifeboat(lifeboatConfig()));
    t.world.kill("compute-1");
    const res = await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    expect(res.status).toBe(202);
    const d = await untilState(t, "compute-1", ["completed"]);
    expect(path(d)).toEqual(["pending", "validating", "fencing", "isolating", "evacuating", "notifying", "completed"]);
    expect(d.fenceState).toBe("off");
    expect(t.world.host("compute-1").power).toBe("off");
    expect(t.world.host("compute-1").service).toMatchObject({ forcedDown: true, status: "disabled" });
    expect(t.world.host("compute-1").service.disabledReason).toMatch(new RegExp(`^lifeboat: recovery ${d.id} fenced `));
    expect(d.instances).toHaveLength(3);
    expect(d.instances.every((i) => i.state === "evacuated" && i.targetHost && i.targetHost !== "compute-1")).toBe(true);
    expect([...t.world.servers.values()].filter((s) => s.host === "compute-1")).toHaveLength(0);
    expect(d.decisions.map((x) => [x.gate, x.result])).toEqual(
      expect.arrayContaining([
        ["nova-service", "pass"],
        ["bmc", "pass"],
      ]),
    );
    // Order of side effects: fence, then force-down, then disable, then evacuations, then notify.
    const order = t.world.calls.map((c) => c.split(" ")[0]);
    expect(order.indexOf("off")).toBeLessThan(order.indexOf("force-down"));
    expect(order.indexOf("force-down")).toBeLessThan(order.indexOf("disable"));
    expect(order.indexOf("disable")).toBeLessThan(order.indexOf("evacuate"));
    expect(order.at(-1)).toBe("notify");
    expect(t.notifier.finished.map((x) => x.id)).toEqual([d.id]);
  });

  it("a resolved alert during the grace period aborts: nothing is done", async () => {
    const t = await start(makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 30 } })));
    t.world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    await untilState(t, "compute-1", ["pending"]);
    await postAlert(t.app.url, alertPayload({ host: "compute-1", status: "resolved" }));
    const d = await untilState(t, "compute-1", ["aborted"]);
    expect(path(d)).toEqual(["pending", "aborted"]);
    expect(d.reason).toMatch(/resolved during pending/);
    expect(t.world.calls).toEqual([]);
  });

  it("a resolved alert while blocked aborts", async () => {
    const t = await start(makeLifeboat(lifeboatConfig()));
    // Nova still says up: blocked, never fenced.
    await postAlert(t.app.url, alertPayload({ host: "compute-2" }));
    const blocked = await untilState(t, "compute-2", ["blocked"]);
    expect(blocked.reason).toMatch(/nova-service: Nova still hears nova-compute on compute-2/);
    await postAlert(t.app.url, alertPayload({ host: "compute-2", status: "resolved" }));
    const d = await untilState(t, "compute-2", ["aborted"]);
    expect(path(d)).toEqual(["pending", "validating", "blocked", "aborted"]);
    expect(t.world.calls).toEqual([]);
    // Nova's heartbeat is evidence that may clear by itself: nobody is told of a block that
    // ended within notifications.blocked_delay_seconds.
    expect(t.notifier.blocked).toHaveLength(0);
  });

  it("a blocked recovery proceeds on its own once the block clears (Nova sees the host down)", async () => {
    const t = await start(makeLifeboat(lifeboatConfig()));
    await postAlert(t.app.url, alertPayload({ host: "compute-2" }));
    await untilState(t, "compute-2", ["blocked"]);
    t.world.kill("compute-2");
    const d = await untilState(t, "compute-2", ["completed"]);
    expect(path(d)).toEqual(["pending", "validating", "blocked", "validating", "fencing", "isolating", "evacuating", "notifying", "completed"]);
  });

  it("a resolved alert after the point of no return does not stop the recovery", async () => {
    const t = await start(makeLifeboat(lifeboatConfig()));
    t.world.kill("compute-1");
    const held = t.world.holdAt("fence");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    await held;
    await postAlert(t.app.url, alertPayload({ host: "compute-1", status: "resolved" }));
    await t.app.coordinator.drain();
    const events = await t.app.store.listEvents({ host: "compute-1" });
    expect(events.find((e) => e.status === "resolved")?.note).toMatch(/after the point of no return/);
    // Let the fence finish: a new lifeboat on the same store resumes (the held one is stuck on purpose).
    await t.app.stop();
    running = [];
    const t2 = await start(makeLifeboat(t.app.config, t.world));
    const d = await untilState(t2, "compute-1", ["completed"]);
    expect(path(d)).toContain("evacuating");
  });

  it("a failed fence ends in failed, pages people, and never evacuates", async () => {
    const world = World.standard();
    world.host("compute-1").powerStuck = true;
    const t = await start(makeLifeboat(lifeboatConfig(), world));
    world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    const d = await untilState(t, "compute-1", ["failed"]);
    expect(path(d)).toEqual(["pending", "validating", "fencing", "notifying", "failed"]);
    expect(d.fenceState).toBe("unknown");
    expect(d.reason).toMatch(/fencing failed/);
    expect(world.count("evacuate")).toBe(0);
    expect(world.count("force-down")).toBe(0);
    expect(t.notifier.fenceFailures.map((x) => x.id)).toEqual([d.id]);
    expect([...world.servers.values()].filter((s) => s.host === "compute-1")).toHaveLength(3);
  });

  it("a host without fencing configuration fails with that reason; --confirm-off recovers it", async () => {
    const t = await start(makeLifeboat(lifeboatConfig(), World.standard(), { unfenceable: ["compute-3"] }));
    t.world.kill("compute-3");
    await postAlert(t.app.url, alertPayload({ host: "compute-3" }));
    const d = await untilState(t, "compute-3", ["failed"]);
    expect(d.reason).toMatch(/no fencing configured for compute-3/);
    expect(t.world.count("evacuate")).toBe(0);

    const res = await api(t.app.url, "POST", "/api/v1/recover", { host: "compute-3", confirm_off: true });
    expect(res.status).toBe(201);
    const manual = res.body as RecoveryDetail;
    await waitFor(async () => (await t.app.store.getRecovery(manual.id))!.state === "completed", 10_000, "manual recovery");
    const md = await detail(t, manual.id);
    expect(md.fenceState).toBe("confirmed-off-by-operator");
    expect(md.trigger).toBe("manual");
    expect(md.timeline[0]!.actor).toBe("tester");
    expect(md.instances.every((i) => i.state === "evacuated")).toBe(true);
  });

  it("an instance that never evacuates makes the recovery partial, naming it", async () => {
    const world = World.standard();
    world.servers.get("srv-001")!.failuresLeft = Infinity;
    world.servers.get("srv-002")!.failuresLeft = 2;
    const t = await start(makeLifeboat(lifeboatConfig({ evacuation: { retries: 2 } }), world));
    world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    const d = await untilState(t, "compute-1", ["partial"]);
    const byId = Object.fromEntries(d.instances.map((i) => [i.instanceId, i]));
    expect(byId["srv-001"]).toMatchObject({ state: "failed", attempts: 3 });
    expect(byId["srv-002"]).toMatchObject({ state: "evacuated", attempts: 3 });
    expect(d.reason).toMatch(/vm-compute-1-0/);
    expect(d.outcome).toBe("partial");
  });

  it("dry run decides everything and changes nothing", async () => {
    const t = await start(makeLifeboat(lifeboatConfig({ recovery: { dry_run: true } })));
    t.world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    const d = await untilState(t, "compute-1", ["completed"]);
    expect(d.dryRun).toBe(true);
    expect(d.fenceState).toBe("would-fence");
    expect(t.world.calls.filter((c) => !c.startsWith("notify"))).toEqual([]);
    expect(t.world.host("compute-1").power).toBe("on");
    expect(d.instances.every((i) => i.state === "would-evacuate")).toBe(true);
    expect(d.steps.find((s) => s.key === "fence")?.result).toMatchObject({ dryRun: true });
  });

  it("approval: a recovery that needs approval waits in blocked until approved", async () => {
    const t = await start(makeLifeboat(lifeboatConfig({ gates: { require_approval: ["compute-1"] } })));
    t.world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    const b = await untilState(t, "compute-1", ["blocked"]);
    expect(b.reason).toMatch(/approval required/);
    await new Promise((r) => setTimeout(r, 200));
    expect((await t.app.store.getRecovery(b.id))!.state).toBe("blocked");
    const res = await api(t.app.url, "POST", `/api/v1/recoveries/${b.id}/approve`);
    expect(res.status).toBe(200);
    const d = await untilState(t, "compute-1", ["completed"]);
    expect(d.approvedBy).toBe("tester");
    expect(d.decisions.filter((x) => x.gate === "approval").map((x) => x.result)).toEqual(["block", "pass"]);
  });

  it("cancel works before fencing and is refused after", async () => {
    const t = await start(makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 60 } })));
    t.world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    const p = await untilState(t, "compute-1", ["pending"]);
    const res = await api(t.app.url, "POST", `/api/v1/recoveries/${p.id}/cancel`, { reason: "planned work" });
    expect(res.status).toBe(200);
    expect((res.body as { state: string }).state).toBe("aborted");
    expect((await detail(t, p.id)).reason).toBe("cancelled by tester: planned work");

    const t2 = await start(makeLifeboat(lifeboatConfig(), World.standard()));
    t2.world.kill("compute-2");
    await postAlert(t2.app.url, alertPayload({ host: "compute-2" }));
    const done = await untilState(t2, "compute-2", ["completed"]);
    const late = await api(t2.app.url, "POST", `/api/v1/recoveries/${done.id}/cancel`, {});
    expect(late.status).toBe(409);
  });

  it("pause blocks new recoveries; resume lets them proceed", async () => {
    const t = await start(makeLifeboat(lifeboatConfig()));
    expect((await api(t.app.url, "POST", "/api/v1/pause", { reason: "switch maintenance" })).status).toBe(200);
    t.world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    const b = await untilState(t, "compute-1", ["blocked"]);
    expect(b.reason).toMatch(/automation paused by tester/);
    expect(t.world.calls).toEqual([]);
    expect((await api(t.app.url, "POST", "/api/v1/resume")).status).toBe(200);
    await untilState(t, "compute-1", ["completed"]);
    const status = (await api(t.app.url, "GET", "/api/v1/status")).body as { paused: { paused: boolean } };
    expect(status.paused.paused).toBe(false);
  });

  it("non-trigger alerts and alerts without a host are recorded and ignored", async () => {
    const t = await start(makeLifeboat(lifeboatConfig()));
    await postAlert(t.app.url, alertPayload({ host: "compute-1", alertname: "DiskFull" }));
    const noHost = alertPayload({ host: "compute-1" });
    const alert = (noHost.alerts as { labels: Record<string, string> }[])[0]!;
    delete alert.labels.host;
    expect((await postAlert(t.app.url, noHost)).status).toBe(202);
    await t.app.coordinator.drain();
    const events = await t.app.store.listEvents({});
    expect(events).toHaveLength(2);
    expect(events.every((e) => e.disposition === "ignored")).toBe(true);
    expect(events.map((e) => e.note).sort()).toEqual(['alert has no "host" label', "alertname DiskFull is not a trigger"]);
    expect(await t.app.store.listRecoveries({})).toHaveLength(0);
  });

  it("a host held down after its recovery is not recovered again until released", async () => {
    const t = await start(makeLifeboat(lifeboatConfig()));
    t.world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    const first = await untilState(t, "compute-1", ["completed"]);
    // Prometheus restarted: same outage, new startsAt.
    await postAlert(t.app.url, alertPayload({ host: "compute-1", startsAt: "2026-11-25T13:00:00Z" }));
    await t.app.coordinator.drain();
    const recs = await t.app.store.listRecoveries({ host: "compute-1" });
    expect(recs.map((r) => r.id)).toEqual([first.id]);
    const ev = (await t.app.store.listEvents({ host: "compute-1", limit: 1 }))[0]!;
    expect(ev.note).toMatch(/held down by recovery .*"lifeboat release compute-1"/);
  });
});
