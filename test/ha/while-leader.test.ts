import { performance } from "node:perf_hooks";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ClaimLostError } from "../../src/ha/claims.js";
import type { LeaderTerm } from "../../src/ha/leader.js";
import { createEtcdHa, type EtcdHa } from "../../src/app/ha.js";
import { runWhileLeader, type LeaderWork } from "../../src/ha/while-leader.js";
import { storeSchema, type EtcdStoreConfig } from "../../src/store/config.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { uniquePrefix } from "../kit/config.js";
import { startTcpProxy, type TcpProxy } from "../kit/tcp-proxy.js";

const TTL_MS = 3_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Interval {
  instance: string;
  startedAt: number;
  stoppedAt?: number;
}

/** Errors other than ClaimLostError seen by the fake coordinators (asserted empty). */
const unexpected: unknown[] = [];

interface Action {
  instance: string;
  at: number;
}

/**
 * A stand-in for the coordinator: while leader it claims a host and does a "side effect"
 * every 50 ms, each one after assertHeld — the pattern the recovery pipeline follows.
 */
function fakeCoordinator(ha: EtcdHa, instance: string, intervals: Interval[], actions: Action[]) {
  return (term: LeaderTerm): LeaderWork => {
    const interval: Interval = { instance, startedAt: performance.now() };
    intervals.push(interval);
    let running = true;
    const work = (async () => {
      let claim;
      while (running && !term.signal.aborted && !claim) {
        claim = await ha.claims.claim("compute-1", `r-${instance}`).catch(() => undefined);
        if (!claim) await sleep(50);
      }
      while (claim && running && !term.signal.aborted) {
        try {
          await ha.claims.assertHeld(claim);
        } catch (err) {
          if (!(err instanceof ClaimLostError)) unexpected.push(err);
          return;
        }
        actions.push({ instance, at: performance.now() });
        await sleep(50);
      }
    })();
    return {
      stop: async () => {
        running = false;
        await work;
        interval.stoppedAt = performance.now();
      },
    };
  };
}

describe("work that runs only while leader", () => {
  let etcd: EtcdServer;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    expect(unexpected.splice(0)).toEqual([]);
  });

  afterAll(async () => {
    await etcd?.stop();
  });

  async function instance(id: string, endpoint: string, prefix: string): Promise<EtcdHa> {
    const cfg = storeSchema.parse({
      driver: "etcd",
      endpoints: [endpoint],
      prefix,
      instance_id: id,
      lease_ttl_seconds: TTL_MS / 1000,
      request_timeout_seconds: 1,
    }) as EtcdStoreConfig;
    const ha = createEtcdHa(cfg);
    cleanups.push(() => ha.close());
    await ha.store.init();
    return ha;
  }

  it("starts the work on the leader only, and stops it on a partitioned leader before the next one starts", async () => {
    const prefix = uniquePrefix();
    const proxy: TcpProxy = await startTcpProxy(etcd.clientPort);
    cleanups.push(() => proxy.close());
    const a = await instance("lifeboat-a", proxy.endpoint, prefix);
    const b = await instance("lifeboat-b", etcd.endpoint, prefix);
    const intervals: Interval[] = [];
    const actions: Action[] = [];
    const runA = runWhileLeader(a.election, fakeCoordinator(a, "lifeboat-a", intervals, actions));
    const runB = runWhileLeader(b.election, fakeCoordinator(b, "lifeboat-b", intervals, actions));
    cleanups.push(() => runA.stop(), () => runB.stop());

    a.election.start();
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 20 });
    b.election.start();
    await vi.waitFor(() => expect(actions.length).toBeGreaterThan(5), { timeout: 5_000, interval: 20 });
    expect(intervals.map((i) => i.instance)).toEqual(["lifeboat-a"]);
    // The store is shared: both see the leader and the claim.
    expect(await b.election.leaderId()).toBe("lifeboat-a");
    expect(await b.claims.holder("compute-1")).toMatchObject({ instanceId: "lifeboat-a" });

    const cutAt = performance.now();
    proxy.cut();
    await vi.waitFor(() => expect(actions.some((x) => x.instance === "lifeboat-b")).toBe(true), { timeout: TTL_MS + 6_000, interval: 20 });

    const [ia, ib] = intervals;
    expect(ia!.instance).toBe("lifeboat-a");
    expect(ib!.instance).toBe("lifeboat-b");
    // A's work was stopped within TTL/2 (+ slack) of the cut, and before B's started.
    expect(ia!.stoppedAt! - cutAt).toBeLessThan(TTL_MS / 2 + 500);
    expect(ia!.stoppedAt!).toBeLessThan(ib!.startedAt);
    const lastA = Math.max(...actions.filter((x) => x.instance === "lifeboat-a").map((x) => x.at));
    const firstB = Math.min(...actions.filter((x) => x.instance === "lifeboat-b").map((x) => x.at));
    expect(lastA).toBeLessThan(ia!.stoppedAt!);
    expect(firstB - lastA).toBeGreaterThan(TTL_MS / 2 - 500);
    expect(await b.claims.holder("compute-1")).toMatchObject({ instanceId: "lifeboat-b" });

    proxy.heal();
    await sleep(TTL_MS);
    // A follows now; its work did not come back.
    expect(a.election.isLeader()).toBe(false);
    expect(intervals).toHaveLength(2);
  });

  it("stops the work when the leader resigns and does not restart it during the hold-off", async () => {
    const prefix = uniquePrefix();
    const a = await instance("lifeboat-a", etcd.endpoint, prefix);
    const intervals: Interval[] = [];
    const actions: Action[] = [];
    const run = runWhileLeader(a.election, fakeCoordinator(a, "lifeboat-a", intervals, actions));
    cleanups.push(() => run.stop());
    a.election.start();
    await vi.waitFor(() => expect(actions.length).toBeGreaterThan(2), { timeout: 10_000, interval: 20 });
    await a.election.resign(TTL_MS);
    await vi.waitFor(() => expect(intervals[0]!.stoppedAt).toBeDefined(), { timeout: 2_000, interval: 10 });
    const stoppedAt = intervals[0]!.stoppedAt!;
    expect(actions.every((x) => x.at <= stoppedAt)).toBe(true);
    await sleep(TTL_MS / 2);
    expect(intervals).toHaveLength(1);
    // After the hold-off it campaigns again and, alone, leads again.
    await vi.waitFor(() => expect(intervals).toHaveLength(2), { timeout: TTL_MS + 5_000, interval: 20 });
    await run.stop();
    expect(intervals[1]!.stoppedAt).toBeDefined();
  });
});
