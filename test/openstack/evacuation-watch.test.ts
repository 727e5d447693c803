import { describe, expect, it } from "vitest";
import { nextMark, updatedAt } from "../../src/nova/evacuation-watch.js";

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
