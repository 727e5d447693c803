import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { nextTurn, SLICE_MS } from "../../src/util/turns.js";

/** Synchronous work of about `ms`. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe("nextTurn", () => {
  it("lets waiters go in the order they asked, a slice of work per turn: a timer due meanwhile runs before the burst is through", async () => {
    const order: number[] = [];
    let atTimer = -1;
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        atTimer = order.length;
        resolve();
      }, 1),
    );
    // 200 waiters of 0.2 ms each: 40 ms of work, far more than one slice.
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        nextTurn().then(() => {
          busy(0.2);
          order.push(i);
        }),
      ),
    );
    await timer;
    expect(order).toEqual(Array.from({ length: 200 }, (_, i) => i));
    // All in one turn, the timer would have seen all 200 done.
    expect(atTimer).toBeGreaterThanOrEqual(0);
    expect(atTimer).toBeLessThan(200);
  });

  it("lets a burst of light waiters go together rather than one per turn", async () => {
    const turns: number[] = [];
    let turn = 0;
    let ticking = true;
    const tick = (): void => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await Promise.all(Array.from({ length: 50 }, () => nextTurn().then(() => turns.push(turn))));
    ticking = false;
    // Fifty trivial waiters fit in far fewer turns than fifty (one per turn took fifty).
    expect(new Set(turns).size).toBeLessThan(10);
    expect(SLICE_MS).toBeGreaterThan(0);
  });
});
