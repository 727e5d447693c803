import { afterEach, describe, expect, it } from "vitest";
import type { Recovery, RecoveryDetail } from "../../src/domain/model.js";
import type { SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import { buildGates } from "../../src/app/gates.js";
import type { Gate } from "../../src/domain/ports/gate.js";
import { askGate } from "../gates/ask.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { serversOn, siteScenario } from "../kit/site.js";

/**
 * Two hosts fail at once and the rest of the zone has room for one host's instances: the
 * capacity gate lets exactly one recovery go (the older), blocks the other with the
 * shortfall and the room kept for the first, and once the first has finished decides on
 * what Placement then reports — still no room, until a host comes back into the pool.
 */

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** A capacity read: the gate asks os-hypervisors once per look (Placement for each host's figures). */
const isCapacityRead = (q: SimRequest): boolean => q.service === "compute" && q.method === "GET" && q.path.startsWith("/v2.1/os-hypervisors");

/** The capacity gate built as lifeboat builds it, on the running app's journal and cloud. */
function capacityAsWired(s: Stack): Gate {
  const { app } = s;
  const gates = buildGates({ config: s.config, store: app.store, fencing: app.drivers.fencing, evacuation: app.drivers.evacuation, notifier: app.drivers.notifier, clock: app.clock, metrics: app.metrics, logger: app.logger });
  return gates.find((g) => g.name === "capacity")!;
}

async function openRecovery(s: Stack, host: string): Promise<Recovery> {
  return waitFor(async () => (await s.app.store.listRecoveries({ host }))[0], 10_000, `a recovery of ${host}`);
}

describe("joint capacity: two hosts fail, the zone has room for one", () => {
  it("exactly one recovery proceeds; the other is blocked naming it, and follows the figures once it has finished", async () => {
    const scenario = siteScenario(
      ["compute-1", "compute-2", "compute-3", "compute-4"],
      // Four m1.small (1 vCPU, 2048 MB) on each failing host; the first host's take a few
      // seconds each to rebuild, so the second is judged while the first is still under way.
      [...serversOn("compute-1", 4, "one", { evacuation: { durationMs: 3000 } }), ...serversOn("compute-2", 4, "two")],
    );
    // compute-3 has room for exactly four m1.small; compute-4 is down for repair.
    Object.assign(scenario.hosts[2]!, { vcpus: 4, memoryMb: 8192, reservedMemoryMb: 0, cpuAllocationRatio: 1, ramAllocationRatio: 1 });
    Object.assign(scenario.hosts[3]!, { alive: false });
    // Two of four hosts failing is 50 %: the storm guard is not what this test is about.
    stack = await startStack({ pace: "fast", cloud: { scenario }, config: { gates: { storm: { max_percent: 100 } } } });
    const s = stack;
    s.sandbox.failHost("compute-1");
    s.sandbox.failHost("compute-2");
    await waitFor(() => {
      s.sandbox.cloud.settle();
      const services = s.sandbox.cloud.state.services();
      return ["compute-1", "compute-2"].every((h) => services.find((x) => x.host === h)?.state === "down");
    }, 15_000, "Nova says both down");

    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const first = await openRecovery(s, "compute-1");
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-2" }))).status).toBe(202);
    const second = await openRecovery(s, "compute-2");

    const blocked = await waitFor(async () => {
      const r = await s.app.store.getRecovery(second.id);
      return r?.state === "blocked" ? r : undefined;
    }, 20_000, "the second recovery blocked");
    expect(blocked.reason).toMatch(
      new RegExp(`^capacity: insufficient capacity in zone nova: 4 of 4 instance\\(s\\) do not fit \\(short 4 vCPU, 8192 MB RAM\\): (two-0\\d, ){3}two-0\\d; room reserved for 4 instance\\(s\\) of recovery ${first.id} \\(compute-1\\)$`),
    );
    const decision = (await s.app.store.decisions(second.id)).filter((d) => d.gate === "capacity").at(-1);
    expect(decision?.details).toMatchObject({ reservations: [{ recoveryId: first.id, host: "compute-1", instances: 4, unplaced: 0 }] });

    const done = await waitFor(async () => {
      const r = await s.app.store.getRecovery(first.id);
      return r?.state === "completed" ? r : undefined;
    }, 30_000, "the first recovery completed");
    expect(s.sandbox.view().servers.filter((x) => x.name.startsWith("one-")).every((x) => x.host === "compute-3")).toBe(true);

    // Capacity is read again after the first finished (the site's figures are shared for a few
    // seconds): compute-3 is full now, nothing else is up.
    const seqAtDone = s.sandbox.cloud.requests.filter((q) => q.at <= done.updatedAt).at(-1)?.seq ?? 0;
    await waitFor(() => s.sandbox.cloud.requests.filter((q) => q.seq > seqAtDone && isCapacityRead(q)).length >= 1, 15_000, "capacity read again");
    // The block is written anew with the new figures: no room is kept for the finished
    // recovery, the same shortfall is compute-3's own figures now.
    const still = await waitFor(async () => {
      const r = await s.app.store.getRecovery(second.id);
      return r?.state === "blocked" && !r.reason.includes("room reserved") ? r : undefined;
    }, 15_000, "the second recovery's block written anew without the finished recovery's reservation");
    expect(still.reason).toMatch(/^capacity: insufficient capacity in zone nova: 4 of 4 instance\(s\) do not fit \(short 4 vCPU, 8192 MB RAM\): [^;]*$/);
    expect(still.block?.episode).toBe(blocked.block?.episode);
    expect(s.sandbox.redfish.system("compute-2").resets).toEqual([]);
    const latest = (await s.app.store.decisions(second.id)).filter((d) => d.gate === "capacity").at(-1);
    expect(latest?.details).toMatchObject({ reservations: [], hosts: 1 });
    const now = await askGate(capacityAsWired(s), still);
    expect(now).toMatchObject({ result: "block", details: { reservations: [], hosts: 1 } });
    expect(s.sandbox.view().servers.filter((x) => x.name.startsWith("two-")).every((x) => x.host === "compute-2")).toBe(true);

    // compute-4 is repaired: its nova-compute reports again, Placement shows its room, the second goes.
    s.sandbox.cloud.startCompute("compute-4");
    await waitFor(async () => (await s.app.store.getRecovery(second.id))?.state === "completed", 40_000, "the second recovery completed");
    const d = (await api(s.app.url, "GET", `/api/v1/recoveries/${second.id}`)).body as RecoveryDetail;
    const passed = d.decisions.filter((x) => x.gate === "capacity").at(-1);
    expect(passed).toMatchObject({ result: "pass", reason: "4 instance(s) fit on 2 host(s) of zone nova" });
    expect(s.sandbox.view().servers.filter((x) => x.name.startsWith("two-")).every((x) => x.host === "compute-4")).toBe(true);
    // Exactly one fence each, the second's only after the room appeared.
    expect(s.sandbox.redfish.system("compute-1").resets).toHaveLength(1);
    expect(s.sandbox.redfish.system("compute-2").resets).toHaveLength(1);
  }, 120_000);
});
