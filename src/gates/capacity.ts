import type { HostState, Recovery } from "../domain/model.js";
import type { SelectionPolicy } from "../domain/selection.js";
import { SHARED_READ, type ComputeServiceInfo, type CloudPort, type HostCapacity, type InstanceInfo } from "../domain/ports/cloud.js";
import { classifyInstance } from "../domain/selection.js";
import { errorMessage } from "../util/errors.js";
import type { Gate } from "../domain/ports/gate.js";
import { alertsUnread, choosePool, describeLeftOut, firingHosts, type FiringAlerts } from "./capacity-pool.js";
import { coalescedJournal, earlierRecoveries, reservationOf, SharedListings, type CapacityJournal, type Reservation } from "./capacity-reserve.js";

export type Resource = "vcpus" | "ramMb" | "diskGb";

export interface CapacityGateOptions {
  mode: "block" | "warn";
  scope: "zone" | "all";
  headroomPercent: number;
  resources: readonly Resource[];
  evacuation: SelectionPolicy;
  /** Open recoveries, their instance records, the holds. */
  journal: CapacityJournal;
  /** A host whose heartbeat is this old on Nova's clock is left out (the nova-service confirmation's stale_seconds). */
  staleSeconds: number;
  /** The trigger alerts in Alertmanager, when it is configured: a host they name is left out. */
  alerts?: FiringAlerts;
  /** How long another recovery's host listing is shared between checks, ms (default 5000). */
  listingMaxAgeMs?: number;
}

/**
 * Capacity pre-check (before fencing, which nobody else does): will the failed host's
 * instances fit on the remaining enabled hosts — of the same availability zone, by
 * default — once room is kept for the instances of every recovery opened before this one
 * and not placed yet (capacity-reserve.ts), and with every host lifeboat doubts left out of
 * the pool (capacity-pool.ts)? Placed first-fit-decreasing by RAM, host by host, the earlier
 * recoveries' instances first, oldest recovery first; what does not fit is the shortfall
 * named in the reason, with what the room was kept for and which hosts were left out.
 */
export function capacityGate(evacuation: CloudPort, opts: CapacityGateOptions): Gate {
  const listings = new SharedListings((host, signal) => evacuation.listInstances(host, signal), opts.listingMaxAgeMs ?? 5000);
  const journal = coalescedJournal(opts.journal);
  return {
    name: "capacity",
    kind: "policy",
    async evaluate({ recovery, signal }) {
      if (!evacuation.capacity) return { result: "warn", reason: `the ${evacuation.driver} driver cannot report capacity; not checked` };
      let instances: InstanceInfo[];
      let hosts: HostCapacity[];
      let services: ComputeServiceInfo[];
      let open: Recovery[];
      let holds: HostState[];
      try {
        const listed = evacuation.listComputeServices(signal, SHARED_READ);
        // With the zone as scope, only its hosts are read (a request per host to Placement).
        const read = opts.scope === "zone" ? listed.then((all) => all.find((s) => s.host === recovery.host)?.zone ?? undefined) : Promise.resolve(undefined);
        [instances, hosts, services, open, holds] = await Promise.all([
          evacuation.listInstances(recovery.host, signal),
          read.then((zone) => evacuation.capacity!(signal, zone)),
          listed,
          journal.listRecoveries({ open: true }),
          journal.listHostStates(),
        ]);
      } catch (err) {
        if (signal.aborted) throw err;
        return { result: "undecided", reason: `cannot read capacity: ${errorMessage(err)}`, recheck: true, overridable: true };
      }
      let firing: Map<string, string> | null = null;
      let alertsNote = "";
      if (opts.alerts) {
        try {
          firing = await firingHosts(opts.alerts, signal);
        } catch (err) {
          if (signal.aborted) throw err;
          // Room is an estimate and the silences gate owns Alertmanager's outages: go on, and say so.
          alertsNote = alertsUnread(opts.alerts, err);
        }
      }

      const zoneOf = new Map(services.map((s) => [s.host, s.zone]));
      const zone = opts.scope === "zone" ? (zoneOf.get(recovery.host) ?? null) : null;
      const inZone = (z: string | null): boolean => zone === null || z === zone;
      const candidates = hosts.filter((h) => h.host !== recovery.host && inZone(h.zone));
      const others = open.filter((r) => r.id !== recovery.id);
      const { pool, leftOut } = choosePool(candidates, { open: others, holds, firing, services, staleSeconds: opts.staleSeconds });

      let reservations: Reservation[];
      try {
        reservations = await Promise.all(
          earlierRecoveries(others, recovery, (host) => {
            // A host Nova does not list: room is kept for it all the same (it errs towards waiting).
            const z = zoneOf.get(host);
            return z === undefined || inZone(z);
          }).map((r) =>
            reservationOf(r, { journal, listInstances: (host, s) => listings.read(host, s), policy: opts.evacuation }, signal).catch((err: unknown) => {
              if (signal.aborted) throw err;
              throw new Error(`the instances of recovery ${r.id} (${r.host}): ${errorMessage(err)}`);
            }),
          ),
        );
      } catch (err) {
        if (signal.aborted) throw err;
        return { result: "undecided", reason: `cannot read what to keep room for: ${errorMessage(err)}`, recheck: true, overridable: true };
      }
      reservations = reservations.filter((x) => x.instances.length > 0);

      const wanted = instances.filter((i) => classifyInstance(i, opts.evacuation).state === "pending");
      const slots = freeSlots(pool, opts.headroomPercent);
      const kept = reservations.map((x) => ({ ...x, fit: placeOnto(x.instances, slots, opts.resources) }));
      const fit = placeOnto(wanted, slots, opts.resources);
      const where = opts.scope === "zone" && zone ? `zone ${zone}` : "the cloud";
      const context = [describeReservations(reservations), describeLeftOut(leftOut), alertsNote].filter((x) => x !== "");
      const tail = context.length ? `; ${context.join("; ")}` : "";
      const details = {
        instances: wanted.length,
        hosts: pool.length,
        reservations: kept.map((x) => ({
          recoveryId: x.recovery.id,
          host: x.recovery.host,
          state: x.recovery.state,
          instances: x.instances.length,
          unplaced: x.fit.unplaced.length,
        })),
        leftOut,
      };
      if (fit.unplaced.length === 0) {
        return { result: "pass", reason: `${wanted.length} instance(s) fit on ${pool.length} host(s) of ${where}${tail}`, details };
      }
      const short = opts.resources.map((r) => `${fit.shortfall[r]} ${UNIT[r]}`).join(", ");
      const reason = `insufficient capacity in ${where}: ${fit.unplaced.length} of ${wanted.length} instance(s) do not fit (short ${short}): ${fit.unplaced
        .slice(0, 10)
        .map((i) => i.name)
        .join(", ")}${fit.unplaced.length > 10 ? ", …" : ""}${tail}`;
      return opts.mode === "block"
        ? {
            result: "block",
            reason,
            recheck: true,
            overridable: true,
            // The recoveries room is kept for: when one ends, the block's reason is written anew.
            subject: reservations.map((x) => x.recovery.id).join(",") || "none",
            details: { ...details, shortfall: fit.shortfall, unplaced: fit.unplaced.map((i) => i.id) },
          }
        : { result: "warn", reason };
    },
  };
}

/** "room reserved for 20 instance(s) of recovery r-… (compute-3)", or of several, oldest first. */
function describeReservations(list: readonly Reservation[]): string {
  if (list.length === 0) return "";
  const total = list.reduce((s, x) => s + x.instances.length, 0);
  if (list.length === 1) return `room reserved for ${total} instance(s) of recovery ${list[0]!.recovery.id} (${list[0]!.recovery.host})`;
  const each = list.slice(0, 5).map((x) => `${x.recovery.id} (${x.recovery.host}, ${x.instances.length})`);
  return `room reserved for ${total} instance(s) of ${list.length} earlier recoveries: ${each.join(", ")}${list.length > 5 ? ", …" : ""}`;
}

const UNIT: Record<Resource, string> = { vcpus: "vCPU", ramMb: "MB RAM", diskGb: "GB disk" };

function need(i: InstanceInfo, r: Resource): number {
  return r === "vcpus" ? i.flavor.vcpus : r === "ramMb" ? i.flavor.ramMb : i.flavor.diskGb;
}

type Free = Record<Resource, number>;

/** Each host's free room less the headroom kept. */
function freeSlots(hosts: readonly HostCapacity[], headroomPercent: number): Free[] {
  const keep = 1 - headroomPercent / 100;
  return hosts.map((h) => ({ vcpus: h.free.vcpus * keep, ramMb: h.free.ramMb * keep, diskGb: h.free.diskGb * keep }));
}

export function placeInstances(
  instances: InstanceInfo[],
  hosts: HostCapacity[],
  headroomPercent: number,
  resources: readonly Resource[],
): { unplaced: InstanceInfo[]; shortfall: Record<Resource, number> } {
  return placeOnto(instances, freeSlots(hosts, headroomPercent), resources);
}

/** First-fit-decreasing by RAM onto `free`, which it uses up (the next caller places on what is left). */
function placeOnto(instances: readonly InstanceInfo[], free: Free[], resources: readonly Resource[]): { unplaced: InstanceInfo[]; shortfall: Record<Resource, number> } {
  const unplaced: InstanceInfo[] = [];
  const sorted = [...instances].sort((a, b) => b.flavor.ramMb - a.flavor.ramMb || b.flavor.vcpus - a.flavor.vcpus);
  for (const inst of sorted) {
    const slot = free.find((f) => resources.every((r) => f[r] >= need(inst, r)));
    if (!slot) {
      unplaced.push(inst);
      continue;
    }
    for (const r of resources) slot[r] -= need(inst, r);
  }
  const shortfall = { vcpus: 0, ramMb: 0, diskGb: 0 };
  for (const r of resources) shortfall[r] = unplaced.reduce((s, i) => s + need(i, r), 0);
  return { unplaced, shortfall };
}
