import { NotOursError } from "../domain/errors.js";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Etcd3 } from "etcd3";
import { etcd3 } from "../etcd/lazy.js";
import { silentLogger, type Logger } from "../logging.js";
import { errorMessage } from "../util/errors.js";
import { Keyspace, kvs, parseJson } from "../etcd/kv.js";
import { keepAliveOnce } from "./keepalive.js";
import { withDeadline } from "../etcd/deadline.js";

/**
 * Leader election on etcd, for active-passive HA: every instance campaigns; the one whose
 * `<prefix>leader` key exists (created only if absent, attached to its lease) leads; the
 * others keep campaigning and take over once that key disappears with its lease.
 *
 * ## Why a leader stops acting before anyone else can start
 *
 * etcd expires a lease TTL seconds after the *server* received its last keep-alive, and a
 * new leader can only be elected after that (the old key goes with the lease). The server
 * received the keep-alive after we sent it, so in real time:
 *
 *     earliest expiry ≥ (send time of the last successful keep-alive) + TTL
 *
 * A leader trusts its leadership only until `sent + TTL/2` (by default) and steps down at
 * once when a keep-alive fails. Elapsed time is the larger of what the monotonic clock
 * (`performance.now()`) and the wall clock measured since the send: a wall-clock step
 * backwards (NTP, an operator) cannot extend the trust because the monotonic clock still
 * counts, and a system suspend — during which the monotonic clock stops — shows on the wall
 * clock. (Either clock jumping forward only makes it step down early: the safe side.)
 * The other TTL/2 (5 s with the default TTL of 10 s) is the margin for:
 *  - clock *rate* differences between this host and the etcd leader (ppm: microseconds),
 *  - a late timer or a stalled event loop: `isLeader()`, `LeaderTerm.isFresh()` and claims'
 *    `assertHeld()` compute freshness from the clock when called, not from a flag that a
 *    late timer would have cleared, so a stall cannot extend it;
 *  - the work already started after the last freshness check: callers check before each
 *    side effect and pass `term.signal` to it, so it is aborted when the term ends.
 * etcd never shortens a lease: on an etcd leader change the remaining TTLs are *extended*.
 *
 * Keep-alives go every TTL/3, so a keep-alive that fails, or is not answered within TTL/6,
 * ends the term. A term that ended because of a slow answer comes back only if the lease is
 * still alive and the leader key is still ours: no one else can have led meanwhile.
 */

export interface LeaderRecord {
  instanceId: string;
  /** Random per process: tells this process's keys from those of an earlier run. */
  incarnation: string;
  since: string;
}

export class LeadershipLostError extends NotOursError {
  override name = "LeadershipLostError";
}

/** One tenure as leader. Work done for the leader holds on to its term. */
export interface LeaderTerm {
  readonly instanceId: string;
  readonly incarnation: string;
  readonly leaseId: string;
  /** Aborted, with a LeadershipLostError, the moment this term ends. */
  readonly signal: AbortSignal;
  /** Monotonic time (`performance.now()`) until which the term is trustworthy unless renewed. */
  validUntil(): number;
  /** Milliseconds of trust left (0 once the term ended). */
  remainingMs(): number;
  isFresh(): boolean;
  /** Throws LeadershipLostError unless fresh. */
  assertFresh(): void;
}

export interface LeaderElectionOptions {
  client: Etcd3;
  /** Key prefix shared by the instances of one deployment (the store's prefix). */
  prefix: string;
  /** This instance's name, reported as the leader id. Must differ between instances. */
  instanceId: string;
  /** Lease TTL, whole seconds (etcd's minimum is 2). Default 10. */
  ttlSeconds?: number;
  /** Keep-alive period. Default TTL/3. */
  keepAliveIntervalMs?: number;
  /** Trust a renewal for this long after sending it. Default TTL/2; must be < TTL. */
  stepDownAfterMs?: number;
  /** Followers try to become leader this often. Default min(1 s, keep-alive period). */
  campaignIntervalMs?: number;
  /** Deadline of one etcd call. Default the keep-alive period. */
  requestTimeoutMs?: number;
  logger?: Logger;
  /** Monotonic clock, ms. Default performance.now(). */
  now?: () => number;
}

interface LeaseState {
  id: string;
  /** min(requested, granted) TTL in ms. */
  ttlMs: number;
  /** Send time of the grant or of the last successful keep-alive (monotonic ms). */
  renewedAt: number;
  /** The same instant on the wall clock (Date.now()). */
  renewedAtWall: number;
}

type ChangeListener = (leader: boolean, term: LeaderTerm | null) => void;

export class LeaderElection {
  readonly instanceId: string;
  readonly incarnation = randomBytes(6).toString("hex");
  readonly ttlMs: number;
  readonly keepAliveMs: number;
  readonly stepDownAfterMs: number;
  readonly campaignMs: number;
  readonly requestTimeoutMs: number;

  readonly #client: Etcd3;
  readonly #ks: Keyspace;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #listeners = new Set<ChangeListener>();

  #lease: LeaseState | null = null;
  #term: Term | null = null;
  /** Leases of ended terms to revoke (their keys would otherwise outlive us by up to TTL). */
  readonly #stale = new Map<string, number>();
  #holdOffUntil = 0;
  #started = false;
  #stopped = false;
  #loop: Promise<void> | null = null;
  #wake: AbortController | null = null;
  #stepDownTimer: NodeJS.Timeout | null = null;

  constructor(opts: LeaderElectionOptions) {
    const ttl = opts.ttlSeconds ?? 10;
    if (!Number.isInteger(ttl) || ttl < 2) throw new RangeError(`lease TTL must be a whole number of seconds ≥ 2, not ${ttl}`);
    this.ttlMs = ttl * 1000;
    this.keepAliveMs = opts.keepAliveIntervalMs ?? this.ttlMs / 3;
    this.stepDownAfterMs = opts.stepDownAfterMs ?? this.ttlMs / 2;
    this.campaignMs = opts.campaignIntervalMs ?? Math.min(1000, this.keepAliveMs);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? this.keepAliveMs;
    if (!(this.stepDownAfterMs < this.ttlMs)) throw new RangeError("stepDownAfterMs must be shorter than the lease TTL");
    if (!(this.keepAliveMs < this.stepDownAfterMs)) throw new RangeError("keep-alives must be more frequent than stepDownAfterMs");
    this.instanceId = opts.instanceId;
    this.#client = opts.client;
    this.#ks = new Keyspace(opts.client, opts.prefix.endsWith("/") ? opts.prefix : `${opts.prefix}/`);
    this.#log = (opts.logger ?? silentLogger()).child({ component: "leader-election", instance: opts.instanceId });
    this.#now = opts.now ?? (() => performance.now());
  }

  /** The full etcd key of the leader record (claims compare it in their transactions). */
  get leaderKey(): string {
    return `${this.#ks.prefix}leader`;
  }

  /** Start campaigning in the background. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop = this.loop();
  }

  /** True while this instance leads and its lease was renewed recently enough. */
  isLeader(): boolean {
    return this.term() !== null;
  }

  /** The current term, if this instance leads and is fresh. */
  term(): LeaderTerm | null {
    const t = this.#term;
    if (t && !t.isFresh()) {
      this.endTerm(`lease not renewed for ${Math.round(this.#now() - (this.#lease?.renewedAt ?? 0))} ms`);
      return null;
    }
    return t;
  }

  /** Monotonic instant (performance.now()) until which the leadership holds, or null. */
  leaseValidUntil(): number | null {
    return this.term()?.validUntil() ?? null;
  }

  /** The current leader's instance id, read from etcd (null: nobody leads). */
  async leaderId(): Promise<string | null> {
    const [kv] = await withDeadline(this.#ks.readOne(this.#ks.get("leader")), this.requestTimeoutMs, "leader lookup");
    return kv ? parseJson<LeaderRecord>(kv).instanceId : null;
  }

  /** Called with `true` and the new term when this instance becomes leader, `false` when it stops. */
  onChange(cb: ChangeListener): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /**
   * Step down and give the others a chance: the lease is revoked (the leader key and every
   * claim go with it) and this instance does not campaign for `holdOffMs` (default one TTL).
   */
  async resign(holdOffMs: number = this.ttlMs): Promise<void> {
    this.#holdOffUntil = this.#now() + holdOffMs;
    this.endTerm("resigned");
    await this.dropLease("resigned");
    this.wakeLoop();
  }

  /** Stop campaigning for good; a leader resigns (its lease is revoked). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.endTerm("stopped");
    this.wakeLoop();
    await this.#loop;
    await this.dropLease("stopped");
    if (this.#stepDownTimer) clearTimeout(this.#stepDownTimer);
    this.#stepDownTimer = null;
  }

  // ---- the campaign loop --------------------------------------------------------------

  private async loop(): Promise<void> {
    while (!this.#stopped) {
      let delay: number;
      try {
        delay = await this.step();
      } catch (err) {
        this.onEtcdError(err);
        delay = this.campaignMs;
      }
      if (this.#stopped) break;
      await this.sleep(delay);
    }
  }

  /** One round: renew or get a lease, campaign if following. Answers how long to wait. */
  private async step(): Promise<number> {
    await this.revokeStale();
    if (this.#stopped) return 0;
    const now = this.#now();
    if (now < this.#holdOffUntil) return this.#holdOffUntil - now;

    let lease = this.#lease;
    if (lease && now - lease.renewedAt >= lease.ttlMs) {
      // Not renewed for a whole TTL: etcd has dropped it or is about to.
      this.forgetLease(lease, "lease expired without renewal");
      lease = null;
    }
    if (!lease) lease = await this.grant();
    if (this.#now() - lease.renewedAt >= this.keepAliveMs) await this.renew(lease);
    if (!this.#term && this.#lease === lease) await this.campaign(lease);

    const untilRenewal = Math.max(0, this.keepAliveMs - (this.#now() - lease.renewedAt));
    return this.#term ? untilRenewal : Math.min(untilRenewal, this.campaignMs);
  }

  private async grant(): Promise<LeaseState> {
    const sentAt = this.#now();
    const sentAtWall = Date.now();
    const res = await withDeadline(this.#client.leaseClient.leaseGrant({ TTL: this.ttlMs / 1000 }), this.requestTimeoutMs, "lease grant");
    const lease: LeaseState = { id: res.ID, ttlMs: Math.min(this.ttlMs, Number(res.TTL) * 1000), renewedAt: sentAt, renewedAtWall: sentAtWall };
    if (this.#stopped) {
      this.#stale.set(lease.id, this.#now());
    } else {
      this.#lease = lease;
    }
    return lease;
  }

  private async renew(lease: LeaseState): Promise<void> {
    const sentAt = this.#now();
    const sentAtWall = Date.now();
    const ttlSeconds = await keepAliveOnce(this.#client, lease.id, this.requestTimeoutMs);
    if (ttlSeconds <= 0) throw new (etcd3().EtcdLeaseInvalidError)(lease.id);
    if (this.#lease !== lease) return;
    lease.ttlMs = Math.min(this.ttlMs, ttlSeconds * 1000);
    if (sentAt > lease.renewedAt) {
      lease.renewedAt = sentAt;
      lease.renewedAtWall = sentAtWall;
    }
    this.armStepDownTimer();
  }

  private async campaign(lease: LeaseState): Promise<void> {
    const ks = this.#ks;
    const record: LeaderRecord = { instanceId: this.instanceId, incarnation: this.incarnation, since: new Date().toISOString() };
    const res = await withDeadline(ks.txn([ks.absent("leader")], [ks.putJson("leader", record, lease.id)], [ks.get("leader")]), this.requestTimeoutMs, "campaign");
    if (res.succeeded) {
      // Resigned or stopped while the campaign was on its way: do not sit on the key.
      if (!this.beginTerm(lease) && (this.#stopped || this.#now() < this.#holdOffUntil)) this.forgetLease(lease, "resigned");
      return;
    }
    const [kv] = kvs(res.responses[0]);
    if (!kv) return; // gone meanwhile: next round
    if (kv.lease === lease.id) {
      this.beginTerm(lease); // ours already (an earlier answer was lost, or a slow keep-alive ended the term)
      return;
    }
    const holder = parseJson<LeaderRecord>(kv);
    if (holder.instanceId === this.instanceId && holder.incarnation === this.incarnation) {
      // Left over from an earlier term of this process on a lease we gave up: clear it.
      this.#stale.set(kv.lease, this.#now());
    }
  }

  private onEtcdError(err: unknown): void {
    const lease = this.#lease;
    if (err instanceof etcd3().EtcdLeaseInvalidError || /lease not found/i.test(errorMessage(err))) {
      if (lease) this.forgetLease(lease, "etcd says the lease is gone");
      return;
    }
    // Unreachable, timed out, …: stop acting now; the lease may still be renewed in time.
    if (this.#term) this.endTerm(`etcd error: ${errorMessage(err)}`);
    else this.#log.debug({ err: errorMessage(err) }, "campaign round failed");
  }

  // ---- terms --------------------------------------------------------------------------

  private beginTerm(lease: LeaseState): boolean {
    if (this.#stopped || this.#lease !== lease || this.#term || this.#now() < this.#holdOffUntil) return false;
    const term = new Term(this.instanceId, this.incarnation, lease, this.stepDownAfterMs / this.ttlMs, this.#now);
    if (!term.isFresh()) return false;
    this.#term = term;
    this.armStepDownTimer();
    this.#log.info({ lease: lease.id, validForMs: Math.round(term.remainingMs()) }, "became leader");
    this.emit(true, term);
    return true;
  }

  private endTerm(reason: string): void {
    const term = this.#term;
    if (!term) return;
    this.#term = null;
    if (this.#stepDownTimer) clearTimeout(this.#stepDownTimer);
    this.#stepDownTimer = null;
    term.end(reason);
    this.#log.warn({ reason }, "stepped down");
    this.emit(false, null);
  }

  /** Step down by the clock even if the loop is stuck waiting for etcd. */
  private armStepDownTimer(): void {
    if (this.#stepDownTimer) clearTimeout(this.#stepDownTimer);
    this.#stepDownTimer = null;
    const term = this.#term;
    if (!term) return;
    const check = (): void => {
      this.#stepDownTimer = null;
      if (this.#term !== term) return;
      if (term.isFresh()) {
        this.#stepDownTimer = setTimeout(check, Math.max(1, term.remainingMs()));
        return;
      }
      this.endTerm(`lease not renewed for ${Math.round(this.#now() - (this.#lease?.renewedAt ?? 0))} ms`);
    };
    this.#stepDownTimer = setTimeout(check, Math.max(1, term.remainingMs()));
  }

  private emit(leader: boolean, term: LeaderTerm | null): void {
    for (const cb of [...this.#listeners]) {
      try {
        cb(leader, term);
      } catch (err) {
        this.#log.error({ err: errorMessage(err) }, "leadership listener failed");
      }
    }
  }

  // ---- leases -------------------------------------------------------------------------

  private forgetLease(lease: LeaseState, reason: string): void {
    if (this.#lease !== lease) return;
    if (this.#term) this.endTerm(reason);
    this.#lease = null;
    this.#stale.set(lease.id, this.#now());
  }

  private async dropLease(reason: string): Promise<void> {
    const lease = this.#lease;
    if (lease) this.forgetLease(lease, reason);
    await this.revokeStale();
  }

  /** Revoke leases we gave up (best effort; a lease older than 2 TTL has expired anyway). */
  private async revokeStale(): Promise<void> {
    for (const [id, since] of [...this.#stale]) {
      if (this.#now() - since > 2 * this.ttlMs) {
        this.#stale.delete(id);
        continue;
      }
      try {
        await withDeadline(this.#client.leaseClient.leaseRevoke({ ID: id }), this.requestTimeoutMs, "lease revoke");
        this.#stale.delete(id);
      } catch (err) {
        if (err instanceof etcd3().EtcdLeaseInvalidError || /lease not found/i.test(errorMessage(err))) this.#stale.delete(id);
        else this.#log.debug({ lease: id, err: errorMessage(err) }, "could not revoke an old lease yet");
      }
    }
  }

  // ---- timing -------------------------------------------------------------------------

  private sleep(ms: number): Promise<void> {
    const wake = new AbortController();
    this.#wake = wake;
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      function done(): void {
        clearTimeout(timer);
        wake.signal.removeEventListener("abort", done);
        resolve();
      }
      wake.signal.addEventListener("abort", done, { once: true });
    });
  }

  private wakeLoop(): void {
    this.#wake?.abort();
  }
}

class Term implements LeaderTerm {
  readonly leaseId: string;
  readonly #controller = new AbortController();
  #ended = false;

  constructor(
    readonly instanceId: string,
    readonly incarnation: string,
    private readonly lease: LeaseState,
    /** Fraction of the TTL a renewal is trusted for. */
    private readonly trust: number,
    private readonly now: () => number,
  ) {
    this.leaseId = lease.id;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Time since the last renewal was sent: the larger of the monotonic and wall-clock measures. */
  private elapsedMs(): number {
    return Math.max(this.now() - this.lease.renewedAt, Date.now() - this.lease.renewedAtWall);
  }

  remainingMs(): number {
    return this.#ended ? 0 : Math.max(0, this.trust * this.lease.ttlMs - this.elapsedMs());
  }

  validUntil(): number {
    return this.#ended ? Number.NEGATIVE_INFINITY : this.now() + this.remainingMs();
  }

  isFresh(): boolean {
    return this.remainingMs() > 0;
  }

  assertFresh(): void {
    if (this.#ended) throw this.#controller.signal.reason instanceof Error ? this.#controller.signal.reason : new LeadershipLostError("leadership ended");
    if (!this.isFresh()) throw new LeadershipLostError("leadership is not fresh: the lease was not renewed in time");
  }

  end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#controller.abort(new LeadershipLostError(`leadership ended: ${reason}`));
  }
}
