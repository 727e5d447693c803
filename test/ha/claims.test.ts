import { performance } from "node:perf_hooks";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ClaimHeldError, ClaimLostError, HostClaims, NotLeaderError, type Claim } from "../../src/ha/claims.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { Candidates, TTL_MS, type Candidate } from "./candidates.js";
import { uniquePrefix } from "../kit/config.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("per-host claims on a real etcd", () => {
  let etcd: EtcdServer;
  let group: Candidates;
  const extraEtcd: EtcdServer[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterEach(async () => {
    await group?.cleanup();
    for (const e of extraEtcd.splice(0)) await e.stop();
  });

  afterAll(async () => {
    await etcd?.stop();
  });

  const claimsOf = (c: Candidate, prefix: string = group.prefix): HostClaims =>
    new HostClaims({ client: c.client, prefix, leadership: c.election, requestTimeoutMs: 1_000 });

  async function leaderAndFollower(): Promise<[Candidate, Candidate]> {
    const a = group.add("lifeboat-a");
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 20 });
    const b = group.add("lifeboat-b");
    await sleep(300);
    expect(b.election.isLeader()).toBe(false);
    return [a, b];
  }

  it("lets the leader claim a host and refuses a follower", async () => {
    group = new Candidates(etcd.endpoint);
    const [a, b] = await leaderAndFollower();
    const claims = claimsOf(a);
    const claim = await claims.claim("compute-1", "r-1");
    expect(claim).toMatchObject({ host: "compute-1", recoveryId: "r-1", instanceId: "lifeboat-a", leaseId: a.election.term()!.leaseId });
    expect(Number(claim.createRevision)).toBeGreaterThan(0);
    await expect(claims.assertHeld(claim)).resolves.toBeUndefined();

    const other = claimsOf(b);
    await expect(other.claim("compute-1", "r-2")).rejects.toBeInstanceOf(NotLeaderError);
    await expect(other.claim("compute-2", "r-2")).rejects.toBeInstanceOf(NotLeaderError);
    expect(await other.holder("compute-1")).toMatchObject({ instanceId: "lifeboat-a", recoveryId: "r-1", leaseId: claim.leaseId });
    expect(await other.holder("compute-2")).toBeNull();
    expect((await other.list()).map((c) => [c.host, c.instanceId])).toEqual([["compute-1", "lifeboat-a"]]);
  });

  it("claims again idempotently for its own instance, keeping the claim's identity", async () => {
    group = new Candidates(etcd.endpoint);
    const [a] = await leaderAndFollower();
    const claims = claimsOf(a);
    const first = await claims.claim("compute/with slash", "r-1");
    const second = await claims.claim("compute/with slash", "r-1b");
    expect(second.createRevision).toBe(first.createRevision);
    expect(second.recoveryId).toBe("r-1b");
    await expect(claims.assertHeld(second)).resolves.toBeUndefined();
    expect((await claims.list()).map((c) => c.host)).toEqual(["compute/with slash"]);
  });

  it("releases only its own claim", async () => {
    group = new Candidates(etcd.endpoint);
    const [a] = await leaderAndFollower();
    const claims = claimsOf(a);
    const old = await claims.claim("compute-1", "r-1");
    await claims.release(old);
    expect(await claims.holder("compute-1")).toBeNull();
    await expect(claims.assertHeld(old)).rejects.toBeInstanceOf(ClaimLostError);
    const fresh = await claims.claim("compute-1", "r-2");
    expect(fresh.createRevision).not.toBe(old.createRevision);
    await claims.release(old); // a stale handle does not delete the new claim
    expect(await claims.holder("compute-1")).toMatchObject({ recoveryId: "r-2" });
    await expect(claims.assertHeld(old)).rejects.toThrow(/claimed again/);
    await expect(claims.assertHeld(fresh)).resolves.toBeUndefined();
  });

  it("a dead leader's claims vanish with its lease, and the next leader can claim the host", async () => {
    group = new Candidates(etcd.endpoint);
    const [a, b] = await leaderAndFollower();
    const claim = await claimsOf(a).claim("compute-1", "r-1");
    const watcher = claimsOf(b);
    expect(await watcher.holder("compute-1")).not.toBeNull();

    const killedAt = performance.now();
    a.client.close(); // the process is gone: no resign, no revoke
    await vi.waitFor(async () => expect(await watcher.holder("compute-1")).toBeNull(), { timeout: TTL_MS + 5_000, interval: 50 });
    expect(performance.now() - killedAt).toBeLessThan(TTL_MS + 2_000);

    await vi.waitFor(() => expect(b.election.isLeader()).toBe(true), { timeout: TTL_MS + 5_000, interval: 20 });
    const taken = await watcher.claim("compute-1", "r-1");
    expect(taken.instanceId).toBe("lifeboat-b");
    expect(taken.createRevision).not.toBe(claim.createRevision);
    await expect(watcher.assertHeld(taken)).resolves.toBeUndefined();
  });

  it("assertHeld throws ClaimLostError once the claim is lost, whatever took it", async () => {
    group = new Candidates(etcd.endpoint);
    const [a, b] = await leaderAndFollower();
    const claims = claimsOf(a);

    // Deleted behind our back.
    const c1 = await claims.claim("compute-1", "r-1");
    await b.client.delete().key(`${group.prefix}claims/compute-1`);
    await expect(claims.assertHeld(c1)).rejects.toThrow(/no longer exists/);

    // Leadership given up: the lease and its claims are revoked.
    const c2 = await claims.claim("compute-2", "r-2");
    await a.election.resign(60_000);
    const err = await claims.assertHeld(c2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClaimLostError);
    expect((err as ClaimLostError).host).toBe("compute-2");
    expect(c2.signal.aborted).toBe(true);

    // The new leader takes the host; the old handle stays lost.
    await vi.waitFor(() => expect(b.election.isLeader()).toBe(true), { timeout: TTL_MS + 5_000, interval: 20 });
    await claimsOf(b).claim("compute-2", "r-9");
    await expect(claims.assertHeld(c2)).rejects.toBeInstanceOf(ClaimLostError);
  });

  it("assertHeld fails fast when etcd cannot confirm the claim in time", async () => {
    const own = await startEtcd();
    extraEtcd.push(own);
    group = new Candidates(own.endpoint);
    const [a] = await leaderAndFollower();
    const claims = claimsOf(a);
    const claim = await claims.claim("compute-1", "r-1");
    own.pause();
    try {
      const started = performance.now();
      await expect(claims.assertHeld(claim)).rejects.toBeInstanceOf(ClaimLostError);
      // Bounded by the request deadline and by the term's remaining trust (≤ TTL/2).
      expect(performance.now() - started).toBeLessThan(TTL_MS / 2 + 500);
      await vi.waitFor(() => expect(a.election.isLeader()).toBe(false), { timeout: TTL_MS, interval: 20 });
      // With leadership stale, it refuses without asking etcd at all.
      const t = performance.now();
      await expect(claims.assertHeld(claim)).rejects.toThrow(/not fresh/);
      expect(performance.now() - t).toBeLessThan(100);
      await expect(claims.claim("compute-2", "r-2")).rejects.toBeInstanceOf(NotLeaderError);
    } finally {
      own.resume();
    }
  });

  it("never lets two instances hold one host, even if both believe they lead (100 races)", async () => {
    // Split brain on purpose: each instance leads its own election (separate prefixes),
    // while their claims share one prefix. Only etcd's create-if-absent decides.
    group = new Candidates(etcd.endpoint);
    const a = group.add("lifeboat-a", { prefix: uniquePrefix() });
    const b = group.add("lifeboat-b", { prefix: uniquePrefix() });
    await vi.waitFor(() => expect(a.election.isLeader() && b.election.isLeader()).toBe(true), { timeout: 10_000, interval: 20 });
    const shared = uniquePrefix();
    const ca = claimsOf(a, shared);
    const cb = claimsOf(b, shared);

    const wins = { "lifeboat-a": 0, "lifeboat-b": 0 };
    for (let i = 0; i < 100; i++) {
      const host = `compute-${i % 10}`;
      const results = await Promise.allSettled([ca.claim(host, `ra-${i}`), cb.claim(host, `rb-${i}`)]);
      const won = results.filter((r): r is PromiseFulfilledResult<Claim> => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(ClaimHeldError);
      const winner = won[0]!.value;
      wins[winner.instanceId as keyof typeof wins] += 1;
      expect((lost[0]!.reason as ClaimHeldError).holder.instanceId).toBe(winner.instanceId);
      const [winnerClaims, loserClaims] = winner.instanceId === "lifeboat-a" ? [ca, cb] : [cb, ca];
      await expect(winnerClaims.assertHeld(winner)).resolves.toBeUndefined();
      expect(await loserClaims.holder(host)).toMatchObject({ instanceId: winner.instanceId });
      await winnerClaims.release(winner);
    }
    // Both sides won some races: the race was real.
    expect(wins["lifeboat-a"] + wins["lifeboat-b"]).toBe(100);
    expect(wins["lifeboat-a"]).toBeGreaterThan(0);
    expect(wins["lifeboat-b"]).toBeGreaterThan(0);
  });
});
