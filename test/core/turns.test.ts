import { describe, expect, it } from "vitest";
import { nextTurn } from "../../src/util/turns.js";

describe("nextTurn", () => {
  it("resolves waiters in the order they asked, one per turn of the event loop: a timer due meanwhile runs before the burst is through", async () => {
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
});
