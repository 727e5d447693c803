import { describe, expect, it } from "vitest";
import { Coalesced, CoalescedByKey } from "../../src/util/coalesced.js";

/** A run that ends when told to, counting how many started. */
function gatedRun(): { run: () => Promise<void>; started: () => number; finish: (err?: Error) => void } {
  let started = 0;
  const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  return {
    run: () => {
      started++;
      return new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
    },
    started: () => started,
    finish: (err) => {
      const p = pending.shift();
      if (err) p?.reject(err);
      else p?.resolve();
    },
  };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("Coalesced", () => {
  it("callers of one moment share one run; a caller during a run gets the next one, started after it asked", async () => {
    const g = gatedRun();
    const c = new Coalesced(g.run);
    const first = [c.request(), c.request(), c.request()];
    await flush();
    expect(g.started()).toBe(1);

    // Asked while that run is under way: not answered by it.
    let laterDone = false;
    const later = [c.request(), c.request()].map((p) => p.then(() => (laterDone = true)));
    g.finish();
    await Promise.all(first);
    await flush();
    expect(laterDone).toBe(false);
    expect(g.started()).toBe(2);
    g.finish();
    await Promise.all(later);
    expect(g.started()).toBe(2);
  });

  it("a failed run fails its own callers only; the next callers get a run of their own", async () => {
    const g = gatedRun();
    const c = new Coalesced(g.run);
    const failing = c.request();
    await flush();
    const next = c.request();
    g.finish(new Error("etcd did not answer"));
    await expect(failing).rejects.toThrow("etcd did not answer");
    await flush();
    expect(g.started()).toBe(2);
    g.finish();
    await expect(next).resolves.toBeUndefined();
  });

  it("hands each caller its run's value", async () => {
    let n = 0;
    const c = new Coalesced(() => Promise.resolve(++n));
    const [a, b] = await Promise.all([c.request(), c.request()]);
    expect([a, b]).toEqual([1, 1]);
    expect(await c.request()).toBe(2);
    expect(c.idle).toBe(true);
  });
});

describe("CoalescedByKey", () => {
  it("shares runs per key, not across keys, and keeps no key once its runs are over", async () => {
    const started: string[] = [];
    const byKey = new CoalescedByKey<string, string>();
    const read = (k: string) => () => {
      started.push(k);
      return new Promise<string>((r) => setImmediate(() => r(`${k}:${started.filter((x) => x === k).length}`)));
    };
    const answers = await Promise.all([byKey.request("r-1", read("r-1")), byKey.request("r-2", read("r-2")), byKey.request("r-1", read("r-1"))]);
    expect(answers).toEqual(["r-1:1", "r-2:1", "r-1:1"]);
    expect(started).toEqual(["r-1", "r-2"]);
    await flush();
    expect(byKey.size).toBe(0);
    // Asked again later: a new read.
    expect(await byKey.request("r-1", read("r-1"))).toBe("r-1:2");
  });
});
