import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  eventKey,
  type BlockEpisode,
  type AppendedEvent,
  type GateDecision,
  type EvacuateCall,
  type InstanceResult,
  type NewHostEvent,
  type NewRecovery,
  type NotificationPayload,
  type NotificationRecord,
  type StepRecord,
} from "../../src/domain/model.js";
import { HostBusyError, HostStateConflictError, INSTANCES_PER_WRITE, StateConflictError, recoveryDetail, type Store } from "../../src/domain/journal.js";
import { NotFoundError } from "../../src/domain/errors.js";
import type { ChainResult } from "../../src/domain/ports/fencing.js";

/**
 * The behaviour every `Store` must have, whatever keeps the data. Run it against each
 * implementation with a factory that gives a fresh, empty store per test.
 */
export interface StoreUnderTest {
  store: Store;
  /** Close every store this fixture opened and remove the backing data. */
  cleanup(): Promise<void>;
  /**
   * Open (and init) another store instance on the same backing data — a second lifeboat
   * process on the same file or etcd prefix. The caller closes it.
   */
  open(): Promise<Store>;
}

export type MakeStore = () => Promise<StoreUnderTest>;

let seq = 0;

/** A new firing alert for `host` (its own labels); `over` replaces any field. The key follows eventKey(). */
export function newEvent(host: string | null, over: Partial<NewHostEvent> = {}): NewHostEvent {
  seq += 1;
  const base: Omit<NewHostEvent, "key"> = {
    receivedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, seq)).toISOString(),
    source: "alertmanager",
    host,
    alertname: "ComputeNodeDown",
    status: "firing",
    fingerprint: `fp-${host ?? "none"}-${seq}`,
    startsAt: "2026-01-01T00:00:00.000Z",
    endsAt: null,
    // Distinct alerts have distinct label sets (the event key hashes them).
    labels: { alertname: "ComputeNodeDown", host: host ?? "", severity: "critical", instance: `10.0.0.${seq}:9100` },
    annotations: { summary: `node ${host ?? "?"} is down` },
    generatorURL: "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
    groupKey: '{}:{alertname="ComputeNodeDown"}',
    receiver: "lifeboat",
    ...over,
  };
  return { key: eventKey(base), ...base, ...(over.key !== undefined ? { key: over.key } : {}) };
}

/** An instance record as the evacuating stage first journals it: pending, nothing tried. */
export function pendingInstance(recoveryId: string, instanceId: string, over: Partial<InstanceResult> = {}): InstanceResult {
  return { recoveryId, instanceId, name: instanceId, projectId: "p", originalStatus: "ACTIVE", state: "pending", priority: 0, attempts: 0, ...over };
}

export function newRecovery(host: string, over: Partial<NewRecovery> = {}): NewRecovery {
  return {
    host,
    kind: "alert",
    incidentKey: `${host}|2026-01-01T00:00:00.000Z`,
    trigger: "alert",
    dryRun: false,
    confirmedOff: false,
    detectedAt: "2026-01-01T00:00:00.000Z",
    graceUntil: "2026-01-01T00:00:30.000Z",
    reason: "ComputeNodeDown fired",
    ...over,
  };
}

const tick = (ms = 3): Promise<void> => new Promise((r) => setTimeout(r, ms));

const BLOCK: BlockEpisode = {
  gates: ["storm"],
  recheck: true,
  approvable: true,
  at: "2026-01-01T00:01:00.000Z",
  episode: "2026-01-01T00:01:00.000Z|approvable|clears-itself",
  signature: "storm:block|approvable|recheck",
  since: "2026-01-01T00:01:00.000Z",
};
const CHAIN: ChainResult = {
  ok: true,
  device: "ipmi 10.0.0.7:623",
  attempts: [{ device: "ipmi 10.0.0.7:623", driver: "ipmi", result: { ok: true, state: "off", already: false, message: "Chassis Power is off", durationMs: 420, attempts: 1 } }],
  message: "confirmed off by ipmi 10.0.0.7:623",
};

export function describeStoreConformance(name: string, makeStore: MakeStore): void {
  describe(`Store conformance: ${name}`, () => {
    let fx: StoreUnderTest;
    let store: Store;

    beforeEach(async () => {
      fx = await makeStore();
      store = fx.store;
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    // ---- events ----------------------------------------------------------------------

    describe("events", () => {
      it("journals a new event with every field and the defaults of an unprocessed event", async () => {
        const e = newEvent("compute-1", { endsAt: "2026-01-01T01:00:00.000Z", labels: { host: "compute-1", "a/b": "x y" } });
        const [res] = await store.appendEvents([e]);
        expect(res!.duplicate).toBe(false);
        expect(typeof res!.event.id).toBe("number");
        expect(res!.event).toEqual({
          ...e,
          id: res!.event.id,
          deliveries: 1,
          lastReceivedAt: e.receivedAt,
          disposition: "unprocessed",
          recoveryId: null,
          note: null,
        });
        const listed = await store.listEvents({});
        expect(listed).toEqual([res!.event]);
      });

      it("keeps the note intake gave an event", async () => {
        const [res] = await store.appendEvents([{ ...newEvent(null), note: "no host label" }]);
        expect(res!.event.note).toBe("no host label");
        expect((await store.listEvents({}))[0]!.note).toBe("no host label");
      });

      it("keeps events without a host", async () => {
        const [res] = await store.appendEvents([newEvent(null)]);
        expect(res!.event.host).toBeNull();
        expect((await store.listEvents({}))[0]!.host).toBeNull();
      });

      it("counts a repeated delivery of the same key on the first record", async () => {
        const e = newEvent("compute-1");
        const [first] = await store.appendEvents([e]);
        const later = { ...e, receivedAt: "2026-01-01T00:05:00.000Z" };
        const [second] = await store.appendEvents([later]);
        expect(second!.duplicate).toBe(true);
        expect(second!.event.id).toBe(first!.event.id);
        expect(second!.event.deliveries).toBe(2);
        expect(second!.event.receivedAt).toBe(e.receivedAt);
        expect(second!.event.lastReceivedAt).toBe(later.receivedAt);
        const listed = await store.listEvents({});
        expect(listed).toHaveLength(1);
        expect(listed[0]!.deliveries).toBe(2);
      });

      it("answers each event of one call in order, duplicates inside the call included", async () => {
        const a = newEvent("compute-1");
        const b = newEvent("compute-2");
        const res = await store.appendEvents([a, b, a, a]);
        expect(res.map((r) => [r.event.key, r.duplicate, r.event.deliveries])).toEqual([
          [a.key, false, 1],
          [b.key, false, 1],
          [a.key, true, 2],
          [a.key, true, 3],
        ]);
        expect(res[0]!.event.id).toBe(res[2]!.event.id);
        expect(res[0]!.event.id).not.toBe(res[1]!.event.id);
        expect(await store.listEvents({})).toHaveLength(2);
      });

      it("journals a delivery of 600 events whole and in order, a key repeated far apart counted on its first record", async () => {
        const a = newEvent("compute-1");
        const others = Array.from({ length: 598 }, (_, i) => newEvent(`node-${i}`));
        const res = await store.appendEvents([a, ...others.slice(0, 400), a, ...others.slice(400)]);
        expect(res).toHaveLength(600);
        expect(res.map((r) => r.event.key)).toEqual([a.key, ...others.slice(0, 400).map((e) => e.key), a.key, ...others.slice(400).map((e) => e.key)]);
        expect([res[401]!.duplicate, res[401]!.event.id, res[401]!.event.deliveries]).toEqual([true, res[0]!.event.id, 2]);
        expect(res.filter((r) => r.duplicate)).toHaveLength(1);
        const ids = res.filter((r) => !r.duplicate).map((r) => r.event.id);
        expect([...ids].sort((x, y) => x - y)).toEqual(ids);
        expect(await store.unprocessedEvents(1000)).toHaveLength(599);
      });

      it("deduplicates 1,000 concurrent identical appends into one record with 1,000 deliveries", async () => {
        const e = newEvent("compute-1");
        const results = await Promise.all(Array.from({ length: 1000 }, () => store.appendEvents([e])));
        const flat = results.flat();
        expect(flat).toHaveLength(1000);
        expect(flat.filter((r) => !r.duplicate)).toHaveLength(1);
        expect(new Set(flat.map((r) => r.event.id)).size).toBe(1);
        expect(new Set(flat.map((r) => r.event.deliveries)).size).toBe(1000);
        const listed = await store.listEvents({ limit: 10 });
        expect(listed).toHaveLength(1);
        expect(listed[0]!.deliveries).toBe(1000);
      });

      it("deduplicates the same appends from two store instances on the same data into one record", async () => {
        const other = await fx.open();
        try {
          const e = newEvent("compute-1");
          // Spread over many event-loop turns so both instances keep writing the same record.
          const pending: Promise<AppendedEvent[]>[] = [];
          for (let i = 0; i < 1000; i++) {
            pending.push((i % 2 === 0 ? store : other).appendEvents([e]));
            if (i % 20 === 19) await new Promise((r) => setImmediate(r));
          }
          const flat = (await Promise.all(pending)).flat();
          expect(flat.filter((r) => !r.duplicate)).toHaveLength(1);
          expect(new Set(flat.map((r) => r.event.id)).size).toBe(1);
          for (const s of [store, other]) {
            const listed = await s.listEvents({ limit: 10 });
            expect(listed).toHaveLength(1);
            expect(listed[0]!.deliveries).toBe(1000);
          }
        } finally {
          await other.close();
        }
      });

      it("gives distinct events distinct ids when two instances append at the same time", async () => {
        const other = await fx.open();
        try {
          const events = Array.from({ length: 100 }, (_, i) => newEvent(`compute-${i}`));
          const results = await Promise.all(events.map((e, i) => (i % 2 === 0 ? store : other).appendEvents([e])));
          const ids = results.flat().map((r) => r.event.id);
          expect(new Set(ids).size).toBe(100);
          expect(results.flat().every((r) => !r.duplicate)).toBe(true);
          expect(await store.listEvents({ limit: 1000 })).toHaveLength(100);
          expect(await store.unprocessedEvents(1000)).toHaveLength(100);
        } finally {
          await other.close();
        }
      });

      it("lists unprocessed events oldest first, up to the limit, and forgets marked ones", async () => {
        const appended: number[] = [];
        for (let i = 0; i < 5; i++) appended.push((await store.appendEvents([newEvent(`compute-${i}`)]))[0]!.event.id);
        expect([...appended].sort((a, b) => a - b)).toEqual(appended);

        expect((await store.unprocessedEvents(10)).map((e) => e.id)).toEqual(appended);
        expect((await store.unprocessedEvents(2)).map((e) => e.id)).toEqual(appended.slice(0, 2));

        await store.markEvent(appended[1]!, "started", "r-1", null);
        await store.markEvent(appended[3]!, "ignored", null, "not a trigger alert");
        expect((await store.unprocessedEvents(10)).map((e) => e.id)).toEqual([appended[0], appended[2], appended[4]]);

        const all = await store.listEvents({ limit: 10 });
        const started = all.find((e) => e.id === appended[1])!;
        expect([started.disposition, started.recoveryId, started.note]).toEqual(["started", "r-1", null]);
        const ignored = all.find((e) => e.id === appended[3])!;
        expect([ignored.disposition, ignored.recoveryId, ignored.note]).toEqual(["ignored", null, "not a trigger alert"]);
      });

      it("keeps the disposition of a marked event when the same alert is delivered again", async () => {
        const e = newEvent("compute-1");
        const [first] = await store.appendEvents([e]);
        expect(first!.requeued).toBe(false);
        await store.markEvent(first!.event.id, "attached", "r-7", "joined the open recovery");
        const [again] = await store.appendEvents([e]);
        expect(again!.duplicate).toBe(true);
        expect(again!.requeued).toBe(false);
        expect(again!.event.disposition).toBe("attached");
        expect(again!.event.recoveryId).toBe("r-7");
        expect(again!.event.deliveries).toBe(2);
        expect(await store.unprocessedEvents(10)).toEqual([]);
      });

      it("puts an event routing ignored back in the queue when it is delivered again, with the host and note intake gives it now", async () => {
        // Journaled while alerts.host_label was wrong: no host, ignored by routing.
        const e = { ...newEvent(null), note: 'alert has no "node" label' };
        const [first] = await store.appendEvents([e]);
        await store.markEvent(first!.event.id, "ignored", null, 'alert has no "node" label');
        expect(await store.unprocessedEvents(10)).toEqual([]);

        // The operator fixed the label; Alertmanager re-sends the same alert.
        const fixed = { ...e, host: "compute-1", note: null, receivedAt: "2026-01-01T00:10:00.000Z" };
        const [again, repeat] = await store.appendEvents([fixed, fixed]);
        expect([again!.requeued, again!.duplicate]).toEqual([true, false]);
        expect([repeat!.requeued, repeat!.duplicate]).toEqual([false, true]);
        expect(again!.event).toMatchObject({ id: first!.event.id, host: "compute-1", note: null, disposition: "unprocessed", deliveries: 2 });
        expect(repeat!.event.deliveries).toBe(3);

        const queued = await store.unprocessedEvents(10);
        expect(queued.map((q) => [q.id, q.host, q.note, q.deliveries, q.receivedAt, q.lastReceivedAt])).toEqual([
          [first!.event.id, "compute-1", null, 3, e.receivedAt, fixed.receivedAt],
        ]);
        expect((await store.listEvents({ host: "compute-1" })).map((q) => q.id)).toEqual([first!.event.id]);

        // Routed again; a later repeat is a plain repeat.
        await store.markEvent(first!.event.id, "started", "r-1", null);
        const [later] = await store.appendEvents([fixed]);
        expect([later!.requeued, later!.duplicate, later!.event.disposition]).toEqual([false, true, "started"]);
        expect(await store.unprocessedEvents(10)).toEqual([]);
      });

      it("moves a requeued event to the host intake names now in host listings", async () => {
        const e = newEvent("COMPUTE-1");
        const [first] = await store.appendEvents([e]);
        await store.markEvent(first!.event.id, "ignored", null, "unknown host");
        await store.appendEvents([{ ...e, host: "compute-1" }]);
        expect(await store.listEvents({ host: "COMPUTE-1" })).toEqual([]);
        expect((await store.listEvents({ host: "compute-1" })).map((q) => q.id)).toEqual([first!.event.id]);
      });

      it("takes an event marked unprocessed again back into the queue", async () => {
        const [first] = await store.appendEvents([newEvent("compute-1")]);
        await store.markEvent(first!.event.id, "ignored", null, "Nova could not be asked");
        expect(await store.unprocessedEvents(10)).toEqual([]);
        await store.markEvent(first!.event.id, "unprocessed", null, null);
        expect((await store.unprocessedEvents(10)).map((q) => q.id)).toEqual([first!.event.id]);
      });

      it("keeps deduplicating events journaled under the old key format (the sender's fingerprint), next to new-format keys", async () => {
        const fresh = newEvent("compute-1", { fingerprint: "ef778129324957a9" });
        const old = { ...fresh, key: "alertmanager|ef778129324957a9|firing|2026-01-01T00:00:00.000Z" };
        expect(fresh.key).not.toBe(old.key);
        const [a] = await store.appendEvents([old]);
        const [b] = await store.appendEvents([old]);
        expect([b!.duplicate, b!.event.id, b!.event.deliveries]).toEqual([true, a!.event.id, 2]);
        const [c] = await store.appendEvents([fresh]);
        expect(c!.duplicate).toBe(false);
        expect(c!.event.id).not.toBe(a!.event.id);
        expect((await store.listEvents({})).map((q) => q.key).sort()).toEqual([fresh.key, old.key].sort());
      });

      it("filters listed events by host and recovery, newest first, with a limit", async () => {
        const ids: number[] = [];
        for (const host of ["compute-1", "compute-2", "compute-1", null, "compute-1"]) {
          ids.push((await store.appendEvents([newEvent(host)]))[0]!.event.id);
        }
        await store.markEvent(ids[0]!, "started", "r-a", null);
        await store.markEvent(ids[2]!, "attached", "r-a", null);
        await store.markEvent(ids[1]!, "started", "r-b", null);

        expect((await store.listEvents({})).map((e) => e.id)).toEqual([...ids].reverse());
        expect((await store.listEvents({ host: "compute-1" })).map((e) => e.id)).toEqual([ids[4], ids[2], ids[0]]);
        expect((await store.listEvents({ host: "compute-1", limit: 2 })).map((e) => e.id)).toEqual([ids[4], ids[2]]);
        expect((await store.listEvents({ recoveryId: "r-a" })).map((e) => e.id)).toEqual([ids[2], ids[0]]);
        expect((await store.listEvents({ recoveryId: "r-a", host: "compute-2" })).map((e) => e.id)).toEqual([]);
        expect((await store.listEvents({ recoveryId: "r-b", host: "compute-2" })).map((e) => e.id)).toEqual([ids[1]]);
        expect(await store.listEvents({ host: "compute-9" })).toEqual([]);
        expect((await store.listEvents({ limit: 3 })).map((e) => e.id)).toEqual([ids[4], ids[3], ids[2]]);

        // A re-marked event moves from one recovery to the other.
        await store.markEvent(ids[0]!, "started", "r-b", null);
        expect((await store.listEvents({ recoveryId: "r-a" })).map((e) => e.id)).toEqual([ids[2]]);
        expect((await store.listEvents({ recoveryId: "r-b" })).map((e) => e.id)).toEqual([ids[1], ids[0]]);
      });

      it("lists at most 100 events when no limit is given", async () => {
        await store.appendEvents(Array.from({ length: 120 }, (_, i) => newEvent(`compute-${i}`)));
        expect(await store.listEvents({})).toHaveLength(100);
        expect(await store.listEvents({ limit: 120 })).toHaveLength(120);
      });
    });

    // ---- recoveries ------------------------------------------------------------------

    describe("recoveries", () => {
      it("creates a pending recovery with its first transition", async () => {
        const alerts = {
          fp1: { alertname: "ComputeNodeDown", status: "firing" as const, startsAt: "2026-01-01T00:00:00.000Z", labels: { host: "compute-1" } },
        };
        const r = await store.createRecovery(newRecovery("compute-1", { alerts, actor: "alertmanager", dryRun: true }));
        expect(r).toMatchObject({
          host: "compute-1",
          incidentKey: "compute-1|2026-01-01T00:00:00.000Z",
          state: "pending",
          trigger: "alert",
          dryRun: true,
          confirmedOff: false,
          approved: false,
          fenceState: "not-attempted",
          reason: "ComputeNodeDown fired",
          detectedAt: "2026-01-01T00:00:00.000Z",
          graceUntil: "2026-01-01T00:00:30.000Z",
          alerts,
        });
        expect(r.id).toMatch(/\S/);
        expect(r.approvedBy).toBeUndefined();
        expect(r.outcome).toBeUndefined();
        expect(Number.isNaN(Date.parse(r.createdAt))).toBe(false);
        expect(r.updatedAt).toBe(r.createdAt);
        expect(await store.getRecovery(r.id)).toEqual(r);
        const t = await store.transitions(r.id);
        expect(t).toEqual([{ recoveryId: r.id, seq: 1, from: null, to: "pending", at: r.createdAt, reason: "ComputeNodeDown fired", actor: "alertmanager" }]);
      });

      it("defaults alerts to {} and leaves the actor out when none is given", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        expect(r.alerts).toEqual({});
        const [t] = await store.transitions(r.id);
        expect(t!.actor).toBeUndefined();
      });

      it("creates a recovery already approved when an operator asked for it", async () => {
        const r = await store.createRecovery(newRecovery("compute-1", { trigger: "manual", approvedBy: "alice", actor: "alice" }));
        expect(r).toMatchObject({ approved: true, approvedBy: "alice", trigger: "manual" });
        expect(await store.getRecovery(r.id)).toEqual(r);
      });

      it("answers null for an unknown recovery and [] for its records", async () => {
        expect(await store.getRecovery("r-nope")).toBeNull();
        expect(await store.transitions("r-nope")).toEqual([]);
        expect(await store.decisions("r-nope")).toEqual([]);
        expect(await store.steps("r-nope")).toEqual([]);
        expect(await store.instances("r-nope")).toEqual([]);
        expect(await store.notifications("r-nope")).toEqual([]);
        expect(await store.getStep("r-nope", "fence")).toBeNull();
        expect(await recoveryDetail(store, "r-nope")).toBeNull();
      });

      it("allows one open recovery per host (HostBusyError), any number on other hosts", async () => {
        const a = await store.createRecovery(newRecovery("compute-1"));
        const err = await store.createRecovery(newRecovery("compute-1", { incidentKey: "other" })).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(HostBusyError);
        expect((err as HostBusyError).host).toBe("compute-1");
        expect((err as HostBusyError).openRecoveryId).toBe(a.id);
        const b = await store.createRecovery(newRecovery("compute-2"));
        expect(b.id).not.toBe(a.id);
        expect(await store.listRecoveries({ host: "compute-1" })).toHaveLength(1);
      });

      it("frees the host when its recovery reaches a terminal state", async () => {
        const a = await store.createRecovery(newRecovery("compute-1"));
        expect((await store.findOpenRecovery("compute-1"))!.id).toBe(a.id);
        await store.transition(a.id, "pending", "aborted", "alert resolved during grace", { outcome: "aborted" });
        expect(await store.findOpenRecovery("compute-1")).toBeNull();
        const b = await store.createRecovery(newRecovery("compute-1", { incidentKey: "second" }));
        expect((await store.findOpenRecovery("compute-1"))!.id).toBe(b.id);
        expect(await store.findOpenRecovery("compute-2")).toBeNull();
      });

      it("lets exactly one of two instances create a recovery for the same host at once", async () => {
        const other = await fx.open();
        try {
          for (let round = 0; round < 10; round++) {
            const host = `race-${round}`;
            const results = await Promise.allSettled([
              store.createRecovery(newRecovery(host)),
              other.createRecovery(newRecovery(host)),
              store.createRecovery(newRecovery(host)),
              other.createRecovery(newRecovery(host)),
            ]);
            const won = results.filter((r) => r.status === "fulfilled");
            const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
            expect(won).toHaveLength(1);
            expect(lost.every((r) => r.reason instanceof HostBusyError)).toBe(true);
            expect(await store.listRecoveries({ host })).toHaveLength(1);
          }
        } finally {
          await other.close();
        }
      });

      it("finds a recovery by host and incident, the newest when several share it", async () => {
        const first = await store.createRecovery(newRecovery("compute-1", { incidentKey: "inc-1" }));
        await store.transition(first.id, "pending", "failed", "fence failed");
        await tick();
        const second = await store.createRecovery(newRecovery("compute-1", { incidentKey: "inc-1" }));
        await store.createRecovery(newRecovery("compute-2", { incidentKey: "inc-2" }));
        expect((await store.findRecoveryByIncident("compute-1", "inc-1"))!.id).toBe(second.id);
        expect(await store.findRecoveryByIncident("compute-1", "inc-2")).toBeNull();
        expect(await store.findRecoveryByIncident("compute-2", "inc-1")).toBeNull();
        expect((await store.findRecoveryByIncident("compute-2", "inc-2"))!.host).toBe("compute-2");
      });

      it("lists recoveries newest first, filtered by host, state(s), open, since and limit", async () => {
        // compute-0 … compute-4 created in this order; then states are moved.
        const made = [];
        for (let i = 0; i < 5; i++) {
          made.push(await store.createRecovery(newRecovery(`compute-${i % 3}-${i}`, { incidentKey: `i${i}` })));
          await tick();
        }
        const extra = await store.transition(made[0]!.id, "pending", "completed", "done", { outcome: "completed" });
        await store.transition(made[1]!.id, "pending", "validating", "grace over");
        await store.transition(made[2]!.id, "pending", "failed", "fence failed", { outcome: "failed" });
        await store.transition(made[3]!.id, "pending", "blocked", "storm guard");
        await tick();
        const again = await store.createRecovery(newRecovery(made[0]!.host, { incidentKey: "again" }));
        const ids = (rs: { id: string }[]): string[] => rs.map((r) => r.id);

        expect(ids(await store.listRecoveries({}))).toEqual([again.id, ...ids(made).reverse()]);
        expect(ids(await store.listRecoveries({ host: made[0]!.host }))).toEqual([again.id, extra.id]);
        expect(ids(await store.listRecoveries({ state: "pending" }))).toEqual([again.id, made[4]!.id]);
        expect(ids(await store.listRecoveries({ state: ["failed", "completed"] }))).toEqual([made[2]!.id, made[0]!.id]);
        expect(ids(await store.listRecoveries({ state: [] }))).toEqual([]);
        expect(ids(await store.listRecoveries({ open: true }))).toEqual([again.id, made[4]!.id, made[3]!.id, made[1]!.id]);
        expect(ids(await store.listRecoveries({ open: false }))).toEqual([made[2]!.id, made[0]!.id]);
        expect(ids(await store.listRecoveries({ open: true, state: ["blocked", "completed"] }))).toEqual([made[3]!.id]);
        expect(ids(await store.listRecoveries({ since: made[3]!.createdAt }))).toEqual([again.id, made[4]!.id, made[3]!.id]);
        expect(ids(await store.listRecoveries({ since: made[3]!.createdAt, open: false }))).toEqual([]);
        expect(ids(await store.listRecoveries({ limit: 2 }))).toEqual([again.id, made[4]!.id]);
        expect(ids(await store.listRecoveries({ open: true, limit: 3 }))).toEqual([again.id, made[4]!.id, made[3]!.id]);
        expect(ids(await store.listRecoveries({ host: made[0]!.host, state: "completed" }))).toEqual([made[0]!.id]);
        expect(await store.listRecoveries({ host: "nowhere" })).toEqual([]);
      });
    });

    // ---- transitions -----------------------------------------------------------------

    describe("transition", () => {
      it("moves the state, records the reason, applies the patch and appends transitions 1..n", async () => {
        const r = await store.createRecovery(newRecovery("compute-1", { actor: "intake" }));
        await tick();
        const v = await store.transition(r.id, "pending", "validating", "grace period over");
        expect(v.state).toBe("validating");
        expect(v.reason).toBe("grace period over");
        expect(v.updatedAt >= r.updatedAt).toBe(true);
        expect(v.createdAt).toBe(r.createdAt);

        const f = await store.transition(r.id, "validating", "fencing", "gates passed", { approved: true, approvedBy: "alice", block: BLOCK }, "coordinator");
        expect(f).toMatchObject({ state: "fencing", approved: true, approvedBy: "alice", block: BLOCK });
        const i = await store.transition(r.id, "fencing", "isolating", "host off", { fenceState: "off", fence: CHAIN, block: null });
        expect(i).toMatchObject({ fenceState: "off", fence: CHAIN, approved: true });
        expect(i.block).toBeUndefined();
        const done = await store.transition(r.id, "isolating", "completed", "all done", { outcome: "completed" });
        expect(done.outcome).toBe("completed");
        expect(await store.getRecovery(r.id)).toEqual(done);

        const t = await store.transitions(r.id);
        expect(t.map((x) => [x.seq, x.from, x.to, x.reason])).toEqual([
          [1, null, "pending", "ComputeNodeDown fired"],
          [2, "pending", "validating", "grace period over"],
          [3, "validating", "fencing", "gates passed"],
          [4, "fencing", "isolating", "host off"],
          [5, "isolating", "completed", "all done"],
        ]);
        expect(t.map((x) => x.actor)).toEqual(["intake", undefined, "coordinator", undefined, undefined]);
        expect(t.every((x) => x.recoveryId === r.id && !Number.isNaN(Date.parse(x.at)))).toBe(true);
        expect(t[4]!.at).toBe(done.updatedAt);
      });

      it("refuses a stale `from` with StateConflictError and changes nothing", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        await store.transition(r.id, "pending", "validating", "grace over");
        const err = await store.transition(r.id, "pending", "aborted", "resolved", { outcome: "aborted" }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StateConflictError);
        expect((err as StateConflictError).recoveryId).toBe(r.id);
        expect((err as StateConflictError).expected).toBe("pending");
        expect((err as StateConflictError).actual).toBe("validating");
        const now = await store.getRecovery(r.id);
        expect(now!.state).toBe("validating");
        expect(now!.outcome).toBeUndefined();
        expect(await store.transitions(r.id)).toHaveLength(2);
      });

      it("refuses to move an unknown recovery", async () => {
        await expect(store.transition("r-missing", "pending", "validating", "x")).rejects.toBeInstanceOf(NotFoundError);
      });

      it("lets exactly one of many concurrent movers win, across two instances", async () => {
        const other = await fx.open();
        try {
          const r = await store.createRecovery(newRecovery("compute-1"));
          const movers = Array.from({ length: 10 }, (_, i) =>
            (i % 2 === 0 ? store : other).transition(r.id, "pending", i % 3 === 0 ? "aborted" : "validating", `mover ${i}`),
          );
          const results = await Promise.allSettled(movers);
          const won = results.filter((x) => x.status === "fulfilled");
          const lost = results.filter((x): x is PromiseRejectedResult => x.status === "rejected");
          expect(won).toHaveLength(1);
          expect(lost.every((x) => x.reason instanceof StateConflictError)).toBe(true);
          expect(await other.transitions(r.id)).toHaveLength(2);
        } finally {
          await other.close();
        }
      });
    });

    describe("updateRecovery", () => {
      it("patches fields other than the state without a transition", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        await tick();
        const alerts = { fp9: { alertname: "ComputeNodeDown", status: "resolved" as const, startsAt: "2026-01-01T00:00:00.000Z", endsAt: "2026-01-01T00:10:00.000Z", labels: {} } };
        const u = await store.updateRecovery(r.id, {
          dryRun: true,
          confirmedOff: true,
          approved: true,
          approvedBy: "bob",
          fenceState: "confirmed-off-by-operator",
          graceUntil: "2026-01-01T00:01:00.000Z",
          alerts,
          locksLeft: ["i-1", "i-2"],
        });
        expect(u).toMatchObject({
          state: "pending",
          reason: r.reason,
          dryRun: true,
          confirmedOff: true,
          approved: true,
          approvedBy: "bob",
          fenceState: "confirmed-off-by-operator",
          graceUntil: "2026-01-01T00:01:00.000Z",
          alerts,
          locksLeft: ["i-1", "i-2"],
        });
        expect(u.updatedAt > r.updatedAt).toBe(true);
        expect(await store.getRecovery(r.id)).toEqual(u);
        expect(await store.transitions(r.id)).toHaveLength(1);

        const v = await store.updateRecovery(r.id, { approved: false });
        expect(v).toMatchObject({ approved: false, approvedBy: "bob", dryRun: true, locksLeft: ["i-1", "i-2"] });
        // An empty list clears it.
        expect((await store.updateRecovery(r.id, { locksLeft: [] })).locksLeft).toBeUndefined();
      });

      it("refuses an unknown recovery with NotFoundError", async () => {
        await expect(store.updateRecovery("r-missing", { approved: true })).rejects.toBeInstanceOf(NotFoundError);
      });
    });

    // ---- journal records -------------------------------------------------------------

    describe("journal records", () => {
      it("keeps gate decisions in the order they were recorded", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        const ds: GateDecision[] = [
          { recoveryId: r.id, gate: "pause", result: "pass", reason: "not paused", at: "2026-01-01T00:00:31.000Z" },
          { recoveryId: r.id, gate: "storm", result: "block", reason: "3 hosts in 10 min", at: "2026-01-01T00:00:30.000Z", details: { hosts: ["a", "b", "c"], limit: 2 } },
          { recoveryId: r.id, gate: "nova", result: "undecided", reason: "API down", at: "2026-01-01T00:00:32.000Z" },
        ];
        for (const d of ds) await store.recordDecisions([d]);
        const other = await store.createRecovery(newRecovery("compute-2"));
        await store.recordDecisions([{ ...ds[0]!, recoveryId: other.id }]);
        expect(await store.decisions(r.id)).toEqual(ds);
        expect(await store.decisions(other.id)).toHaveLength(1);
      });

      it("writes the decisions of one evaluation together, in their order, between the ones recorded before and after; all or none", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        const at = "2026-01-01T00:00:00.000Z";
        const d = (gate: string): GateDecision => ({ recoveryId: r.id, gate, result: "pass", reason: "ok", at });
        // More than ten, so an order by text would put "g10" before "g2".
        const evaluation = Array.from({ length: 12 }, (_, i) => d(`g${i}`));
        await store.recordDecisions([d("before")]);
        await store.recordDecisions(evaluation);
        await store.recordDecisions([d("after-1"), d("after-2")]);
        expect((await store.decisions(r.id)).map((x) => x.gate)).toEqual(["before", ...evaluation.map((x) => x.gate), "after-1", "after-2"]);

        await expect(store.recordDecisions([{ ...d("lost"), recoveryId: "r-missing" }])).rejects.toThrow();
        const other = await store.createRecovery(newRecovery("compute-2"));
        await expect(store.recordDecisions([d("mixed"), { ...d("mixed"), recoveryId: other.id }])).rejects.toThrow(/one recovery/);
        expect((await store.decisions(r.id)).map((x) => x.gate)).not.toContain("mixed");
        expect(await store.decisions(other.id)).toEqual([]);
        await expect(store.recordDecisions([])).resolves.toBeUndefined();
      });

      it("keeps the order of decisions recorded concurrently by their commit", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        const ds = Array.from({ length: 20 }, (_, i): GateDecision => ({ recoveryId: r.id, gate: `g${i}`, result: "pass", reason: "ok", at: "2026-01-01T00:00:00.000Z" }));
        await Promise.all(ds.map((d) => store.recordDecisions([d])));
        const got = await store.decisions(r.id);
        expect(got).toHaveLength(20);
        expect(new Set(got.map((d) => d.gate)).size).toBe(20);
      });

      it("upserts steps by key and lists them by start time, then key", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        expect(await store.getStep(r.id, "fence/ipmi")).toBeNull();
        const started: StepRecord = { recoveryId: r.id, key: "fence/ipmi", state: "started", attempts: 1, startedAt: "2026-01-01T00:01:00.000Z" };
        await store.putStep(started);
        expect(await store.getStep(r.id, "fence/ipmi")).toEqual(started);
        const done: StepRecord = { ...started, state: "succeeded", attempts: 2, finishedAt: "2026-01-01T00:01:05.000Z", result: { power: "off", devices: [1, 2] } };
        await store.putStep(done);
        expect(await store.getStep(r.id, "fence/ipmi")).toEqual(done);

        const failed: StepRecord = { recoveryId: r.id, key: "a-isolate", state: "failed", attempts: 3, startedAt: "2026-01-01T00:02:00.000Z", finishedAt: "2026-01-01T00:02:09.000Z", error: "nova 503" };
        const sameStart: StepRecord = { recoveryId: r.id, key: "0-disable", state: "succeeded", attempts: 1, startedAt: "2026-01-01T00:02:00.000Z", result: null };
        await store.putStep(failed);
        await store.putStep(sameStart);
        expect(await store.steps(r.id)).toEqual([done, sameStart, failed]);

        // Back to started: the fields of the earlier outcome are gone.
        const retried: StepRecord = { recoveryId: r.id, key: "a-isolate", state: "started", attempts: 4, startedAt: "2026-01-01T00:03:00.000Z" };
        await store.putStep(retried);
        expect(await store.getStep(r.id, "a-isolate")).toEqual(retried);
        expect((await store.steps(r.id)).map((s) => s.key)).toEqual(["fence/ipmi", "0-disable", "a-isolate"]);
      });

      it("upserts instance results and lists them by priority (highest first), then name", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        const base = { recoveryId: r.id, projectId: "p1", originalStatus: "ACTIVE", attempts: 0 };
        const vm = (instanceId: string, name: string, priority: number, over: Partial<InstanceResult> = {}): InstanceResult => ({
          ...base,
          instanceId,
          name,
          priority,
          state: "pending",
          ...over,
        });
        await store.putInstance(vm("i-3", "web", 0));
        await store.putInstance(vm("i-1", "db", 10, { userId: "u1" }));
        await store.putInstance(vm("i-2", "app", 0));
        await store.putInstance(vm("i-4", "app", 0));
        await store.putInstance(vm("i-5", "cache", 5, { state: "unprotected", note: "not tagged" }));
        expect((await store.instances(r.id)).map((i) => i.instanceId)).toEqual(["i-1", "i-5", "i-2", "i-4", "i-3"]);

        const evacuated = vm("i-3", "web", 20, {
          state: "evacuated",
          targetHost: "compute-9",
          attempts: 2,
          startedAt: "2026-01-01T00:05:00.000Z",
          finishedAt: "2026-01-01T00:06:00.000Z",
        });
        await store.putInstance(evacuated);
        const list = await store.instances(r.id);
        expect(list.map((i) => i.instanceId)).toEqual(["i-3", "i-1", "i-5", "i-2", "i-4"]);
        expect(list[0]).toEqual(evacuated);
        expect(list[1]).toEqual(vm("i-1", "db", 10, { userId: "u1" }));
        expect(list[2]).toEqual(vm("i-5", "cache", 5, { state: "unprotected", note: "not tagged" }));

        // An upsert without an optional field clears it.
        await store.putInstance(vm("i-5", "cache", 5, { state: "failed", error: "no valid host" }));
        expect((await store.instances(r.id)).find((i) => i.instanceId === "i-5")).toEqual(vm("i-5", "cache", 5, { state: "failed", error: "no valid host" }));
        expect(await store.instances("r-other")).toEqual([]);
      });

      it("writes a host's instance list in one call (up to INSTANCES_PER_WRITE), upserting; refuses records of two recoveries, or of no recovery, writing nothing", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        const vm = (recoveryId: string, i: number, over: Partial<InstanceResult> = {}): InstanceResult => ({
          recoveryId,
          instanceId: `i-${String(i).padStart(3, "0")}`,
          name: `vm-${String(i).padStart(3, "0")}`,
          projectId: "p1",
          originalStatus: "ACTIVE",
          attempts: 0,
          priority: 0,
          state: "pending",
          ...over,
        });
        const list = Array.from({ length: INSTANCES_PER_WRITE }, (_, i) => vm(r.id, i));
        await store.putInstances(list);
        expect(await store.instances(r.id)).toEqual(list);
        await store.putInstances([vm(r.id, 0, { state: "evacuated", targetHost: "compute-9" })]);
        expect((await store.instances(r.id))[0]).toEqual(vm(r.id, 0, { state: "evacuated", targetHost: "compute-9" }));
        await store.putInstances([]);

        const other = await store.createRecovery(newRecovery("compute-2"));
        await expect(store.putInstances([vm(other.id, 1), vm(r.id, 1, { state: "failed" })])).rejects.toThrow(/one recovery/);
        await expect(store.putInstances([vm("r-none", 1)])).rejects.toThrow();
        expect(await store.instances(other.id)).toEqual([]);
        expect(await store.instances("r-none")).toEqual([]);
      });

      it("keeps an instance's latest evacuate call: sent, then settled, then replaced by the next attempt's", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        const rec: InstanceResult = {
          recoveryId: r.id,
          instanceId: "i-1",
          name: "db",
          projectId: "p1",
          originalStatus: "SHUTOFF",
          state: "evacuating",
          priority: 0,
          attempts: 1,
          startedAt: "2026-01-01T00:00:00.000Z",
        };
        const sent: EvacuateCall = { attempt: 1, sentAt: "2026-01-01T00:00:01.250Z", migrationsBefore: [] };
        await store.putInstance({ ...rec, evacuateCall: sent });
        expect(await store.instances(r.id)).toEqual([{ ...rec, evacuateCall: sent }]);

        const settled: EvacuateCall = { ...sent, migrationsBefore: [17, 4], settled: { at: "2026-01-01T00:00:04.000Z", by: "answer" } };
        await store.putInstance({ ...rec, evacuateCall: settled });
        expect((await store.instances(r.id))[0]!.evacuateCall).toEqual(settled);

        const next: EvacuateCall = { attempt: 2, sentAt: "2026-01-01T00:01:00.000Z", migrationsBefore: [4, 17, 18], settled: { at: "2026-01-01T00:01:30.000Z", by: "nova-records" } };
        await store.putInstance({ ...rec, attempts: 2, evacuateCall: next });
        expect(await store.instances(r.id)).toEqual([{ ...rec, attempts: 2, evacuateCall: next }]);
        // Another store instance on the same data reads the same call.
        const other = await fx.open();
        try {
          expect((await other.instances(r.id))[0]!.evacuateCall).toEqual(next);
        } finally {
          await other.close();
        }

        // An upsert without it clears it, as for every optional field.
        await store.putInstance(rec);
        expect(await store.instances(r.id)).toEqual([rec]);
      });

      it("upserts notifications in place and finds them by dedup key across recoveries", async () => {
        const r1 = await store.createRecovery(newRecovery("compute-1"));
        const r2 = await store.createRecovery(newRecovery("compute-2"));
        const n = (recoveryId: string, dedupKey: string, over: Partial<NotificationRecord> = {}): NotificationRecord => ({
          recoveryId,
          dedupKey,
          channel: "email",
          kind: "tenant",
          recipient: "ops@example.org",
          subject: "instances moved",
          state: "pending",
          attempts: 0,
          ...over,
        });
        await store.putNotification(n(r1.id, "tenant/p1/inc-1", { projectId: "p1" }));
        await store.putNotification(n(r1.id, "operators/inc-1", { kind: "operator" }));
        await store.putNotification(n(r2.id, "tenant/p1/inc-1", { projectId: "p1" }));
        const sent = n(r1.id, "tenant/p1/inc-1", { projectId: "p1", state: "sent", attempts: 1, sentAt: "2026-01-01T00:10:00.000Z" });
        await store.putNotification(sent);

        expect(await store.notifications(r1.id)).toEqual([sent, n(r1.id, "operators/inc-1", { kind: "operator" })]);
        expect(await store.notifications(r2.id)).toEqual([n(r2.id, "tenant/p1/inc-1", { projectId: "p1" })]);
        expect(await store.notificationsByKey("tenant/p1/inc-1")).toEqual([sent, n(r2.id, "tenant/p1/inc-1", { projectId: "p1" })]);
        expect(await store.notificationsByKey("operators/inc-1")).toHaveLength(1);
        expect(await store.notificationsByKey("nothing")).toEqual([]);

        const failed = n(r1.id, "operators/inc-1", { kind: "operator", state: "failed", attempts: 3, error: "550 mailbox unavailable" });
        await store.putNotification(failed);
        expect((await store.notifications(r1.id))[1]).toEqual(failed);
      });

      it("keeps what to send with a pending notification until it leaves pending: the delivery queue, across recoveries, soonest first", async () => {
        const r1 = await store.createRecovery(newRecovery("compute-1"));
        const r2 = await store.createRecovery(newRecovery("compute-2"));
        const n = (recoveryId: string, dedupKey: string, nextAttemptAt: string, over: Partial<NotificationRecord> = {}): NotificationRecord => ({
          recoveryId,
          dedupKey,
          channel: "email",
          kind: "operator-summary",
          recipient: "ops@example.org",
          subject: "s",
          state: "pending",
          attempts: 0,
          messageId: `<lifeboat.${dedupKey}@example.org>`,
          queuedAt: "2026-01-01T00:00:00.000Z",
          nextAttemptAt,
          ...over,
        });
        const body = (text: string): NotificationPayload => ({ type: "message", subject: "s", text, data: { host: "compute-1", n: 1 } });
        await store.putNotification(n(r1.id, "a", "2026-01-01T00:00:05.000Z"), body("first"));
        await store.putNotification(n(r2.id, "b", "2026-01-01T00:00:01.000Z"), body("second"));
        await store.putNotification(n(r2.id, "c", "2026-01-01T00:00:09.000Z"), { type: "plan", plan: "recovery-finished" });
        // Pending without a payload (nothing to send) is not in the queue.
        await store.putNotification(n(r1.id, "d", "2026-01-01T00:00:00.000Z"));
        expect((await store.pendingNotifications(10)).map((e) => [e.record.dedupKey, e.payload])).toEqual([
          ["b", body("second")],
          ["a", body("first")],
          ["c", { type: "plan", plan: "recovery-finished" }],
        ]);
        expect(await store.pendingNotifications(1)).toHaveLength(1);
        expect((await store.notifications(r1.id))[0]).toEqual(n(r1.id, "a", "2026-01-01T00:00:05.000Z"));

        // A try journaled without the payload keeps it; a record that leaves pending drops it.
        await store.putNotification(n(r1.id, "a", "2026-01-01T00:00:20.000Z", { attempts: 1, error: "451" }));
        expect((await store.pendingNotifications(10)).find((e) => e.record.dedupKey === "a")).toEqual({ record: n(r1.id, "a", "2026-01-01T00:00:20.000Z", { attempts: 1, error: "451" }), payload: body("first") });
        const { nextAttemptAt: _n, ...sent } = n(r1.id, "a", "", { attempts: 2, state: "sent", sentAt: "2026-01-01T00:00:21.000Z" });
        await store.putNotification(sent);
        await store.putNotification(n(r2.id, "c", "", { state: "done", subject: "planned 3 message(s)" }));
        expect((await store.pendingNotifications(10)).map((e) => e.record.dedupKey)).toEqual(["b"]);
        expect((await store.notifications(r1.id))[0]).toEqual(sent);
        // Back to pending (never done by lifeboat): without a payload it is not queued again.
        await store.putNotification(n(r1.id, "a", "2026-01-01T00:00:30.000Z"));
        expect((await store.pendingNotifications(10)).map((e) => e.record.dedupKey)).toEqual(["b"]);
      });

      it("refuses journal records of a recovery that does not exist", async () => {
        const at = "2026-01-01T00:00:00.000Z";
        await expect(store.recordDecisions([{ recoveryId: "r-missing", gate: "g", result: "pass", reason: "x", at }])).rejects.toThrow();
        await expect(store.putStep({ recoveryId: "r-missing", key: "k", state: "started", attempts: 1, startedAt: at })).rejects.toThrow();
        await expect(
          store.putInstance({ recoveryId: "r-missing", instanceId: "i", name: "n", projectId: "p", originalStatus: "ACTIVE", state: "pending", priority: 0, attempts: 0 }),
        ).rejects.toThrow();
        await expect(
          store.putNotification({ recoveryId: "r-missing", dedupKey: "d", channel: "email", kind: "k", recipient: "r", subject: "s", state: "pending", attempts: 0 }),
        ).rejects.toThrow();
      });

      it("assembles the detail view of a recovery from its journal", async () => {
        const r = await store.createRecovery(newRecovery("compute-1"));
        await store.transition(r.id, "pending", "validating", "grace over");
        await store.recordDecisions([{ recoveryId: r.id, gate: "pause", result: "pass", reason: "ok", at: r.createdAt }]);
        await store.putStep({ recoveryId: r.id, key: "k", state: "started", attempts: 1, startedAt: r.createdAt });
        const d = await recoveryDetail(store, r.id);
        expect(d).toMatchObject({ id: r.id, state: "validating" });
        expect(d!.timeline).toHaveLength(2);
        expect(d!.decisions).toHaveLength(1);
        expect(d!.steps).toHaveLength(1);
        expect(d!.instances).toEqual([]);
        expect(d!.notifications).toEqual([]);
      });
    });

    // ---- settings, ping, durability --------------------------------------------------

    describe("host states", () => {
      const hold = { host: "compute-1", fenced: true, recoveryId: "r-1", by: "bmc-1", at: "2026-03-01T10:00:00.000Z" };

      it("creates, reads and lists a host's record; a write must name the version it read", async () => {
        expect(await store.getHostState("compute-1")).toBeNull();
        const first = await store.putHostState(hold, 0);
        expect(first).toEqual({ ...hold, version: 1 });
        expect(await store.getHostState("compute-1")).toEqual(first);
        const lifted = await store.putHostState({ ...hold, fenced: false, recoveryId: "r-2", by: "ops", note: "back in service" }, 1);
        expect(lifted.version).toBe(2);
        await store.putHostState({ ...hold, host: "a/b" }, 0);
        expect((await store.listHostStates()).map((h) => [h.host, h.fenced, h.version])).toEqual([
          ["a/b", true, 1],
          ["compute-1", false, 2],
        ]);
      });

      it("refuses a write based on an old read (compare-and-swap), and a second create", async () => {
        await store.putHostState(hold, 0);
        await expect(store.putHostState({ ...hold, fenced: false }, 0)).rejects.toBeInstanceOf(HostStateConflictError);
        await store.putHostState({ ...hold, by: "ops" }, 1);
        const err = await store.putHostState({ ...hold, fenced: false }, 1).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(HostStateConflictError);
        expect(err).toMatchObject({ host: "compute-1", expected: 1, actual: 2 });
        expect(await store.getHostState("compute-1")).toMatchObject({ fenced: true, by: "ops", version: 2 });
      });

      it("two writers that read the same version: exactly one wins", async () => {
        await store.putHostState(hold, 0);
        const results = await Promise.allSettled([store.putHostState({ ...hold, by: "a" }, 1), store.putHostState({ ...hold, by: "b" }, 1)]);
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        const reasons: unknown[] = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
        expect(reasons).toEqual([expect.any(HostStateConflictError)]);
        expect((await store.getHostState("compute-1"))?.version).toBe(2);
      });
    });

    describe("settings and health", () => {
      it("stores JSON settings, null when absent, last write wins", async () => {
        expect(await store.getSetting("pause")).toBeNull();
        await store.putSetting("pause", { paused: true, by: "alice", hosts: ["a/b", "c"] });
        expect(await store.getSetting("pause")).toEqual({ paused: true, by: "alice", hosts: ["a/b", "c"] });
        await store.putSetting("pause", false);
        expect(await store.getSetting<boolean>("pause")).toBe(false);
        await store.putSetting("storm/zone-a", { tripped: true });
        await store.putSetting("count", 3);
        expect(await store.getSetting("storm/zone-a")).toEqual({ tripped: true });
        expect(await store.getSetting("count")).toBe(3);
        expect(await store.getSetting("host")).toBeNull();
      });

      it("answers ping while writable, and refuses once closed", async () => {
        await expect(store.ping()).resolves.toBeUndefined();
        await store.close();
        await expect(store.ping()).rejects.toThrow();
      });

      it("keeps everything across close and reopen", async () => {
        const [ev] = await store.appendEvents([newEvent("compute-1")]);
        await store.markEvent(ev!.event.id, "started", null, "n");
        const r = await store.createRecovery(newRecovery("compute-1", { actor: "x" }));
        await store.transition(r.id, "pending", "validating", "grace over", { block: BLOCK });
        await store.recordDecisions([{ recoveryId: r.id, gate: "pause", result: "pass", reason: "ok", at: r.createdAt }]);
        await store.putStep({ recoveryId: r.id, key: "fence", state: "succeeded", attempts: 1, startedAt: r.createdAt, finishedAt: r.createdAt, result: { off: true } });
        await store.putInstance({ recoveryId: r.id, instanceId: "i-1", name: "vm", projectId: "p", originalStatus: "ACTIVE", state: "evacuated", priority: 1, attempts: 1, targetHost: "c-2" });
        await store.putNotification({ recoveryId: r.id, dedupKey: "d", channel: "email", kind: "tenant", recipient: "t@example.org", subject: "s", state: "sent", attempts: 1 });
        await store.putSetting("pause", { paused: true });
        const [pending] = await store.appendEvents([newEvent("compute-2")]);
        const before = await recoveryDetail(store, r.id);
        const eventsBefore = await store.listEvents({});
        await store.close();

        const reopened = await fx.open();
        try {
          expect(await recoveryDetail(reopened, r.id)).toEqual(before);
          expect(await reopened.listEvents({})).toEqual(eventsBefore);
          expect((await reopened.unprocessedEvents(10)).map((e) => e.id)).toEqual([pending!.event.id]);
          expect(await reopened.getSetting("pause")).toEqual({ paused: true });
          expect((await reopened.findOpenRecovery("compute-1"))!.id).toBe(r.id);
          await expect(reopened.createRecovery(newRecovery("compute-1"))).rejects.toBeInstanceOf(HostBusyError);
          // Ids keep growing after a reopen.
          const [next] = await reopened.appendEvents([newEvent("compute-3")]);
          expect(next!.event.id).toBeGreaterThan(pending!.event.id);
        } finally {
          await reopened.close();
        }
      });
    });
  });
}
