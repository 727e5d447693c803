import { defaultScenario, type SandboxScenario, type ScenarioHost, type ScenarioServer } from "./cloud-scenario.js";

/**
 * A site laid out as data centres are: compute hosts in racks, racks in availability zones.
 * A rack shares its power feed and its top-of-rack switch, so it is what fails together
 * (`Sandbox.failRack`, `POST /racks/<rack>/fail`): the site `lifeboat demo --scenario rack`
 * and the storm benchmark use.
 *
 * Hosts are `compute-001`…, racks `rack-01`…, zones `az-1`…; hosts fill the racks in order
 * (rack-01 takes the first hosts) and the racks fill the zones in order, as evenly as the
 * counts allow. Every host runs `serversPerHost` small ACTIVE instances of the default
 * scenario's projects, plus `rackServersPerHost` on the hosts of `loadedRack` (the rack an
 * experiment will fail), so the hosts around it have room to take them.
 */
export interface RackScenarioOptions {
  /** Compute hosts (default 200). */
  hosts?: number;
  /** Availability zones (default 4). */
  zones?: number;
  /** Racks (default hosts / 10: ten hosts a rack). */
  racks?: number;
  /** Instances on every host (default 2). */
  serversPerHost?: number;
  /** The rack whose hosts carry `rackServersPerHost` instances instead (default: none). */
  loadedRack?: string;
  /** Instances on each host of `loadedRack` (default 50). */
  rackServersPerHost?: number;
  adminPassword?: string;
}

export function rackName(i: number, racks: number): string {
  return `rack-${String(i + 1).padStart(Math.max(2, String(racks).length), "0")}`;
}

export function zoneName(i: number): string {
  return `az-${i + 1}`;
}

export function rackScenario(opts: RackScenarioOptions = {}): SandboxScenario {
  const hostCount = opts.hosts ?? 200;
  const zoneCount = opts.zones ?? 4;
  const rackCount = opts.racks ?? Math.max(1, Math.round(hostCount / 10));
  if (!Number.isInteger(hostCount) || hostCount < 1) throw new Error(`rack scenario: hosts must be a whole number ≥ 1, not ${hostCount}`);
  if (!Number.isInteger(zoneCount) || zoneCount < 1) throw new Error(`rack scenario: zones must be a whole number ≥ 1, not ${zoneCount}`);
  if (!Number.isInteger(rackCount) || rackCount < zoneCount || rackCount > hostCount) {
    throw new Error(`rack scenario: racks must be a whole number between zones (${zoneCount}) and hosts (${hostCount}), not ${rackCount}`);
  }
  const perHost = opts.serversPerHost ?? 2;
  const rackLoad = opts.rackServersPerHost ?? 50;
  const width = Math.max(3, String(hostCount).length);
  const hosts: ScenarioHost[] = [];
  for (let i = 0; i < hostCount; i++) {
    // Even spreads: host i in rack ⌊i·racks/hosts⌋, rack r in zone ⌊r·zones/racks⌋.
    const rack = Math.floor((i * rackCount) / hostCount);
    const zone = Math.floor((rack * zoneCount) / rackCount);
    hosts.push({
      name: `compute-${String(i + 1).padStart(width, "0")}`,
      zone: zoneName(zone),
      rack: rackName(rack, rackCount),
      hostIp: `10.${zone}.${rack % 256}.${(i % 250) + 1}`,
      aggregates: ["ha-pool"],
    });
  }
  if (opts.loadedRack !== undefined && !hosts.some((h) => h.rack === opts.loadedRack)) {
    throw new Error(`rack scenario: no rack ${opts.loadedRack} (racks ${rackName(0, rackCount)}…${rackName(rackCount - 1, rackCount)})`);
  }
  // The default scenario's identities (projects, users with and without email, flavors).
  const base = defaultScenario({ hosts: 1, serversPerHost: 0, ...(opts.adminPassword !== undefined ? { adminPassword: opts.adminPassword } : {}) });
  const projects = ["acme", "globex", "initech"];
  const owners: Record<string, string> = { acme: "alice", globex: "carol", initech: "erin" };
  const servers: ScenarioServer[] = [];
  let n = 0;
  for (const h of hosts) {
    const count = h.rack === opts.loadedRack ? rackLoad : perHost;
    for (let j = 0; j < count; j++) {
      n++;
      const project = projects[n % projects.length]!;
      servers.push({ name: `${project}-vm-${String(n).padStart(5, "0")}`, host: h.name, project, user: owners[project], flavor: "m1.small" });
    }
  }
  return { ...base, hosts, servers };
}

/** The hosts of each rack of a scenario, in order (hosts without a rack are left out). */
export function racksOf(scenario: Pick<SandboxScenario, "hosts">): Map<string, string[]> {
  const racks = new Map<string, string[]>();
  for (const h of scenario.hosts) {
    if (h.rack === undefined) continue;
    const list = racks.get(h.rack);
    if (list) list.push(h.name);
    else racks.set(h.rack, [h.name]);
  }
  return racks;
}
