import pLimit from "p-limit";
import type { Logger } from "../logging.js";
import type { HostCapacity } from "../domain/ports/cloud.js";
import { errorMessage } from "../util/errors.js";
import { minMicroversion } from "../openstack/microversion.js";
import type { NovaClient, NovaHypervisor } from "../openstack/nova.js";
import { freeOf, type Inventory, type PlacementClient } from "../openstack/placement.js";

/**
 * Free capacity per compute host that could receive evacuated instances: enabled, up and
 * not forced down, optionally limited to an availability zone.
 * Figures come from Placement (inventory totals, reserved, allocation ratios, usages —
 * what the scheduler itself uses); when Placement is unavailable, from os-hypervisors
 * requested at ≤ 2.87 (physical figures: allocation ratios are not applied there).
 */

export interface CapacityFigures {
  vcpus: number;
  ramMb: number;
  diskGb: number;
}

export interface ComputeHostCapacity extends HostCapacity {
  host: string;
  zone: string | null;
  free: CapacityFigures;
  total: CapacityFigures;
  used: CapacityFigures;
  source: "placement" | "hypervisors";
}

export interface CapacityQuery {
  availabilityZone?: string;
  /** Hosts left out (e.g. the failed one). */
  excludeHosts?: string[];
  signal?: AbortSignal;
}

export interface CapacityDeps {
  nova: NovaClient;
  /** Omit to use os-hypervisors only. */
  placement?: PlacementClient;
  /** Inventories read lately, shared by the readings (omit: each reading reads them). */
  inventories?: InventoryCache;
  logger: Logger;
}

/**
 * The resource providers' inventories (totals, reserved, allocation ratios) for `ttlMs`:
 * they change when an operator reconfigures a host, not as instances come and go, so a
 * storm's capacity readings ask Placement for each provider's usages and reuse its
 * inventory: half the requests (two per compute host otherwise, hundreds per reading).
 */
export class InventoryCache {
  readonly #entries = new Map<string, { at: number; inventories: Record<string, Inventory> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(uuid: string, read: () => Promise<Record<string, Inventory>>): Promise<Record<string, Inventory>> {
    const hit = this.#entries.get(uuid);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.inventories;
    const at = this.now();
    const inventories = await read();
    this.#entries.set(uuid, { at, inventories });
    return inventories;
  }

  /** Drop what is older than the TTL (a provider gone stays no longer than that). */
  prune(): void {
    const now = this.now();
    for (const [uuid, e] of this.#entries) if (now - e.at >= this.ttlMs) this.#entries.delete(uuid);
  }
}

/** The newest microversion whose os-hypervisors still reports vcpus/memory/disk figures. */
export const HYPERVISOR_FIGURES_MAX_MICROVERSION = "2.87";

export async function getComputeCapacity(deps: CapacityDeps, q: CapacityQuery = {}): Promise<ComputeHostCapacity[]> {
  const { nova, logger } = deps;
  const signal = q.signal;
  const services = await nova.listServices({ binary: "nova-compute" }, signal);
  let hosts = services.filter((s) => s.status === "enabled" && s.state === "up" && s.forced_down !== true);
  if (q.availabilityZone) hosts = hosts.filter((s) => s.zone === q.availabilityZone);
  if (q.excludeHosts?.length) hosts = hosts.filter((s) => !q.excludeHosts!.includes(s.host));
  if (hosts.length === 0) return [];
  const zoneOf = new Map(hosts.map((s) => [s.host, s.zone ?? null]));

  if (deps.placement) {
    try {
      return await fromPlacement(deps.placement, deps.inventories, await nova.listHypervisors({ signal }), zoneOf, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      logger.warn({ err: errorMessage(err) }, "Placement unavailable for the capacity check: using os-hypervisors figures");
    }
  }
  const mv = minMicroversion(nova.microversion, HYPERVISOR_FIGURES_MAX_MICROVERSION);
  const hypervisors = await nova.listHypervisors({ microversion: mv, signal });
  return fromHypervisors(hypervisors, zoneOf);
}

function byHost(hypervisors: NovaHypervisor[], zoneOf: Map<string, string | null>): Map<string, NovaHypervisor[]> {
  const map = new Map<string, NovaHypervisor[]>();
  for (const h of hypervisors) {
    if (!zoneOf.has(h.service.host)) continue;
    map.set(h.service.host, [...(map.get(h.service.host) ?? []), h]);
  }
  return map;
}

function zero(): CapacityFigures {
  return { vcpus: 0, ramMb: 0, diskGb: 0 };
}

async function fromPlacement(
  placement: PlacementClient,
  cache: InventoryCache | undefined,
  hypervisors: NovaHypervisor[],
  zoneOf: Map<string, string | null>,
  signal?: AbortSignal,
): Promise<ComputeHostCapacity[]> {
  const limit = pLimit(8);
  const groups = byHost(hypervisors, zoneOf);
  cache?.prune();
  const inventories = (uuid: string): Promise<Record<string, Inventory>> =>
    cache ? cache.get(uuid, () => placement.inventories(uuid, signal)) : placement.inventories(uuid, signal);
  const out = await Promise.all(
    [...groups.entries()].map(([host, nodes]) =>
      limit(async () => {
        const c: ComputeHostCapacity = { host, zone: zoneOf.get(host) ?? null, free: zero(), total: zero(), used: zero(), source: "placement" };
        for (const node of nodes) {
          // From 2.53 the hypervisor id is the compute node uuid, which is its resource provider's uuid.
          const uuid = String(node.id);
          const [inv, usage] = await Promise.all([inventories(uuid), placement.usages(uuid, signal)]);
          const add = (key: keyof CapacityFigures, rc: string): void => {
            const f = freeOf(inv[rc], usage[rc]);
            c.total[key] += f.total;
            c.used[key] += f.used;
            c.free[key] += f.free;
          };
          add("vcpus", "VCPU");
          add("ramMb", "MEMORY_MB");
          add("diskGb", "DISK_GB");
        }
        return c;
      }),
    ),
  );
  return out.sort((a, b) => a.host.localeCompare(b.host));
}

function fromHypervisors(hypervisors: NovaHypervisor[], zoneOf: Map<string, string | null>): ComputeHostCapacity[] {
  const out: ComputeHostCapacity[] = [];
  for (const [host, nodes] of byHost(hypervisors, zoneOf)) {
    const c: ComputeHostCapacity = { host, zone: zoneOf.get(host) ?? null, free: zero(), total: zero(), used: zero(), source: "hypervisors" };
    for (const n of nodes) {
      c.total.vcpus += n.vcpus ?? 0;
      c.used.vcpus += n.vcpus_used ?? 0;
      c.total.ramMb += n.memory_mb ?? 0;
      c.used.ramMb += n.memory_mb_used ?? 0;
      c.total.diskGb += n.local_gb ?? 0;
      c.used.diskGb += n.local_gb_used ?? 0;
      c.free.ramMb += n.free_ram_mb ?? Math.max(0, (n.memory_mb ?? 0) - (n.memory_mb_used ?? 0));
      c.free.diskGb += n.free_disk_gb ?? Math.max(0, (n.local_gb ?? 0) - (n.local_gb_used ?? 0));
      c.free.vcpus += Math.max(0, (n.vcpus ?? 0) - (n.vcpus_used ?? 0));
    }
    out.push(c);
  }
  return out.sort((a, b) => a.host.localeCompare(b.host));
}
