import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../../src/config/schema.js";
import type { RecoveryState } from "../../src/domain/model.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";
import { World, type HoldPoint } from "../kit/world.js";

/**
 * Crash and resume: lifeboat is stopped in the middle of each stage (its drivers are held
 * inside the side effect), a new lifeboat starts on the same store and the same world, and
 * the recovery finishes with every finished side effect done exactly once.
 */

let running: TestLifeboat[] = [];
afterEach(async () => {
  await Promise.all(running.map((t) => t.app.stop().catch(() => undefined)));
  running = [];
});

async function boot(config: Config, world: World): Promise<TestLifeboat> {
  const t = makeLifeboat(config, world);
  running.push(t);
  await t.app.start({ listen: "127.0.0.1:0" });
  return t;
}

async function stateOf(t: TestLifeboat, host: string): Promise<RecoveryState | undefined> {
  return (await t.app.store.listRecoveries({ host, limit: 1 }))[0]?.state;
}

async function crashDuring(
  stage: RecoveryState,
  opts: { hold?: HoldPoint; config?: Record<string, unknown>; afterRestart?: (t: TestLifeboat, id: string, world: World) => Promise<void> },
): Promise<{ world: World; id: string; t2: TestLifeboat }> {
  const world = World.standard();
  const config = lifeboatConfig(opts.config ?? {});
  world.kill("compute-1");
  const held = opts.hold ? world.holdAt(opts.hold) : null;
  const t1 = await boot(config, world);
  expect((await postAlert(t1.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
  if (held) await held;
  await waitFor(async () => (await stateOf(t1, "compute-1")) === stage, 10_000, `recovery in ${stage}`);
  const id = (await t1.app.store.listRecoveries({ host: "compute-1" }))[0]!.id;
  await t1.app.stop(); // the "crash": the runner is cut off mid-stage
  running = running.filter((x) => x !== t1);
  expect((await reopenState(config, id))).toBe(stage);

  const t2 = await boot(config, world);
  await opts.afterRestart?.(t2, id, world);
  await waitFor(async () => (await stateOf(t2, "compute-1")) === "completed", 15_000, "completed after resume");
  return { world, id, t2 };
}

async function reopenState(config: Config, id: string): Promise<RecoveryState | undefined> {
  const t = makeLifeboat(config, new World());
  await t.app.store.init();
  const s = (await t.app.store.getRecovery(id))?.state;
  await t.app.store.close();
  return s;
}

function expectEachSideEffectOnce(world: World, id: string): void {
  expect(world.count("off compute-1")).toBe(1);
  expect(world.count("force-down compute-1")).toBe(1);
  expect(world.count("disable compute-1")).toBe(1);
  for (const s of ["srv-001", "srv-002", "srv-003"]) expect(world.count(`evacuate ${s}`)).toBe(1);
  expect(world.count(`notify ${id}`)).toBe(1);
  expect([...world.servers.values()].filter((s) => s.host === "compute-1")).toHaveLength(0);
}

describe("crash and resume inside each stage", () => {
  it("pending (grace period)", async () => {
    const { world, id, t2 } = await crashDuring("pending", { config: { recovery: { grace_seconds: 0.5 } } });
    expectEachSideEffectOnce(world, id);
    const d = await recoveryDetail(t2.app.store, id);
    expect(d!.timeline.map((x) => x.to)).toEqual(["pending", "validating", "fencing", "isolating", "evacuating", "notifying", "completed"]);
  });

  it("validating (a gate check in flight)", async () => {
    const { world, id } = await crashDuring("validating", { hold: "service" });
    expectEachSideEffectOnce(world, id);
  });

  it("blocked (waiting for approval)", async () => {
    const { world, id } = await crashDuring("blocked", {
      config: { gates: { require_approval: true } },
      afterRestart: async (t, rid, w) => {
        expect(w.calls).toEqual([]);
        expect((await api(t.app.url, "POST", `/api/v1/recoveries/${rid}/approve`)).status).toBe(200);
      },
    });
    expectEachSideEffectOnce(world, id);
  });

  it("fencing (power-off sent, not yet confirmed)", async () => {
    const { world, id, t2 } = await crashDuring("fencing", { hold: "fence" });
    expectEachSideEffectOnce(world, id);
    const fence = (await t2.app.store.steps(id)).find((s) => s.key === "fence")!;
    expect(fence.state).toBe("succeeded");
    expect(fence.attempts).toBe(2);
    expect(fence.result).toMatchObject({ ok: true });
  });

  it("isolating (forced down, not yet disabled)", async () => {
    const { world, id } = await crashDuring("isolating", { hold: "isolate" });
    expectEachSideEffectOnce(world, id);
  });

  it("evacuating (evacuations in flight)", async () => {
    const { world, id, t2 } = await crashDuring("evacuating", { hold: "evacuate" });
    expectEachSideEffectOnce(world, id);
    const instances = await t2.app.store.instances(id);
    expect(instances.every((i) => i.state === "evacuated" && i.attempts === 1)).toBe(true);
  });

  it("notifying (message being sent)", async () => {
    const { world, id } = await crashDuring("notifying", { hold: "notify" });
    expectEachSideEffectOnce(world, id);
  });
});
