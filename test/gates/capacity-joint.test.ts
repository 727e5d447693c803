import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AlertmanagerClient } from "../../src/alertmanager/client.js";
import type { Recovery } from "../../src/domain/model.js";
import type { HostCapacity, InstanceInfo } from "../../src/domain/ports/cloud.js";
import { capacityGate, type CapacityGateOptions } from "../../src/gates/capacity.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { startAlertmanager, type AlertmanagerServer } from "../support/alertmanager.js";
import { freePort } from "../support/daemon.js";
import { askGate } from "./ask.js";
import { tempDir, lifeboatConfig } from "../kit/config.js";
import { World, WorldCloud } from "../kit/world.js";

/**
 * The capacity gate when several hosts fail at once: the hosts it leaves out of the pool
 * (open recovery, hold, firing alert, stale heartbeat) and the room it keeps for the
 * recoveries opened before the one it judges, oldest first.
 */

let store: SqliteStore;
let world: World;
let cloud: WorldCloud;
/** Free room per host, as Placement would report it (only the hosts listed here have any). */
let room: Map<string, HostCapacity["free"]>;

// Every host runs three servers of 2 vCPU / 2048 MB.
const ONE_HOST = { vcpus: 6, ramMb: 6144, diskGb: 500 };

beforeEach(async () => {
  store = new SqliteStore(join(tempDir(), "capacity.db"));
  await store.init();
  world = World.standard(["compute-1", "compute-2", "compute-3", "compute-4", "compute-5"], 3);
  cloud = new WorldCloud(world);
  room = new Map();
  cloud.capacity = () => Promise.resolve([...room].map(([host, free]) => ({ host, zone: world.host(host).service.zone, free: { ...free } })));
});
afterEach(async () => {
  await store.close();
});

function gate(extra: Partial<CapacityGateOptions> = {}): ReturnType<typeof capacityGate> {
  return capacityGate(cloud, {
    mode: "block",
    scope: "zone",
    headroomPercent: 0,
    resources: ["vcpus", "ramMb"],
    evacuation: lifeboatConfig().evacuation,
    journal: store,
    staleSeconds: 30,
    listingMaxAgeMs: 0,
    ...extra,
  });
}

let opened = 0;
/** An open recovery of `host`, opened after every earlier call's (a few ms apart: createdAt orders them). */
async function open(host: string, extra: { kind?: Recovery["kind"]; dryRun?: boolean } = {}): Promise<Recovery> {
  await new Promise((r) => setTimeout(r, 5));
  opened += 1;
  const now = new Date().toISOString();
  return store.createRecovery({
    host,
    kind: extra.kind ?? "alert",
    incidentKey: `${host}@${opened}`,
    trigger: "alert",
    dryRun: extra.dryRun ?? false,
    confirmedOff: false,
    detectedAt: now,
    graceUntil: now,
    reason: "alert",
  });
}

describe("the pool leaves out hosts that may be failing too", () => {
  it("asks for the capacity of the failed host's zone alone when the scope is its zone, of the whole cloud otherwise", async () => {
    const asked: (string | undefined)[] = [];
    const read = cloud.capacity!;
    cloud.capacity = (signal, zone) => {
      asked.push(zone);
      return read(signal, zone);
    };
    room.set("compute-2", ONE_HOST);
    const r = await open("compute-1");
    expect((await askGate(gate(), r)).result).toBe("pass");
    expect((await askGate(gate({ scope: "all" }), r)).result).toBe("pass");
    expect(asked).toEqual([world.host("compute-1").service.zone ?? undefined, undefined]);
    expect(asked[0]).toBeDefined();
  });

  it("a host lifeboat holds (fenced, awaiting release)", async () => {
    room.set("compute-2", ONE_HOST);
    room.set("compute-3", { vcpus: 0, ramMb: 0, diskGb: 0 });
    const r = await open("compute-1");
    expect((await askGate(gate(), r)).result).toBe("pass");
    await store.putHostState({ host: "compute-2", fenced: true, recoveryId: "r-earlier", by: "ops", at: new Date().toISOString() }, 0);
    const v = await askGate(gate(), r);
    expect(v).toMatchObject({ result: "block", recheck: true, overridable: true });
    expect(v.reason).toMatch(/^insufficient capacity in zone nova: 3 of 3 instance\(s\) do not fit \(short 6 vCPU, 6144 MB RAM\): .*; left out 1 host\(s\): 1 held \(compute-2\)$/);
    expect(v.details).toMatchObject({ hosts: 1, leftOut: [{ host: "compute-2", why: "held" }] });
  });

  it("a host with an open recovery (a newer one: no room is kept for it, but its host is no room either)", async () => {
    room.set("compute-2", ONE_HOST);
    const r = await open("compute-1");
    expect((await askGate(gate(), r)).result).toBe("pass");
    const other = await open("compute-2");
    const v = await askGate(gate(), r);
    expect(v.result).toBe("block");
    expect(v.reason).toMatch(/do not fit .*; left out 1 host\(s\): 1 with an open recovery \(compute-2\)$/);
    expect(v.details).toMatchObject({ reservations: [], leftOut: [{ host: "compute-2", why: "open recovery", detail: `recovery ${other.id} (pending)` }] });
  });

  it("a host whose heartbeat is stale on Nova's clock though Nova still says up", async () => {
    room.set("compute-2", ONE_HOST);
    const r = await open("compute-1");
    world.kill("compute-2", 10);
    expect((await askGate(gate(), r)).result).toBe("pass");
    world.kill("compute-2", 40);
    expect(world.answer("compute-2")?.state).toBe("up");
    const v = await askGate(gate(), r);
    expect(v.result).toBe("block");
    expect(v.reason).toMatch(/; left out 1 host\(s\): 1 with a stale heartbeat \(compute-2\)$/);
  });

  it("names every reason, counted, a host under its first one", async () => {
    for (const h of ["compute-2", "compute-3", "compute-4", "compute-5"]) room.set(h, ONE_HOST);
    const r = await open("compute-1");
    await open("compute-2");
    await store.putHostState({ host: "compute-2", fenced: true, recoveryId: "r-x", by: "ops", at: new Date().toISOString() }, 0);
    await store.putHostState({ host: "compute-3", fenced: true, recoveryId: "r-y", by: "ops", at: new Date().toISOString() }, 0);
    world.kill("compute-4", 45);
    const v = await askGate(gate(), r);
    expect(v.result).toBe("pass");
    expect(v.reason).toBe("3 instance(s) fit on 1 host(s) of zone nova; left out 3 host(s): 1 with an open recovery (compute-2), 1 held (compute-3), 1 with a stale heartbeat (compute-4)");
  });
});

describe("the pool leaves out hosts with a firing trigger alert (real Alertmanager)", () => {
  let am: AlertmanagerServer;
  beforeAll(async () => {
    am = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${await freePort()}/api/v1/alerts`, groupWait: "1h" });
  });
  afterAll(async () => {
    await am?.stop();
  });
  const fire = (host: string, alertname: string): Promise<void> =>
    am.postAlerts([{ labels: { alertname, host, severity: "critical" }, startsAt: new Date(Date.now() - 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString() }]);

  it("a trigger alert firing for a host Nova still counts as room leaves it out; another alertname does not", async () => {
    const alerts = { client: new AlertmanagerClient(am.url, { timeoutMs: 3000 }), alertnames: ["ComputeNodeDown"], hostLabel: "host" };
    room.set("compute-3", ONE_HOST);
    const r = await open("compute-1");
    await fire("compute-3", "NodeHighLoad");
    expect((await askGate(gate({ alerts }), r)).result).toBe("pass");
    await fire("compute-3", "ComputeNodeDown");
    const v = await askGate(gate({ alerts }), r);
    expect(v.result).toBe("block");
    expect(v.reason).toMatch(/; left out 1 host\(s\): 1 with a firing alert \(compute-3\)$/);
    expect(v.details).toMatchObject({ leftOut: [{ host: "compute-3", why: "firing alert", detail: expect.stringMatching(/^ComputeNodeDown firing since /) as unknown }] });
  });

  it("Alertmanager not answering: the rest still decides, and the reason says the alerts were not read", async () => {
    const alerts = { client: new AlertmanagerClient(`http://127.0.0.1:${await freePort()}`, { timeoutMs: 1000 }), alertnames: ["ComputeNodeDown"], hostLabel: "host" };
    room.set("compute-3", ONE_HOST);
    const v = await askGate(gate({ alerts }), await open("compute-1"));
    expect(v.result).toBe("pass");
    expect(v.reason).toMatch(/; firing alerts not read \(Alertmanager at http:\/\/127\.0\.0\.1:\d+: .+\)$/);
  });
});

describe("room kept for earlier recoveries, oldest first", () => {
  it("two hosts fail, room for one: the older passes, the newer is blocked naming it; the decision follows the figures", async () => {
    room.set("compute-3", ONE_HOST);
    const first = await open("compute-1");
    const second = await open("compute-2");
    const g = gate();
    expect((await askGate(g, first)).result).toBe("pass");
    const v = await askGate(g, second);
    expect(v).toMatchObject({ result: "block", recheck: true, overridable: true });
    expect(v.reason).toMatch(
      new RegExp(`^insufficient capacity in zone nova: 3 of 3 instance\\(s\\) do not fit \\(short 6 vCPU, 6144 MB RAM\\): .*; room reserved for 3 instance\\(s\\) of recovery ${first.id} \\(compute-1\\)$`),
    );
    expect(v.details).toMatchObject({ reservations: [{ recoveryId: first.id, host: "compute-1", state: "pending", instances: 3, unplaced: 0 }] });

    // The first evacuates: two of its servers are on compute-3 now (their room used there), one is still pending.
    await store.transition(first.id, "pending", "evacuating", "fenced and isolated");
    const servers = [...world.servers.values()].filter((s) => s.host === "compute-1");
    for (const [i, s] of servers.entries()) {
      await store.putInstance({ recoveryId: first.id, instanceId: s.id, name: s.name, projectId: s.projectId, originalStatus: "ACTIVE", state: i < 2 ? "evacuated" : "pending", priority: 0, attempts: i < 2 ? 1 : 0 });
      if (i < 2) s.host = "compute-3";
    }
    room.set("compute-3", { vcpus: 2, ramMb: 2048, diskGb: 460 });
    const during = await askGate(g, second);
    expect(during.result).toBe("block");
    expect(during.reason).toMatch(new RegExp(`room reserved for 1 instance\\(s\\) of recovery ${first.id} \\(compute-1\\)$`));

    // The first has finished: nothing is kept for it, the new figures decide alone.
    servers[2]!.host = "compute-3";
    await store.putInstance({ recoveryId: first.id, instanceId: servers[2]!.id, name: servers[2]!.name, projectId: servers[2]!.projectId, originalStatus: "ACTIVE", state: "evacuated", priority: 0, attempts: 1 });
    await store.transition(first.id, "evacuating", "completed", "done", { outcome: "completed" });
    room.set("compute-3", { vcpus: 0, ramMb: 0, diskGb: 440 });
    const after = await askGate(g, second);
    expect(after.result).toBe("block");
    expect(after.reason).toMatch(/^insufficient capacity in zone nova: 3 of 3 instance\(s\) do not fit \(short 6 vCPU, 6144 MB RAM\): [^;]*$/);
    // An operator adds a host: it passes.
    room.set("compute-4", ONE_HOST);
    expect(await askGate(g, second)).toMatchObject({ result: "pass", reason: "3 instance(s) fit on 2 host(s) of zone nova" });
  });

  it("three hosts fail, room for two: the third keeps room for both, named oldest first", async () => {
    room.set("compute-4", ONE_HOST);
    room.set("compute-5", ONE_HOST);
    const [a, b, c] = [await open("compute-1"), await open("compute-2"), await open("compute-3")];
    expect((await askGate(gate(), a)).result).toBe("pass");
    expect((await askGate(gate(), b)).result).toBe("pass");
    const v = await askGate(gate(), c);
    expect(v.result).toBe("block");
    expect(v.reason).toMatch(new RegExp(`; room reserved for 6 instance\\(s\\) of 2 earlier recoveries: ${a.id} \\(compute-1, 3\\), ${b.id} \\(compute-2, 3\\)$`));
  });

  it("keeps no room for a recovery that moves nothing (fence-only), for a dry run (unless itself one), or for another zone", async () => {
    room.set("compute-3", ONE_HOST);
    world.host("compute-5").service = { ...world.host("compute-5").service, zone: "az2" };
    await open("compute-2", { kind: "fence-only" });
    await open("compute-4", { dryRun: true });
    await open("compute-5");
    const real = await open("compute-1");
    expect(await askGate(gate(), real)).toMatchObject({ result: "pass", reason: "3 instance(s) fit on 1 host(s) of zone nova" });
    const dry = { ...real, dryRun: true };
    const v = await askGate(gate(), dry);
    expect(v.result).toBe("block");
    expect(v.reason).toMatch(/room reserved for 3 instance\(s\) of recovery \S+ \(compute-4\)$/);
  });

  it("cannot decide when an earlier recovery's instances cannot be read", async () => {
    room.set("compute-3", ONE_HOST);
    const first = await open("compute-2");
    const list = cloud.listInstances.bind(cloud);
    cloud.listInstances = (host: string): Promise<InstanceInfo[]> => (host === "compute-2" ? Promise.reject(new Error("nova: 503")) : list(host));
    const v = await askGate(gate(), await open("compute-1"));
    expect(v).toMatchObject({ result: "undecided", recheck: true });
    expect(v.reason).toBe(`cannot read what to keep room for: the instances of recovery ${first.id} (compute-2): nova: 503`);
  });

  it("another recovery's host listing is shared between checks for a few seconds; the failed host's own is read each time", async () => {
    room.set("compute-3", { vcpus: 12, ramMb: 12288, diskGb: 500 });
    await open("compute-2");
    const second = await open("compute-1");
    const asked: string[] = [];
    const list = cloud.listInstances.bind(cloud);
    cloud.listInstances = (host: string): Promise<InstanceInfo[]> => {
      asked.push(host);
      return list(host);
    };
    const g = gate({ listingMaxAgeMs: 60_000 });
    for (let i = 0; i < 3; i++) expect((await askGate(g, second)).result).toBe("pass");
    expect(asked.filter((h) => h === "compute-2")).toHaveLength(1);
    expect(asked.filter((h) => h === "compute-1")).toHaveLength(3);
  });

  it("checks of one moment share their reads of the journal; a check asked after a write reads it", async () => {
    // Room for eleven servers: the first two held fit, the third does not while the earlier one's three wait.
    room.set("compute-5", { vcpus: 22, ramMb: 22528, diskGb: 500 });
    const earlier = await open("compute-1");
    await store.transition(earlier.id, "pending", "evacuating", "fenced and isolated");
    for (const s of [...world.servers.values()].filter((x) => x.host === "compute-1")) {
      await store.putInstance({ recoveryId: earlier.id, instanceId: s.id, name: s.name, projectId: s.projectId, originalStatus: "ACTIVE", state: "pending", priority: 0, attempts: 0 });
    }
    const held = [await open("compute-2"), await open("compute-3"), await open("compute-4")];
    const reads = { open: 0, instances: 0, holds: 0 };
    const journal: CapacityGateOptions["journal"] = {
      listRecoveries: (f) => (reads.open++, store.listRecoveries(f)),
      instances: (id) => (reads.instances++, store.instances(id)),
      listHostStates: () => (reads.holds++, store.listHostStates()),
    };
    const g = gate({ journal });
    // An approval wakes every held recovery's check at once.
    const verdicts = await Promise.all(held.map((r) => askGate(g, r)));
    expect(verdicts.map((v) => v.result)).toEqual(["pass", "pass", "block"]);
    expect(reads).toEqual({ open: 1, instances: 1, holds: 1 });
    expect(verdicts[2]!.reason).toMatch(new RegExp(`room reserved for 9 instance\\(s\\) of 3 earlier recoveries: ${earlier.id} \\(compute-1, 3\\)`));

    // The earlier recovery placed its instances: the next check reads the journal again and keeps no room for them.
    for (const s of [...world.servers.values()].filter((x) => x.host === "compute-1")) {
      await store.putInstance({ recoveryId: earlier.id, instanceId: s.id, name: s.name, projectId: s.projectId, originalStatus: "ACTIVE", state: "evacuated", priority: 0, attempts: 1 });
    }
    const again = await askGate(g, held[2]!);
    expect(reads).toEqual({ open: 2, instances: 2, holds: 2 });
    expect(again.result).toBe("pass");
    expect(again.reason).not.toContain(earlier.id);
  });
});
