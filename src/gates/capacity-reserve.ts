import type { Store } from "../domain/journal.js";
import type { Recovery } from "../domain/model.js";
import type { InstanceInfo } from "../domain/ports/cloud.js";
import { classifyInstance, type SelectionPolicy } from "../domain/selection.js";
import { untilAborted } from "../util/abort.js";
import { CoalescedByKey } from "../util/coalesced.js";

/**
 * Room the capacity gate keeps for other recoveries. Hosts that fail together draw on the
 * same free room: each recovery reserves room for the instances of every recovery opened
 * before it (oldest first) that has not placed them yet, so that when only one fits the
 * older proceeds and the newer waits, instead of both passing a check only one of them fits.
 */

/** What the gate reads of the journal: open recoveries, their instance records, the holds. */
export type CapacityJournal = Pick<Store, "listRecoveries" | "instances" | "listHostStates">;

/**
 * The gate's reads of the journal, shared by the checks of one moment: an approval wakes every
 * held recovery's check at once, and each reads the open recoveries, the holds and the
 * instance records of every earlier recovery evacuating (fifty each). Callers share a read
 * that starts after they asked (`Coalesced`), so none sees the journal as it was before.
 */
export function coalescedJournal(journal: CapacityJournal): CapacityJournal {
  const recoveries = new CoalescedByKey<string, Recovery[]>();
  const instances = new CoalescedByKey<string, Awaited<ReturnType<Store["instances"]>>>();
  const holds = new CoalescedByKey<string, Awaited<ReturnType<Store["listHostStates"]>>>();
  return {
    listRecoveries: (filter) => recoveries.request(JSON.stringify(filter), () => journal.listRecoveries(filter)),
    instances: (recoveryId) => instances.request(recoveryId, () => journal.instances(recoveryId)),
    listHostStates: () => holds.request("", () => journal.listHostStates()),
  };
}

/** The instances of one earlier recovery not placed yet, for which room is kept. */
export interface Reservation {
  recovery: Recovery;
  instances: InstanceInfo[];
}

/** Recoveries whose stages move instances (a fence-only or a release moves none). */
const MOVES_INSTANCES = new Set<Recovery["kind"]>(["alert", "manual"]);

/** Opened first: older `createdAt`, then the smaller id (the same order seen from either recovery). */
export function openedBefore(a: Recovery, b: Recovery): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);
}

/**
 * The open recoveries `recovery` keeps room for, oldest first: those that move instances,
 * opened before it, of a host in the same pool (`sameScope`). A real recovery keeps no room
 * for a dry run (it moves nothing); a dry run keeps room for every earlier one, as the
 * real recovery would.
 */
export function earlierRecoveries(open: readonly Recovery[], recovery: Recovery, sameScope: (host: string) => boolean): Recovery[] {
  return open
    .filter((r) => r.id !== recovery.id && r.host !== recovery.host && MOVES_INSTANCES.has(r.kind) && openedBefore(r, recovery))
    .filter((r) => !r.dryRun || recovery.dryRun)
    .filter((r) => sameScope(r.host))
    .sort((a, b) => (openedBefore(a, b) ? -1 : openedBefore(b, a) ? 1 : 0));
}

/**
 * The instances of an earlier recovery that still need room:
 *  - before `evacuating`: its host's instances as Nova lists them, selected by the policy
 *    (what its evacuating stage will select);
 *  - `evacuating`: its journaled records still pending or evacuating, those Nova still
 *    lists on the failed host (one already rebuilding elsewhere holds its room there, in
 *    Placement's usages, already); before the stage journaled its list, as before;
 *  - later (`notifying`): none, every instance has been dealt with.
 */
export async function reservationOf(
  r: Recovery,
  deps: { journal: CapacityJournal; listInstances: (host: string, signal: AbortSignal) => Promise<InstanceInfo[]>; policy: SelectionPolicy },
  signal: AbortSignal,
): Promise<Reservation> {
  if (r.state === "notifying") return { recovery: r, instances: [] };
  const listed = await deps.listInstances(r.host, signal);
  if (r.state === "evacuating") {
    const records = await deps.journal.instances(r.id);
    if (records.length > 0) {
      const left = new Set(records.filter((x) => x.state === "pending" || x.state === "evacuating").map((x) => x.instanceId));
      return { recovery: r, instances: listed.filter((i) => left.has(i.id)) };
    }
  }
  return { recovery: r, instances: listed.filter((i) => classifyInstance(i, deps.policy).state === "pending") };
}

/**
 * Instance listings of other recoveries' hosts, shared for a few seconds: each blocked
 * recovery re-checks on its own schedule, and without this every one of N recoveries would
 * list every older one's host at every re-check (N² listings). The failed host's own list is
 * never taken from here.
 */
export class SharedListings {
  readonly #entries = new Map<string, { at: number; list: Promise<InstanceInfo[]> }>();

  constructor(
    private readonly list: (host: string, signal: AbortSignal) => Promise<InstanceInfo[]>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  read(host: string, signal: AbortSignal): Promise<InstanceInfo[]> {
    const hit = this.#entries.get(host);
    if (hit && this.now() - hit.at <= this.maxAgeMs) return untilAborted(hit.list, signal);
    // The listing is shared: one caller's abort must not fail it for the others.
    const list = this.list(host, new AbortController().signal);
    this.#entries.set(host, { at: this.now(), list });
    list.catch(() => {
      if (this.#entries.get(host)?.list === list) this.#entries.delete(host);
    });
    return untilAborted(list, signal);
  }
}
