import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CloudPort, HostCapacity } from "../../src/domain/ports/cloud.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { bmcGate } from "../../src/gates/bmc.js";
import { capacityGate, type CapacityGateOptions } from "../../src/gates/capacity.js";
import { novaServiceGate } from "../../src/gates/nova-service.js";
import { approvalGate, cooldownGate, exclusionGate, pauseGate } from "../../src/gates/policy.js";
import type { Gate } from "../../src/domain/ports/gate.js";
import { askGate, validatingRecovery } from "./ask.js";
import { tempDir, lifeboatConfig } from "../kit/config.js";
import { World, WorldCloud, WorldFencing } from "../kit/world.js";

/** Each gate on its own: pass, block, and the could-not-decide path where it has one. */

let store: SqliteStore;
let world: World;
beforeEach(async () => {
  store = new SqliteStore(join(tempDir(), "gates.db"));
  await store.init();
  world = World.standard(["compute-1", "compute-2", "compute-3", "compute-4"]);
});
afterEach(async () => {
  await store.close();
});

const recovery = validatingRecovery;
const evaluate = askGate;

describe("nova-service", () => {
  const gate = (cloud: CloudPort, checks = 1): Gate => novaServiceGate(cloud, { staleSeconds: 60, checks, intervalSeconds: 0 });

  it("passes when the heartbeat is stale on Nova's clock, on every check", async () => {
    world.kill("compute-1", 120);
    const v = await evaluate(gate(new WorldCloud(world), 3), recovery("compute-1"));
    expect(v.result).toBe("pass");
    expect(v.reason).toMatch(/last heartbeat .*, at least 11\d(\.\d)?s before Nova's answer \(≥ stale_seconds 60\); Nova says down \(3 checks\)/);
  });
  it("blocks while Nova hears the heartbeat, and re-checks later", async () => {
    const v = await evaluate(gate(new WorldCloud(world)), recovery("compute-1"));
    expect(v).toMatchObject({ result: "block", recheck: true });
    expect(v.reason).toMatch(/Nova still hears nova-compute on compute-1: last heartbeat/);
  });
  it("blocks a heartbeat younger than stale_seconds though it has stopped; passes once it is older", async () => {
    world.kill("compute-1", 10);
    const young = await evaluate(gate(new WorldCloud(world)), recovery("compute-1"));
    expect(young).toMatchObject({ result: "block", recheck: true });
    expect(young.reason).toMatch(/Nova still hears nova-compute on compute-1: last heartbeat \S+, [89](\.\d)?s before Nova's answer \(stale from 60s on\)/);
    world.kill("compute-1", 61);
    expect((await evaluate(gate(new WorldCloud(world)), recovery("compute-1"))).reason).toMatch(/at least (59|60)(\.\d)?s before Nova's answer .*; Nova says down/);
  });
  it("treats a service disabled by a human as maintenance; one disabled by lifeboat is not", async () => {
    world.kill("compute-1", 120);
    world.host("compute-1").service = { ...world.host("compute-1").service, status: "disabled", disabledReason: "RAM replacement (ticket 4711)" };
    const v = await evaluate(gate(new WorldCloud(world)), recovery("compute-1"));
    expect(v).toMatchObject({ result: "block", recheck: false });
    expect(v.reason).toMatch(/disabled by a human .*RAM replacement/);
    world.host("compute-1").service = { ...world.host("compute-1").service, disabledReason: "lifeboat: recovery r-1 fenced 2026-11-25T00:00:00Z" };
    expect((await evaluate(gate(new WorldCloud(world)), recovery("compute-1"))).result).toBe("pass");
  });
  it("cannot decide when Nova cannot be asked, and says so", async () => {
    const cloud = new WorldCloud(world);
    cloud.apiDown = true;
    const v = await evaluate(gate(cloud), recovery("compute-1"));
    expect(v).toMatchObject({ result: "undecided", recheck: true });
    expect(v.reason).toMatch(/cannot ask Nova: connect ECONNREFUSED/);
  });
  it("blocks a host Nova does not know (a label that does not match Nova's host name)", async () => {
    expect((await evaluate(gate(new WorldCloud(world)), recovery("compute-99"))).reason).toMatch(/no nova-compute service on host "compute-99"/);
  });
});

describe("bmc", () => {
  it("passes when the fencing device answers a power-status query", async () => {
    const v = await evaluate(bmcGate(new WorldFencing(world)), recovery("compute-1"));
    expect(v.result).toBe("pass");
    expect(v.reason).toMatch(/says on/);
  });
  it("blocks when no device answers (a node that cannot be fenced must not be started elsewhere)", async () => {
    world.host("compute-1").bmcDead = true;
    const v = await evaluate(bmcGate(new WorldFencing(world)), recovery("compute-1"));
    expect(v).toMatchObject({ result: "block", recheck: true });
    expect(v.reason).toMatch(/Unable to establish IPMI v2/);
  });
  it("cannot decide when the status query itself throws", async () => {
    const fencing = new WorldFencing(world);
    fencing.status = () => Promise.reject(new Error("spawn ipmitool ENOENT"));
    expect(await evaluate(bmcGate(fencing), recovery("compute-1"))).toMatchObject({ result: "undecided" });
  });
  it("passes an operator-confirmed-off recovery, and warns for a host without fencing", async () => {
    world.host("compute-1").bmcDead = true;
    expect((await evaluate(bmcGate(new WorldFencing(world)), recovery("compute-1", { confirmedOff: true }))).result).toBe("pass");
    expect((await evaluate(bmcGate(new WorldFencing(world, ["compute-2"])), recovery("compute-2"))).result).toBe("warn");
  });
});

describe("policy gates", () => {
  it("maintenance: excluded hosts are blocked (an approval overrides), others pass", async () => {
    const g = exclusionGate(["compute-2"]);
    expect(await evaluate(g, recovery("compute-2"))).toMatchObject({ result: "block", overridable: true });
    expect((await evaluate(g, recovery("compute-1"))).result).toBe("pass");
  });
  it("pause: blocks while paused, passes once resumed", async () => {
    const g = pauseGate(store);
    expect((await evaluate(g, recovery("compute-1"))).result).toBe("pass");
    await store.putSetting("pause", { paused: true, by: "ops@bastion", reason: "switch upgrade", at: "2026-11-25T10:00:00Z" });
    const v = await evaluate(g, recovery("compute-1"));
    expect(v).toMatchObject({ result: "block", recheck: true });
    expect(v.reason).toMatch(/paused by ops@bastion .*switch upgrade/);
    await store.putSetting("pause", { paused: false, by: "ops", reason: "", at: "" });
    expect((await evaluate(g, recovery("compute-1"))).result).toBe("pass");
  });
  it("approval: all hosts, a list, or none", async () => {
    expect((await evaluate(approvalGate(true), recovery("compute-1"))).result).toBe("block");
    expect((await evaluate(approvalGate(["compute-2"]), recovery("compute-1"))).result).toBe("pass");
    expect((await evaluate(approvalGate(["compute-2"]), recovery("compute-2"))).reason).toMatch(/lifeboat approve r-compute-2/);
    expect((await evaluate(approvalGate(false), recovery("compute-2"))).result).toBe("pass");
  });
  it("cooldown: a host recovered past fencing recently waits; aborted recoveries do not count", async () => {
    const g = cooldownGate(store, 3600, () => Date.now());
    const old = await store.createRecovery({ host: "compute-1", incidentKey: "a", kind: "alert", trigger: "alert", dryRun: false, confirmedOff: false, detectedAt: "2026-11-25T00:00:00Z", graceUntil: "2026-11-25T00:00:00Z", reason: "x" });
    await store.transition(old.id, "pending", "aborted", "resolved");
    expect((await evaluate(g, recovery("compute-1"))).result).toBe("pass");
    const done = await store.createRecovery({ host: "compute-1", incidentKey: "b", kind: "alert", trigger: "alert", dryRun: false, confirmedOff: false, detectedAt: "2026-11-25T00:00:00Z", graceUntil: "2026-11-25T00:00:00Z", reason: "x" });
    await store.transition(done.id, "pending", "completed", "done", { fenceState: "off" });
    const v = await evaluate(g, recovery("compute-1"));
    expect(v).toMatchObject({ result: "block", overridable: true, recheck: true });
    expect(v.reason).toContain(done.id);
    expect((await evaluate(cooldownGate(store, 0, () => Date.now()), recovery("compute-1"))).result).toBe("pass");
  });
});

describe("capacity pre-check", () => {
  const evacCfg = lifeboatConfig().evacuation;
  function driver(free: HostCapacity["free"][], fail = false): CloudPort {
    const cloud = new WorldCloud(world);
    cloud.capacity = () =>
      fail ? Promise.reject(new Error("placement: 503")) : Promise.resolve(free.map((f, i) => ({ host: `compute-${i + 2}`, zone: "nova", free: f })));
    return cloud;
  }
  const opts = (): CapacityGateOptions => ({ mode: "block", scope: "zone", headroomPercent: 0, resources: ["vcpus", "ramMb"], evacuation: evacCfg, journal: store, staleSeconds: 60 });

  it("passes when the instances fit by flavor on the remaining hosts", async () => {
    // compute-1 runs three 2 vCPU / 2048 MB servers.
    const v = await evaluate(capacityGate(driver([{ vcpus: 4, ramMb: 4096, diskGb: 100 }, { vcpus: 2, ramMb: 2048, diskGb: 100 }]), opts()), recovery("compute-1"));
    expect(v.result).toBe("pass");
    expect(v.reason).toMatch(/3 instance\(s\) fit on 2 host\(s\) of zone nova/);
  });
  it("blocks with the shortfall named when they do not (bin packing, not sums)", async () => {
    // 6 vCPU free in total, but 3 + 3: only one 2-vCPU server fits per host.
    const v = await evaluate(capacityGate(driver([{ vcpus: 3, ramMb: 3000, diskGb: 100 }, { vcpus: 3, ramMb: 3000, diskGb: 100 }]), opts()), recovery("compute-1"));
    expect(v).toMatchObject({ result: "block", overridable: true });
    expect(v.reason).toMatch(/insufficient capacity in zone nova: 1 of 3 instance\(s\) do not fit \(short 2 vCPU, 2048 MB RAM\)/);
  });
  it("only warns in warn mode", async () => {
    expect((await evaluate(capacityGate(driver([]), { ...opts(), mode: "warn" }), recovery("compute-1"))).result).toBe("warn");
  });
  it("cannot decide when capacity cannot be read", async () => {
    expect((await evaluate(capacityGate(driver([], true), opts()), recovery("compute-1"))).result).toBe("undecided");
  });
});
