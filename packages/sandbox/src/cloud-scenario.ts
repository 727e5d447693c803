/**
 * What the simulated cloud holds at start, as plain data (the `lifeboat sandbox` command and
 * the tests build it from options or YAML): projects, users with optional emails, role
 * assignments, flavors, compute hosts and the servers on them.
 */

export interface ScenarioRole {
  project: string;
  role: string;
}

export interface ScenarioUser {
  id?: string;
  name: string;
  password: string;
  /** Keystone's optional "extra" attribute: absent unless set. */
  email?: string;
  domain?: string;
  enabled?: boolean;
  defaultProject?: string;
  roles?: ScenarioRole[];
}

export interface ScenarioGroup {
  id?: string;
  name: string;
  domain?: string;
  /** User names. */
  members: string[];
  roles?: ScenarioRole[];
}

export interface ScenarioApplicationCredential {
  id?: string;
  name: string;
  secret: string;
  /** User name that owns it. */
  user: string;
  /** Project name it is scoped to. */
  project: string;
}

export interface ScenarioFlavor {
  id?: string;
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
  swap?: number;
  ephemeral?: number;
  extraSpecs?: Record<string, string>;
}

export interface ScenarioHost {
  name: string;
  /** Fixed ids (default: random): the nova-compute service uuid and the compute node / resource provider uuid. */
  serviceUuid?: string;
  nodeUuid?: string;
  zone?: string;
  /** The rack the host stands in (the sandbox's control API can fail a whole rack at once). */
  rack?: string;
  aggregates?: string[];
  hostIp?: string;
  vcpus?: number;
  memoryMb?: number;
  diskGb?: number;
  reservedMemoryMb?: number;
  cpuAllocationRatio?: number;
  ramAllocationRatio?: number;
  diskAllocationRatio?: number;
  /** false: the host is dead from the start (no heartbeats). Default true. */
  alive?: boolean;
  disabled?: boolean;
  disabledReason?: string | null;
  forcedDown?: boolean;
}

export interface ScenarioEvacuationBehaviour {
  /** The first N evacuations of this server fail (migration `error`, server ERROR on its source). */
  failTimes?: number;
  /** Every evacuation of this server fails. */
  neverSucceeds?: boolean;
  /** Rebuild time of this server, overriding the cloud's. */
  durationMs?: number;
}

export type ScenarioServerStatus = "ACTIVE" | "SHUTOFF" | "ERROR" | "PAUSED" | "SUSPENDED" | "SHELVED_OFFLOADED";

export interface ScenarioServer {
  id?: string;
  name: string;
  host: string;
  project: string;
  /** User name of the creator (default: the project's first member). */
  user?: string;
  flavor: string;
  status?: ScenarioServerStatus;
  metadata?: Record<string, string>;
  locked?: boolean;
  lockedReason?: string;
  image?: string;
  /** A task in progress (e.g. "powering-off"): Nova answers 409 to most actions meanwhile. */
  taskState?: string;
  evacuation?: ScenarioEvacuationBehaviour;
}

export interface SandboxScenario {
  projects: { id?: string; name: string; domain?: string }[];
  users: ScenarioUser[];
  groups?: ScenarioGroup[];
  applicationCredentials?: ScenarioApplicationCredential[];
  flavors: ScenarioFlavor[];
  hosts: ScenarioHost[];
  servers: ScenarioServer[];
}

export interface GeneratedScenarioOptions {
  /** Compute hosts compute-1…compute-N (default 4). */
  hosts?: number;
  /** Servers on each of the first hosts (default 4 on all but the last, which stays empty as a spare). */
  serversPerHost?: number;
  /** Put servers on every host, spare included. Default false. */
  fillAllHosts?: boolean;
  adminPassword?: string;
}

export const SANDBOX_ADMIN = {
  username: "admin",
  password: "sandbox-admin-secret",
  projectName: "admin",
  domain: "Default",
} as const;

export const SANDBOX_APP_CREDENTIAL = {
  name: "lifeboat",
  secret: "sandbox-app-credential-secret",
} as const;

/**
 * The default cloud: four hosts (three loaded, one spare), three tenant projects with users
 * (some with an email, some without, one only through a group), and a dozen servers
 * including a SHUTOFF one, an ERROR one, an opted-in one (HA_Enabled) and a locked one.
 */
export function defaultScenario(opts: GeneratedScenarioOptions = {}): SandboxScenario {
  const hostCount = opts.hosts ?? 4;
  const perHost = opts.serversPerHost ?? 4;
  const hosts: ScenarioHost[] = [];
  for (let i = 1; i <= hostCount; i++) {
    hosts.push({
      name: `compute-${i}`,
      zone: "nova",
      hostIp: `192.168.0.${i}`,
      aggregates: i === hostCount && hostCount > 1 ? ["spare"] : ["ha-pool"],
    });
  }
  const projects = ["acme", "globex", "initech"];
  const owners: Record<string, string> = { acme: "alice", globex: "carol", initech: "erin" };
  const flavors = ["m1.small", "m1.medium", "m1.ha", "m1.large"];
  const loaded = opts.fillAllHosts || hostCount === 1 ? hosts : hosts.slice(0, -1);
  const servers: ScenarioServer[] = [];
  let n = 0;
  for (const h of loaded) {
    for (let j = 0; j < perHost; j++) {
      n++;
      const project = projects[n % projects.length]!;
      const s: ScenarioServer = {
        name: `${project}-vm-${String(n).padStart(2, "0")}`,
        host: h.name,
        project,
        user: owners[project],
        flavor: flavors[n % flavors.length]!,
      };
      if (n === 2) s.status = "SHUTOFF";
      if (n === 3) s.metadata = { HA_Enabled: "True", "lifeboat:priority": "10" };
      if (n === 7) s.status = "ERROR";
      if (n === 5) {
        s.locked = true;
        s.lockedReason = "tenant maintenance";
      }
      servers.push(s);
    }
  }
  return {
    projects: [{ name: "admin" }, { name: "service" }, ...projects.map((name) => ({ name }))],
    users: [
      { name: SANDBOX_ADMIN.username, password: opts.adminPassword ?? SANDBOX_ADMIN.password, roles: [{ project: "admin", role: "admin" }] },
      { name: "alice", password: "alice-secret", email: "alice@acme.example", roles: [{ project: "acme", role: "member" }] },
      { name: "bob", password: "bob-secret", email: "bob@acme.example" },
      { name: "carol", password: "carol-secret", email: "carol@globex.example", roles: [{ project: "globex", role: "admin" }] },
      { name: "dave", password: "dave-secret", roles: [{ project: "globex", role: "member" }] },
      { name: "erin", password: "erin-secret", email: "erin@initech.example", roles: [{ project: "initech", role: "member" }] },
      { name: "frank", password: "frank-secret", email: "frank@initech.example", roles: [{ project: "initech", role: "reader" }] },
    ],
    groups: [{ name: "acme-ops", members: ["bob"], roles: [{ project: "acme", role: "member" }] }],
    applicationCredentials: [
      { name: SANDBOX_APP_CREDENTIAL.name, secret: SANDBOX_APP_CREDENTIAL.secret, user: SANDBOX_ADMIN.username, project: "admin" },
    ],
    flavors: [
      { name: "m1.small", vcpus: 1, ram: 2048, disk: 20 },
      { name: "m1.medium", vcpus: 2, ram: 4096, disk: 40 },
      { name: "m1.ha", vcpus: 2, ram: 4096, disk: 40, extraSpecs: { evacuable: "true" } },
      { name: "m1.large", vcpus: 4, ram: 8192, disk: 80, extraSpecs: { "hw:cpu_policy": "shared" } },
    ],
    hosts,
    servers,
  };
}
