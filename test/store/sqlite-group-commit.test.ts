import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite.js";
import { HostBusyError, StateConflictError } from "../../src/domain/journal.js";
import { newEvent, newRecovery } from "./conformance.js";

let dir: string | undefined;
const opened: SqliteStore[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function open(path: string): Promise<SqliteStore> {
  const s = new SqliteStore(path);
  await s.init();
  opened.push(s);
  return s;
}

describe("sqlite store: group commit of every write", () => {
  it("writes issued together commit together, and one that fails fails alone", async () => {
    dir = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-gc-"));
    const path = join(dir, "lifeboat.db");
    const store = await open(path);
    const first = await store.createRecovery(newRecovery("compute-9"));

    // All issued in one event-loop turn: one transaction, each write in its own savepoint.
    const results = await Promise.allSettled([
      store.createRecovery(newRecovery("compute-1")),
      store.createRecovery(newRecovery("compute-1")), // busy: the first one of this batch is open
      store.transition(first.id, "validating", "fencing", "wrong from-state"), // conflict: it is pending
      store.appendEvents([newEvent("compute-1")]),
      store.putSetting("pause", { paused: true }),
      store.transition(first.id, "pending", "validating", "grace over"),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled", "fulfilled", "fulfilled"]);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(HostBusyError);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(StateConflictError);

    // What was acknowledged is in the file: a second connection sees exactly that.
    const again = await open(path);
    expect((await again.listRecoveries({ host: "compute-1" })).length).toBe(1);
    expect((await again.getRecovery(first.id))?.state).toBe("validating");
    expect(await again.getSetting("pause")).toEqual({ paused: true });
    expect((await again.unprocessedEvents(10)).map((e) => e.host)).toEqual(["compute-1"]);
  });

  it("reads see a write only once it is committed", async () => {
    dir = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-gc-"));
    const store = await open(join(dir, "lifeboat.db"));
    const pending = store.putSetting("pause", { paused: true });
    expect(await store.getSetting("pause")).toBeNull();
    await pending;
    expect(await store.getSetting("pause")).toEqual({ paused: true });
  });

  it("a webhook delivery commits at the end of its own task, not after the turn's other callbacks; a later delivery of the turn shares the turn's commit", async () => {
    dir = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-gc-"));
    const path = join(dir, "lifeboat.db");
    const store = await open(path);
    const order: string[] = [];
    // The rest of the turn: while evacuations run, hundreds of Nova answers handled before the
    // turn's commit (which runs after every callback already queued).
    setImmediate(() => order.push("rest of the turn"));
    // A recovery's write queued earlier in the turn commits with the delivery, in order.
    const step = store.putSetting("step", 1).then(() => order.push("earlier write"));
    let second: Promise<unknown> | undefined;
    const first = store.appendEvents([newEvent("compute-1")]).then(async () => {
      order.push("delivery 1");
      // What Alertmanager's 202 promises: the events are on disk, a second connection reads them.
      const other = new SqliteStore(path);
      await other.init();
      expect((await other.unprocessedEvents(10)).map((e) => e.host)).toEqual(["compute-1"]);
      await other.close();
      second = store.appendEvents([newEvent("compute-2")]).then(() => order.push("delivery 2"));
    });
    await Promise.all([step, first]);
    await second;
    expect(order).toEqual(["earlier write", "delivery 1", "rest of the turn", "delivery 2"]);
    expect((await store.unprocessedEvents(10)).map((e) => e.host)).toEqual(["compute-1", "compute-2"]);
  });

  it("close() commits the writes still queued; later writes are refused", async () => {
    dir = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-gc-"));
    const path = join(dir, "lifeboat.db");
    const store = await open(path);
    const queued = store.putSetting("k", 1);
    await store.close();
    await expect(queued).resolves.toBeUndefined();
    await expect(store.putSetting("k", 2)).rejects.toThrow(/closed/);
    expect(await (await open(path)).getSetting("k")).toBe(1);
  });
});
