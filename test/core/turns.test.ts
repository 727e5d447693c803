import { describe, expect, it } from "vitest";
import { nextTurn } from "../../src/util/turns.js";

/** Counts turns of the event loop, each made `busyMs` long by other work (a busy daemon's turns). */
function turnCounter(busyMs: number): { turn: () => number; stop: () => void } {
  let turn = 0;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    turn++;
    const until = performance.now() + busyMs;
    while (performance.now() < until) {
      // other work of this turn
    }
    setImmediate(tick);
  };
  setImmediate(tick);
  return { turn: () => turn, stop: () => (stopped = true) };
}

describe("nextTurn", () => {
  it("resolves waiters in the order they asked, a few per turn of the event loop: a timer due meanwhile runs before the burst is through", async () => {
    const order: number[] = [];
    let atTimer = -1;
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        atTimer = order.length;
        resolve();
      }, 1),
    );
    await Promise.all(Array.from({ length: 200 }, (_, i) => nextTurn().then(() => order.push(i))));
    await timer;
    expect(order).toEqual(Array.from({ length: 200 }, (_, i) => i));
    // All at once (one turn), the timer would have seen all 200 resolved.
    expect(atTimer).toBeGreaterThanOrEqual(0);
    expect(atTimer).toBeLessThan(200);
  });

  it("on a loop whose turns are long with other work, releases several waiters per turn, never more than eight", async () => {
    const counter = turnCounter(25);
    const turns: number[] = [];
    try {
      await Promise.all(Array.from({ length: 48 }, () => nextTurn().then(() => turns.push(counter.turn()))));
    } finally {
      counter.stop();
    }
    const perTurn = new Map<number, number>();
    for (const t of turns) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    // One per turn would take 48 turns of 25 ms (1.2 s); turns of 25 ms or more release five or more.
    expect(perTurn.size).toBeLessThanOrEqual(16);
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(8);
  });
});
