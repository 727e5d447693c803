import { afterEach, describe, expect, it } from "vitest";
import { Lifeboat } from "../../src/app/lifecycle.js";
import type { Config } from "../../src/config/schema.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import type { RecoveryDetail } from "../../src/domain/model.js";
import type { CloudPort, ReleasePort } from "../../src/domain/ports/cloud.js";
import type { ChainResult, FenceDevice, FencingPort } from "../../src/domain/ports/fencing.js";
import { dryRunCloud, dryRunFencing } from "../../src/engine/dry-run.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { memoryLogger } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";
import { RecordingNotifier, World, WorldCloud, WorldFencing } from "../kit/world.js";

/**
 * A dry run is a choice of ports: the stages run as for a real recovery, and every write
 * goes to a recording variant that sends nothing. Here the real ports refuse every write
 * (and count it), so any write that reached them through any stage shows.
 */

const TERMINAL = ["completed", "partial", "failed", "aborted"];

/** Reads pass through to the world; every write is counted in `writes` and refused. */
function refusingFencing(real: FencingPort, writes: string[]): FencingPort {
  const refuse = (what: string): Promise<never> => {
    writes.push(what);
    return Promise.reject(new Error(`a write reached the real fencing port: ${what}`));
  };
  const device = (d: FenceDevice): FenceDevice => ({
    driver: d.driver,
    label: d.label,
    status: (signal) => d.status(signal),
    off: () => refuse(`device off ${d.label}`),
    on: () => refuse(`device on ${d.label}`),
  });
  return {
    hosts: () => real.hosts(),
    hasHost: (host) => real.hasHost(host),
    devices: (host) => real.devices(host).map(device),
    status: (host, signal) => real.status(host, signal),
    fenceOff: (host) => refuse(`fenceOff ${host}`),
    powerOn: (host) => refuse(`powerOn ${host}`),
  };
}

function refusingCloud(world: World, writes: string[]): CloudPort {
  const real = new WorldCloud(world);
  const refuse = (what: string): Promise<never> => {
    writes.push(what);
    return Promise.reject(new Error(`a write reached the real cloud port: ${what}`));
  };
  const release: ReleasePort = {
    // Nova keeps no `done` evacuation record in this world.
    evacuationRecordsLeft: () => Promise.resolve(0),
    unforce: (host) => refuse(`unforce ${host}`),
    enable: (host) => refuse(`enable ${host}`),
  };
  return {
    driver: real.driver,
    getComputeService: (host, signal) => real.getComputeService(host, signal),
    listComputeServices: () => real.listComputeServices(),
    listInstances: (host) => real.listInstances(host),
    listLifeboatLocks: () => Promise.resolve([]),
    isolate: (host) => refuse(`isolate ${host}`),
    evacuate: (instance) => refuse(`evacuate ${instance.id}`),
    releaseLifeboatLock: (serverId) => refuse(`releaseLifeboatLock ${serverId}`),
    release,
  };
}

interface Site {
  app: Lifeboat;
  world: World;
  writes: string[];
  notifier: RecordingNotifier;
}

let running: Lifeboat[] = [];
afterEach(async () => {
  await Promise.all(running.map((a) => a.stop().catch(() => undefined)));
  running = [];
});

async function site(config: Config, opts: { world?: World; unfenceable?: string[] } = {}): Promise<Site> {
  const world = opts.world ?? World.standard();
  const writes: string[] = [];
  const notifier = new RecordingNotifier(world);
  const app = new Lifeboat({
    config,
    logger: memoryLogger().logger,
    drivers: { fencing: refusingFencing(new WorldFencing(world, opts.unfenceable), writes), evacuation: refusingCloud(world, writes), notifier },
  });
  running.push(app);
  await app.start({ listen: "127.0.0.1:0" });
  return { app, world, writes, notifier };
}

async function ended(s: Site, id: string): Promise<RecoveryDetail> {
  await waitFor(async () => TERMINAL.includes((await s.app.store.getRecovery(id))!.state), 10_000, `recovery ${id} to end`);
  return (await recoveryDetail(s.app.store, id))!;
}

const reasonInto = (d: RecoveryDetail, from: string): string | undefined => d.timeline.find((t) => t.from === from)?.reason;

/** compute-1 as lifeboat leaves it after a real recovery: off, forced down, disabled by lifeboat, held. */
async function heldHost(s: Site, host: string): Promise<void> {
  const h = s.world.host(host);
  h.power = "off";
  h.service = { ...h.service, state: "down", forcedDown: true, status: "disabled", disabledReason: "lifeboat: recovery r-before fenced 2026-11-25T12:11:30Z" };
  await s.app.store.putHostState({ host, fenced: true, recoveryId: "r-before", by: "world-bmc", at: "2026-11-25T12:11:30.000Z" }, 0);
}

describe("dry run: the runner hands the stages recording ports", () => {
  it("an alert's dry run goes through every stage, and no write reaches a real port; the journal says what would have been done", async () => {
    const s = await site(lifeboatConfig({ recovery: { dry_run: true } }));
    s.world.kill("compute-1");
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const r = await waitFor(async () => (await s.app.store.listRecoveries({ host: "compute-1", limit: 1 }))[0], 10_000, "the recovery");
    const d = await ended(s, r.id);

    expect(s.writes).toEqual([]);
    expect(d.state, d.reason).toBe("completed");
    expect(d.timeline.map((t) => t.to)).toEqual(["pending", "validating", "fencing", "isolating", "evacuating", "notifying", "completed"]);
    expect(reasonInto(d, "fencing")).toBe("dry run: would power off compute-1 through world-bmc compute-1");
    expect(reasonInto(d, "isolating")).toBe("dry run: would force the compute service down and disable it");
    expect(reasonInto(d, "evacuating")).toBe("dry run: would evacuate 3 instance(s)");
    expect(d.fenceState).toBe("would-fence");

    // What would have been done, journaled as each stage's step.
    const fence = d.steps.find((st) => st.key === "fence")!.result as ChainResult;
    expect(fence).toMatchObject({ ok: true, dryRun: true, wouldUse: "world-bmc compute-1" });
    // What the device reads now, in its own words.
    expect(fence.attempts.map((a) => [a.device, a.driver, a.result.ok, a.result.state, a.result.message, a.result.attempts, a.result.dryRun])).toEqual([
      ["world-bmc compute-1", "world", false, "on", "dry run: Chassis Power is on", 0, true],
    ]);
    const isolate = d.steps.find((st) => st.key === "isolate")!.result as { dryRun?: boolean; wouldSetReason?: string };
    expect(isolate.dryRun).toBe(true);
    expect(isolate.wouldSetReason).toMatch(new RegExp(`^lifeboat: recovery ${r.id} fenced `));
    expect(d.instances.map((i) => [i.instanceId, i.state, i.attempts])).toEqual([
      ["srv-001", "would-evacuate", 0],
      ["srv-002", "would-evacuate", 0],
      ["srv-003", "would-evacuate", 0],
    ]);

    // Nothing changed in the world, and lifeboat holds nothing.
    expect(s.world.calls.filter((c) => !c.startsWith("notify"))).toEqual([]);
    expect(s.world.host("compute-1")).toMatchObject({ power: "on", service: { forcedDown: false, status: "enabled" } });
    expect([...s.world.servers.values()].filter((x) => x.host === "compute-1")).toHaveLength(3);
    expect(await s.app.store.getHostState("compute-1")).toBeNull();
    // The notifier is told of it as a dry run (it records, and does not send, what a dry run would mail).
    expect(s.notifier.finished.map((x) => [x.id, x.dryRun])).toEqual([[r.id, true]]);
  });

  it("a dry run with --confirm-off holds nothing: the hold would outlive the dry run", async () => {
    const s = await site(lifeboatConfig());
    s.world.kill("compute-2");
    const r = await s.app.commands.recover("compute-2", { dryRun: true, confirmOff: true, actor: "tester" });
    const d = await ended(s, r.id);
    expect(d.state, d.reason).toBe("completed");
    expect(d.fenceState).toBe("confirmed-off-by-operator");
    expect(reasonInto(d, "evacuating")).toBe("dry run: would evacuate 3 instance(s)");
    expect(s.writes).toEqual([]);
    expect(await s.app.store.getHostState("compute-2")).toBeNull();
  });

  it("a dry-run release of a fenced host ends at its power-on, which it does not send; the hold stays", async () => {
    const s = await site(lifeboatConfig({ recovery: { dry_run: true } }));
    await heldHost(s, "compute-1");
    const view = await s.app.commands.release("compute-1", "tester");
    const d = await ended(s, view.recoveryId);
    expect(s.writes).toEqual([]);
    expect(d.state, d.reason).toBe("completed");
    expect(d.timeline.map((t) => t.to)).toEqual(["pending", "powering-on", "completed"]);
    expect(reasonInto(d, "powering-on")).toBe("dry run: would power on compute-1 through world-bmc compute-1, wait for nova-compute, un-force and enable it");
    expect(d.steps.find((st) => st.key === "power-on")!.result).toMatchObject({ ok: true, dryRun: true, wouldUse: "world-bmc compute-1" });
    expect(s.world.host("compute-1")).toMatchObject({ power: "off", service: { forcedDown: true, status: "disabled" } });
    expect(await s.app.store.getHostState("compute-1")).toMatchObject({ fenced: true, recoveryId: "r-before" });
  });

  it("a dry-run release of a host powered on by hand goes as far as Nova's answers allow and ends at the un-force", async () => {
    const s = await site(lifeboatConfig({ recovery: { dry_run: true } }), { unfenceable: ["compute-3"] });
    await heldHost(s, "compute-3");
    const view = await s.app.commands.release("compute-3", "tester");
    // nova-compute starts (the operator powered the host on): its heartbeat moves.
    await waitFor(async () => (await s.app.store.getStep(view.recoveryId, "precheck"))?.state === "succeeded", 10_000, "the precheck");
    const h = s.world.host("compute-3");
    h.service = { ...h.service, updatedAt: new Date(Date.now() + 1000).toISOString() };
    const d = await ended(s, view.recoveryId);
    expect(s.writes).toEqual([]);
    expect(d.timeline.map((t) => t.to)).toEqual(["pending", "powering-on", "awaiting-compute", "unforcing", "completed"]);
    expect(reasonInto(d, "unforcing")).toBe("dry run: would un-force nova-compute on compute-3, wait for Nova to see it up and enable it");
    expect(d.steps.find((st) => st.key === "unforce")!.result).toMatchObject({ already: false, dryRun: true });
    expect(h.service).toMatchObject({ forcedDown: true, status: "disabled" });
    expect(await s.app.store.getHostState("compute-3")).toMatchObject({ fenced: true });
  });

  it("a dry-run release of a host only lifeboat disabled ends at the enable, and lifts no hold", async () => {
    const s = await site(lifeboatConfig({ recovery: { dry_run: true } }), { unfenceable: ["compute-3"] });
    await heldHost(s, "compute-3");
    const h = s.world.host("compute-3");
    h.power = "on";
    h.service = { ...h.service, state: "up", forcedDown: false };
    const view = await s.app.commands.release("compute-3", "tester");
    const d = await ended(s, view.recoveryId);
    expect(s.writes).toEqual([]);
    expect(d.timeline.map((t) => t.to)).toEqual(["pending", "powering-on", "awaiting-up", "enabling", "completed"]);
    expect(d.reason).toBe("dry run: would enable nova-compute on compute-3");
    expect(d.steps.find((st) => st.key === "enable")!.result).toMatchObject({ result: "enabled", dryRun: true });
    expect(h.service.status).toBe("disabled");
    expect(await s.app.store.getHostState("compute-3")).toMatchObject({ fenced: true, recoveryId: "r-before" });
  });

  it("a dry-run release with nothing to release leaves lifeboat's hold as it was", async () => {
    const s = await site(lifeboatConfig({ recovery: { dry_run: true } }));
    await s.app.store.putHostState({ host: "compute-2", fenced: true, recoveryId: "r-before", by: "world-bmc", at: "2026-11-25T12:11:30.000Z" }, 0);
    const view = await s.app.commands.release("compute-2", "tester");
    const d = await ended(s, view.recoveryId);
    expect(d.state, d.reason).toBe("completed");
    expect(d.reason).toMatch(/nothing to release/);
    expect(s.writes).toEqual([]);
    expect(await s.app.store.getHostState("compute-2")).toMatchObject({ fenced: true, recoveryId: "r-before" });
  });
});

describe("the recording ports", () => {
  const log = memoryLogger().logger;

  it("pass every read through and answer every write with what would have happened, sending nothing", async () => {
    const world = World.standard();
    const writes: string[] = [];
    const fencing = dryRunFencing(refusingFencing(new WorldFencing(world), writes), log);
    const cloud = dryRunCloud(refusingCloud(world, writes), log);

    expect(fencing.hosts()).toEqual(["compute-1", "compute-2", "compute-3"]);
    expect(fencing.hasHost("compute-2")).toBe(true);
    expect(await fencing.status("compute-2")).toEqual([{ device: "world-bmc compute-2", driver: "world", status: { state: "on", raw: "Chassis Power is on" } }]);
    expect(await fencing.fenceOff("compute-2")).toMatchObject({ ok: true, dryRun: true, wouldUse: "world-bmc compute-2", message: "dry run: would power off compute-2 through world-bmc compute-2" });
    expect(await fencing.powerOn("compute-2")).toMatchObject({ ok: true, dryRun: true, message: "dry run: would power on compute-2 through world-bmc compute-2" });
    const [device] = fencing.devices("compute-2");
    expect(await device!.status()).toEqual({ state: "on", raw: "Chassis Power is on" });
    expect(await device!.off()).toMatchObject({ ok: false, state: "on", already: false, attempts: 0, dryRun: true });
    expect(await device!.on()).toMatchObject({ ok: true, state: "on", already: true, attempts: 0, dryRun: true });
    expect(await fencing.fenceOff("nowhere")).toMatchObject({ ok: false, message: "no fencing configured for nowhere", dryRun: true });

    expect((await cloud.getComputeService("compute-2"))?.host).toBe("compute-2");
    expect((await cloud.listComputeServices()).map((x) => x.host)).toEqual(["compute-1", "compute-2", "compute-3"]);
    const instances = await cloud.listInstances("compute-2");
    expect(instances.map((i) => i.id)).toEqual(["srv-004", "srv-005", "srv-006"]);
    expect(await cloud.listLifeboatLocks!()).toEqual([]);
    expect(await cloud.isolate("compute-2", "lifeboat: recovery r-1 fenced now")).toMatchObject({ already: false, dryRun: true, wouldSetReason: "lifeboat: recovery r-1 fenced now" });
    expect(await cloud.evacuate(instances[0]!, "compute-2", { attempt: 1, timeoutMs: 1000, targetHost: "compute-3" })).toEqual({
      result: "would-evacuate",
      dryRun: true,
      targetHost: "compute-3",
      message: "dry run: would evacuate vm-compute-2-0 (srv-004) from compute-2 to compute-3",
    });
    expect(await cloud.releaseLifeboatLock!("srv-004", "r-1")).toBe("would-unlock");
    expect(await cloud.release!.evacuationRecordsLeft("compute-2")).toBe(0);
    expect(await cloud.release!.unforce("compute-2")).toMatchObject({ already: true, dryRun: true });
    expect(await cloud.release!.enable("compute-2")).toMatchObject({ result: "already", dryRun: true });

    expect(writes).toEqual([]);
    expect(world.calls).toEqual([]);
  });

  it("offer what the real port offers, no more", () => {
    const world = World.standard();
    const bare = new WorldCloud(world);
    const cloud = dryRunCloud(bare, log);
    for (const optional of ["release", "releaseLifeboatLock", "listLifeboatLocks", "capacity"]) expect(optional in cloud, optional).toBe(false);
    expect(Object.keys(dryRunCloud(refusingCloud(world, []), log))).toEqual(expect.arrayContaining(["release", "releaseLifeboatLock", "listLifeboatLocks"]));
  });
});
