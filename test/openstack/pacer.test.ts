import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseRetryAfter, RequestPacer } from "../../src/openstack/pacer.js";
import { formatHttpDate } from "../../src/util/http-date.js";

/**
 * The pace of lifeboat's requests to Nova, on a fake clock: the rate with its one-second
 * burst, the pause a 429/503 with Retry-After imposes (seconds or an HTTP-date, bounded),
 * and waiting that gives way to an abort.
 */

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  vi.setSystemTime(Date.UTC(2026, 10, 25, 12, 0, 0));
});
afterEach(() => {
  vi.useRealTimers();
});

/** Start `n` takes at once; each resolves to the fake time (ms since `t0`) at which it was let through. */
function takeMany(p: RequestPacer, n: number, signal?: AbortSignal): Promise<number>[] {
  const t0 = Date.now();
  return Array.from({ length: n }, () => p.take(signal).then(() => Date.now() - t0));
}

describe("RequestPacer: rate", () => {
  it("lets one second's worth through at once, then one request per 1/rate, in the order they asked", async () => {
    const p = new RequestPacer({ requestsPerSecond: 10, maxRetryAfterMs: 60_000 });
    const order: number[] = [];
    const times = takeMany(p, 13).map((t, i) => t.then((ms) => (order.push(i), ms)));
    await vi.advanceTimersByTimeAsync(1_000);
    const at = await Promise.all(times);
    expect(at.slice(0, 10)).toEqual(Array(10).fill(0));
    expect(at.slice(10)).toEqual([100, 200, 300]);
    expect(order).toEqual([...Array(13).keys()]);
  });

  it("the burst comes back once the requests have stopped for a while, no more than one second's worth", async () => {
    const p = new RequestPacer({ requestsPerSecond: 4, maxRetryAfterMs: 60_000 });
    const first = takeMany(p, 4);
    await vi.advanceTimersByTimeAsync(0);
    expect(await Promise.all(first)).toEqual([0, 0, 0, 0]);
    await vi.advanceTimersByTimeAsync(10_000);
    const again = takeMany(p, 6);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await Promise.all(again)).toEqual([0, 0, 0, 0, 250, 500]);
  });

  it("refuses a rate that is not positive", () => {
    expect(() => new RequestPacer({ requestsPerSecond: 0, maxRetryAfterMs: 1 })).toThrow(RangeError);
  });
});

describe("RequestPacer: Retry-After", () => {
  it("a 429 with Retry-After seconds holds every request until then, those already waiting too; then the rate, no burst", async () => {
    const p = new RequestPacer({ requestsPerSecond: 2, maxRetryAfterMs: 60_000 });
    await p.take();
    await p.take();
    // The third waits for its turn (500 ms) when the answer to an earlier one says 429, Retry-After 3.
    const waiting = takeMany(p, 1);
    expect(p.noteAnswer(429, "3")).toBe(3_000);
    expect(p.pausedUntil).toBe(Date.now() + 3_000);
    const later = takeMany(p, 3);
    await vi.advanceTimersByTimeAsync(5_000);
    const [w] = await Promise.all(waiting);
    const after = await Promise.all(later);
    expect(w).toBeGreaterThanOrEqual(3_000);
    expect(Math.min(...after)).toBeGreaterThanOrEqual(3_000);
    // One every 500 ms after the pause, not all at once.
    const all = [w!, ...after].sort((a, b) => a - b);
    for (let i = 1; i < all.length; i++) expect(all[i]! - all[i - 1]!).toBeGreaterThanOrEqual(500);
  });

  it("a 503 with an HTTP-date pauses until that date; answers without Retry-After, or other statuses, do not pause", async () => {
    const p = new RequestPacer({ requestsPerSecond: 100, maxRetryAfterMs: 60_000 });
    expect(p.noteAnswer(503, undefined)).toBeUndefined();
    expect(p.noteAnswer(500, "10")).toBeUndefined();
    expect(p.noteAnswer(200, "10")).toBeUndefined();
    expect(p.noteAnswer(429, "soon")).toBeUndefined();
    expect(p.pausedUntil).toBeLessThanOrEqual(Date.now());
    expect(p.noteAnswer(503, formatHttpDate(Date.now() + 7_000))).toBe(7_000);
    const t = takeMany(p, 1);
    await vi.advanceTimersByTimeAsync(7_000);
    expect(await Promise.all(t)).toEqual([7_000]);
  });

  it("the pause is bounded by maxRetryAfterMs, and a shorter Retry-After never shortens a longer pause", async () => {
    const p = new RequestPacer({ requestsPerSecond: 100, maxRetryAfterMs: 2_000 });
    expect(p.noteAnswer(429, "3600")).toBe(2_000);
    expect(p.noteAnswer(429, "1")).toBe(1_000);
    expect(p.pausedUntil).toBe(Date.now() + 2_000);
    const t = takeMany(p, 1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(await Promise.all(t)).toEqual([2_000]);
  });

  it("an abort ends the wait at once; the others still go at their turn", async () => {
    const p = new RequestPacer({ requestsPerSecond: 1, maxRetryAfterMs: 60_000 });
    p.noteAnswer(429, "30");
    const ctl = new AbortController();
    const aborted = p.take(ctl.signal);
    const other = takeMany(p, 1);
    ctl.abort(new Error("stopping"));
    await expect(aborted).rejects.toThrow("stopping");
    await vi.advanceTimersByTimeAsync(31_000);
    expect((await Promise.all(other))[0]).toBeGreaterThanOrEqual(30_000);
    await expect(p.take(AbortSignal.abort(new Error("already")))).rejects.toThrow("already");
  });
});

describe("parseRetryAfter", () => {
  it("reads delay-seconds and HTTP-dates (IMF-fixdate and the obsolete forms); a past date is no delay; anything else is undefined", () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0);
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Wed, 25 Nov 2026 12:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wednesday, 25-Nov-26 12:01:00 GMT", now)).toBe(60_000);
    expect(parseRetryAfter("Wed Nov 25 12:00:05 2026", now)).toBe(5_000);
    expect(parseRetryAfter("Wed, 25 Nov 2026 11:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("-5", now)).toBeUndefined();
    expect(parseRetryAfter("1.5", now)).toBeUndefined();
    expect(parseRetryAfter("2026-11-25T12:00:30Z", now)).toBeUndefined();
    expect(parseRetryAfter("", now)).toBeUndefined();
  });
});
