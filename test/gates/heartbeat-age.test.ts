import { describe, expect, it } from "vitest";
import { heartbeatAge, judgeHeartbeat } from "../../src/domain/heartbeat.js";
import { naiveUtcToIso } from "../../src/nova/compute-services.js";
import { formatHttpDate, parseHttpDate } from "../../src/util/http-date.js";

/** The heartbeat's age from Nova's two stamps, and the HTTP dates it is measured against. */

const novaTime = (httpDate: string): string => new Date(parseHttpDate(httpDate)!).toISOString();
const svc = (updatedAt: string | null, date: string | null, extra: { state?: "up" | "down"; forcedDown?: boolean } = {}) => ({
  host: "compute-1",
  state: extra.state ?? ("up" as const),
  forcedDown: extra.forcedDown ?? false,
  updatedAt: naiveUtcToIso(updatedAt),
  ...(date ? { novaTime: novaTime(date) } : {}),
});

describe("HTTP dates", () => {
  it("reads the IMF-fixdate servers send, and the two obsolete forms, all as GMT", () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37);
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(t);
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT")).toBe(t);
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994")).toBe(t);
    expect(formatHttpDate(t + 999)).toBe("Sun, 06 Nov 1994 08:49:37 GMT");
  });
  it("refuses what is not one: no zone, another zone, ISO 8601, impossible dates, nothing", () => {
    for (const bad of ["Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 +0100", "1994-11-06T08:49:37Z", "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "", undefined, null]) {
      expect(parseHttpDate(bad)).toBeNull();
    }
  });
});

describe("the heartbeat's age on Nova's clock", () => {
  it("is Nova's time of the answer less the heartbeat, never over-estimated: a whole-second updated_at may have lost up to a second", () => {
    // Real Nova on MySQL: updated_at has whole seconds; the Date is truncated to whole seconds.
    expect(heartbeatAge(svc("2026-11-25T13:20:14.000000", "Wed, 25 Nov 2026 13:20:50 GMT"))).toEqual({ seconds: 35 });
    // Microseconds (PostgreSQL, or an object fresh from an update): read to the millisecond.
    expect(heartbeatAge(svc("2026-11-25T13:20:14.250000", "Wed, 25 Nov 2026 13:20:50 GMT"))).toEqual({ seconds: 35.749 });
    // Same second, or the heartbeat a moment after the truncated Date: age 0, never negative.
    expect(heartbeatAge(svc("2026-11-25T13:20:50.800000", "Wed, 25 Nov 2026 13:20:50 GMT"))).toEqual({ seconds: 0 });
  });
  it("cannot be told without a Date, without a heartbeat, or when the two stamps contradict each other", () => {
    const unknown = (a: ReturnType<typeof heartbeatAge>): string => ("unknown" in a ? a.unknown : `an age of ${a.seconds}s`);
    expect(unknown(heartbeatAge(svc("2026-11-25T13:20:14.000000", null)))).toMatch(/no Date header/);
    expect(unknown(heartbeatAge(svc(null, "Wed, 25 Nov 2026 13:20:50 GMT")))).toMatch(/no heartbeat/);
    // A heartbeat a minute after Nova's answer: nova-api's (or its proxy's) clock is behind nova-conductor's.
    expect(unknown(heartbeatAge(svc("2026-11-25T13:21:50.000000", "Wed, 25 Nov 2026 13:20:50 GMT")))).toMatch(/clocks .* disagree/);
  });
  it("decides with stale_seconds whatever Nova's state; Nova's own down and forced_down count too", () => {
    const date = "Wed, 25 Nov 2026 13:20:50 GMT";
    expect(judgeHeartbeat(svc("2026-11-25T13:20:19.000000", date), 30)).toMatchObject({ dead: true, by: "stale", ageSeconds: 30 });
    expect(judgeHeartbeat(svc("2026-11-25T13:20:20.000000", date), 30)).toMatchObject({ dead: false, by: "fresh", ageSeconds: 29 });
    expect(judgeHeartbeat(svc("2026-11-25T13:20:49.000000", date, { state: "down" }), 30)).toMatchObject({ dead: true, by: "nova-down" });
    expect(judgeHeartbeat(svc("2026-11-25T13:20:49.000000", date, { forcedDown: true }), 30)).toMatchObject({ dead: true, by: "forced-down" });
    expect(judgeHeartbeat(svc("2026-11-25T13:10:00.000000", null), 30)).toMatchObject({ dead: false, by: "no-age", ageSeconds: null });
    expect(judgeHeartbeat(svc("2026-11-25T13:10:00.000000", null, { state: "down" }), 30)).toMatchObject({ dead: true, by: "nova-down" });
  });
});
