/**
 * An in-memory "world" for pipeline tests: hosts with power and a nova-compute service,
 * servers on hosts. It outlives any one lifeboat instance, so a test can stop lifeboat in
 * the middle of a stage, start a new one on the same store, and check that nothing that
 * was finished happened twice. Drivers built on it count every side effect they send.
 *
 * This is a test double for the pipeline's contracts; the real protocols are tested
 * against ipmi_sim, the Redfish simulator and the simulated OpenStack cloud.
 */
import type {
  ComputeServiceInfo,
  EvacuateOptions,
  CloudPort,
  EvacuationOutcome,
  InstanceInfo,
  IsolationResult,
} from "../../src/domain/ports/cloud.js";
import type { ChainResult, FenceDevice, FenceResult, PowerStatus } from "../../src/domain/ports/fencing.js";
import type { RecoveryDetail } from "../../src/domain/model.js";
import type { NotifierPort, NotifySummary, UnknownHostsNotice } from "../../src/domain/ports/notifier.js";
import type { FencingPort } from "../../src/domain/ports/fencing.js";
import { abortReason, sleep } from "../../src/util/abort.js";

/** Nova's service_down_time in the world. */
const NOVA_SERVICE_DOWN_MS = 60_000;

export interface WorldHost {
  power: "on" | "off";
  /** The BMC does not answer. */
  bmcDead: boolean;
  /** Power-off commands are accepted but the power stays on. */
  powerStuck: boolean;
  service: ComputeServiceInfo;
  /** nova-compute stopped: its heartbeat (`service.updatedAt`) no longer moves. */
  silent?: boolean;
}

export interface WorldServer {
  id: string;
  name: string;
  projectId: string;
  userId: string;
  host: string;
  status: string;
  metadata: Record<string, string>;
  /** An evacuation is running (like Nova's REBUILD task). */
  evacuating: boolean;
  /** Remaining evacuation failures before one succeeds (Infinity: never). */
  failuresLeft: number;
  vcpus: number;
  ramMb: number;
}

export type HoldPoint = "fence" | "isolate" | "evacuate" | "notify" | "status" | "service" | "storm-mail";

export class World {
  hosts = new Map<string, WorldHost>();
  servers = new Map<string, WorldServer>();
  /** Side effects sent, in order: "off compute-1", "force-down compute-1", "evacuate <id>"… */
  calls: string[] = [];
  evacuationLatencyMs = 5;
  /** Nova's clock (heartbeats, its answers' Date); a test may run it with lifeboat's. */
  now: () => number = () => Date.now();
  #holds = new Map<HoldPoint, { reached: () => void; reachedP: Promise<void> }>();
  #targets: string[] = [];

  static standard(hosts = ["compute-1", "compute-2", "compute-3"], serversPerHost = 3): World {
    const w = new World();
    for (const h of hosts) w.addHost(h);
    let n = 0;
    for (const h of hosts) {
      for (let i = 0; i < serversPerHost; i++) {
        n += 1;
        w.addServer({ id: `srv-${String(n).padStart(3, "0")}`, name: `vm-${h}-${i}`, host: h, projectId: `project-${(n % 3) + 1}` });
      }
    }
    return w;
  }

  addHost(name: string, opts: Partial<WorldHost> = {}): void {
    this.hosts.set(name, {
      power: "on",
      bmcDead: false,
      powerStuck: false,
      service: { host: name, state: "up", status: "enabled", forcedDown: false, disabledReason: null, updatedAt: new Date().toISOString(), zone: "nova" },
      ...opts,
    });
    this.#targets.push(name);
  }

  addServer(s: Partial<WorldServer> & { id: string; host: string }): void {
    this.servers.set(s.id, {
      name: s.id,
      projectId: "project-1",
      userId: "user-1",
      status: "ACTIVE",
      metadata: {},
      evacuating: false,
      failuresLeft: 0,
      vcpus: 2,
      ramMb: 2048,
      ...s,
    });
  }

  /**
   * The host dies: power stays on as far as the BMC knows, but nova-compute stops
   * heartbeating; its last heartbeat was `heartbeatAgeSeconds` ago. Nova says `down` once
   * that is service_down_time (60 s) old.
   */
  kill(host: string, heartbeatAgeSeconds = 120): void {
    const h = this.host(host);
    h.silent = true;
    h.service = { ...h.service, updatedAt: new Date(this.now() - heartbeatAgeSeconds * 1000).toISOString() };
  }

  /**
   * The host's service as Nova answers about it now: a running nova-compute has just
   * reported; a silent one is `down` after service_down_time; the answer carries Nova's time
   * (a Date header: whole seconds).
   */
  answer(host: string): ComputeServiceInfo | null {
    const h = this.hosts.get(host);
    if (!h) return null;
    const now = this.now();
    const s = h.service;
    const novaTime = new Date(Math.floor(now / 1000) * 1000).toISOString();
    if (!h.silent) return { ...s, ...(s.state === "up" && !s.forcedDown ? { updatedAt: new Date(now).toISOString() } : {}), novaTime };
    const stale = s.updatedAt === null || now - Date.parse(s.updatedAt) >= NOVA_SERVICE_DOWN_MS;
    return { ...s, state: s.forcedDown || stale ? "down" : "up", novaTime };
  }

  host(name: string): WorldHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(prefix)).length;
  }

  /**
   * Make the next driver call at `point` stop there until its signal aborts (a "crash" in
   * the middle of a side effect). Resolves when the call is reached.
   */
  holdAt(point: HoldPoint): Promise<void> {
    let reached!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    this.#holds.set(point, { reached, reachedP });
    return reachedP;
  }

  release(point: HoldPoint): void {
    this.#holds.delete(point);
  }

  async checkpoint(point: HoldPoint, signal?: AbortSignal): Promise<void> {
    const h = this.#holds.get(point);
    if (!h) return;
    this.#holds.delete(point);
    h.reached();
    await new Promise<void>((_resolve, reject) => {
      if (signal?.aborted) reject(abortReason(signal));
      signal?.addEventListener("abort", () => reject(abortReason(signal)), { once: true });
    });
  }

  pickTarget(source: string): string | undefined {
    return this.#targets.find((t) => {
      const h = this.hosts.get(t);
      return t !== source && h !== undefined && !h.silent && h.service.state === "up" && h.service.status === "enabled";
    });
  }
}

class WorldFenceDevice implements FenceDevice {
  readonly driver = "world";
  constructor(
    private readonly world: World,
    private readonly hostName: string,
  ) {}
  get label(): string {
    return `world-bmc ${this.hostName}`;
  }
  status(): Promise<PowerStatus> {
    const h = this.world.host(this.hostName);
    if (h.bmcDead) return Promise.reject(new Error("Error: Unable to establish IPMI v2 / RMCP+ session"));
    return Promise.resolve({ state: h.power, raw: `Chassis Power is ${h.power}` });
  }
  async off(signal?: AbortSignal): Promise<FenceResult> {
    const h = this.world.host(this.hostName);
    if (h.bmcDead) return { ok: false, state: "unknown", already: false, message: "Error: Unable to establish IPMI v2 / RMCP+ session", durationMs: 1, attempts: 3 };
    if (h.power === "off") return { ok: true, state: "off", already: true, message: "already off", durationMs: 1, attempts: 1 };
    this.world.calls.push(`off ${this.hostName}`);
    if (!h.powerStuck) h.power = "off";
    await this.world.checkpoint("fence", signal);
    return h.power === "off"
      ? { ok: true, state: "off", already: false, message: "Chassis Power is off", durationMs: 5, attempts: 1 }
      : { ok: false, state: "on", already: false, message: "power still on after 20s: Chassis Power is on", durationMs: 20_000, attempts: 1 };
  }
  on(): Promise<FenceResult> {
    const h = this.world.host(this.hostName);
    this.world.calls.push(`on ${this.hostName}`);
    h.power = "on";
    return Promise.resolve({ ok: true, state: "on", already: false, message: "Chassis Power is on", durationMs: 1, attempts: 1 });
  }
}

export class WorldFencing implements FencingPort {
  constructor(
    private readonly world: World,
    private readonly unfenceable: string[] = [],
  ) {}
  hosts(): string[] {
    return [...this.world.hosts.keys()].filter((h) => !this.unfenceable.includes(h)).sort();
  }
  hasHost(host: string): boolean {
    return this.world.hosts.has(host) && !this.unfenceable.includes(host);
  }
  devices(host: string): FenceDevice[] {
    return this.hasHost(host) ? [new WorldFenceDevice(this.world, host)] : [];
  }
  async fenceOff(host: string, signal?: AbortSignal): Promise<ChainResult> {
    const [d] = this.devices(host);
    if (!d) return { ok: false, attempts: [], message: `no fencing configured for ${host}` };
    const result = await d.off(signal);
    return { ok: result.ok, ...(result.ok ? { device: d.label } : {}), attempts: [{ device: d.label, driver: d.driver, result }], message: result.message };
  }
  async powerOn(host: string): Promise<ChainResult> {
    const [d] = this.devices(host);
    if (!d) return { ok: false, attempts: [], message: `no fencing configured for ${host}` };
    const result = await d.on();
    return { ok: true, device: d.label, attempts: [{ device: d.label, driver: d.driver, result }], message: result.message };
  }
  async status(host: string, signal?: AbortSignal): Promise<{ device: string; driver: string; status?: PowerStatus; error?: string }[]> {
    await this.world.checkpoint("status", signal);
    return Promise.all(
      this.devices(host).map(async (d) => {
        try {
          return { device: d.label, driver: d.driver, status: await d.status() };
        } catch (err) {
          return { device: d.label, driver: d.driver, error: (err as Error).message };
        }
      }),
    );
  }
}

export class WorldCloud implements CloudPort {
  readonly driver = "world";
  /** Make Nova calls fail (API down). */
  apiDown = false;
  /** Free capacity elsewhere (the capacity gate); unset: the driver cannot report it. */
  capacity?: CloudPort["capacity"];
  constructor(private readonly world: World) {}

  private api(): void {
    if (this.apiDown) throw new Error("connect ECONNREFUSED 127.0.0.1:8774");
  }

  async getComputeService(host: string, signal?: AbortSignal): Promise<ComputeServiceInfo | null> {
    await this.world.checkpoint("service", signal);
    this.api();
    return this.world.answer(host);
  }

  listComputeServices(): Promise<ComputeServiceInfo[]> {
    this.api();
    return Promise.resolve([...this.world.hosts.keys()].map((h) => this.world.answer(h)!));
  }

  async isolate(host: string, reason: string, signal?: AbortSignal): Promise<IsolationResult> {
    this.api();
    const h = this.world.host(host);
    if (h.service.forcedDown && h.service.status === "disabled") return { already: true, service: h.service, message: "already isolated" };
    if (!h.service.forcedDown) {
      this.world.calls.push(`force-down ${host}`);
      h.service = { ...h.service, forcedDown: true, state: "down" };
    }
    await this.world.checkpoint("isolate", signal);
    this.world.calls.push(`disable ${host}`);
    h.service = { ...h.service, status: "disabled", disabledReason: reason };
    return { already: false, service: h.service, message: "forced down and disabled" };
  }

  listInstances(host: string): Promise<InstanceInfo[]> {
    this.api();
    return Promise.resolve(
      [...this.world.servers.values()]
        .filter((s) => s.host === host)
        .map((s) => ({
          id: s.id,
          name: s.name,
          projectId: s.projectId,
          userId: s.userId,
          status: s.status,
          host: s.host,
          taskState: s.evacuating ? "rebuilding" : null,
          metadata: s.metadata,
          flavor: { name: "m1.small", vcpus: s.vcpus, ramMb: s.ramMb, diskGb: 20, extraSpecs: {} },
          imageProperties: {},
        })),
    );
  }

  async evacuate(instance: InstanceInfo, sourceHost: string, opts: EvacuateOptions): Promise<EvacuationOutcome> {
    this.api();
    const s = this.world.servers.get(instance.id);
    if (!s) return { result: "failed", message: "server not found", permanent: true };
    // Inspect first: already moved, or an evacuation still running → never send another.
    if (s.host !== sourceHost && !s.evacuating) return { result: "evacuated", targetHost: s.host, status: s.status, message: "already evacuated" };
    if (!s.evacuating) {
      const source = this.world.answer(sourceHost)!;
      if (source.state === "up" && !source.forcedDown) return { result: "failed", message: `Compute service of ${sourceHost} is still in use.`, permanent: false };
      this.world.calls.push(`evacuate ${s.id}`);
      s.evacuating = true;
    }
    await this.world.checkpoint("evacuate", opts.signal);
    await sleep(this.world.evacuationLatencyMs, opts.signal);
    s.evacuating = false;
    if (s.failuresLeft > 0) {
      s.failuresLeft -= 1;
      return { result: "failed", message: "No valid host was found. There are not enough hosts available.", permanent: false };
    }
    const target = opts.targetHost ?? this.world.pickTarget(sourceHost);
    if (!target) return { result: "failed", message: "No valid host was found.", permanent: false };
    s.host = target;
    return { result: "evacuated", targetHost: target, status: s.status, message: "done" };
  }
}

export class RecordingNotifier implements NotifierPort {
  finished: RecoveryDetail[] = [];
  blocked: { detail: RecoveryDetail; reason: string }[] = [];
  fenceFailures: RecoveryDetail[] = [];
  storms: { hosts: string[]; reason: string; until?: string }[] = [];
  unknownHostNotices: UnknownHostsNotice[] = [];
  constructor(private readonly world?: World) {}
  private summary(): NotifySummary {
    return { sent: 1, failed: 0, skipped: 0 };
  }
  async recoveryFinished(detail: RecoveryDetail, signal?: AbortSignal): Promise<NotifySummary> {
    await this.world?.checkpoint("notify", signal);
    this.world?.calls.push(`notify ${detail.id}`);
    this.finished.push(detail);
    return this.summary();
  }
  recoveryBlocked(detail: RecoveryDetail, reason: string): Promise<NotifySummary> {
    this.blocked.push({ detail, reason });
    return Promise.resolve(this.summary());
  }
  fenceFailed(detail: RecoveryDetail): Promise<NotifySummary> {
    this.world?.calls.push(`page ${detail.id}`);
    this.fenceFailures.push(detail);
    return Promise.resolve(this.summary());
  }
  async stormTripped(info: { hosts: string[]; reason: string; until?: string }, signal?: AbortSignal): Promise<NotifySummary> {
    await this.world?.checkpoint("storm-mail", signal);
    this.storms.push(info);
    return this.summary();
  }
  unknownHosts(info: UnknownHostsNotice): Promise<NotifySummary> {
    this.unknownHostNotices.push(info);
    return Promise.resolve(this.summary());
  }
}
