import type { SelectionPolicy } from "../domain/selection.js";
import type { ComputeServiceInfo, CloudPort, HostCapacity, InstanceInfo } from "../domain/ports/cloud.js";
import { classifyInstance } from "../domain/selection.js";
import { errorMessage } from "../util/errors.js";
import type { Gate } from "../domain/ports/gate.js";

export type Resource = "vcpus" | "ramMb" | "diskGb";

/**
 * Capacity pre-check (before fencing, which nobody else does): will the failed host's
 * instances fit on the remaining enabled hosts — of the same availability zone, by
 * default? Placed first-fit-decreasing by RAM, host by host; what does not fit is the
 * shortfall named in the reason.
 */
export function capacityGate(
  evacuation: CloudPort,
  opts: { mode: "block" | "warn"; scope: "zone" | "all"; headroomPercent: number; resources: readonly Resource[]; evacuation: SelectionPolicy },
): Gate {
  return {
    name: "capacity",
    kind: "policy",
    async evaluate({ recovery, signal }) {
      if (!evacuation.capacity) return { result: "warn", reason: `the ${evacuation.driver} driver cannot report capacity; not checked` };
      let instances: InstanceInfo[];
      let hosts: HostCapacity[];
      let zone: string | null = null;
      try {
        let service: ComputeServiceInfo | null;
        [instances, hosts, service] = await Promise.all([
          evacuation.listInstances(recovery.host, signal),
          evacuation.capacity(signal),
          opts.scope === "zone" ? evacuation.getComputeService(recovery.host, signal) : Promise.resolve(null),
        ]);
        zone = service?.zone ?? null;
      } catch (err) {
        if (signal.aborted) throw err;
        return { result: "undecided", reason: `cannot read capacity: ${errorMessage(err)}`, recheck: true, overridable: true };
      }
      const wanted = instances.filter((i) => classifyInstance(i, opts.evacuation).state === "pending");
      const pool = hosts.filter((h) => h.host !== recovery.host && (opts.scope === "all" || zone === null || h.zone === zone));
      const fit = placeInstances(wanted, pool, opts.headroomPercent, opts.resources);
      const where = opts.scope === "zone" && zone ? `zone ${zone}` : "the cloud";
      if (fit.unplaced.length === 0) {
        return { result: "pass", reason: `${wanted.length} instance(s) fit on ${pool.length} host(s) of ${where}`, details: { instances: wanted.length, hosts: pool.length } };
      }
      const short = opts.resources.map((r) => `${fit.shortfall[r]} ${UNIT[r]}`).join(", ");
      const reason = `insufficient capacity in ${where}: ${fit.unplaced.length} of ${wanted.length} instance(s) do not fit (short ${short}): ${fit.unplaced
        .slice(0, 10)
        .map((i) => i.name)
        .join(", ")}${fit.unplaced.length > 10 ? ", …" : ""}`;
      return opts.mode === "block"
        ? { result: "block", reason, recheck: true, overridable: true, details: { shortfall: fit.shortfall, unplaced: fit.unplaced.map((i) => i.id) } }
        : { result: "warn", reason };
    },
  };
}

const UNIT: Record<Resource, string> = { vcpus: "vCPU", ramMb: "MB RAM", diskGb: "GB disk" };

function need(i: InstanceInfo, r: Resource): number {
  return r === "vcpus" ? i.flavor.vcpus : r === "ramMb" ? i.flavor.ramMb : i.flavor.diskGb;
}

export function placeInstances(
  instances: InstanceInfo[],
  hosts: HostCapacity[],
  headroomPercent: number,
  resources: readonly Resource[],
): { unplaced: InstanceInfo[]; shortfall: Record<Resource, number> } {
  const keep = 1 - headroomPercent / 100;
  const free = hosts.map((h) => ({ vcpus: h.free.vcpus * keep, ramMb: h.free.ramMb * keep, diskGb: h.free.diskGb * keep }));
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
