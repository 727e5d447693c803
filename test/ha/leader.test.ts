import { performance } from "node:perf_hooks";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { LeaderElection, LeadershipLostError } from "../../src/ha/leader.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { Candidates, TTL_MS } from "./candidates.js";
import { startTcpProxy, type TcpProxy } from "../kit/tcp-proxy.js";

const STEP_DOWN_MS = TTL_MS / 2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sample every 50 ms for `ms`: never more than one candidate leads at once. */
async function watchAtMostOneLeader(group: Candidates, ms: number): Promise<Set<string>> {
  const seen = new Set<string>();
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const leaders = group.leaders();
    expect(leaders.length).toBeLessThanOrEqual(1);
    for (const l of leaders) seen.add(l.id);
    await sleep(50);
  }
  return seen;
}

describe("leader election on a real etcd", () => {
  let etcd: EtcdServer;
  let group: Candidates;
  const proxies: TcpProxy[] = [];
  const extraEtcd: EtcdServer[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterEach(async () => {
    await group?.cleanup();
    for (const p of proxies.splice(0)) await p.close();
    for (const e of extraEtcd.splice(0)) await e.stop();
  });

  afterAll(async () => {
    await etcd?.stop();
  });

  it("elects exactly one of two candidates, and both report it as the leader", async () => {
    group = new Candidates(etcd.endpoint);
    const a = group.add("lifeboat-a");
    const b = group.add("lifeboat-b");
    await vi.waitFor(() => expect(group.leaders()).toHaveLength(1), { timeout: 10_000, interval: 50 });
    const [leader] = group.leaders();
    const seen = await watchAtMostOneLeader(group, 2 * TTL_MS);
    // The same one keeps leading through many keep-alives.
    expect([...seen]).toEqual([leader!.id]);
    expect(await a.election.leaderId()).toBe(leader!.id);
    expect(await b.election.leaderId()).toBe(leader!.id);
    const follower = leader === a ? b : a;
    expect(follower.election.term()).toBeNull();
    expect(follower.election.leaseValidUntil()).toBeNull();
    const until = leader!.election.leaseValidUntil()!;
    expect(until).toBeGreaterThan(performance.now());
    expect(until - performance.now()).toBeLessThanOrEqual(STEP_DOWN_MS);
  });

  it("elects exactly one when many candidates start at the same moment", async () => {
    group = new Candidates(etcd.endpoint);
    for (let i = 0; i < 6; i++) group.add(`lifeboat-${i}`);
    await vi.waitFor(() => expect(group.leaders()).toHaveLength(1), { timeout: 10_000, interval: 50 });
    const seen = await watchAtMostOneLeader(group, TTL_MS);
    expect(seen.size).toBe(1);
  });

  it("reports nobody as leader before anyone campaigned", async () => {
    group = new Candidates(etcd.endpoint);
    const a = group.add("lifeboat-a", { start: false });
    expect(await a.election.leaderId()).toBeNull();
    expect(a.election.isLeader()).toBe(false);
  });

  it("hands over within TTL + margin when the leader's client dies, and not before its lease expired", async () => {
    group = new Candidates(etcd.endpoint);
    const a = group.add("lifeboat-a");
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 50 });
    const b = group.add("lifeboat-b");
    await sleep(500);
    expect(b.election.isLeader()).toBe(false);

    // The last renewal A sent is at validUntil - TTL/2: etcd cannot expire the lease before renewal + TTL.
    const lastRenewal = a.election.leaseValidUntil()! - STEP_DOWN_MS;
    const killedAt = performance.now();
    a.client.close();
    await vi.waitFor(() => expect(b.election.isLeader()).toBe(true), { timeout: TTL_MS + 5_000, interval: 20 });
    const electedAt = b.lastUp()!;

    expect(electedAt - killedAt).toBeLessThan(TTL_MS + 2_000);
    expect(electedAt).toBeGreaterThanOrEqual(lastRenewal + TTL_MS);
    // A had stopped trusting its leadership long before.
    expect(a.election.isLeader()).toBe(false);
    expect(a.lastDown()!).toBeLessThan(electedAt);
    expect(await b.election.leaderId()).toBe("lifeboat-b");
  });

  it("a leader whose etcd stops answering (SIGSTOP) steps down before its lease can expire", async () => {
    const own = await startEtcd();
    extraEtcd.push(own);
    group = new Candidates(own.endpoint);
    const a = group.add("lifeboat-a");
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 50 });
    const b = group.add("lifeboat-b");
    await sleep(1_200); // a few keep-alives

    const validUntil = a.election.leaseValidUntil()!;
    const lastRenewal = validUntil - STEP_DOWN_MS;
    const term = a.election.term()!;
    own.pause();
    const pausedAt = performance.now();
    let resumedAt = 0;
    try {
      await vi.waitFor(() => expect(a.election.isLeader()).toBe(false), { timeout: TTL_MS, interval: 10 });
      const downAt = a.lastDown()!;
      // Stepped down by itself, on time: no later than TTL/2 after the last renewal it sent
      // (plus timer slack), so well before etcd could expire the lease (renewal + TTL).
      expect(downAt).toBeGreaterThan(pausedAt - 1);
      expect(downAt).toBeLessThanOrEqual(validUntil + 250);
      expect(downAt).toBeLessThan(lastRenewal + TTL_MS);
      expect(term.signal.aborted).toBe(true);
      expect(term.signal.reason).toBeInstanceOf(LeadershipLostError);
      expect(() => term.assertFresh()).toThrow(LeadershipLostError);
      // It stays down while etcd is unreachable, past the whole TTL.
      await sleep(lastRenewal + TTL_MS + 500 - performance.now());
      expect(a.election.isLeader()).toBe(false);
      expect(b.election.isLeader()).toBe(false);
    } finally {
      own.resume();
      resumedAt = performance.now();
    }

    // Someone leads again once etcd is back, and only after A had stepped down.
    await vi.waitFor(() => expect(group.leaders()).toHaveLength(1), { timeout: 20_000, interval: 50 });
    const [next] = group.leaders();
    expect(next!.lastUp()!).toBeGreaterThan(resumedAt);
    expect(a.timeline.find((t) => !t.leader)!.at).toBeLessThan(resumedAt);
    await watchAtMostOneLeader(group, 1_000);
  });

  it("a partitioned leader steps down before the other instance is elected", async () => {
    group = new Candidates(etcd.endpoint);
    const proxy = await startTcpProxy(etcd.clientPort);
    proxies.push(proxy);
    const a = group.add("lifeboat-a", { endpoint: proxy.endpoint });
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 50 });
    const b = group.add("lifeboat-b");
    await sleep(1_200);
    expect(b.election.isLeader()).toBe(false);

    const lastRenewal = a.election.leaseValidUntil()! - STEP_DOWN_MS;
    proxy.cut(); // only A loses etcd; B still reaches it
    const cutAt = performance.now();
    await vi.waitFor(() => expect(b.election.isLeader()).toBe(true), { timeout: TTL_MS + 5_000, interval: 10 });
    const electedAt = b.lastUp()!;
    const downAt = a.lastDown()!;

    expect(downAt).toBeGreaterThan(cutAt - 1);
    expect(downAt).toBeLessThanOrEqual(lastRenewal + STEP_DOWN_MS + 250);
    expect(electedAt).toBeGreaterThanOrEqual(lastRenewal + TTL_MS);
    // The timeline: A stopped trusting its leadership at least ~TTL/2 before B could start.
    expect(electedAt - downAt).toBeGreaterThan(TTL_MS / 2 - 300);

    // After the partition heals, A learns its lease is gone and follows.
    proxy.heal();
    await watchAtMostOneLeader(group, TTL_MS);
    expect(b.election.isLeader()).toBe(true);
    expect(await a.election.leaderId()).toBe("lifeboat-b");
  });

  it("steps down on the wall clock when the monotonic clock stops (system suspend)", async () => {
    group = new Candidates(etcd.endpoint);
    let frozen: number | null = null;
    const mono = (): number => frozen ?? performance.now();
    const a = group.add("lifeboat-a", { now: mono });
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 20 });
    const b = group.add("lifeboat-b");
    await sleep(300);
    frozen = performance.now(); // A's monotonic clock stops; wall time goes on
    const frozenAt = Date.now();
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(false), { timeout: TTL_MS, interval: 20 });
    expect(Date.now() - frozenAt).toBeLessThanOrEqual(STEP_DOWN_MS + 250);
    // A renews nothing while its clock is stopped, so its lease expires and B takes over.
    await vi.waitFor(() => expect(b.election.isLeader()).toBe(true), { timeout: TTL_MS + 5_000, interval: 20 });
    expect(a.election.isLeader()).toBe(false);
  });

  it("a wall clock stepped back does not extend leadership", async () => {
    const own = await startEtcd();
    extraEtcd.push(own);
    group = new Candidates(own.endpoint);
    const a = group.add("lifeboat-a");
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 20 });
    const validUntil = a.election.leaseValidUntil()!;
    const realNow = Date.now.bind(Date);
    const spy = vi.spyOn(Date, "now").mockImplementation(() => realNow() - 3_600_000);
    own.pause();
    try {
      await vi.waitFor(() => expect(a.election.isLeader()).toBe(false), { timeout: TTL_MS, interval: 10 });
      expect(a.lastDown()!).toBeLessThanOrEqual(validUntil + 250);
    } finally {
      spy.mockRestore();
      own.resume();
    }
  });

  it("resign hands leadership over at once and holds off campaigning", async () => {
    group = new Candidates(etcd.endpoint);
    const a = group.add("lifeboat-a");
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 50 });
    const b = group.add("lifeboat-b");
    await sleep(300);
    const term = a.election.term()!;
    const resignedAt = performance.now();
    await a.election.resign();
    expect(a.election.isLeader()).toBe(false);
    expect(term.signal.aborted).toBe(true);
    // The lease was revoked, so B does not have to wait for a TTL.
    await vi.waitFor(() => expect(b.election.isLeader()).toBe(true), { timeout: TTL_MS, interval: 20 });
    expect(b.lastUp()! - resignedAt).toBeLessThan(TTL_MS);
    await watchAtMostOneLeader(group, 1_000);
    expect(await a.election.leaderId()).toBe("lifeboat-b");
  });

  it("a stopped leader is replaced without waiting for its lease", async () => {
    group = new Candidates(etcd.endpoint);
    const a = group.add("lifeboat-a");
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 50 });
    const b = group.add("lifeboat-b");
    await sleep(300);
    const stoppedAt = performance.now();
    await a.election.stop();
    await vi.waitFor(() => expect(b.election.isLeader()).toBe(true), { timeout: TTL_MS, interval: 20 });
    expect(b.lastUp()! - stoppedAt).toBeLessThan(TTL_MS);
    await sleep(TTL_MS / 2);
    expect(a.election.isLeader()).toBe(false);
  });

  it("tells listeners when leadership starts and ends, with the term", async () => {
    group = new Candidates(etcd.endpoint);
    const a = group.add("lifeboat-a", { start: false });
    const calls: [boolean, boolean][] = [];
    const off = a.election.onChange((leader, term) => calls.push([leader, term !== null && term.isFresh()]));
    a.election.start();
    await vi.waitFor(() => expect(calls).toEqual([[true, true]]), { timeout: 10_000, interval: 20 });
    await a.election.resign(60_000);
    expect(calls).toEqual([
      [true, true],
      [false, false],
    ]);
    off();
  });

  it("refuses timings that could not be safe", () => {
    group = new Candidates(etcd.endpoint);
    const client = group.client();
    expect(() => new LeaderElection({ client, prefix: "/x/", instanceId: "a", ttlSeconds: 1 })).toThrow(RangeError);
    expect(() => new LeaderElection({ client, prefix: "/x/", instanceId: "a", ttlSeconds: 10, stepDownAfterMs: 10_000 })).toThrow(RangeError);
    expect(() => new LeaderElection({ client, prefix: "/x/", instanceId: "a", ttlSeconds: 10, keepAliveIntervalMs: 6_000 })).toThrow(RangeError);
    const ok = new LeaderElection({ client, prefix: "/x/", instanceId: "a" });
    expect([ok.ttlMs, ok.keepAliveMs, ok.stepDownAfterMs]).toEqual([10_000, 10_000 / 3, 5_000]);
  });
});
