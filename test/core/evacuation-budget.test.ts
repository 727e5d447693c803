import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { InstanceResult, RecoveryState } from "../../src/domain/model.js";
import { inFlightEvacuations, recoveryZone } from "../../src/engine/in-flight-evacuations.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { newRecovery } from "../store/conformance.js";
import { EvacuationBudget, type BudgetSlot, type InFlightEvacuation, type SlotRequest } from "../../src/engine/evacuation-budget.js";
import { Metrics } from "../../src/metrics.js";
import { removeDir, tempDir } from "../kit/config.js";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A recovery's instances asking the budget: `ask(name, priority)` returns the slot; grants are logged in `order`. */
function recovery(budget: EvacuationBudget, id: string, createdAt: string, opts: { zone?: string | null; limit?: number; order?: string[]; signal?: AbortSignal } = {}) {
  const order = opts.order ?? [];
  const req = (name: string, priority: number, more: Partial<SlotRequest> = {}): SlotRequest => ({
    recoveryId: id,
    recoveryCreatedAt: createdAt,
    zone: opts.zone ?? null,
    recoveryLimit: opts.limit ?? 8,
    instanceId: `${id}/${name}`,
    name,
    priority,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...more,
  });
  return {
    slot: (name: string, priority = 0, more: Partial<SlotRequest> = {}): BudgetSlot => budget.slot(req(name, priority, more)),
    ask: (name: string, priority = 0, more: Partial<SlotRequest> = {}): { slot: BudgetSlot; granted: Promise<void> } => {
      const slot = budget.slot(req(name, priority, more));
      return { slot, granted: slot.acquire().then(() => void order.push(`${id}:${name}`)) };
    },
  };
}

describe("EvacuationBudget", () => {
  it("grants at most the site bound across recoveries, each recovery within its own bound, the next as one is released", async () => {
    const budget = new EvacuationBudget({ site: 3, zone: 0 });
    const order: string[] = [];
    const a = recovery(budget, "r-a", "2026-01-01T00:00:00.000Z", { limit: 2, order });
    const b = recovery(budget, "r-b", "2026-01-01T00:00:01.000Z", { limit: 8, order });
    const a1 = a.ask("a1");
    const a2 = a.ask("a2");
    const a3 = a.ask("a3");
    const b1 = b.ask("b1");
    const b2 = b.ask("b2");
    await tick();
    // r-a's own bound (2) lets r-b's first through, the site bound (3) stops the rest.
    expect(order).toEqual(["r-a:a1", "r-a:a2", "r-b:b1"]);
    expect(budget.inFlight).toBe(3);
    expect(budget.waiting).toBe(2);
    // r-a's third goes first in the order (older recovery) but may not run (r-a has 2): the slot goes to r-b's next.
    b1.slot.release();
    await tick();
    expect(order).toEqual(["r-a:a1", "r-a:a2", "r-b:b1", "r-b:b2"]);
    expect(a3.slot.held).toBe(false);
    a1.slot.release();
    await tick();
    expect(order.at(-1)).toBe("r-a:a3");
    await Promise.all([a1.granted, a2.granted, a3.granted, b1.granted, b2.granted]);
    for (const s of [a2, a3, b2]) s.slot.release();
    expect(budget.inFlight).toBe(0);
    expect(budget.waiting).toBe(0);
  });

  it("fills in priority order across every recovery: priority, then the older recovery, then the name", async () => {
    const budget = new EvacuationBudget({ site: 1, zone: 0 });
    const order: string[] = [];
    const first = recovery(budget, "r-first", "2026-01-01T00:00:00.000Z", { order });
    const tenth = recovery(budget, "r-tenth", "2026-01-01T00:09:00.000Z", { order });
    const blocker = first.ask("blocker");
    await blocker.granted;
    // The first failed host's low-priority instances queue first; the tenth's high-priority one after them.
    const asks = [first.ask("low-b", 0), first.ask("low-a", 0), tenth.ask("low-c", 0), first.ask("mid", 5), tenth.ask("urgent", 10), tenth.ask("mid", 5)];
    await tick();
    expect(budget.waiting).toBe(6);
    const slots = [blocker.slot, ...asks.map((x) => x.slot)];
    for (let i = 0; i < 6; i++) {
      slots.find((s) => s.held)!.release();
      await tick();
    }
    await Promise.all(asks.map((x) => x.granted));
    expect(order).toEqual(["r-first:blocker", "r-tenth:urgent", "r-first:mid", "r-tenth:mid", "r-first:low-a", "r-first:low-b", "r-tenth:low-c"]);
  });

  it("bounds each availability zone; an unknown zone has no zone bound", async () => {
    const budget = new EvacuationBudget({ site: 10, zone: 2 });
    const order: string[] = [];
    const az1a = recovery(budget, "r-1", "2026-01-01T00:00:00.000Z", { zone: "az-1", order });
    const az1b = recovery(budget, "r-2", "2026-01-01T00:00:01.000Z", { zone: "az-1", order });
    const az2 = recovery(budget, "r-3", "2026-01-01T00:00:02.000Z", { zone: "az-2", order });
    const none = recovery(budget, "r-4", "2026-01-01T00:00:03.000Z", { zone: null, order });
    const x = [az1a.ask("a", 9), az1b.ask("b", 9), az1a.ask("c", 9), az2.ask("d"), az2.ask("e"), az2.ask("f"), none.ask("g"), none.ask("h"), none.ask("i")];
    await tick();
    // Two of az-1 (the highest priorities), two of az-2, and every one of the zone-less host.
    expect(order).toEqual(["r-1:a", "r-2:b", "r-3:d", "r-3:e", "r-4:g", "r-4:h", "r-4:i"]);
    expect(budget.inZone("az-1")).toBe(2);
    expect(budget.inZone("az-2")).toBe(2);
    x[1]!.slot.release();
    await tick();
    expect(order.at(-1)).toBe("r-1:c");
    x[3]!.slot.release();
    await tick();
    expect(order.at(-1)).toBe("r-3:f");
  });

  it("a waiter whose stage stops leaves the queue with the signal's reason, and the next takes its place", async () => {
    const budget = new EvacuationBudget({ site: 1, zone: 0 });
    const order: string[] = [];
    const stop = new AbortController();
    const r1 = recovery(budget, "r-1", "2026-01-01T00:00:00.000Z", { order });
    const r2 = recovery(budget, "r-2", "2026-01-01T00:00:00.000Z", { order, signal: stop.signal });
    const holder = r1.ask("holder");
    await holder.granted;
    const stopped = r2.ask("a", 10);
    const next = r1.ask("b", 0);
    await tick();
    expect(budget.waiting).toBe(2);
    stop.abort(new Error("leadership ended"));
    await expect(stopped.granted).rejects.toThrow("leadership ended");
    expect(budget.waiting).toBe(1);
    holder.slot.release();
    await next.granted;
    expect(order).toEqual(["r-1:holder", "r-1:b"]);
    expect(stopped.slot.held).toBe(false);
    // A slot asked for on an aborted signal never queues.
    await expect(r2.slot("late").acquire()).rejects.toThrow("leadership ended");
    expect(budget.waiting).toBe(0);
  });

  it("releasing a slot never held, or twice, changes nothing", async () => {
    const budget = new EvacuationBudget({ site: 2, zone: 1 });
    const r = recovery(budget, "r-1", "2026-01-01T00:00:00.000Z", { zone: "az-1" });
    const never = r.slot("never");
    never.release();
    never.attemptEnded();
    never.close();
    expect(budget.inFlight).toBe(0);
    const a = r.ask("a");
    await a.granted;
    const b = r.ask("b");
    await tick();
    never.release();
    expect(budget.inFlight).toBe(1);
    expect(b.slot.held).toBe(false);
    a.slot.release();
    a.slot.release();
    await b.granted;
    expect(budget.inFlight).toBe(1);
    expect(budget.inZone("az-1")).toBe(1);
    // Acquiring what is held takes nothing more.
    await b.slot.acquire();
    expect(budget.inFlight).toBe(1);
  });

  it("a slot handed on while its call has no known fate still counts for the site, not for its recovery, until the attempt ends", async () => {
    const budget = new EvacuationBudget({ site: 2, zone: 0 });
    const order: string[] = [];
    let unsettled = true;
    const r1 = recovery(budget, "r-1", "2026-01-01T00:00:00.000Z", { limit: 1, order });
    const r2 = recovery(budget, "r-2", "2026-01-01T00:00:01.000Z", { order });
    const watched = r1.ask("watched", 0, { callUnsettled: () => unsettled });
    await watched.granted;
    const sibling = r1.ask("sibling");
    const other = r2.ask("other1");
    const other2 = r2.ask("other2");
    await tick();
    expect(order).toEqual(["r-1:watched", "r-2:other1"]);
    // The driver only watches the call now: r-1's own bound is free for its sibling, but the
    // site still counts the call that may act in Nova (2 of 2: other2 waits).
    watched.slot.release();
    expect(watched.slot.held).toBe(false);
    await tick();
    expect(budget.inFlight).toBe(2);
    expect(order).toEqual(["r-1:watched", "r-2:other1"]);
    other.slot.release();
    await tick();
    expect(order).toEqual(["r-1:watched", "r-2:other1", "r-1:sibling"]);
    expect(budget.inFlight).toBe(2);
    // Nova's records tell the call's fate and the driver returns: it counts no more.
    unsettled = false;
    watched.slot.attemptEnded();
    await Promise.all([sibling.granted, other2.granted]);
    expect(order.at(-1)).toBe("r-2:other2");
    expect(budget.inFlight).toBe(2);
  });

  it("a slot the driver hands on for an evacuation stuck past its timeout counts no more", async () => {
    const budget = new EvacuationBudget({ site: 1, zone: 0 });
    const r = recovery(budget, "r-1", "2026-01-01T00:00:00.000Z");
    const stuck = r.ask("stuck", 0, { callUnsettled: () => false });
    await stuck.granted;
    const next = r.ask("next");
    stuck.slot.release();
    await next.granted;
    expect(budget.inFlight).toBe(1);
  });

  it("after a restart, evacuations the journal shows in flight count first: new grants wait for the journal and for the count to fall under the bound", async () => {
    const metrics = new Metrics({ version: "test", defaultMetrics: false });
    const budget = new EvacuationBudget({ site: 2, zone: 0 }, { metrics });
    const order: string[] = [];
    let read!: (v: InFlightEvacuation[]) => void;
    const restored = budget.restore(() => new Promise((resolve) => (read = resolve)));
    const late = recovery(budget, "r-late", "2026-01-01T00:05:00.000Z", { order });
    const early = recovery(budget, "r-early", "2026-01-01T00:00:00.000Z", { order });
    // r-late's runner got there first: its pending instance waits for the journal to be read.
    const fresh = late.ask("fresh", 100);
    await tick();
    expect(order).toEqual([]);
    // r-late's own in-flight one resumes at once.
    const mine = late.slot("running-1");
    mine.resume();
    expect(mine.held).toBe(true);
    read([
      { recoveryId: "r-late", instanceId: "r-late/running-1", zone: null },
      { recoveryId: "r-early", instanceId: "r-early/running-2", zone: null },
      { recoveryId: "r-early", instanceId: "r-early/running-3", zone: null },
    ]);
    await restored;
    await tick();
    // Three in flight in Nova against a bound of 2: nothing new starts.
    expect(budget.inFlight).toBe(3);
    expect(order).toEqual([]);
    expect((await metrics.evacuationsInFlight.get()).values[0]?.value).toBe(3);
    // r-early's stage claims its reservations (at once, past the bound), never behind `fresh`.
    const two = early.slot("running-2");
    const three = early.slot("running-3");
    two.resume();
    three.resume();
    expect([two.held, three.held]).toEqual([true, true]);
    expect(budget.inFlight).toBe(3);
    two.close();
    await tick();
    expect(order).toEqual([]);
    three.close();
    await fresh.granted;
    expect(order).toEqual(["r-late:fresh"]);
    expect(budget.inFlight).toBe(2);
    expect((await metrics.evacuationsWaiting.get()).values[0]?.value).toBe(0);
  });

  it("a reservation nobody claims is dropped when its recovery leaves evacuating; a reset turns waiters away", async () => {
    const budget = new EvacuationBudget({ site: 1, zone: 0 });
    await budget.restore(() => Promise.resolve([{ recoveryId: "r-gone", instanceId: "r-gone/x", zone: "az-1" }]));
    expect(budget.inFlight).toBe(1);
    const order: string[] = [];
    const r = recovery(budget, "r-1", "2026-01-01T00:00:00.000Z", { order });
    const a = r.ask("a");
    await tick();
    expect(order).toEqual([]);
    budget.forget("r-gone");
    await a.granted;
    expect(budget.inZone("az-1")).toBe(0);
    const b = r.ask("b");
    await tick();
    budget.reset();
    await expect(b.granted).rejects.toThrow(/reset/);
    expect(budget.inFlight).toBe(0);
    // A slot of the earlier term changes nothing in the new one.
    a.slot.release();
    const c = r.ask("c");
    await c.granted;
    a.slot.close();
    expect(budget.inFlight).toBe(1);
  });

  it("a stage that stops while an evacuation may run in Nova keeps it counted until its next run resumes it", async () => {
    const budget = new EvacuationBudget({ site: 1, zone: 0 });
    const order: string[] = [];
    const r = recovery(budget, "r-1", "2026-01-01T00:00:00.000Z", { order });
    const a = r.ask("a");
    await a.granted;
    a.slot.suspend();
    const other = recovery(budget, "r-2", "2026-01-01T00:00:00.000Z", { order }).ask("b");
    await tick();
    expect(order).toEqual(["r-1:a"]);
    const again = r.slot("a");
    again.resume();
    expect(budget.inFlight).toBe(1);
    // The first run's slot lets go late: it changes nothing.
    a.slot.close();
    expect(budget.inFlight).toBe(1);
    again.close();
    await other.granted;
    expect(order).toEqual(["r-1:a", "r-2:b"]);
  });

  it("refuses bounds that are not positive integers", () => {
    expect(() => new EvacuationBudget({ site: 0, zone: 0 })).toThrow(RangeError);
    expect(() => new EvacuationBudget({ site: 2, zone: -1 })).toThrow(RangeError);
  });
});

describe("inFlightEvacuations (the journal read at the start of a term)", () => {
  it("lists the instances in state evacuating of the real recoveries in evacuating, each with the zone its isolate step journaled", async () => {
    const dir = tempDir();
    const store = new SqliteStore(join(dir, "lifeboat.db"));
    await store.init();
    try {
      const inState = async (host: string, state: RecoveryState, dryRun = false): Promise<string> => {
        const r = await store.createRecovery(newRecovery(host, { dryRun }));
        if (state !== "pending") await store.transition(r.id, "pending", state, "test");
        return r.id;
      };
      const instance = (recoveryId: string, instanceId: string, state: InstanceResult["state"]): InstanceResult => ({
        recoveryId,
        instanceId,
        name: instanceId,
        projectId: "p",
        originalStatus: "ACTIVE",
        state,
        priority: 0,
        attempts: state === "pending" ? 0 : 1,
      });
      const isolated = (recoveryId: string, zone: string | null): Promise<void> =>
        store.putStep({ recoveryId, key: "isolate", state: "succeeded", attempts: 1, startedAt: "2026-01-01T00:00:00.000Z", result: { already: false, message: "ok", service: { host: "h", zone } } });

      const a = await inState("compute-1", "evacuating");
      await isolated(a, "az-1");
      for (const [id, st] of [["a1", "evacuating"], ["a2", "pending"], ["a3", "evacuated"], ["a4", "evacuating"]] as const) await store.putInstance(instance(a, id, st));
      const b = await inState("compute-2", "evacuating");
      await isolated(b, null);
      await store.putInstance(instance(b, "b1", "evacuating"));
      // A dry run sends nothing; a recovery past evacuating has nothing in flight of its own.
      const dry = await inState("compute-3", "evacuating", true);
      await store.putInstance(instance(dry, "d1", "evacuating"));
      const done = await inState("compute-4", "notifying");
      await store.putInstance(instance(done, "n1", "evacuating"));

      const found = await inFlightEvacuations(store);
      expect(found.sort((x, y) => x.instanceId.localeCompare(y.instanceId))).toEqual([
        { recoveryId: a, instanceId: "a1", zone: "az-1" },
        { recoveryId: a, instanceId: "a4", zone: "az-1" },
        { recoveryId: b, instanceId: "b1", zone: null },
      ]);
      expect(await recoveryZone(store, a)).toBe("az-1");
      expect(await recoveryZone(store, done)).toBeNull();
    } finally {
      await store.close();
      removeDir(dir);
    }
  });
});
