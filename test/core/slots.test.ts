import { describe, expect, it } from "vitest";
import { Slots } from "../../src/util/slots.js";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("Slots", () => {
  it("grants up to its size, then in arrival order as holders hand their slot on; a holder can take one again later", async () => {
    const slots = new Slots(2);
    const [a, b, c, d] = [slots.holder(), slots.holder(), slots.holder(), slots.holder()];
    const order: string[] = [];
    const take = (name: string, h: typeof a): Promise<void> => h.acquire().then(() => void order.push(name));
    const all = [take("a", a), take("b", b), take("c", c), take("d", d)];
    await tick();
    expect(order).toEqual(["a", "b"]);
    expect([a.held, b.held, c.held, d.held]).toEqual([true, true, false, false]);
    // Handing on early (an evacuation that only watches from now on) lets the next one in.
    b.release();
    b.release(); // twice is once
    await tick();
    expect(order).toEqual(["a", "b", "c"]);
    expect(b.held).toBe(false);
    // b wants one again: it queues behind d.
    const again = take("b again", b);
    a.release();
    await tick();
    expect(order).toEqual(["a", "b", "c", "d"]);
    c.release();
    await Promise.all([...all, again]);
    expect(order).toEqual(["a", "b", "c", "d", "b again"]);
    // Acquiring what is held resolves at once and takes nothing more.
    await b.acquire();
    d.release();
    b.release();
    const e = slots.holder();
    const f = slots.holder();
    await Promise.all([e.acquire(), f.acquire()]);
    expect([e.held, f.held]).toEqual([true, true]);
  });

  it("a wait ends with the signal's reason when stopping, and leaves its place to the next", async () => {
    const slots = new Slots(1);
    const stop = new AbortController();
    const first = slots.holder();
    await first.acquire();
    const waiting = slots.holder(stop.signal);
    const next = slots.holder();
    const w = waiting.acquire();
    const n = next.acquire();
    stop.abort(new Error("stopping"));
    await expect(w).rejects.toThrow("stopping");
    first.release();
    await n;
    expect([waiting.held, next.held]).toEqual([false, true]);
    await expect(slots.holder(stop.signal).acquire()).rejects.toThrow("stopping");
    expect(() => new Slots(0)).toThrow(RangeError);
  });
});
