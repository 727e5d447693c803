import { HeldElsewhereError, NotOursError } from "../domain/errors.js";
import type { Etcd3, IKeyValue } from "etcd3";
import { silentLogger, type Logger } from "../logging.js";
import { errorMessage } from "../util/errors.js";
import { getKey, Keyspace, keyLeaseIs, kvs, parseJson, seg, unseg } from "../etcd/kv.js";
import type { LeaderTerm } from "./leader.js";
import { withDeadline } from "../etcd/deadline.js";

/**
 * Per-host claims: before lifeboat touches a host (fence, force-down, evacuate) the leader
 * writes `<prefix>claims/<host>`, attached to its leadership lease. The claim is
 *  - exclusive: created only if absent, in a transaction that also requires etcd's leader
 *    key to be on the same lease — two instances can never both hold one host;
 *  - checked before every side effect by `assertHeld()`: one etcd round trip comparing the
 *    claim's create revision and lease and the leader key's lease, plus the local freshness
 *    of the term on both sides of that round trip;
 *  - gone with the lease when its leader dies: nothing to clean up after a crash.
 */

export interface ClaimRecord {
  instanceId: string;
  incarnation: string;
  recoveryId: string;
  at: string;
}

export interface Claim {
  readonly host: string;
  readonly recoveryId: string;
  readonly instanceId: string;
  readonly leaseId: string;
  /** Create revision of the claim key: a claim deleted and written again is another claim. */
  readonly createRevision: string;
  readonly modRevision: string;
  /** The leadership term that holds the claim. */
  readonly term: LeaderTerm;
  /** Aborted when that term ends: pass it to the side effects done under the claim. */
  readonly signal: AbortSignal;
}

/** What claims need from the leader election (LeaderElection provides it). */
export interface Leadership {
  term(): LeaderTerm | null;
  /** Full etcd key of the leader record. */
  readonly leaderKey: string;
}

export class NotLeaderError extends NotOursError {
  override name = "NotLeaderError";
}

export class ClaimHeldError extends HeldElsewhereError {
  override name = "ClaimHeldError";
  constructor(
    readonly host: string,
    readonly holder: ClaimRecord,
  ) {
    super(`host ${host} is claimed by ${holder.instanceId} for recovery ${holder.recoveryId}`);
  }
}

export class ClaimLostError extends NotOursError {
  override name = "ClaimLostError";
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super(`claim on ${host} lost: ${reason}`);
  }
}

export interface HostClaimsOptions {
  client: Etcd3;
  /** Key prefix of the deployment (the store's prefix). */
  prefix: string;
  leadership: Leadership;
  /** Deadline of one etcd call; never longer than the term's remaining trust. Default 5 s. */
  requestTimeoutMs?: number;
  logger?: Logger;
}

const MAX_ATTEMPTS = 5;

export class HostClaims {
  readonly #ks: Keyspace;
  readonly #leadership: Leadership;
  readonly #timeoutMs: number;
  readonly #log: Logger;

  constructor(opts: HostClaimsOptions) {
    this.#ks = new Keyspace(opts.client, opts.prefix.endsWith("/") ? opts.prefix : `${opts.prefix}/`);
    this.#leadership = opts.leadership;
    this.#timeoutMs = opts.requestTimeoutMs ?? 5_000;
    this.#log = (opts.logger ?? silentLogger()).child({ component: "host-claims" });
  }

  /**
   * Claim `host` for `recoveryId` under the current leadership term. Idempotent for this
   * instance (its own claim is taken over and re-attached to the current lease). Throws
   * NotLeaderError when this instance does not lead, ClaimHeldError when another holds it.
   */
  async claim(host: string, recoveryId: string): Promise<Claim> {
    const ks = this.#ks;
    const rel = claimKey(host);
    const leaderKey = this.#leadership.leaderKey;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const term = this.#leadership.term();
      if (!term) throw new NotLeaderError(`cannot claim ${host}: this instance does not lead`);
      const record: ClaimRecord = { instanceId: term.instanceId, incarnation: term.incarnation, recoveryId, at: new Date().toISOString() };
      const leads = keyLeaseIs(leaderKey, term.leaseId);
      const res = await withDeadline(
        ks.txn([leads, ks.absent(rel)], [ks.putJson(rel, record, term.leaseId), ks.get(rel)], [ks.get(rel), getKey(leaderKey)]),
        this.deadline(term),
        `claim ${host}`,
      );
      if (res.succeeded) return this.made(host, record, kvs(res.responses[1])[0], term);

      const [cur] = kvs(res.responses[0]);
      const [leader] = kvs(res.responses[1]);
      if (leader?.lease !== term.leaseId) throw new NotLeaderError(`cannot claim ${host}: etcd does not list this instance as leader`);
      if (!cur) continue; // released meanwhile: try again
      const holder = parseJson<ClaimRecord>(cur);
      if (holder.instanceId !== term.instanceId || holder.incarnation !== term.incarnation) throw new ClaimHeldError(host, holder);
      // Ours already, on this very lease and for this recovery: nothing to write.
      if (cur.lease === term.leaseId && holder.recoveryId === recoveryId) return this.made(host, holder, cur, term);

      // Our own claim (an earlier call, or a lost answer): take it over on the current lease.
      const again = await withDeadline(
        ks.txn([leads, ks.modRevIs(rel, cur.mod_revision)], [ks.putJson(rel, record, term.leaseId), ks.get(rel)]),
        this.deadline(term),
        `claim ${host}`,
      );
      if (again.succeeded) return this.made(host, record, kvs(again.responses[1])[0], term);
    }
    throw new Error(`could not claim ${host}: it kept changing under us`);
  }

  /**
   * Resolve only if the claim still stands: the claim key exists with the same create
   * revision on the same lease, etcd's leader key is on that lease, and the term is fresh
   * locally before and after the round trip. Otherwise throw ClaimLostError. Call it before
   * every side effect done for the claimed host.
   */
  async assertHeld(claim: Claim): Promise<void> {
    const { term, host } = claim;
    if (!term.isFresh()) throw new ClaimLostError(host, "this instance's leadership is not fresh");
    const ks = this.#ks;
    const rel = claimKey(host);
    const leaderKey = this.#leadership.leaderKey;
    let res;
    try {
      res = await withDeadline(
        ks.txn(
          [ks.createRevIs(rel, claim.createRevision), ks.leaseIs(rel, claim.leaseId), keyLeaseIs(leaderKey, claim.leaseId)],
          [],
          [ks.get(rel), getKey(leaderKey)],
        ),
        this.deadline(term),
        `check claim on ${host}`,
      );
    } catch (err) {
      throw new ClaimLostError(host, `could not confirm it with etcd: ${errorMessage(err)}`);
    }
    if (!res.succeeded) {
      const [cur] = kvs(res.responses[0]);
      const [leader] = kvs(res.responses[1]);
      throw new ClaimLostError(host, lostReason(cur, leader, claim));
    }
    if (!term.isFresh()) throw new ClaimLostError(host, "this instance's leadership went stale during the check");
  }

  /** Give the host up (after the recovery ended). Only deletes this very claim. */
  async release(claim: Claim): Promise<void> {
    const ks = this.#ks;
    const rel = claimKey(claim.host);
    const res = await withDeadline(ks.txn([ks.createRevIs(rel, claim.createRevision)], [ks.del(rel)]), this.#timeoutMs, `release ${claim.host}`);
    if (!res.succeeded) this.#log.debug({ host: claim.host }, "claim was already gone at release");
  }

  /** Who holds `host`, if anyone. */
  async holder(host: string): Promise<(ClaimRecord & { leaseId: string }) | null> {
    const [kv] = await withDeadline(this.#ks.readOne(this.#ks.get(claimKey(host))), this.#timeoutMs, `read claim on ${host}`);
    return kv ? { ...parseJson<ClaimRecord>(kv), leaseId: kv.lease } : null;
  }

  /** Every current claim (for status pages). */
  async list(): Promise<(ClaimRecord & { host: string; leaseId: string })[]> {
    const all = await withDeadline(this.#ks.readOne(this.#ks.range("claims/")), this.#timeoutMs, "list claims");
    return all.map((kv) => ({ host: unseg(this.#ks.rel(kv).slice("claims/".length)), ...parseJson<ClaimRecord>(kv), leaseId: kv.lease }));
  }

  private deadline(term: LeaderTerm): number {
    return Math.max(1, Math.min(this.#timeoutMs, term.remainingMs()));
  }

  private made(host: string, record: ClaimRecord, kv: IKeyValue | undefined, term: LeaderTerm): Claim {
    if (!kv) throw new Error(`claim on ${host} written but not read back`);
    this.#log.info({ host, recovery: record.recoveryId, revision: kv.create_revision }, "host claimed");
    return {
      host,
      recoveryId: record.recoveryId,
      instanceId: record.instanceId,
      leaseId: term.leaseId,
      createRevision: kv.create_revision,
      modRevision: kv.mod_revision,
      term,
      signal: term.signal,
    };
  }
}

function claimKey(host: string): string {
  return `claims/${seg(host)}`;
}

function lostReason(cur: IKeyValue | undefined, leader: IKeyValue | undefined, claim: Claim): string {
  if (!cur) return "the claim no longer exists (released, or its lease expired)";
  if (cur.create_revision !== claim.createRevision) {
    const holder = parseJson<ClaimRecord>(cur);
    return `the host was claimed again by ${holder.instanceId} for recovery ${holder.recoveryId}`;
  }
  if (cur.lease !== claim.leaseId) return "the claim moved to another lease";
  if (leader?.lease !== claim.leaseId) return "etcd no longer lists this instance as leader";
  return "etcd refused the check";
}
