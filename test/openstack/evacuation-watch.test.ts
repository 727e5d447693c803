import { afterEach, describe, expect, it, vi } from "vitest";
import { ChangeMarks } from "../../src/nova/change-marks.js";
import { CURRENT_VIEW_MAX_AGE_MS, EvacuationWatch, nextMark, updatedAt, type LookPurpose } from "../../src/nova/evacuation-watch.js";
import type { NovaClient, NovaServer } from "../../src/openstack/nova.js";
import { silentLogger } from "../../src/logging.js";

/**
 * Where a host's watch starts its next `changes-since`: Nova's time of the previous listing,
 * never later than the newest record a listing of changes returned — so that a Date written
 * by a clock ahead of the services writing the records (a proxy's) cannot hide a change.
 */

const T = Date.UTC(2026, 10, 25, 12, 0, 0);
const how = (complete: boolean) => ({ complete, sentAt: 1_000, receivedAt: 1_400 });

describe("nextMark", () => {
  it("a listing of changes: its Date less the round trip, but never later than the newest record it returned", () => {
    // Date and records agree: the Date (less 400 ms) is the earlier.
    expect(nextMark(T - 60_000, { items: [1], date: T }, [T - 200], how(false))).toBe(T - 400);
    // A Date a minute ahead of the records' clocks: the newest record bounds it.
    expect(nextMark(T - 60_000, { items: [1, 2], date: T + 60_000 }, [T - 5_000, T - 2_000], how(false))).toBe(T - 2_000);
    // No Date: the newest record.
    expect(nextMark(T - 60_000, { items: [1], date: undefined }, [T - 3_000], how(false))).toBe(T - 3_000);
  });

  it("a listing of changes that returned nothing: the mark stays (nothing changed since it)", () => {
    expect(nextMark(T - 60_000, { items: [], date: T + 3_600_000 }, [], how(false))).toBe(T - 60_000);
  });

  it("a complete listing: its Date decides (its newest record may be days old), else its newest record, else no mark", () => {
    expect(nextMark(undefined, { items: [1], date: T }, [T - 86_400_000], how(true))).toBe(T - 400);
    expect(nextMark(undefined, { items: [1], date: undefined }, [T - 86_400_000], how(true))).toBe(T - 86_400_000);
    expect(nextMark(undefined, { items: [], date: undefined }, [], how(true))).toBeUndefined();
  });
});

describe("updatedAt", () => {
  it("reads a server's `updated` (with a zone) and a migration's naive UTC `updated_at`; null or junk is undefined", () => {
    expect(updatedAt("2026-11-25T12:00:00Z")).toBe(T);
    expect(updatedAt("2026-11-25T13:00:00+01:00")).toBe(T);
    expect(updatedAt("2026-11-25T12:00:00.000000")).toBe(T);
    expect(updatedAt(null)).toBeUndefined();
    expect(updatedAt("never")).toBeUndefined();
  });
});

describe("ChangeMarks", () => {
  const margins = { shortMs: 1_000, fullMs: 10_000, catchUpEveryMs: 5_000 };

  it("no base, no listing of changes; the first is a catch-up reaching back the whole margin", () => {
    const m = new ChangeMarks(margins);
    expect(m.next(0)).toBeUndefined();
    m.lower(T);
    expect(m.next(0)).toEqual({ since: T - 10_000, catchUp: true });
  });

  it("cycles reach back the short margin; each catch-up from the previous catch-up's mark, so their coverage joins up", () => {
    const m = new ChangeMarks(margins);
    m.lower(T);
    m.advance(T + 1_000, true, 0);
    expect(m.next(100)).toEqual({ since: T + 1_000 - 1_000, catchUp: false });
    m.advance(T + 3_000, false, 100);
    m.advance(T + 4_500, false, 200);
    expect(m.next(300)).toEqual({ since: T + 4_500 - 1_000, catchUp: false });
    // Five seconds after the last catch-up: back to its mark, less the whole margin.
    expect(m.next(5_000)).toEqual({ since: T + 1_000 - 10_000, catchUp: true });
    m.advance(T + 6_000, true, 5_000);
    expect(m.next(5_100)).toEqual({ since: T + 6_000 - 1_000, catchUp: false });
    expect(m.next(10_000)).toEqual({ since: T + 6_000 - 10_000, catchUp: true });
  });

  it("a host's complete listing laid in takes both marks back to it", () => {
    const m = new ChangeMarks(margins);
    m.lower(T + 5_000);
    m.advance(T + 6_000, true, 0);
    m.lower(T + 2_000);
    expect(m.next(100)).toEqual({ since: T + 2_000 - 1_000, catchUp: false });
    expect(m.next(5_000)).toEqual({ since: T + 2_000 - 10_000, catchUp: true });
  });
});

describe("the watch's cycles", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function fakeNova(log: string[]): NovaClient {
    const server = (id: string): NovaServer => ({ id, name: id, status: "REBUILD", "OS-EXT-SRV-ATTR:host": "src", "OS-EXT-STS:task_state": "rebuilding", updated: new Date(Date.now()).toISOString() }) as NovaServer;
    const fake = {
      negotiate: () => Promise.resolve(),
      supports: () => true,
      listServersDated: (q: Record<string, unknown>) => {
        log.push(`${Date.now() - T} servers ${q.host ? "host" : "changes"}`);
        return Promise.resolve({ items: [server("s1"), server("s2")], date: Date.now() });
      },
      listMigrationsDated: () => {
        log.push(`${Date.now() - T} migrations`);
        return Promise.resolve({ items: [], date: Date.now() });
      },
      getServer: (id: string) => Promise.resolve(server(id)),
    };
    return fake as unknown as NovaClient;
  }

  it("a look before an evacuate brings the next cycle forward to just after the last one; looks that follow evacuations keep the poll interval", async () => {
    vi.useFakeTimers({ now: T, toFake: ["setTimeout", "clearTimeout", "Date"] });
    const log: string[] = [];
    const watch = new EvacuationWatch({ nova: fakeNova(log), clock: { now: () => Date.now() }, log: silentLogger(), pollIntervalMs: 1_000, retentionMs: 60_000 });
    const answered: string[] = [];
    const ask = (id: string, purpose: LookPurpose): void => {
      void watch.look([id], "src", undefined, purpose).then(() => answered.push(`${Date.now() - T} ${id} ${purpose}`));
    };
    ask("s1", "track");
    await vi.advanceTimersByTimeAsync(100);
    expect(answered).toEqual(["50 s1 track"]);
    // Following s1 again waits a poll interval from the last cycle's start ...
    ask("s1", "track");
    await vi.advanceTimersByTimeAsync(500);
    expect(answered).toHaveLength(1);
    // ... until s2 is about to be evacuated: its look needs no wait (the last cycle ended long
    // enough ago), and s1's shares its cycle.
    ask("s2", "first");
    await vi.advanceTimersByTimeAsync(30);
    expect(answered.slice(1)).toEqual(["600 s1 track", "600 s2 first"]);
    ask("s1", "track");
    await vi.advanceTimersByTimeAsync(2_000);
    expect(answered.slice(3)).toEqual(["1600 s1 track"]);
    expect(log.filter((l) => l.includes("servers"))).toEqual(["50 servers host", "600 servers changes", "1600 servers changes"]);
  });
  it("the last complete cycle answers a look before an evacuate of a server lifeboat has not acted on since that cycle started, if it is at most two poll intervals and CURRENT_VIEW_MAX_AGE_MS old; otherwise a new cycle does", async () => {
    vi.useFakeTimers({ now: T, toFake: ["setTimeout", "clearTimeout", "Date"] });
    const log: string[] = [];
    const watch = new EvacuationWatch({ nova: fakeNova(log), clock: { now: () => Date.now() }, log: silentLogger(), pollIntervalMs: 1_000, retentionMs: 60_000 });
    // No cycle has followed the host yet (its migrations were never listed): no answer.
    expect(watch.current(["s1"], "src", Number.NEGATIVE_INFINITY)).toBeUndefined();
    const looked = watch.look(["s1"], "src", undefined, "track");
    await vi.advanceTimersByTimeAsync(100);
    const cycleStart = (await looked).get("s1")!.sentAt;
    expect(cycleStart).toBe(T + 50);
    await vi.advanceTimersByTimeAsync(100);
    const calls = log.length;
    // Not acted on since the cycle started: its view answers, dated when it started, with no request.
    const now = watch.current(["s1", "s2"], "src", cycleStart);
    expect(now?.get("s2")).toMatchObject({ sentAt: cycleStart, server: { id: "s2", "OS-EXT-SRV-ATTR:host": "src" } });
    expect(log).toHaveLength(calls);
    // Acted on after it started (a lock, an evacuate): only a cycle that starts later answers.
    expect(watch.current(["s1"], "src", cycleStart + 1)).toBeUndefined();
    // A server no listing showed, or another host: a cycle too.
    expect(watch.current(["s9"], "src", cycleStart)).toBeUndefined();
    expect(watch.current(["s1"], "other", cycleStart)).toBeUndefined();
    // A view older than two poll intervals, or than CURRENT_VIEW_MAX_AGE_MS: a cycle.
    await vi.advanceTimersByTimeAsync(CURRENT_VIEW_MAX_AGE_MS - 150 + 1);
    expect(watch.current(["s1"], "src", cycleStart)).toBeUndefined();
  });

  it("a host whose servers and then evacuations were listed with its instances is answered from those listings, with no cycle", () => {
    vi.useFakeTimers({ now: T, toFake: ["setTimeout", "clearTimeout", "Date"] });
    const log: string[] = [];
    const watch = new EvacuationWatch({ nova: fakeNova(log), clock: { now: () => Date.now() }, log: silentLogger(), pollIntervalMs: 1_000, retentionMs: 60_000 });
    const server = { id: "s1", name: "s1", status: "ACTIVE", "OS-EXT-SRV-ATTR:host": "src", "OS-EXT-STS:task_state": null, updated: new Date(T - 5_000).toISOString() } as NovaServer;
    watch.seed("src", { items: [server], date: T }, T, T + 5);
    // The servers alone do not make the view complete.
    expect(watch.current(["s1"], "src", Number.NEGATIVE_INFINITY)).toBeUndefined();
    watch.seedMigrations("src", { items: [], date: T + 10 }, T + 10, T + 15);
    expect(watch.current(["s1"], "src", Number.NEGATIVE_INFINITY)?.get("s1")).toMatchObject({ sentAt: T, server: { id: "s1" }, evacuations: [] });
    expect(log).toEqual([]);
  });
});
