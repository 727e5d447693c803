import { describe, expect, it } from "vitest";
import { Coalesced } from "../../src/util/coalesced.js";

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
});
