import { randomBytes } from "node:crypto";
import type { Etcd3 } from "etcd3";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createEtcdClient } from "../../src/etcd/client.js";
import { EtcdStore } from "../../src/store/etcd.js";
import type { Store } from "../../src/domain/journal.js";
import type { Recovery } from "../../src/domain/model.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { describeStoreConformance, newEvent, newRecovery, pendingInstance } from "./conformance.js";

let etcd: EtcdServer;

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await etcd?.stop();
});

// Each test gets its own prefix on one real etcd; `open()` is another instance (own client)
// on the same prefix, like a second lifeboat process.
describeStoreConformance("etcd", async () => {
  const prefix = `/lifeboat-test-${randomBytes(6).toString("hex")}/`;
  const opened: Store[] = [];
  const open = async (): Promise<Store> => {
    const s = new EtcdStore({ connection: { endpoints: [etcd.endpoint] }, prefix });
    await s.init();
    opened.push(s);
    return s;
  };
  const store = await open();
  return {
    store,
    open,
    cleanup: async () => {
      for (const s of opened) await s.close();
    },
  };
});

describe("EtcdStore on etcd", () => {
  const opened: EtcdStore[] = [];
  const client = (): Etcd3 => {
    const c = createEtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 2_000 });
    clients.push(c);
    return c;
  };
  const clients: Etcd3[] = [];
  const newStore = async (prefix: string, c?: Etcd3, repeatCountIntervalMs?: number): Promise<EtcdStore> => {
    const s = new EtcdStore({
      ...(c ? { client: c } : { connection: { endpoints: [etcd.endpoint], requestTimeoutMs: 2_000 } }),
      requestTimeoutMs: 2_000,
      prefix,
      ...(repeatCountIntervalMs !== undefined ? { repeatCountIntervalMs } : {}),
    });
    await s.init();
    opened.push(s);
    return s;
  };
  const uniquePrefix = (): string => `/lifeboat-test-${randomBytes(6).toString("hex")}`;
  /**
   * Two instances on one prefix; `a`'s transactions are noted in `calls` ("read"/"write")
   * until `uncount()`. `repeatCountIntervalMs`: a's interval for re-sends' counts.
   */
  const countedPair = async (repeatCountIntervalMs?: number): Promise<{ a: EtcdStore; b: EtcdStore; calls: string[]; uncount: () => void }> => {
    const p = uniquePrefix();
    const c = client();
    const a = await newStore(p, c, repeatCountIntervalMs);
    const b = await newStore(p);
    const kv = c.kv;
    const txn = kv.txn.bind(kv);
    const calls: string[] = [];
    kv.txn = (req, opts) => {
      calls.push(req.success?.some((op) => op.request_put || op.request_delete_range) ? "write" : "read");
      return txn(req, opts);
    };
    return { a, b, calls, uncount: () => (kv.txn = txn) };
  };

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    for (const c of clients.splice(0)) c.close();
  });

  it("keeps everything under its prefix: two prefixes are two separate journals", async () => {
    const p = uniquePrefix();
    const a = await newStore(p);
    const b = await newStore(`${p}-other/`);
    expect(a.prefix).toBe(`${p}/`);
    await a.createRecovery(newRecovery("compute-1"));
    await a.appendEvents([newEvent("compute-1")]);
    await a.putSetting("pause", true);
    expect(await b.listRecoveries({})).toEqual([]);
    expect(await b.listEvents({})).toEqual([]);
    expect(await b.getSetting("pause")).toBeNull();
    await expect(b.createRecovery(newRecovery("compute-1"))).resolves.toMatchObject({ host: "compute-1" });

    const c = client();
    const keys = await c.getAll().prefix(`${p}/`).keys();
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith(`${p}/`))).toBe(true);
    expect(keys).toContain(`${p}/open/compute-1`);
  });

  it("refuses a prefix written by a newer layout", async () => {
    const p = `${uniquePrefix()}/`;
    await client().put(`${p}meta/schema`).value("99");
    const s = new EtcdStore({ connection: { endpoints: [etcd.endpoint] }, prefix: p });
    await expect(s.init()).rejects.toThrow(/layout version 99/);
    await s.close();
  });

  it("does not close a client it was given", async () => {
    const c = client();
    const s = await newStore(uniquePrefix(), c);
    await s.close();
    await expect(c.get("anything").string()).resolves.toBeNull();
  });

  it("recognises its own write when the client re-sends a transaction whose answer was lost", async () => {
    // etcd3 retries a call that failed with e.g. DEADLINE_EXCEEDED; if the first try had in
    // fact committed, the second one fails its compares. Simulate exactly that: every txn
    // that writes is sent twice and the caller sees the second answer.
    const c = client();
    const s = await newStore(uniquePrefix(), c);
    const kv = c.kv;
    const txn = kv.txn.bind(kv);
    kv.txn = async (req, opts) => {
      if (!req.success?.some((op) => op.request_put || op.request_delete_range)) return txn(req, opts);
      await txn(req, opts);
      return txn(req, opts);
    };

    const r = await s.createRecovery(newRecovery("compute-1"));
    expect(r.state).toBe("pending");
    const v = await s.transition(r.id, "pending", "validating", "grace over");
    expect(v.state).toBe("validating");
    const u = await s.updateRecovery(r.id, { approved: true });
    expect(u.approved).toBe(true);
    const e = newEvent("compute-1");
    const [first] = await s.appendEvents([e]);
    expect(first!.duplicate).toBe(false);
    const [second] = await s.appendEvents([e, e]).then((x) => x.slice(1));
    expect(second!.event.deliveries).toBe(3);

    kv.txn = txn;
    expect((await s.transitions(r.id)).map((t) => t.to)).toEqual(["pending", "validating"]);
    expect((await s.listEvents({}))[0]!.deliveries).toBe(3);
    expect(await s.listRecoveries({})).toHaveLength(1);
  });

  it("a repeat of an event this process appended or marked last is one compare-and-swap with no reads; a write by anyone since is noticed and counted right", async () => {
    const { a, b, calls, uncount } = await countedPair();
    const e = newEvent("compute-1");
    const [first] = await a.appendEvents([e]);
    calls.length = 0;
    const [second] = await a.appendEvents([e]);
    expect(calls).toEqual(["write"]);
    expect(second).toMatchObject({ duplicate: true, event: { id: first!.event.id, deliveries: 2 } });

    // The other instance's delivery since: the compare fails, the reads decide.
    await b.appendEvents([e]);
    calls.length = 0;
    const [fourth] = await a.appendEvents([e]);
    expect(calls.filter((x) => x === "write")).toHaveLength(2);
    expect(calls).toContain("read");
    expect(fourth!.event.deliveries).toBe(4);

    // Routing ignored it since (a write of this instance's, outside appends): the repeat puts
    // it back in the queue, still from the record as the mark wrote it (no reads).
    await a.markEvent(first!.event.id, "ignored", null, "not a trigger");
    calls.length = 0;
    const [fifth] = await a.appendEvents([e]);
    expect(calls).toEqual(["write"]);
    expect(fifth).toMatchObject({ requeued: true, duplicate: false, event: { deliveries: 5, disposition: "unprocessed" } });

    // A mark by the other instance is someone else's write: noticed by the compare, as above.
    await b.markEvent(first!.event.id, "ignored", null, "not a trigger");
    calls.length = 0;
    const [sixth] = await a.appendEvents([e]);
    expect(calls).toContain("read");
    expect(sixth).toMatchObject({ requeued: true, event: { deliveries: 6, disposition: "unprocessed" } });
    uncount();
    expect((await b.listEvents({}))[0]).toMatchObject({ deliveries: 6, disposition: "unprocessed" });
  });

  it("a re-send of an event routed for good is answered without a transaction; its count reaches the journal within the interval, and at close", async () => {
    const { a, b, calls, uncount } = await countedPair(300);
    const e = newEvent("compute-1");
    const other = newEvent("compute-2");
    const [first] = await a.appendEvents([e]);
    // Not routed yet: a re-send is written before it is answered, as a new alert is.
    calls.length = 0;
    await a.appendEvents([e]);
    expect(calls).toEqual(["write"]);

    await a.markEvent(first!.event.id, "started", null, "recovery started");
    calls.length = 0;
    const [third] = await a.appendEvents([e]);
    const [fourth, fresh] = await a.appendEvents([e, other]);
    // The new alert of the same delivery is written (its index read first); the re-sends are not (yet).
    expect(calls).toEqual(["read", "write"]);
    expect(third).toMatchObject({ duplicate: true, requeued: false, event: { id: first!.event.id, deliveries: 3, disposition: "started" } });
    expect(fourth).toMatchObject({ duplicate: true, event: { deliveries: 4 } });
    expect(fresh).toMatchObject({ duplicate: false, event: { host: "compute-2", deliveries: 1 } });
    const stored = async (): Promise<number | undefined> => (await b.listEvents({ host: "compute-1" }))[0]?.deliveries;
    expect(await stored()).toBe(2);

    // Within the interval: both counted in one write, the last re-send's time with them.
    await vi.waitFor(async () => expect(await stored()).toBe(4), { timeout: 5_000, interval: 50 });
    expect(calls.filter((x) => x === "write")).toHaveLength(2);
    expect((await b.listEvents({ host: "compute-1" }))[0]).toMatchObject({ disposition: "started", lastReceivedAt: fourth!.event.lastReceivedAt });

    // The other instance's re-send meanwhile is counted too: it finds the event routed for
    // good when it reads it and counts it later in turn; each instance's count adds to the
    // journal's.
    await b.appendEvents([e]);
    const [sixth] = await a.appendEvents([e]);
    expect(sixth!.event.deliveries).toBe(5); // as this instance knows it; the journal's count is right once written
    uncount();
    await a.close();
    // b's within its own interval (the default, 2 s).
    await vi.waitFor(async () => expect(await stored()).toBe(6), { timeout: 5_000, interval: 50 });
  });

  it("a re-send reaching the instance that did not route it is counted later once the journal shows it routed for good: one transaction if that instance had appended it, two reads if not", async () => {
    const { a, b, calls, uncount } = await countedPair(300);
    const e = newEvent("compute-1");
    const other = newEvent("compute-2");
    // Both instances take the delivery (one webhook_config each); b routes it.
    const [first] = await b.appendEvents([e]);
    await a.appendEvents([e]);
    await b.markEvent(first!.event.id, "started", null, "recovery started");
    // a's record of it is b's mark behind: its compare-and-swap fails, and the same
    // transaction reads the record as it is now.
    calls.length = 0;
    const [third] = await a.appendEvents([e]);
    expect(calls).toEqual(["write"]);
    expect(third).toMatchObject({ duplicate: true, requeued: false, event: { id: first!.event.id, deliveries: 3, disposition: "started" } });
    calls.length = 0;
    const [fourth] = await a.appendEvents([e]);
    expect(calls).toEqual([]);
    expect(fourth!.event.deliveries).toBe(4);

    // An event a never saw, routed by b: its index and its record are read, nothing written.
    const [o1] = await b.appendEvents([other]);
    await b.markEvent(o1!.event.id, "started", null, "recovery started");
    calls.length = 0;
    const [o2] = await a.appendEvents([other]);
    expect(calls).toEqual(["read", "read"]);
    expect(o2).toMatchObject({ duplicate: true, event: { id: o1!.event.id, deliveries: 2, disposition: "started" } });

    // The counts reach the journal within a's interval.
    const stored = async (host: string): Promise<number | undefined> => (await b.listEvents({ host }))[0]?.deliveries;
    await vi.waitFor(
      async () => {
        expect(await stored("compute-1")).toBe(4);
        expect(await stored("compute-2")).toBe(2);
      },
      { timeout: 5_000, interval: 50 },
    );
    uncount();
  });

  it("sends an append at the end of its own task, not the turn's; appends made while it is in flight share the next transaction", async () => {
    const c = client();
    const s = await newStore(uniquePrefix(), c);
    const kv = c.kv;
    const txn = kv.txn.bind(kv);
    const order: string[] = [];
    let writes = 0;
    let later: Promise<unknown>[] = [];
    kv.txn = (req, opts) => {
      order.push("sent");
      const sent = txn(req, opts);
      if (req.success?.some((op) => op.request_put) && ++writes === 1) {
        // Made while the first write is in flight: one transaction for all five after it.
        later = ["compute-3", "compute-4", "compute-5", "compute-6", "compute-7"].map((h) => s.appendEvents([newEvent(h)]));
      }
      return sent;
    };
    // The rest of this turn: I/O callbacks queued before the delivery (Nova's answers in a storm).
    setImmediate(() => order.push("turn's end"));
    const first = s.appendEvents([newEvent("compute-1")]);
    const sameTask = s.appendEvents([newEvent("compute-2")]);
    await Promise.all([first, sameTask]);
    await Promise.all(later);
    expect(order[0]).toBe("sent");
    expect(later).toHaveLength(5);
    expect(writes).toBe(2);
    kv.txn = txn;
    expect((await s.listEvents({ limit: 10 })).map((e) => e.host).sort()).toEqual(["compute-1", "compute-2", "compute-3", "compute-4", "compute-5", "compute-6", "compute-7"]);
  });

  it("puts instance records made together in one transaction: the latest of an instance wins, and a missing recovery fails only its own", async () => {
    const c = client();
    const s = await newStore(uniquePrefix(), c);
    const kv = c.kv;
    const txn = kv.txn.bind(kv);
    let writes = 0;
    kv.txn = (req, opts) => {
      if (req.success?.some((op) => op.request_put)) writes++;
      return txn(req, opts);
    };
    const a = await s.createRecovery(newRecovery("compute-1"));
    const b = await s.createRecovery(newRecovery("compute-2"));
    writes = 0;
    // Sent at the end of the task that put them, not after the rest of the turn (an attempt's
    // record holds its evacuate back until it is written).
    let atTurnEnd = -1;
    setImmediate(() => (atTurnEnd = writes));
    await Promise.all([
      s.putInstance(pendingInstance(a.id, "i-1")),
      s.putInstance(pendingInstance(a.id, "i-2")),
      s.putInstance(pendingInstance(b.id, "i-3")),
      s.putInstance(pendingInstance(a.id, "i-1", { state: "evacuated", targetHost: "compute-9" })),
    ]);
    expect(writes).toBe(1);
    expect(atTurnEnd).toBe(1);
    expect((await s.instances(a.id)).map((i) => [i.instanceId, i.state])).toEqual([
      ["i-1", "evacuated"],
      ["i-2", "pending"],
    ]);
    expect((await s.instances(b.id)).map((i) => i.instanceId)).toEqual(["i-3"]);

    // One recovery of the batch is gone: its record fails, the other's is written.
    const [kept, lost] = await Promise.allSettled([s.putInstance(pendingInstance(a.id, "i-4")), s.putInstance(pendingInstance("no-such-recovery", "i-5"))]);
    expect(kept.status).toBe("fulfilled");
    expect(lost.status).toBe("rejected");
    expect(lost.status === "rejected" ? String(lost.reason) : "").toMatch(/no-such-recovery not found/);
    expect((await s.instances(a.id)).map((i) => i.instanceId)).toEqual(["i-1", "i-2", "i-4"]);
    kv.txn = txn;
  });

  it("updates of recoveries made together are one read and one compare-and-swap; one changed meanwhile gets its update over the change; a missing one fails alone", async () => {
    const p = uniquePrefix();
    const c = client();
    const a = await newStore(p, c);
    const b = await newStore(p);
    const rs = await Promise.all(["compute-1", "compute-2", "compute-3"].map((h) => a.createRecovery(newRecovery(h))));
    const kv = c.kv;
    const txn = kv.txn.bind(kv);
    const calls: string[] = [];
    let meddle: (() => Promise<unknown>) | null = null;
    kv.txn = async (req, opts) => {
      const write = req.success?.some((op) => op.request_put) ?? false;
      calls.push(write ? "write" : "read");
      const res = await txn(req, opts);
      // Another instance changes a record between the batch's read and its write.
      if (!write && meddle) {
        const m = meddle;
        meddle = null;
        await m();
      }
      return res;
    };

    const approve = (id: string): Promise<Recovery> => a.updateRecovery(id, { approved: true, approvedBy: "ops@bastion" });
    const together = await Promise.all(rs.map((r) => approve(r.id)));
    expect(calls).toEqual(["read", "write"]);
    expect(together.map((r) => [r.id, r.approved, r.approvedBy])).toEqual(rs.map((r) => [r.id, true, "ops@bastion"]));
    expect((await b.getRecovery(rs[1]!.id))!.approvedBy).toBe("ops@bastion");

    calls.length = 0;
    meddle = () => b.transition(rs[0]!.id, "pending", "validating", "moved by the other instance");
    const [moved, missing, other] = await Promise.allSettled([
      a.updateRecovery(rs[0]!.id, { dryRun: true }),
      a.updateRecovery("r-no-such-recovery", { dryRun: true }),
      a.updateRecovery(rs[2]!.id, { dryRun: true }),
    ]);
    expect(calls.slice(0, 2)).toEqual(["read", "write"]);
    expect(moved).toMatchObject({ status: "fulfilled", value: { state: "validating", dryRun: true, approved: true } });
    expect(missing.status === "rejected" ? String(missing.reason) : "").toMatch(/r-no-such-recovery not found/);
    expect(other).toMatchObject({ status: "fulfilled", value: { state: "pending", dryRun: true } });
    expect(await b.getRecovery(rs[0]!.id)).toMatchObject({ state: "validating", dryRun: true, approved: true });
    kv.txn = txn;
  });

  it("lists recoveries by open states through the open index: no ended recovery of the journal's history is read", async () => {
    const c = client();
    const s = await newStore(uniquePrefix(), c);
    const ended: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await s.createRecovery(newRecovery(`compute-old-${i}`));
      await s.transition(r.id, "pending", "completed", "done");
      ended.push(r.id);
    }
    const blocked = await s.createRecovery(newRecovery("compute-1"));
    await s.transition(blocked.id, "pending", "blocked", "held by the storm guard");
    const evacuating = await s.createRecovery(newRecovery("compute-2"));
    await s.transition(evacuating.id, "pending", "evacuating", "evacuating");

    const kv = c.kv;
    const txn = kv.txn.bind(kv);
    const read: string[] = [];
    kv.txn = async (req, opts) => {
      const res = await txn(req, opts);
      for (const r of res.responses) for (const x of r.response_range?.kvs ?? []) read.push(x.key.toString());
      return res;
    };
    expect((await s.listRecoveries({ state: "blocked", limit: 100_000 })).map((r) => r.id)).toEqual([blocked.id]);
    expect((await s.listRecoveries({ state: ["blocked", "evacuating"] })).map((r) => r.id)).toEqual([evacuating.id, blocked.id]);
    expect(read.filter((k) => ended.some((id) => k.endsWith(`rec/${id}`)))).toEqual([]);
    // A terminal state still pages through the history.
    expect((await s.listRecoveries({ state: "completed" })).map((r) => r.id)).toEqual([...ended].reverse());
    kv.txn = txn;
  });

  it("fails every call within its deadline while etcd does not answer, and works again as soon as etcd answers", async () => {
    const s = await newStore(uniquePrefix(), client());
    await s.ping();
    const r = await s.createRecovery(newRecovery("compute-1"));
    etcd.pause();
    try {
      const started = Date.now();
      // A burst of calls while etcd is stalled (a webhook's appends, a runner's reads and writes).
      const calls = await Promise.allSettled([s.ping(), ...Array.from({ length: 20 }, (_, i) => (i % 2 ? s.getRecovery(r.id) : s.appendEvents([newEvent(`compute-${i}`)])))]);
      expect(calls.every((c) => c.status === "rejected")).toBe(true);
      expect(String((calls[0] as PromiseRejectedResult).reason)).toMatch(/no answer from etcd within 2000 ms/);
      // The 2 s deadline bounds the whole call: no retry of a call etcd did not answer.
      expect(Date.now() - started).toBeLessThan(2_000 + 1_500);
    } finally {
      etcd.resume();
    }
    // No breaker holds the calls back once etcd answers again.
    const back = Date.now();
    await vi.waitFor(() => s.ping(), { timeout: 2_000, interval: 100 });
    expect(await s.getRecovery(r.id)).toMatchObject({ id: r.id });
    expect(Date.now() - back).toBeLessThan(2_000);
  });
});
