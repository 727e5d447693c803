import type { EvacuationSlot } from "../domain/ports/cloud.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import { AbortError, abortReason, sleep } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";

/** The bounds of the budget: the site's and each zone's. */
export interface BudgetLimits {
  /** Evacuations in flight at once across every recovery (evacuation.site_concurrency). */
  site: number;
  /** The same per availability zone; 0: no bound per zone (evacuation.zone_concurrency). */
  zone: number;
}

/** One instance's claim on the budget: who asks, its bounds and its place in the order. */
export interface SlotRequest {
  recoveryId: string;
  /** The recovery's createdAt (ISO 8601 UTC): among equal priorities the older recovery goes first. */
  recoveryCreatedAt: string;
  /** The failed host's availability zone; null: unknown, no zone bound applies. */
  zone: string | null;
  /** Evacuations its recovery may drive at once (evacuation.concurrency). */
  recoveryLimit: number;
  instanceId: string;
  name: string;
  /** Higher first. */
  priority: number;
  /** Aborts the waits of this slot (they reject with its reason). */
  signal?: AbortSignal;
  /**
   * True while the instance's latest evacuate call has no known fate (sent, neither answered
   * nor seen in Nova's records). The driver hands its slot on while it watches such a call,
   * but Nova may be acting on it: it still counts for the site and the zone (not for its
   * recovery's own bound) until its fate is known.
   */
  callUnsettled?: () => boolean;
}

/** An evacuation the journal shows in flight (instance state `evacuating`) when this process began to lead. */
export interface InFlightEvacuation {
  recoveryId: string;
  instanceId: string;
  zone: string | null;
}

/** The slot the evacuating stage holds for one instance and hands to the driver. */
export interface BudgetSlot extends EvacuationSlot {
  /**
   * Take the slot at once, past every bound if need be: the journal shows this instance's
   * evacuation may already run in Nova (a resumed recovery), so it never waits behind
   * evacuations not sent yet. A reservation counted for it at start-up becomes this slot.
   */
  resume(): void;
  /** The attempt is over: a slot the driver handed on while its call had no known fate counts no more. */
  attemptEnded(): void;
  /**
   * The stage stops while this evacuation may still run in Nova: it stays counted, as a
   * reservation the stage's next run resumes (dropped when the recovery leaves
   * `evacuating` or the budget is restored for a new term).
   */
  suspend(): void;
  /** Done with this instance: nothing of it counts any more. */
  close(): void;
}

interface Entry {
  recoveryId: string;
  zone: string | null;
  /** Counted against its recovery's own bound (not while handed on with a call of unknown fate). */
  forRecovery: boolean;
  /** The slot that counts it; null: a reservation (in flight per the journal, not claimed yet). */
  owner: symbol | null;
}

interface Waiter {
  key: string;
  req: SlotRequest;
  seq: number;
  grant(entry: Entry): void;
  fail(err: Error): void;
}

export interface BudgetOptions {
  metrics?: Pick<Metrics, "evacuationsInFlight" | "evacuationsWaiting">;
  logger?: Logger;
}

/**
 * One bound on the evacuations in flight in Nova for the whole site, shared by every
 * recovery of this process (the leader), with an optional bound per availability zone and
 * each recovery's own concurrency below them. Slots are granted in priority order across
 * every open recovery: the instance's priority, then the older recovery, then the instance
 * name; a waiter that one of its own bounds (zone, recovery) holds back lets the next one
 * through. An evacuation counts from its evacuate call until the driver is done with it,
 * except a slot the driver hands on because the evacuation runs past its timeout.
 *
 * At the start of each term (start-up, takeover) `restore` counts the evacuations the
 * journal shows in flight before any new slot is granted, so a crash or a leadership change
 * in the middle of a storm resumes under the same bound however the recoveries' runners
 * interleave.
 */
export class EvacuationBudget {
  readonly #entries = new Map<string, Entry>();
  readonly #zones = new Map<string, number>();
  readonly #recoveries = new Map<string, number>();
  /** Sorted: the next to be granted first. */
  #waiting: Waiter[] = [];
  #seq = 0;
  /** Bumped by each reset: slots of an earlier term change nothing. */
  #epoch = 0;
  /** Keys resumed this term: a journal read that raced with them adds no reservation for them. */
  readonly #resumed = new Set<string>();
  /** While set, the journal's in-flight evacuations are being counted: no new grant. */
  #restoring: AbortController | null = null;

  constructor(
    readonly limits: BudgetLimits,
    private readonly opts: BudgetOptions = {},
  ) {
    if (!Number.isInteger(limits.site) || limits.site < 1) throw new RangeError(`evacuation budget: site bound must be a positive integer (got ${limits.site})`);
    if (!Number.isInteger(limits.zone) || limits.zone < 0) throw new RangeError(`evacuation budget: zone bound must be 0 or a positive integer (got ${limits.zone})`);
  }

  /** Evacuations counted now (held, handed on with a call of unknown fate, reserved). */
  get inFlight(): number {
    return this.#entries.size;
  }

  /** Instances waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Counted now in one zone. */
  inZone(zone: string): number {
    return this.#zones.get(zone) ?? 0;
  }

  /** A slot for one instance (not held yet). */
  slot(req: SlotRequest): BudgetSlot {
    const key = keyOf(req.recoveryId, req.instanceId);
    const epoch = this.#epoch;
    const token = Symbol(key);
    let held = false;
    let entry: Entry | null = null;
    const live = (): boolean => epoch === this.#epoch;
    const mine = (): Entry | null => (entry && live() && entry.owner === token && this.#entries.get(key) === entry ? entry : null);
    const drop = (): void => {
      const e = mine();
      entry = null;
      if (e) this.#remove(key, e);
    };
    return {
      get held() {
        return held;
      },
      acquire: async () => {
        if (held) return;
        // The driver takes a slot again only before a new call, once Nova shows nothing
        // running for the server: whatever was handed on no longer runs there.
        drop();
        if (!live()) throw new AbortError("the evacuation budget was reset for a new term");
        await this.#wait(key, req, token, (e) => {
          entry = e;
          held = true;
        });
      },
      release: () => {
        const e = mine();
        if (!e) {
          held = false;
          entry = null;
          return;
        }
        if (held) {
          held = false;
          // Handed on while the call may still act in Nova: it counts for the site and the zone until its fate is known.
          if (req.callUnsettled?.()) this.#setForRecovery(e, false);
          else drop();
          return;
        }
        // Handed on before, and again now (the call's evacuation ran past its timeout): it stops counting.
        if (!req.callUnsettled?.()) drop();
      },
      resume: () => {
        if (held || !live()) return;
        const e = mine();
        if (e) this.#setForRecovery(e, true);
        else entry = this.#claim(key, req, token);
        held = true;
      },
      attemptEnded: () => {
        if (!held) drop();
      },
      suspend: () => {
        held = false;
        const e = mine();
        entry = null;
        if (!e) return;
        e.owner = null;
        this.#setForRecovery(e, true);
        this.#report();
      },
      close: () => {
        held = false;
        drop();
      },
    };
  }

  /**
   * A new term (start-up, takeover): forget everything counted, count the evacuations
   * `load` finds in flight in the journal, and grant nothing new before they are counted.
   * Slots resumed meanwhile are granted at once. A failed read is tried again (backing off)
   * until it succeeds or the budget is reset again.
   */
  restore(load: () => Promise<InFlightEvacuation[]>): Promise<void> {
    this.reset();
    const ctl = new AbortController();
    this.#restoring = ctl;
    const run = async (): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          const found = await load();
          if (this.#restoring !== ctl) return;
          let reserved = 0;
          for (const f of found) {
            const key = keyOf(f.recoveryId, f.instanceId);
            if (this.#resumed.has(key) || this.#entries.has(key)) continue;
            this.#add(key, { recoveryId: f.recoveryId, zone: f.zone, forRecovery: true, owner: null });
            reserved++;
          }
          this.#restoring = null;
          if (found.length) this.opts.logger?.info({ inFlight: found.length, reserved }, "evacuations in flight per the journal counted against the evacuation budget");
          this.#pump();
          return;
        } catch (err) {
          if (this.#restoring !== ctl) return;
          this.opts.logger?.warn({ err: errorMessage(err) }, "could not read the evacuations in flight from the journal; no new evacuation starts until it is read");
          await sleep(Math.min(30_000, 500 * 2 ** attempt), ctl.signal).catch(() => undefined);
          if (ctl.signal.aborted) return;
        }
      }
    };
    return run();
  }

  /** Forget everything (the term ended): waiters are turned away, counts start from zero. */
  reset(): void {
    this.#restoring?.abort();
    this.#restoring = null;
    this.#epoch++;
    this.#entries.clear();
    this.#zones.clear();
    this.#recoveries.clear();
    this.#resumed.clear();
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.fail(new AbortError("the evacuation budget was reset for a new term"));
    this.#report();
  }

  /** The recovery left `evacuating`: reservations of it nobody claimed count no more. */
  forget(recoveryId: string): void {
    let changed = false;
    for (const [key, e] of this.#entries) {
      if (e.recoveryId === recoveryId && e.owner === null) {
        this.#remove(key, e, false);
        changed = true;
      }
    }
    if (changed) this.#pump();
  }

  #claim(key: string, req: SlotRequest, token: symbol): Entry {
    this.#resumed.add(key);
    const e = this.#entries.get(key);
    if (e) {
      // A reservation, or the slot of a stage run that has not let go yet: this slot takes it over.
      e.owner = token;
      this.#setForRecovery(e, true);
      return e;
    }
    return this.#add(key, { recoveryId: req.recoveryId, zone: req.zone, forRecovery: true, owner: token });
  }

  #wait(key: string, req: SlotRequest, token: symbol, granted: (e: Entry) => void): Promise<void> {
    const signal = req.signal;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(w);
        if (i < 0) return;
        this.#waiting.splice(i, 1);
        this.#report();
        reject(abortReason(signal));
      };
      const w: Waiter = {
        key,
        req,
        seq: this.#seq++,
        grant: (e) => {
          signal?.removeEventListener("abort", onAbort);
          e.owner = token;
          granted(e);
          resolve();
        },
        fail: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#insert(w);
      this.#pump();
    });
  }

  #insert(w: Waiter): void {
    // Binary search for the first waiter that goes after `w`.
    let lo = 0;
    let hi = this.#waiting.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (goesBefore(this.#waiting[mid]!, w)) lo = mid + 1;
      else hi = mid;
    }
    this.#waiting.splice(lo, 0, w);
  }

  #fits(req: SlotRequest): boolean {
    if (this.#entries.size >= this.limits.site) return false;
    if (this.limits.zone > 0 && req.zone !== null && (this.#zones.get(req.zone) ?? 0) >= this.limits.zone) return false;
    return (this.#recoveries.get(req.recoveryId) ?? 0) < req.recoveryLimit;
  }

  /** Grant, in order, every waiter whose bounds all allow it. */
  #pump(): void {
    if (!this.#restoring) {
      for (let i = 0; i < this.#waiting.length && this.#entries.size < this.limits.site; ) {
        const w = this.#waiting[i]!;
        if (!this.#fits(w.req)) {
          i++;
          continue;
        }
        this.#waiting.splice(i, 1);
        w.grant(this.#add(w.key, { recoveryId: w.req.recoveryId, zone: w.req.zone, forRecovery: true, owner: null }, false));
      }
    }
    this.#report();
  }

  #add(key: string, e: Entry, report = true): Entry {
    this.#entries.set(key, e);
    if (e.zone !== null) this.#zones.set(e.zone, (this.#zones.get(e.zone) ?? 0) + 1);
    if (e.forRecovery) bump(this.#recoveries, e.recoveryId, 1);
    if (report) this.#report();
    return e;
  }

  #remove(key: string, e: Entry, pump = true): void {
    this.#entries.delete(key);
    if (e.zone !== null) bump(this.#zones, e.zone, -1);
    if (e.forRecovery) bump(this.#recoveries, e.recoveryId, -1);
    if (pump) this.#pump();
  }

  #setForRecovery(e: Entry, on: boolean): void {
    if (e.forRecovery === on) return;
    e.forRecovery = on;
    bump(this.#recoveries, e.recoveryId, on ? 1 : -1);
    if (!on) this.#pump();
  }

  #report(): void {
    this.opts.metrics?.evacuationsInFlight.set(this.#entries.size);
    this.opts.metrics?.evacuationsWaiting.set(this.#waiting.length);
  }
}

function keyOf(recoveryId: string, instanceId: string): string {
  return `${recoveryId}\u0000${instanceId}`;
}

function bump(m: Map<string, number>, k: string, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

/** The grant order: higher priority, then the older recovery, then the name; then first come. */
function goesBefore(a: Waiter, b: Waiter): boolean {
  const x = a.req;
  const y = b.req;
  if (x.priority !== y.priority) return x.priority > y.priority;
  if (x.recoveryCreatedAt !== y.recoveryCreatedAt) return x.recoveryCreatedAt < y.recoveryCreatedAt;
  if (x.recoveryId !== y.recoveryId) return x.recoveryId < y.recoveryId;
  const byName = x.name.localeCompare(y.name);
  if (byName !== 0) return byName < 0;
  if (x.instanceId !== y.instanceId) return x.instanceId < y.instanceId;
  return a.seq < b.seq;
}
