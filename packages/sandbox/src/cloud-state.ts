import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { SandboxScenario, ScenarioEvacuationBehaviour, ScenarioServerStatus } from "./cloud-scenario.js";

/**
 * The simulated cloud's memory: Keystone's identities and tokens, Nova's services, servers
 * and migrations, and the resource figures Placement reports. Time-driven behaviour
 * (heartbeats, a host going down after service_down_time, evacuations progressing) is
 * computed from the sandbox clock in `settle()`, which every request runs first, so tests
 * can also move time forward with `clock.advance()`.
 */

export interface SandboxClock {
  now(): number;
  /** Move the sandbox's time forward (tokens expire, heartbeats age, evacuations progress). */
  advance(ms: number): void;
}

export interface StateOptions {
  region: string;
  minMicroversion: string;
  maxMicroversion: string;
  placementMaxMicroversion: string;
  tokenLifetimeMs: number;
  serviceDownTimeMs: number;
  reportIntervalMs: number;
  disableWhileUpDelayMs: number;
  evacuationDurationMs: number;
  maxLimit: number;
  /** The cloud's clock this far ahead of the machine's (negative: behind), ms. */
  clockOffsetMs?: number;
}

export interface SimDomain {
  id: string;
  name: string;
}
export interface SimProject {
  id: string;
  name: string;
  domainId: string;
}
export interface SimUser {
  id: string;
  name: string;
  domainId: string;
  password: string;
  email?: string;
  enabled: boolean;
  defaultProjectId?: string;
}
export interface SimGroup {
  id: string;
  name: string;
  domainId: string;
  members: string[];
}
export interface SimRole {
  id: string;
  name: string;
}
export interface SimAssignment {
  userId?: string;
  groupId?: string;
  projectId: string;
  roleId: string;
}
export interface SimAppCredential {
  id: string;
  name: string;
  secret: string;
  userId: string;
  projectId: string;
}
export interface SimToken {
  id: string;
  userId: string;
  projectId?: string;
  methods: string[];
  issuedAtMs: number;
  expiresAtMs: number;
  appCredentialId?: string;
  revoked: boolean;
}

export interface SimHost {
  name: string;
  zone: string;
  hostIp: string;
  /** Compute node uuid = hypervisor id (≥2.53) = resource provider uuid. */
  nodeUuid: string;
  nodeId: number;
  serviceUuid: string;
  serviceId: number;
  /** nova-compute runs and heartbeats. */
  alive: boolean;
  lastSeenUpMs: number;
  updatedAtMs: number;
  disabled: boolean;
  disabledReason: string | null;
  forcedDown: boolean;
  vcpus: number;
  memoryMb: number;
  diskGb: number;
  reservedMemoryMb: number;
  cpuAllocationRatio: number;
  ramAllocationRatio: number;
  diskAllocationRatio: number;
  generation: number;
}

/** nova-scheduler / nova-conductor: listed by os-services, never updatable. */
export interface SimControlService {
  uuid: string;
  id: number;
  binary: string;
  host: string;
}

export interface SimFlavor {
  id: string;
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
  swap: number;
  ephemeral: number;
  extraSpecs: Record<string, string>;
}

export interface SimAggregate {
  id: number;
  uuid: string;
  name: string;
  availabilityZone: string | null;
  hosts: string[];
  metadata: Record<string, string>;
  createdMs: number;
}

export interface SimServer {
  id: string;
  name: string;
  projectId: string;
  userId: string;
  host: string | null;
  node: string | null;
  flavor: SimFlavor;
  imageId: string;
  vmState: string;
  taskState: string | null;
  powerState: number;
  metadata: Record<string, string>;
  locked: boolean;
  lockedReason: string | null;
  availabilityZone: string;
  instanceName: string;
  reservationId: string;
  createdMs: number;
  updatedMs: number;
  launchedMs: number;
  evacuation: ScenarioEvacuationBehaviour;
  /** Evacuations accepted by the API so far (drives failTimes). */
  evacuationAttempts: number;
  /** A second evacuate hit it while the first ran: it ends stuck, as on a real Nova. */
  broken: boolean;
}

export interface SimMigration {
  id: number;
  uuid: string;
  instanceUuid: string;
  projectId: string;
  userId: string;
  sourceCompute: string | null;
  sourceNode: string | null;
  destCompute: string | null;
  destNode: string | null;
  destHost: string | null;
  status: string;
  migrationType: "evacuation";
  createdMs: number;
  /** Null until the record is first updated (oslo.db sets updated_at on update only). */
  updatedMs: number | null;
  plan: {
    preAtMs: number;
    endAtMs: number;
    fail: boolean;
    target?: string;
    /** Never progresses (the second evacuate of a running one). */
    stuck: boolean;
    /** Evacuated at ≥ 2.95: the server ends stopped. */
    stopAtEnd: boolean;
    originalVmState: string;
  };
}

export interface SimRequest {
  seq: number;
  at: string;
  method: string;
  service: "identity" | "compute" | "placement" | "other";
  /** Path below the service root, e.g. `/v2.1/os-services/…` or `/v3/auth/tokens`. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  microversion?: string;
  region: string;
  interface: string;
  status?: number;
  /** The fault injected into this request, if any. */
  fault?: string;
  /** The client closed the connection before the answer (the request is still carried out). */
  clientClosed?: true;
}

const VM_STATE_OF: Record<ScenarioServerStatus, string> = {
  ACTIVE: "active",
  SHUTOFF: "stopped",
  ERROR: "error",
  PAUSED: "paused",
  SUSPENDED: "suspended",
  SHELVED_OFFLOADED: "shelved_offloaded",
};

const POWER_STATE_OF: Record<string, number> = {
  active: 1,
  paused: 3,
  stopped: 4,
  suspended: 7,
  shelved_offloaded: 4,
};

const REBUILD_TASKS = new Set(["rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"]);

/** Nova's status from vm_state and task_state (nova/api/openstack/common.py _STATE_MAP, the parts simulated). */
export function serverStatus(vmState: string, taskState: string | null): string {
  const rebuilding = taskState !== null && REBUILD_TASKS.has(taskState);
  switch (vmState) {
    case "active":
      if (rebuilding) return "REBUILD";
      if (taskState === "migrating") return "MIGRATING";
      return "ACTIVE";
    case "stopped":
      return rebuilding ? "REBUILD" : "SHUTOFF";
    case "error":
      return rebuilding ? "REBUILD" : "ERROR";
    case "paused":
      return taskState === "migrating" ? "MIGRATING" : "PAUSED";
    case "suspended":
      return "SUSPENDED";
    case "shelved_offloaded":
      return "SHELVED_OFFLOADED";
    case "building":
      return "BUILD";
    case "deleted":
      return "DELETED";
    default:
      return "UNKNOWN";
  }
}

export const OPEN_EVACUATION_STATUSES = new Set(["accepted", "pre-migrating"]);

export function keystoneId(): string {
  return randomUUID().replace(/-/g, "");
}

/** The servers table: a row taken out is kept as soft-deleted (Nova's `deleted` column), as Nova does. */
class ServerTable extends Map<string, SimServer> {
  constructor(private readonly onDelete: (s: SimServer) => void) {
    super();
  }

  override delete(id: string): boolean {
    const s = this.get(id);
    if (s) this.onDelete(s);
    return super.delete(id);
  }
}

/** What a host's servers and the evacuations holding room there take of it. */
export interface HostUsage {
  vcpus: number;
  ram: number;
  disk: number;
  servers: number;
}

/** A host's usage in `usages`: nothing when it has none. */
export function usageOf(usages: ReadonlyMap<string, HostUsage>, host: string): HostUsage {
  return usages.get(host) ?? { vcpus: 0, ram: 0, disk: 0, servers: 0 };
}

/** Count `s`'s flavor against `host` (and the server itself when it runs there). */
function charge(usages: Map<string, HostUsage>, host: string, s: SimServer, server: boolean): void {
  const u = usageOf(usages, host);
  u.vcpus += s.flavor.vcpus;
  u.ram += s.flavor.ram;
  u.disk += s.flavor.disk + s.flavor.ephemeral;
  if (server) u.servers++;
  usages.set(host, u);
}

export class SandboxState {
  readonly clock: SandboxClock;
  readonly opts: StateOptions;
  readonly domains = new Map<string, SimDomain>();
  readonly projects = new Map<string, SimProject>();
  readonly users = new Map<string, SimUser>();
  readonly groups = new Map<string, SimGroup>();
  readonly roles = new Map<string, SimRole>();
  /** [prior role id, implied role id]: admin implies member implies reader. */
  readonly impliedRoles: [string, string][] = [];
  readonly assignments: SimAssignment[] = [];
  readonly applicationCredentials = new Map<string, SimAppCredential>();
  readonly tokens = new Map<string, SimToken>();
  readonly hosts = new Map<string, SimHost>();
  readonly controlServices: SimControlService[] = [];
  readonly flavors = new Map<string, SimFlavor>();
  readonly aggregates: SimAggregate[] = [];
  /** Live servers; deleting one (`servers.delete`, `deleteServer`) soft-deletes it into `deletedServers`. */
  readonly servers: Map<string, SimServer> = new ServerTable((s) => this.softDelete(s));
  /**
   * Deleted servers, as Nova keeps them (soft-deleted rows) until its database is archived:
   * a listing with `changes-since` shows them with status DELETED; nothing else does.
   */
  readonly deletedServers = new Map<string, SimServer & { deletedMs: number }>();
  readonly migrations: SimMigration[] = [];
  readonly requests: SimRequest[] = [];
  readonly imageId = randomUUID();
  private offsetMs = 0;
  private nextServiceId = 1;
  private nextMigrationId = 1;
  private nextInstanceNumber = 1;

  constructor(scenario: SandboxScenario, opts: StateOptions) {
    this.opts = opts;
    this.offsetMs = opts.clockOffsetMs ?? 0;
    this.clock = {
      now: () => Date.now() + this.offsetMs,
      advance: (ms: number) => {
        this.offsetMs += ms;
      },
    };
    this.load(scenario);
  }

  private load(sc: SandboxScenario): void {
    const now = this.clock.now();
    const def: SimDomain = { id: "default", name: "Default" };
    this.domains.set(def.id, def);
    const domainId = (name: string | undefined): string => {
      if (!name || name === "Default" || name === "default") return "default";
      const existing = [...this.domains.values()].find((d) => d.name === name || d.id === name);
      if (existing) return existing.id;
      const d = { id: keystoneId(), name };
      this.domains.set(d.id, d);
      return d.id;
    };
    for (const name of ["admin", "member", "reader"]) {
      const r = { id: keystoneId(), name };
      this.roles.set(r.id, r);
    }
    const admin = this.roleByName("admin")!;
    const member = this.roleByName("member")!;
    const reader = this.roleByName("reader")!;
    this.impliedRoles.push([admin.id, member.id], [member.id, reader.id]);

    for (const p of sc.projects) {
      const proj = { id: p.id ?? keystoneId(), name: p.name, domainId: domainId(p.domain) };
      this.projects.set(proj.id, proj);
    }
    const projectByName = (name: string): SimProject => {
      const p = [...this.projects.values()].find((x) => x.name === name || x.id === name);
      if (!p) throw new Error(`scenario: unknown project ${name}`);
      return p;
    };
    const roleId = (name: string): string => {
      let r = this.roleByName(name);
      if (!r) {
        r = { id: keystoneId(), name };
        this.roles.set(r.id, r);
      }
      return r.id;
    };
    for (const u of sc.users) {
      const user: SimUser = {
        id: u.id ?? keystoneId(),
        name: u.name,
        domainId: domainId(u.domain),
        password: u.password,
        enabled: u.enabled ?? true,
      };
      if (u.email !== undefined) user.email = u.email;
      if (u.defaultProject) user.defaultProjectId = projectByName(u.defaultProject).id;
      this.users.set(user.id, user);
      for (const r of u.roles ?? []) this.assignments.push({ userId: user.id, projectId: projectByName(r.project).id, roleId: roleId(r.role) });
    }
    const userByName = (name: string): SimUser => {
      const u = [...this.users.values()].find((x) => x.name === name || x.id === name);
      if (!u) throw new Error(`scenario: unknown user ${name}`);
      return u;
    };
    for (const g of sc.groups ?? []) {
      const group: SimGroup = { id: g.id ?? keystoneId(), name: g.name, domainId: domainId(g.domain), members: g.members.map((m) => userByName(m).id) };
      this.groups.set(group.id, group);
      for (const r of g.roles ?? []) this.assignments.push({ groupId: group.id, projectId: projectByName(r.project).id, roleId: roleId(r.role) });
    }
    for (const a of sc.applicationCredentials ?? []) {
      const ac: SimAppCredential = {
        id: a.id ?? keystoneId(),
        name: a.name,
        secret: a.secret,
        userId: userByName(a.user).id,
        projectId: projectByName(a.project).id,
      };
      this.applicationCredentials.set(ac.id, ac);
    }
    for (const f of sc.flavors) {
      const flavor: SimFlavor = {
        id: f.id ?? randomUUID(),
        name: f.name,
        vcpus: f.vcpus,
        ram: f.ram,
        disk: f.disk,
        swap: f.swap ?? 0,
        ephemeral: f.ephemeral ?? 0,
        extraSpecs: { ...(f.extraSpecs ?? {}) },
      };
      this.flavors.set(flavor.id, flavor);
    }
    this.controlServices.push(
      { uuid: randomUUID(), id: this.nextServiceId++, binary: "nova-scheduler", host: "controller" },
      { uuid: randomUUID(), id: this.nextServiceId++, binary: "nova-conductor", host: "controller" },
    );
    let nodeId = 1;
    const aggregateHosts = new Map<string, string[]>();
    for (const h of sc.hosts) {
      const alive = h.alive ?? true;
      const host: SimHost = {
        name: h.name,
        zone: h.zone ?? "nova",
        hostIp: h.hostIp ?? `192.168.0.${nodeId}`,
        nodeUuid: h.nodeUuid ?? randomUUID(),
        nodeId: nodeId++,
        serviceUuid: h.serviceUuid ?? randomUUID(),
        serviceId: this.nextServiceId++,
        alive,
        // A host dead from the start last reported long enough ago to be down already.
        lastSeenUpMs: alive ? now : now - this.opts.serviceDownTimeMs - this.opts.reportIntervalMs,
        updatedAtMs: alive ? now : now - this.opts.serviceDownTimeMs - this.opts.reportIntervalMs,
        disabled: h.disabled ?? Boolean(h.disabledReason),
        disabledReason: h.disabledReason ?? null,
        forcedDown: h.forcedDown ?? false,
        vcpus: h.vcpus ?? 64,
        memoryMb: h.memoryMb ?? 262144,
        diskGb: h.diskGb ?? 2000,
        reservedMemoryMb: h.reservedMemoryMb ?? 512,
        cpuAllocationRatio: h.cpuAllocationRatio ?? 16,
        ramAllocationRatio: h.ramAllocationRatio ?? 1.5,
        diskAllocationRatio: h.diskAllocationRatio ?? 1,
        generation: 1,
      };
      this.hosts.set(host.name, host);
      for (const a of h.aggregates ?? []) aggregateHosts.set(a, [...(aggregateHosts.get(a) ?? []), host.name]);
    }
    let aggId = 1;
    for (const [name, hosts] of aggregateHosts) {
      const zones = new Set(hosts.map((n) => this.hosts.get(n)!.zone));
      const zone = zones.size === 1 ? [...zones][0]! : null;
      this.aggregates.push({
        id: aggId++,
        uuid: randomUUID(),
        name,
        availabilityZone: zone && zone !== "nova" ? zone : null,
        hosts,
        metadata: zone && zone !== "nova" ? { availability_zone: zone } : {},
        createdMs: now,
      });
    }
    let offset = sc.servers.length;
    for (const s of sc.servers) {
      const host = this.hosts.get(s.host);
      if (!host) throw new Error(`scenario: server ${s.name} on unknown host ${s.host}`);
      const project = projectByName(s.project);
      const flavor = [...this.flavors.values()].find((f) => f.name === s.flavor || f.id === s.flavor);
      if (!flavor) throw new Error(`scenario: server ${s.name} has unknown flavor ${s.flavor}`);
      const userId = s.user ? userByName(s.user).id : this.firstMemberOf(project.id) ?? userByName(SANDBOX_ADMIN_NAME).id;
      const vmState = VM_STATE_OF[s.status ?? "ACTIVE"];
      // Earlier servers are older: list order (newest first) is stable and realistic.
      const created = now - 60_000 - offset-- * 1000;
      const server: SimServer = {
        id: s.id ?? randomUUID(),
        name: s.name,
        projectId: project.id,
        userId,
        host: vmState === "shelved_offloaded" ? null : host.name,
        node: vmState === "shelved_offloaded" ? null : host.name,
        flavor: { ...flavor, extraSpecs: { ...flavor.extraSpecs } },
        imageId: s.image ?? this.imageId,
        vmState,
        taskState: s.taskState ?? null,
        powerState: POWER_STATE_OF[vmState] ?? 0,
        metadata: { ...(s.metadata ?? {}) },
        locked: s.locked ?? false,
        lockedReason: s.locked ? (s.lockedReason ?? null) : null,
        availabilityZone: host.zone,
        instanceName: `instance-${(this.nextInstanceNumber++).toString(16).padStart(8, "0")}`,
        reservationId: `r-${randomBytes(4).toString("hex")}`,
        createdMs: created,
        updatedMs: created + 1000,
        launchedMs: created + 1000,
        evacuation: { ...(s.evacuation ?? {}) },
        evacuationAttempts: 0,
        broken: false,
      };
      this.servers.set(server.id, server);
    }
  }

  private firstMemberOf(projectId: string): string | undefined {
    return this.assignments.find((a) => a.projectId === projectId && a.userId)?.userId;
  }

  // ---- identity --------------------------------------------------------------------------

  roleByName(name: string): SimRole | undefined {
    return [...this.roles.values()].find((r) => r.name === name);
  }

  /** Role ids a user holds on a project: direct, through groups, and implied. */
  effectiveRoleIds(userId: string, projectId: string): Set<string> {
    const direct = this.assignments.filter(
      (a) => a.projectId === projectId && (a.userId === userId || (a.groupId && this.groups.get(a.groupId)?.members.includes(userId))),
    );
    const set = new Set(direct.map((a) => a.roleId));
    let grew = true;
    while (grew) {
      grew = false;
      for (const [prior, implied] of this.impliedRoles) {
        if (set.has(prior) && !set.has(implied)) {
          set.add(implied);
          grew = true;
        }
      }
    }
    return set;
  }

  issueToken(t: Omit<SimToken, "id" | "issuedAtMs" | "expiresAtMs" | "revoked">): SimToken {
    const now = this.clock.now();
    const token: SimToken = {
      ...t,
      id: `gAAAAAB${randomBytes(48).toString("base64url")}`,
      issuedAtMs: now,
      expiresAtMs: now + this.opts.tokenLifetimeMs,
      revoked: false,
    };
    this.tokens.set(token.id, token);
    return token;
  }

  /** The token if it is known, not revoked and not expired. */
  validToken(id: string | undefined): SimToken | undefined {
    if (!id) return undefined;
    const t = this.tokens.get(id);
    if (!t || t.revoked || this.clock.now() >= t.expiresAtMs) return undefined;
    return t;
  }

  revokeAllTokens(): void {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  isAdminToken(t: SimToken): boolean {
    const admin = this.roleByName("admin");
    return Boolean(admin && t.projectId && this.effectiveRoleIds(t.userId, t.projectId).has(admin.id));
  }

  // ---- compute services ------------------------------------------------------------------

  /** Nova's servicegroup view: up unless forced down or the last heartbeat is older than service_down_time. */
  serviceIsUp(host: SimHost): boolean {
    if (host.forcedDown) return false;
    return this.clock.now() - host.lastSeenUpMs <= this.opts.serviceDownTimeMs;
  }

  /** Every service as Nova would list it now (compute services from the hosts, plus the control plane's). */
  services(): { uuid: string; id: number; binary: string; host: string; status: "enabled" | "disabled"; state: "up" | "down"; forcedDown: boolean; disabledReason: string | null }[] {
    const control = this.controlServices.map((c) => ({
      uuid: c.uuid,
      id: c.id,
      binary: c.binary,
      host: c.host,
      status: "enabled" as const,
      state: "up" as const,
      forcedDown: false,
      disabledReason: null,
    }));
    const compute = [...this.hosts.values()].map((h) => ({
      uuid: h.serviceUuid,
      id: h.serviceId,
      binary: "nova-compute",
      host: h.name,
      status: h.disabled ? ("disabled" as const) : ("enabled" as const),
      state: this.serviceIsUp(h) ? ("up" as const) : ("down" as const),
      forcedDown: h.forcedDown,
      disabledReason: h.disabledReason,
    }));
    return [...control, ...compute];
  }

  hostByServiceUuid(uuid: string): SimHost | undefined {
    return [...this.hosts.values()].find((h) => h.serviceUuid === uuid);
  }

  /** host_status of a server (≥2.16): UP, MAINTENANCE (up but disabled), DOWN, UNKNOWN, "". */
  hostStatus(server: SimServer): string {
    if (!server.host) return "";
    const h = this.hosts.get(server.host);
    if (!h) return "UNKNOWN";
    if (!this.serviceIsUp(h)) return "DOWN";
    return h.disabled ? "MAINTENANCE" : "UP";
  }

  // ---- resources ---------------------------------------------------------------------------

  /** Allocations per host: servers there, plus both ends of running evacuations and the source of `done` ones. */
  usage(hostName: string): HostUsage {
    return usageOf(this.usages(hostName), hostName);
  }

  /**
   * `usage` of every host (or of `only`), in one pass over the servers: a schedule on a site
   * of hundreds of hosts needs them all, and a storm asks for them once per placement.
   */
  usages(only?: string): Map<string, HostUsage> {
    const out = new Map<string, HostUsage>();
    const add = (host: string, s: SimServer, server: boolean): void => {
      if (only === undefined || host === only) charge(out, host, s, server);
    };
    // The migrations that hold room, by server, once: scanning them all for every server made
    // a schedule O(servers × migrations). Most servers have none: they count on their host alone.
    const holdingOf = new Map<string, SimMigration[]>();
    for (const m of this.migrations) {
      if (!OPEN_EVACUATION_STATUSES.has(m.status) && m.status !== "done") continue;
      const list = holdingOf.get(m.instanceUuid);
      if (list) list.push(m);
      else holdingOf.set(m.instanceUuid, [m]);
    }
    for (const s of this.servers.values()) {
      const held = holdingOf.get(s.id);
      if (!held) {
        if (s.host) add(s.host, s, true);
        continue;
      }
      const holders = new Set<string>();
      if (s.host) holders.add(s.host);
      for (const m of held) {
        if (OPEN_EVACUATION_STATUSES.has(m.status)) {
          if (m.sourceCompute) holders.add(m.sourceCompute);
          if (m.destCompute && m.status === "pre-migrating") holders.add(m.destCompute);
        } else if (m.sourceCompute) {
          holders.add(m.sourceCompute);
        }
      }
      for (const h of holders) add(h, s, h === s.host);
    }
    return out;
  }

  /** Placement capacity: (total - reserved) × allocation_ratio. */
  capacity(h: SimHost): { vcpus: number; ram: number; disk: number } {
    return {
      vcpus: Math.floor(h.vcpus * h.cpuAllocationRatio),
      ram: Math.floor((h.memoryMb - h.reservedMemoryMb) * h.ramAllocationRatio),
      disk: Math.floor(h.diskGb * h.diskAllocationRatio),
    };
  }

  /**
   * The scheduler: enabled, up hosts other than the source with room, most free RAM first.
   * `usages`: the hosts' usage as of now, kept up to date by the caller across several
   * schedules (settle): the chosen host is charged with the server here.
   */
  schedule(server: SimServer, source: string | null, target?: string, usages = this.usages()): string | undefined {
    const usage = (name: string): HostUsage => usageOf(usages, name);
    const fits = (h: SimHost): boolean => {
      const cap = this.capacity(h);
      const used = usage(h.name);
      return (
        cap.vcpus - used.vcpus >= server.flavor.vcpus &&
        cap.ram - used.ram >= server.flavor.ram &&
        cap.disk - used.disk >= server.flavor.disk + server.flavor.ephemeral
      );
    };
    const candidates = [...this.hosts.values()].filter(
      (h) => h.name !== source && !h.disabled && this.serviceIsUp(h) && (!target || h.name === target) && fits(h),
    );
    candidates.sort((a, b) => this.capacity(b).ram - usage(b.name).ram - (this.capacity(a).ram - usage(a.name).ram));
    const chosen = candidates[0]?.name;
    // A pre-migrating evacuation holds room on its destination (usages()).
    if (chosen !== undefined) charge(usages, chosen, server, false);
    return chosen;
  }

  // ---- evacuation --------------------------------------------------------------------------

  openEvacuation(serverId: string): SimMigration | undefined {
    return this.migrations.find((m) => m.instanceUuid === serverId && OPEN_EVACUATION_STATUSES.has(m.status) && !m.plan.stuck);
  }

  /** What nova-api does on an accepted evacuate: task_state rebuilding and an `accepted` migration. */
  startEvacuation(server: SimServer, opts: { targetHost?: string; stopAtEnd: boolean }): SimMigration {
    const now = this.clock.now();
    server.evacuationAttempts++;
    const running = this.openEvacuation(server.id);
    if (running) server.broken = true;
    const b = server.evacuation;
    const fail = Boolean(b.neverSucceeds) || server.evacuationAttempts <= (b.failTimes ?? 0);
    const duration = b.durationMs ?? this.opts.evacuationDurationMs;
    const m: SimMigration = {
      id: this.nextMigrationId++,
      uuid: randomUUID(),
      instanceUuid: server.id,
      projectId: server.projectId,
      userId: server.userId,
      sourceCompute: server.host,
      sourceNode: server.node,
      destCompute: opts.targetHost ?? null,
      destNode: null,
      destHost: null,
      status: "accepted",
      migrationType: "evacuation",
      createdMs: now,
      updatedMs: null,
      plan: {
        preAtMs: now + Math.round(duration * 0.25),
        endAtMs: now + duration,
        fail,
        target: opts.targetHost,
        stuck: Boolean(running),
        stopAtEnd: opts.stopAtEnd,
        originalVmState: server.vmState,
      },
    };
    this.migrations.push(m);
    server.taskState = "rebuilding";
    server.updatedMs = now;
    return m;
  }

  /** Bring time-driven state up to the sandbox clock. Runs before every request. */
  settle(): void {
    const now = this.clock.now();
    for (const h of this.hosts.values()) {
      if (!h.alive) continue;
      const beat = now - (now % this.opts.reportIntervalMs);
      if (beat > h.lastSeenUpMs) {
        h.lastSeenUpMs = beat;
        h.updatedAtMs = Math.max(h.updatedAtMs, beat);
      }
    }
    // Read once for every evacuation this settle schedules, each charged as it is placed.
    let usages: Map<string, HostUsage> | undefined;
    for (const m of this.migrations) {
      // Only accepted and pre-migrating ones move on with time (most of a storm's are done).
      if (m.plan.stuck || (m.status !== "accepted" && m.status !== "pre-migrating")) continue;
      const server = this.servers.get(m.instanceUuid);
      if (!server) continue;
      if (m.status === "accepted" && now >= m.plan.preAtMs) {
        const dest = m.plan.fail ? undefined : this.schedule(server, m.sourceCompute, m.plan.target, (usages ??= this.usages()));
        m.updatedMs = m.plan.preAtMs;
        if (!dest) {
          // NoValidHost or a failing rebuild: the conductor sets the migration to error and the server to ERROR, left on its source.
          m.status = "error";
          server.vmState = "error";
          if (!server.broken) server.taskState = null;
          server.updatedMs = m.plan.preAtMs;
          continue;
        }
        m.status = "pre-migrating";
        m.destCompute = dest;
        m.destNode = dest;
        m.destHost = this.hosts.get(dest)?.hostIp ?? null;
      }
      if (m.status === "pre-migrating" && now >= m.plan.endAtMs) {
        m.status = "done";
        m.updatedMs = m.plan.endAtMs;
        server.host = m.destCompute;
        server.node = m.destNode;
        server.availabilityZone = this.hosts.get(m.destCompute!)?.zone ?? server.availabilityZone;
        server.launchedMs = m.plan.endAtMs;
        server.updatedMs = m.plan.endAtMs;
        if (server.broken) {
          // Two rebuilds raced: the server stays in REBUILD with vm_state error.
          server.vmState = "error";
          server.taskState = "rebuilding";
          continue;
        }
        server.taskState = null;
        const orig = m.plan.originalVmState;
        if (m.plan.stopAtEnd) server.vmState = orig === "error" ? "active" : "stopped";
        else server.vmState = orig === "stopped" ? "stopped" : "active";
        server.powerState = POWER_STATE_OF[server.vmState] ?? 1;
      }
    }
  }

  // ---- operator/test controls ---------------------------------------------------------------

  /** The host dies: nova-compute stops heartbeating (its servers stay where Nova thinks they are). */
  killHost(name: string): void {
    const h = this.mustHost(name);
    this.settle();
    h.alive = false;
  }

  /**
   * The repaired host boots and nova-compute starts: it heartbeats again, deletes the guests
   * that were evacuated away and moves their `done` evacuation migrations to `completed`.
   */
  startCompute(name: string): void {
    const h = this.mustHost(name);
    const now = this.clock.now();
    h.alive = true;
    h.lastSeenUpMs = now;
    h.updatedAtMs = now;
    for (const m of this.migrations) {
      if (m.sourceCompute !== name || m.status !== "done") continue;
      const server = this.servers.get(m.instanceUuid);
      // A server broken by a double evacuation trips nova-compute's clean-up: its record stays `done`.
      if (server?.broken) continue;
      m.status = "completed";
      m.updatedMs = now;
    }
  }

  mustHost(name: string): SimHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`sandbox: unknown host ${name}`);
    return h;
  }

  /** The server is deleted: gone from every view but `changes-since` listings, which show it DELETED. */
  deleteServer(id: string): void {
    this.servers.delete(id);
  }

  private softDelete(s: SimServer): void {
    const now = this.clock.now();
    this.deletedServers.set(s.id, { ...s, vmState: "deleted", taskState: null, powerState: 0, updatedMs: now, deletedMs: now });
  }

  serversOn(host: string): SimServer[] {
    return [...this.servers.values()].filter((s) => s.host === host);
  }

  serverByName(name: string): SimServer | undefined {
    return [...this.servers.values()].find((s) => s.name === name);
  }

  migrationsOf(serverId: string): SimMigration[] {
    return this.migrations.filter((m) => m.instanceUuid === serverId);
  }

  /** sha224(project + host), as Nova's hostId. */
  hostId(server: SimServer): string {
    if (!server.host) return "";
    return createHash("sha224").update(server.projectId + server.host).digest("hex");
  }
}

const SANDBOX_ADMIN_NAME = "admin";

/** Nova's naive UTC timestamps: `2026-11-25T13:20:48.000000` (seconds precision, as the DB returns them). */
export function naiveSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, ".000000");
}

/** Same with the sub-second part, as an object fresh from an update: `2026-11-25T13:20:48.297000`. */
export function naiveMicro(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000");
}

/** `2026-11-25T13:19:48Z`: servers' created/updated. */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Keystone's `2026-11-25T14:20:56.000000Z`. */
export function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
