import { describe, expect, it } from "vitest";
import { RepeatCounts } from "../../src/store/repeat-counts.js";
import type { NewHostEvent } from "../../src/domain/model.js";
import { newEvent } from "./conformance.js";

function at(e: NewHostEvent, receivedAt: string): NewHostEvent {
  return { ...e, receivedAt };
}

describe("RepeatCounts", () => {
  it("writes each key's count once per interval with its last delivery; a failed write is counted again with what came meanwhile", async () => {
    const e = newEvent("compute-1");
    const f = newEvent("compute-2");
    const writes: NewHostEvent[][] = [];
    let fail = true;
    const counts = new RepeatCounts(50, (deliveries) => {
      writes.push(deliveries);
      if (fail) {
        fail = false;
        return Promise.reject(new Error("etcd unreachable"));
      }
      return Promise.resolve();
    });
    counts.add(e.key, [at(e, "t1"), at(e, "t2")]);
    counts.add(f.key, [at(f, "t1")]);
    expect(counts.waiting(e.key)).toBe(2);
    await expect.poll(() => writes.length, { timeout: 2_000 }).toBe(1);
    // The failed write's deliveries wait again; one more arrives before the next write.
    counts.add(e.key, [at(e, "t3")]);
    await expect.poll(() => writes.length, { timeout: 2_000 }).toBe(2);
    const byKey = (w: NewHostEvent[]): Record<string, string[]> => {
      const out: Record<string, string[]> = {};
      for (const d of w) (out[d.host!] ??= []).push(d.receivedAt);
      return out;
    };
    expect(byKey(writes[0]!)).toEqual({ "compute-1": ["t2", "t2"], "compute-2": ["t1"] });
    expect(byKey(writes[1]!)).toEqual({ "compute-1": ["t3", "t3", "t3"], "compute-2": ["t1"] });
    await expect.poll(() => counts.waiting(e.key), { timeout: 2_000 }).toBe(0);
  });

  it("writes what waits at close, and nothing is scheduled after it", async () => {
    const e = newEvent("compute-1");
    const writes: number[] = [];
    const counts = new RepeatCounts(60_000, (deliveries) => {
      writes.push(deliveries.length);
      return Promise.resolve();
    });
    counts.add(e.key, [e, e, e]);
    await counts.close();
    expect(writes).toEqual([3]);
    counts.add(e.key, [e]);
    await new Promise((r) => setTimeout(r, 50));
    expect(writes).toEqual([3]);
  });
});
