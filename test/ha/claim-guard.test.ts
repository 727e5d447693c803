import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ClaimGuard } from "../../src/ha/claim-guard.js";
import { ClaimLostError, HostClaims, NotLeaderError, type Claim } from "../../src/ha/claims.js";
import type { LeaderTerm } from "../../src/ha/leader.js";
import { silentLogger } from "../../src/logging.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { Candidates } from "./candidates.js";

/**
 * The claim guard shared by a recovery's evacuation workers. Right after a takeover every
 * worker needs the host's claim at the same moment: they must share one claim (not race
 * each other for it until one gives up) and their checks must share etcd round trips that
 * each started after the worker asked.
 */
const RECOVERY = { id: "r-1", host: "compute-2" };

describe("claim guard: concurrent workers on a real etcd", () => {
  let etcd: EtcdServer;
  let group: Candidates | undefined;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterEach(async () => {
    await group?.cleanup();
    group = undefined;
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it("ten workers checking at once on a fresh leader: all pass, one claim, checks shared", async () => {
    group = new Candidates(etcd.endpoint);
    const a = group.add("lifeboat-a");
    await vi.waitFor(() => expect(a.election.isLeader()).toBe(true), { timeout: 10_000, interval: 20 });
    const claims = new HostClaims({ client: a.client, prefix: group.prefix, leadership: a.election, requestTimeoutMs: 1_000 });
    const claimCalls = vi.spyOn(claims, "claim");
    const checks = vi.spyOn(claims, "assertHeld");
    const guard = new ClaimGuard(claims, silentLogger());

    const answers = await Promise.allSettled(Array.from({ length: 10 }, (_, n) => guard.check(RECOVERY, `evacuate server-${n}`)));
    expect(answers.filter((x) => x.status === "rejected").map((x) => String(x.reason))).toEqual([]);
    expect(claimCalls).toHaveBeenCalledTimes(1);
    expect(checks.mock.calls.length).toBeGreaterThanOrEqual(1);
    expect(checks.mock.calls.length).toBeLessThanOrEqual(2);
    expect(await claims.holder(RECOVERY.host)).toMatchObject({ instanceId: "lifeboat-a", recoveryId: RECOVERY.id });

    // Later checks use the claim already held: no new claim, one check each round.
    await Promise.all(Array.from({ length: 5 }, () => guard.check(RECOVERY, "evacuate again")));
    expect(claimCalls).toHaveBeenCalledTimes(1);
  });
});

/** A HostClaims double whose answers the test releases one by one. */
class ManualClaims {
  claimCalls = 0;
  checks: { resolve: () => void; reject: (err: Error) => void }[] = [];
  claimAnswers: { resolve: (c: Claim) => void; reject: (err: Error) => void }[] = [];
  released: Claim[] = [];

  claim(host: string, recoveryId: string): Promise<Claim> {
    this.claimCalls += 1;
    return new Promise<Claim>((resolve, reject) => this.claimAnswers.push({ resolve, reject })).then((c) => ({ ...c, host, recoveryId }));
  }
  assertHeld(): Promise<void> {
    return new Promise<void>((resolve, reject) => this.checks.push({ resolve, reject }));
  }
  release(c: Claim): Promise<void> {
    this.released.push(c);
    return Promise.resolve();
  }
}

function fakeClaim(): Claim {
  const ctl = new AbortController();
  return {
    host: "",
    recoveryId: "",
    instanceId: "lifeboat-a",
    leaseId: "1",
    createRevision: "7",
    modRevision: "7",
    term: {} as LeaderTerm,
    signal: ctl.signal,
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("claim guard: coalescing", () => {
  it("workers asking while the host is being claimed wait for that claim; a check asked during another waits for the next one", async () => {
    const claims = new ManualClaims();
    const guard = new ClaimGuard(claims, silentLogger());
    const settled: string[] = [];
    const w = (name: string): Promise<void> => guard.check(RECOVERY, name).then(() => void settled.push(name));

    const first = [w("w1"), w("w2"), w("w3")];
    await tick();
    expect(claims.claimCalls).toBe(1);
    claims.claimAnswers[0]!.resolve(fakeClaim());
    await tick();
    // One check for the three of them.
    expect(claims.checks).toHaveLength(1);
    // A worker asking now must not be answered by the check already under way.
    const late = w("w4");
    await tick();
    expect(claims.checks).toHaveLength(1);
    claims.checks[0]!.resolve();
    await Promise.all(first);
    await tick();
    expect(settled.sort()).toEqual(["w1", "w2", "w3"]);
    expect(claims.checks).toHaveLength(2);
    claims.checks[1]!.resolve();
    await late;
    expect(settled).toContain("w4");
    expect(claims.claimCalls).toBe(1);
  }, 10_000);

  it("a claim refused fails every worker waiting on it; a lost check makes the next check claim again", async () => {
    const claims = new ManualClaims();
    const guard = new ClaimGuard(claims, silentLogger());
    const waiting = [guard.check(RECOVERY, "a"), guard.check(RECOVERY, "b")];
    await tick();
    claims.claimAnswers[0]!.reject(new NotLeaderError("not leader"));
    for (const p of waiting) await expect(p).rejects.toBeInstanceOf(NotLeaderError);

    const next = guard.check(RECOVERY, "c");
    await tick();
    expect(claims.claimCalls).toBe(2);
    claims.claimAnswers[1]!.resolve(fakeClaim());
    await tick();
    claims.checks[0]!.reject(new ClaimLostError(RECOVERY.host, "gone"));
    await expect(next).rejects.toBeInstanceOf(ClaimLostError);

    const again = guard.check(RECOVERY, "d");
    await tick();
    expect(claims.claimCalls).toBe(3);
    claims.claimAnswers[2]!.resolve(fakeClaim());
    await tick();
    claims.checks[1]!.resolve();
    await expect(again).resolves.toBeUndefined();
  }, 10_000);
});
