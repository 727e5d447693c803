import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Metrics } from "../../src/metrics.js";
import { evaluateGates } from "../../src/engine/gate-runner.js";
import type { Recovery, RecoveryState, Trigger } from "../../src/domain/model.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { stormGate, type StormConfig } from "../../src/gates/storm.js";
import type { Gate, GateVerdict } from "../../src/domain/ports/gate.js";
import { memoryLogger } from "../kit/lifeboat.js";
import { RecordingNotifier, World, WorldCloud } from "../kit/world.js";

/**
 * The storm guard on its own, against a real SQLite journal whose clock the test moves with
 * the guard's: failures arrive seconds apart without waiting for them.
 */

const T0 = Date.parse("2026-11-25T12:00:00.000Z");
let t = T0;
let store: SqliteStore;
let world: World;
beforeEach(async () => {
  t = T0;
  store = new SqliteStore(":memory:", { now: () => new Date(t).toISOString() });
  await store.init();
  world = World.standard(["compute-1", "compute-2", "compute-3", "compute-4", "compute-5", "compute-6"]);
});
afterEach(async () => {
  await store.close();
});

function guard(cfg: Partial<StormConfig> = {}) {
  const notifier = new RecordingNotifier();
  const metrics = new Metrics({ version: "test", defaultMetrics: false });
  const cloud = new WorldCloud(world);
  const gate = stormGate({
    store,
    evacuation: cloud,
    config: { max_recoveries: 1, max_percent: 100, window_seconds: 60, cooldown_seconds: 600, ...cfg },
    now: () => t,
    metrics,
    logger: memoryLogger().logger,
    notifier,
  });
  return { gate, notifier, metrics, cloud };
}

/** A host's failure as lifeboat journals it, at the test clock's time, waiting in `validating`. */
async function fail(host: string, trigger: Trigger = "alert"): Promise<Recovery> {
  const now = new Date(t).toISOString();
  const r = await store.createRecovery({ host, kind: trigger === "manual" ? "manual" : "alert", incidentKey: `${host}@${now}`, trigger, dryRun: false, confirmedOff: false, detectedAt: now, graceUntil: now, reason: "ComputeNodeDown firing" });
  return store.transition(r.id, "pending", "validating", "grace period over");
}

async function move(r: Recovery, ...states: RecoveryState[]): Promise<Recovery> {
  let cur = (await store.getRecovery(r.id))!;
  for (const s of states) cur = await store.transition(cur.id, cur.state, s, `to ${s}`);
  return cur;
}

/** Ask the gate as the gate runner does; `otherGatesBlock`: the recovery is blocked by another gate too. */
async function ask(gate: Gate, r: Recovery, opts: { otherGatesBlock?: boolean; quiet?: boolean } = {}): Promise<GateVerdict> {
  const fresh = (await store.getRecovery(r.id)) ?? r;
  return gate.evaluate({ recovery: fresh, signal: new AbortController().signal, priorPass: !opts.otherGatesBlock, quiet: opts.quiet ?? false });
}

async function gauge(m: Metrics): Promise<number | undefined> {
  return (await m.stormGuardTripped.get()).values[0]?.value;
}

describe("storm guard: failures that arrive in steps", () => {
  it("0, 8 and 30 s apart: the first goes ahead, the second trips the guard although another gate blocks it, the third joins the storm", async () => {
    const { gate, metrics } = guard();
    const r1 = await fail("compute-1");
    expect((await ask(gate, r1)).result).toBe("pass");
    await move(r1, "fencing", "isolating", "evacuating");

    t = T0 + 8_000;
    const r2 = await fail("compute-2");
    // Nova still hears compute-2's heartbeat: the nova-service gate blocks it. The failure counts all the same.
    const v2 = await ask(gate, r2, { otherGatesBlock: true });
    expect(v2).toMatchObject({ result: "block", overridable: true, recheck: true });
    expect(v2.reason).toMatch(/^storm guard: 2 recoveries in 60s > max_recoveries 1 \(tripped at 2026-11-25T12:00:08\.000Z\)/);
    expect(await gauge(metrics)).toBe(1);
    expect((await metrics.stormGuardTrips.get()).values[0]?.value).toBe(1);

    t = T0 + 30_000;
    const r3 = await fail("compute-3");
    const v3 = await ask(gate, r3, { otherGatesBlock: true });
    expect(v3.result).toBe("block");
    expect(v3.details).toMatchObject({ hosts: ["compute-2", "compute-3"], lastFailureAt: "2026-11-25T12:00:30.000Z", until: "2026-11-25T12:10:30.000Z" });
    expect((await metrics.stormGuardTrips.get()).values[0]?.value).toBe(1);
  });

  it("the held hosts stay held after the first failure left the window, until the cooldown after the LAST failure", async () => {
    const { gate, metrics } = guard();
    const r1 = await fail("compute-1");
    await ask(gate, r1);
    await move(r1, "fencing", "isolating", "evacuating", "notifying", "completed");
    t = T0 + 8_000;
    const r2 = await fail("compute-2");
    await ask(gate, r2);
    t = T0 + 30_000;
    const r3 = await fail("compute-3");
    await ask(gate, r3);
    await move(r2, "blocked");
    await move(r3, "blocked");

    // compute-1 failed 80 s ago: out of the 60 s window. The storm is not over for that.
    t = T0 + 80_000;
    for (const r of [r2, r3]) expect((await ask(gate, r, { quiet: true })).result).toBe("block");
    // 600 s after compute-2 but not after compute-3 (the last failure).
    t = T0 + 8_000 + 600_000;
    for (const r of [r2, r3]) expect((await ask(gate, r, { quiet: true })).result).toBe("block");
    expect(await gauge(metrics)).toBe(1);
    // 600 s after the last failure: the storm is over and both go ahead.
    t = T0 + 30_000 + 600_000;
    expect(await gauge(metrics)).toBe(0); // read from the journal at the scrape, before any recovery is judged
    for (const r of [r2, r3]) {
      const v = await ask(gate, r, { quiet: true });
      expect(v.result).toBe("pass");
      expect(v.reason).toMatch(/released: the storm that held it is over/);
    }
    // Its members are not counted again: a new failure alone is within the limits.
    await move(r2, "validating", "fencing");
    await move(r3, "validating", "fencing");
    t += 5_000;
    const r4 = await fail("compute-4");
    expect((await ask(gate, r4)).result).toBe("pass");
  });

  it("a new failure while tripped joins the storm and pushes its end", async () => {
    const { gate } = guard({ cooldown_seconds: 100 });
    const r1 = await fail("compute-1");
    await ask(gate, r1);
    t += 1;
    const r2 = await fail("compute-2");
    await ask(gate, r2);
    t = T0 + 90_000;
    const r3 = await fail("compute-3");
    expect((await ask(gate, r3)).result).toBe("block");
    t = T0 + 150_000; // 100 s after compute-2, 60 s after compute-3
    expect((await ask(gate, r2, { quiet: true })).result).toBe("block");
    t = T0 + 190_000; // 100 s after compute-3
    expect((await ask(gate, r2, { quiet: true })).result).toBe("pass");
  });

  it("an approval releases one held recovery; the storm holds the others", async () => {
    const { gate } = guard();
    const r1 = await fail("compute-1");
    await ask(gate, r1);
    const r2 = await fail("compute-2");
    const r3 = await fail("compute-3");
    await ask(gate, r2);
    await store.updateRecovery(r2.id, { approved: true, approvedBy: "ops@bastion" });
    const approved = await evaluateGates([gate], (await store.getRecovery(r2.id))!, new AbortController().signal, () => new Date(t).toISOString());
    expect(approved.pass).toBe(true);
    expect(approved.decisions[0]!.reason).toMatch(/^approved by ops@bastion over: storm guard/);
    const other = await evaluateGates([gate], (await store.getRecovery(r3.id))!, new AbortController().signal, () => new Date(t).toISOString());
    expect(other.pass).toBe(false);
    expect(other.approvable).toBe(true);
  });
});

describe("storm guard: simultaneous failures", () => {
  it("judged in any order and at the same time, exactly the first ones within the limits go ahead", async () => {
    const { gate, notifier } = guard({ max_recoveries: 2 });
    // Journaled within the same millisecond, judged all at once, last first.
    const rs = [await fail("compute-1"), await fail("compute-2"), await fail("compute-3"), await fail("compute-4")];
    const verdicts = await Promise.all([...rs].reverse().map((r) => ask(gate, r)));
    expect(verdicts.filter((v) => v.result === "pass")).toHaveLength(2);
    expect(verdicts.filter((v) => v.result === "block")).toHaveLength(2);
    expect(verdicts.flatMap((v) => v.notices ?? [])).toHaveLength(1);
    // Judged again (a re-check, a restart), nothing changes.
    const again = await Promise.all([...rs].reverse().map((r) => ask(gate, r, { quiet: true })));
    expect(again.map((v) => v.result)).toEqual(verdicts.map((v) => v.result));
    expect(notifier.storms).toHaveLength(0); // the gate sends nothing itself
  });

  it("counts a share of the enabled compute services, and one availability zone", async () => {
    const pct = guard({ max_recoveries: 10, max_percent: 40 });
    const a: Recovery[] = [];
    for (const h of ["compute-1", "compute-2", "compute-3"]) {
      a.push(await fail(h));
      t += 1;
    }
    const v = await Promise.all(a.map((r) => ask(pct.gate, r)));
    expect(v.map((x) => x.result)).toEqual(["pass", "pass", "block"]); // 2 of 6 = 33 %, 3 of 6 = 50 %
    expect(v[2]!.reason).toMatch(/3 of 6 enabled compute services \(50%\) > max_percent 40%/);
  });

  it("limits one availability zone, and a failure in another zone still goes ahead", async () => {
    for (const h of ["compute-1", "compute-2"]) world.host(h).service = { ...world.host(h).service, zone: "az1" };
    const { gate } = guard({ max_recoveries: 10, max_per_zone: 1 });
    const r1 = await fail("compute-1");
    t += 1;
    const r2 = await fail("compute-2");
    t += 1;
    const r3 = await fail("compute-3");
    expect((await ask(gate, r1)).result).toBe("pass");
    expect((await ask(gate, r2)).reason).toMatch(/2 in zone az1 > max_per_zone 1/);
    // compute-3 (another zone) was within the limits when the guard tripped: it keeps its place…
    expect((await ask(gate, r3)).result).toBe("pass");
    // …but a failure seen after the trip joins the storm, whatever its zone.
    t += 1;
    expect((await ask(gate, await fail("compute-4"))).result).toBe("block");
  });
});

describe("storm guard: what counts", () => {
  it("an operator's recoveries are not failures; aborted ones were withdrawn", async () => {
    const { gate } = guard();
    const manual = await fail("compute-1", "manual");
    expect((await ask(gate, manual)).reason).toMatch(/operator's recovery/);
    const blip = await fail("compute-2");
    await ask(gate, blip);
    await move(blip, "aborted");
    const real = await fail("compute-3");
    const v = await ask(gate, real);
    expect(v.result).toBe("pass");
    expect(v.reason).toMatch(/^1 recovery\(ies\) in the window/);
  });

  it("a host whose BMC blocked it for an hour holds no place; one acting on its host does, whenever it failed", async () => {
    const { gate } = guard();
    const stuck = await fail("compute-1");
    await ask(gate, stuck, { otherGatesBlock: true });
    const acting = await fail("compute-2");
    await move(acting, "fencing", "isolating", "evacuating");
    t = T0 + 3600_000;
    const r3 = await fail("compute-3");
    const v = await ask(gate, r3);
    expect(v.result).toBe("block");
    expect(v.details).toMatchObject({ hosts: ["compute-3"] });
  });

  it("cannot decide when the compute services cannot be counted, unless the count alone trips it", async () => {
    const { gate, cloud } = guard({ max_recoveries: 2 });
    cloud.apiDown = true;
    const r1 = await fail("compute-1");
    expect((await ask(gate, r1)).result).toBe("undecided");
    t += 1;
    const r2 = await fail("compute-2");
    t += 1;
    const r3 = await fail("compute-3");
    expect((await ask(gate, r3)).result).toBe("block");
    expect((await ask(gate, r2)).result).toBe("pass");
  });
});

describe("storm guard: the trip mail", () => {
  it("is handed to the recovery that tripped the guard, once; another takes it over if that one ends first", async () => {
    const { gate, notifier } = guard();
    const r1 = await fail("compute-1");
    await ask(gate, r1);
    const r2 = await fail("compute-2");
    const v2 = await ask(gate, r2);
    expect(v2.notices?.map((n) => n.key)).toEqual(["notify-storm:2026-11-25T12:00:00.000Z"]);
    // Another recovery judged meanwhile does not send it.
    const r3 = await fail("compute-3");
    expect((await ask(gate, r3)).notices).toBeUndefined();
    // compute-2's alert resolves before its mail step ran: compute-3 takes the mail over.
    await move(r2, "aborted");
    const v3 = await ask(gate, r3);
    expect(v3.notices).toHaveLength(1);
    await v3.notices![0]!.send(new AbortController().signal);
    expect(notifier.storms).toEqual([expect.objectContaining({ hosts: ["compute-2"], reason: "2 recoveries in 60s > max_recoveries 1" })]);
    // Once the holder's step succeeded, nobody is handed it again.
    const now = new Date(t).toISOString();
    await store.putStep({ recoveryId: r3.id, key: v3.notices![0]!.key, state: "succeeded", attempts: 1, startedAt: now, finishedAt: now, result: null });
    expect((await ask(gate, r3)).notices).toBeUndefined();
    const r4 = await fail("compute-4");
    expect((await ask(gate, r4)).notices).toBeUndefined();
  });
});

describe("storm guard: state", () => {
  it("reads the state an older version kept: its storm stays tripped and the hosts it held join it", async () => {
    await store.putSetting("storm", {
      tripped: true,
      trippedAt: "2026-11-25T11:59:00.000Z",
      calmSince: null,
      admitted: { "r-old": { host: "compute-9", zone: null, at: "2026-11-25T11:58:00.000Z" } },
      blockedHosts: ["compute-2"],
    });
    const { gate, metrics } = guard();
    const r2 = await fail("compute-2");
    const v = await ask(gate, r2, { quiet: true });
    expect(v.result).toBe("block");
    expect(v.notices).toBeUndefined(); // the older version mailed this storm
    const st = await store.getSetting<{ version: number; storm: { members: Record<string, { host: string }> } }>("storm");
    expect(st?.version).toBe(2);
    expect(Object.values(st!.storm.members).map((m) => m.host)).toEqual(["compute-2"]);
    expect(await gauge(metrics)).toBe(1);
  });
});
