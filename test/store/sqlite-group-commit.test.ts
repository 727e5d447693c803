import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
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
    const reader = new Database(path, { readonly: true });
    const committed = (): string[] => [
      ...(reader.prepare("SELECT key FROM settings WHERE key = 'step'").all() as { key: string }[]).map((r) => r.key),
      ...(reader.prepare("SELECT host FROM events ORDER BY id").all() as { host: string }[]).map((r) => r.host),
    ];
    // The rest of the turn: while evacuations run, hundreds of Nova answers handled before the
    // turn's commit (which runs after every callback already queued).
    let seenByTheRestOfTheTurn: string[] = [];
    setImmediate(() => (seenByTheRestOfTheTurn = committed()));
    // A recovery's write queued earlier in the turn commits with the first delivery, in order;
    // the second delivery of the turn waits for the turn's commit.
    const writes = [store.putSetting("step", 1), store.appendEvents([newEvent("compute-1")])];
    expect(committed()).toEqual([]);
    // After the first delivery's commit (a microtask of its task), still in the same turn.
    queueMicrotask(() => queueMicrotask(() => writes.push(store.appendEvents([newEvent("compute-2")]))));
    await new Promise((r) => setImmediate(r));
    await Promise.all(writes);
    expect(writes).toHaveLength(3);
    expect(seenByTheRestOfTheTurn).toEqual(["step", "compute-1"]);
    expect(committed()).toEqual(["step", "compute-1", "compute-2"]);
    reader.close();
  });

  it("a write settles only once the WAL is synced after its commit; the event loop runs meanwhile, and a failed sync fails the batch", async () => {
    dir = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-gc-"));
    const path = join(dir, "lifeboat.db");
    const held: { fd: number; done: (err: Error | null) => void }[] = [];
    const store = new SqliteStore(path, { syncWal: (fd, done) => held.push({ fd, done }) });
    await store.init();
    opened.push(store);

    let settled = false;
    const write = store.putSetting("k", 1).then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    // Committed (a read sees it) and its sync asked for, not yet settled; timers still ran.
    expect(await store.getSetting("k")).toBe(1);
    expect(held).toHaveLength(1);
    expect(settled).toBe(false);
    // Writes committed while that sync runs wait for the next one, which they share.
    const later = [store.putSetting("a", 1), store.putSetting("b", 2)];
    await new Promise((r) => setTimeout(r, 20));
    expect(held).toHaveLength(1);
    held[0]!.done(null);
    await write;
    expect(held).toHaveLength(2);
    // The second sync fails: every write waiting for it fails, naming the cause.
    held[1]!.done(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
    const results = await Promise.allSettled(later);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/could not be synced to disk: EIO/);
  });

  it("a delivery that only repeats alerts already on disk is answered once committed; a new alert, or a repeat of one not synced yet, waits for the sync", async () => {
    dir = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-gc-"));
    const path = join(dir, "lifeboat.db");
    const held: ((err: Error | null) => void)[] = [];
    const store = new SqliteStore(path, { syncWal: (_fd, done) => held.push(done) });
    await store.init();
    opened.push(store);
    const settled = new Set<string>();
    const track = <T>(name: string, p: Promise<T>): Promise<T> => p.then((v) => (settled.add(name), v));
    const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

    // One alert re-sent as it is, as Alertmanager re-sends a group.
    const alert = newEvent("compute-1");
    const first = track("first", store.appendEvents([alert]));
    await tick();
    expect(held).toHaveLength(1);
    // The alert's own commit is not synced yet: a repeat of it waits for that sync, and no other.
    const early = track("early repeat", store.appendEvents([alert]));
    await tick();
    expect([...settled]).toEqual([]);
    held.shift()!(null);
    await Promise.all([first, early]);
    expect(held).toHaveLength(0);

    // Synced: a repeat now needs no sync at all; a delivery with anything new does.
    const repeat = await track("repeat", store.appendEvents([alert]));
    expect(repeat[0]!.duplicate).toBe(true);
    expect(repeat[0]!.event.deliveries).toBe(3);
    const mixed = track("mixed", store.appendEvents([alert, newEvent("compute-2")]));
    await tick();
    expect(settled.has("mixed")).toBe(false);
    held.shift()!(null);
    expect((await mixed).map((a) => a.duplicate)).toEqual([true, false]);
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
