import type { Logger } from "../logging.js";
import { isAbortError, sleep } from "../util/abort.js";
import { systemClock, type Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import {
  findComputeService,
  isLifeboatReason,
  isolateComputeService,
  lifeboatReason,
  toComputeServiceInfo,
} from "../openstack/compute-services.js";
import { ComputeServiceListing } from "../openstack/compute-service-listing.js";
import { getComputeCapacity, type CapacityQuery, type ComputeHostCapacity } from "../openstack/capacity.js";
import { PlacementClient } from "../openstack/placement.js";
import {
  FAILED_MIGRATION_STATUSES,
  NovaClient,
  OPEN_MIGRATION_STATUSES,
  SUCCESS_MIGRATION_STATUSES,
  type NovaMigration,
  type NovaServer,
} from "../openstack/nova.js";
import { OpenStackConnectionError } from "../openstack/errors.js";
import { OpenStackApiError, type OpenStackSession } from "../openstack/types.js";
import type { EvacuationConfig } from "./config.js";
import type {
  ComputeServiceInfo,
  EvacuateOptions,
  EvacuationDriver,
  EvacuationOutcome,
  InstanceInfo,
  IsolationResult,
  ServiceRead,
} from "./types.js";
import { SHARED_READ } from "./types.js";

/**
 * The `nova` evacuation driver: isolation through os-services, instance listing through the
 * admin server list, and evacuations that are safe to repeat. Before it sends an evacuate it
 * looks at the server and its evacuation migrations: a server already elsewhere is reported
 * evacuated, and a running evacuation is tracked, never doubled (a real Nova answers 200 to a
 * second evacuate and leaves the server broken). It locks the server while it works (unless
 * its owner already locked it), tracks the migration to `done` and the server to its new
 * host with no task, and unlocks.
 */

export interface NovaDriverOptions {
  /** Lock each server during its evacuation (config `lock_instances`). Default true. */
  lockInstances: boolean;
  /** Between two looks at a running evacuation (config `poll_interval_seconds`). Default 2000. */
  pollIntervalMs: number;
  /** Override the microversion candidates (tests). */
  microversions?: readonly string[];
}

export interface NovaDriverDeps {
  session: OpenStackSession;
  logger: Logger;
  /** Share a negotiated client (otherwise one is made over `session`). */
  nova?: NovaClient;
  clock?: Clock;
}

export function novaDriverOptions(cfg: Pick<EvacuationConfig, "lock_instances" | "poll_interval_seconds">): NovaDriverOptions {
  return { lockInstances: cfg.lock_instances, pollIntervalMs: Math.round(cfg.poll_interval_seconds * 1000) };
}

/** How old the shared nova-compute listing may be: reads that accept it cost at most one request per interval. */
export const SHARED_LISTING_MAX_AGE_MS = 5000;

const REBUILD_TASKS = new Set(["rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"]);

export function toInstanceInfo(s: NovaServer): InstanceInfo {
  const f = s.flavor ?? {};
  const info: InstanceInfo = {
    id: s.id,
    name: s.name,
    projectId: s.tenant_id ?? "",
    status: s.status,
    host: s["OS-EXT-SRV-ATTR:host"] ?? null,
    taskState: s["OS-EXT-STS:task_state"] ?? null,
    metadata: { ...s.metadata },
    flavor: {
      name: f.original_name ?? f.id ?? "",
      vcpus: f.vcpus ?? 0,
      ramMb: f.ram ?? 0,
      diskGb: f.disk ?? 0,
      extraSpecs: { ...(f.extra_specs ?? {}) },
    },
    // Image properties live in Glance, which this driver does not query: left empty.
    imageProperties: {},
  };
  if (s.user_id) info.userId = s.user_id;
  if (s.locked !== undefined) info.locked = s.locked;
  return info;
}

interface Inspection {
  server: NovaServer | null;
  /** Evacuation migrations of the server, newest first. */
  evacuations: NovaMigration[];
}

type Tracked = EvacuationOutcome & { stillRunning?: boolean };

export class NovaEvacuationDriver implements EvacuationDriver {
  readonly driver = "nova";
  readonly nova: NovaClient;
  private readonly placement: PlacementClient;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly opts: NovaDriverOptions;
  /** Evacuations running in this process, by server id: a second call joins the first. */
  private readonly inFlight = new Map<string, Promise<EvacuationOutcome>>();
  /** Servers this process locked (below 2.73 the lock reason is not visible). */
  private readonly ownedLocks = new Set<string>();
  /** One nova-compute listing shared by every reader that accepts one a few seconds old. */
  private readonly services: ComputeServiceListing;

  constructor(deps: NovaDriverDeps, opts: Partial<NovaDriverOptions> = {}) {
    this.log = deps.logger.child({ component: "evacuation", driver: "nova" });
    this.clock = deps.clock ?? systemClock;
    this.opts = { lockInstances: opts.lockInstances ?? true, pollIntervalMs: opts.pollIntervalMs ?? 2000, microversions: opts.microversions };
    this.nova = deps.nova ?? new NovaClient(deps.session, { logger: deps.logger, microversions: opts.microversions });
    this.placement = new PlacementClient(deps.session);
    this.services = new ComputeServiceListing(() => this.nova.listServices({ binary: "nova-compute" }), this.clock);
  }

  async start(signal?: AbortSignal): Promise<string> {
    await this.nova.negotiate(signal);
    return this.nova.describe();
  }

  /** A new request asks Nova about this host alone; otherwise the shared listing answers. */
  async getComputeService(host: string, signal?: AbortSignal, read: ServiceRead = SHARED_READ): Promise<ComputeServiceInfo | null> {
    if (read.maxAgeMs === 0) {
      const svc = await findComputeService(this.nova, host, signal);
      return svc ? toComputeServiceInfo(svc) : null;
    }
    return (await this.listComputeServices(signal, read)).find((s) => s.host === host) ?? null;
  }

  listComputeServices(signal?: AbortSignal, read: ServiceRead = SHARED_READ): Promise<ComputeServiceInfo[]> {
    return this.services.read(read.maxAgeMs ?? SHARED_LISTING_MAX_AGE_MS, signal);
  }

  /** Free capacity of the enabled, up compute hosts (Placement, else os-hypervisors). */
  capacity(signal?: AbortSignal, query: Omit<CapacityQuery, "signal"> = {}): Promise<ComputeHostCapacity[]> {
    return getComputeCapacity({ nova: this.nova, placement: this.placement, logger: this.log }, { ...query, signal });
  }

  isolate(host: string, reason: string, signal?: AbortSignal): Promise<IsolationResult> {
    // The shared listing may predate the force-down: the next read asks Nova again.
    return isolateComputeService(this.nova, host, reason, { logger: this.log, signal }).finally(() => this.services.invalidate());
  }

  async listInstances(host: string, signal?: AbortSignal): Promise<InstanceInfo[]> {
    const servers = await this.nova.listServers({ all_tenants: 1, host }, signal);
    const out: InstanceInfo[] = [];
    for (const s of servers) {
      const on = s["OS-EXT-SRV-ATTR:host"];
      // Nova ignores `host` silently for non-admins: never trust the filter blindly.
      if (on === undefined) throw new Error("the server list carries no OS-EXT-SRV-ATTR:host: lifeboat's OpenStack user needs the admin role");
      if (on === host) out.push(toInstanceInfo(s));
    }
    return out;
  }

  evacuate(instance: InstanceInfo, sourceHost: string, opts: EvacuateOptions): Promise<EvacuationOutcome> {
    const running = this.inFlight.get(instance.id);
    if (running) {
      this.log.info({ instance: instance.id }, "evacuation of this instance already in progress here: joining it");
      return running;
    }
    const p = this.evacuateOnce(instance, sourceHost, opts)
      .catch((err: unknown): EvacuationOutcome => {
        if (isAbortError(err) && opts.signal?.aborted) throw err;
        // Nova unreachable while looking (not while evacuating: that is handled inside).
        return { result: "failed", retryable: true, message: `could not reach Nova: ${errorMessage(err)}` };
      })
      .finally(() => this.inFlight.delete(instance.id));
    this.inFlight.set(instance.id, p);
    return p;
  }

  /** The server and its evacuations, asked at once (one round trip per look, not two). */
  private async inspect(id: string, signal?: AbortSignal): Promise<Inspection> {
    const [server, evacuations] = await Promise.all([
      this.nova.getServer(id, signal),
      this.nova.listMigrations({ instance_uuid: id, migration_type: "evacuation" }, signal).catch((err: unknown) => ({ failed: err })),
    ]);
    if (!server) return { server: null, evacuations: [] };
    if ("failed" in evacuations) throw evacuations.failed;
    return { server, evacuations };
  }

  private async evacuateOnce(instance: InstanceInfo, source: string, opts: EvacuateOptions): Promise<EvacuationOutcome> {
    const log = this.log.child({ instance: instance.id, name: instance.name, host: source, attempt: opts.attempt });
    const deadline = this.clock.now() + opts.timeoutMs;
    const signal = opts.signal;
    await this.nova.negotiate(signal);

    const first = await this.inspect(instance.id, signal);
    const server = first.server;
    if (!server) return { result: "failed", message: `server ${instance.id} no longer exists (Nova answers 404)`, retryable: false };
    const at = server["OS-EXT-SRV-ATTR:host"] ?? null;
    const task = server["OS-EXT-STS:task_state"] ?? null;
    const fromSource = first.evacuations.filter((m) => m.source_compute === source);
    const open = fromSource.find((m) => OPEN_MIGRATION_STATUSES.includes(m.status));

    if (at !== source) {
      if (at === null) {
        return { result: "failed", message: `server is on no host (status ${server.status}): nothing to evacuate`, retryable: false };
      }
      // Arrived while nobody watched (e.g. during a restart): the lock an earlier attempt took is released too.
      if (task === null) return this.finish(instance, this.arrived(server, instance, fromSource[0], log, "already on another host"), log, signal);
      // Elsewhere already but still busy (e.g. the rebuild is finishing): follow it, send nothing.
      log.info({ at, task }, "server already left the failed host and is still busy: tracking");
      return this.finish(instance, await this.track(instance, source, open?.id, new Set(), deadline, signal, log), log, signal);
    }
    if (open || (task !== null && REBUILD_TASKS.has(task))) {
      log.info({ migration: open?.id, status: open?.status, task }, "an evacuation is already running: tracking it, not sending another");
      return this.finish(instance, await this.track(instance, source, open?.id, new Set(), deadline, signal, log), log, signal);
    }

    await this.lockFor(server, source, opts, log, signal);
    const before = new Set(first.evacuations.map((m) => m.id));
    try {
      await this.nova.evacuate(instance.id, { host: opts.targetHost }, signal);
      log.info({ target: opts.targetHost ?? "scheduler" }, "evacuate accepted by Nova");
    } catch (err) {
      if (isAbortError(err) && signal?.aborted) throw err;
      const outcome = await this.afterRefusal(err, instance, source, before, deadline, signal, log);
      return this.finish(instance, outcome, log, signal);
    }
    return this.finish(instance, await this.track(instance, source, undefined, before, deadline, signal, log), log, signal);
  }

  /** What a refused or lost evacuate call means. */
  private async afterRefusal(
    err: unknown,
    instance: InstanceInfo,
    source: string,
    before: Set<number>,
    deadline: number,
    signal: AbortSignal | undefined,
    log: Logger,
  ): Promise<Tracked> {
    if (err instanceof OpenStackApiError && err.status < 500) {
      const nova = err.message;
      if (err.status === 400 && /still in use/i.test(nova)) {
        return {
          result: "failed",
          retryable: true,
          message: `Nova still considers nova-compute on ${source} up (not forced down yet): isolate the host first, then retry. Nova: ${nova}`,
        };
      }
      if (err.status === 404) return { result: "failed", retryable: false, message: `Nova answers 404: ${nova}` };
      if (err.status === 409) {
        // Busy: maybe an evacuation started meanwhile; look before calling it a failure.
        const again = await this.inspect(instance.id, signal);
        const started = again.evacuations.find((m) => m.source_compute === source && OPEN_MIGRATION_STATUSES.includes(m.status));
        const task = again.server?.["OS-EXT-STS:task_state"] ?? null;
        if (started || (task !== null && REBUILD_TASKS.has(task))) {
          log.info({ migration: started?.id }, "evacuate refused (409) because one is already running: tracking it");
          return this.track(instance, source, started?.id, before, deadline, signal, log);
        }
        return { result: "failed", retryable: !/vm_state/.test(nova), message: `Nova refuses the evacuation now (409): ${nova}` };
      }
      return { result: "failed", retryable: false, message: `Nova refuses the evacuation (${err.status}): ${nova}` };
    }
    if (err instanceof OpenStackConnectionError) return this.afterNoAnswer(err, instance, source, before, deadline, signal, log);
    // A 5xx is Nova's answer: the call is over, so what it did is visible now. Look before retrying.
    const again = await this.inspect(instance.id, signal).catch(() => undefined);
    const started = again?.evacuations.find((m) => !before.has(m.id) && m.source_compute === source);
    if (started) {
      log.warn({ migration: started.id, err: errorMessage(err) }, "evacuate call failed but Nova started it: tracking");
      return this.track(instance, source, started.id, before, deadline, signal, log);
    }
    // A 5xx with nothing started: worth another attempt (which inspects again before sending).
    return { result: "failed", retryable: true, message: `evacuate call failed: ${errorMessage(err)}` };
  }

  /**
   * The evacuate call got no answer (timeout, lost connection): Nova may still be handling
   * it and accept it later, so a look now proves nothing and a second evacuate could break
   * the server. Watch for the evacuation until the deadline and follow it if it shows up;
   * if it never does, report the instance as unconfirmed — never send another evacuate.
   */
  private async afterNoAnswer(
    err: OpenStackConnectionError,
    instance: InstanceInfo,
    source: string,
    before: Set<number>,
    deadline: number,
    signal: AbortSignal | undefined,
    log: Logger,
  ): Promise<Tracked> {
    log.warn({ err: err.message }, "evacuate call got no answer: watching whether Nova started it, not sending it again");
    const started = this.clock.now();
    for (;;) {
      const insp = await this.inspect(instance.id, signal).catch((e: unknown) => {
        if (isAbortError(e) && signal?.aborted) throw e;
        return undefined;
      });
      if (insp) {
        if (!insp.server) return { result: "failed", retryable: false, message: "the server was deleted during its evacuation" };
        const mig = insp.evacuations.find((m) => !before.has(m.id) && m.source_compute === source);
        const at = insp.server["OS-EXT-SRV-ATTR:host"] ?? null;
        const task = insp.server["OS-EXT-STS:task_state"] ?? null;
        if (mig || at !== source || (task !== null && REBUILD_TASKS.has(task))) {
          log.warn({ migration: mig?.id }, "the unanswered evacuate was accepted by Nova: tracking it");
          return this.track(instance, source, mig?.id, before, deadline, signal, log);
        }
      }
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) {
        const secs = Math.round((this.clock.now() - started) / 1000);
        return {
          result: "failed",
          retryable: false,
          message:
            `evacuate call got no answer (${err.message}) and Nova shows no evacuation of it after ${secs}s: not sent again, ` +
            `since Nova may still accept the first and a second evacuate breaks the server; check it and evacuate it by hand if it is still on ${source}`,
        };
      }
      await sleep(Math.min(this.opts.pollIntervalMs, remaining), signal);
    }
  }

  /** Follow one evacuation until the server is elsewhere with no task, the migration fails, or time is up. */
  private async track(
    instance: InstanceInfo,
    source: string,
    migrationId: number | undefined,
    before: Set<number>,
    deadline: number,
    signal: AbortSignal | undefined,
    log: Logger,
  ): Promise<Tracked> {
    let known = migrationId;
    let last = "";
    const started = this.clock.now();
    for (;;) {
      const remaining = deadline - this.clock.now();
      if (remaining > 0) await sleep(Math.min(this.opts.pollIntervalMs, remaining), signal);
      let insp: Inspection;
      try {
        insp = await this.inspect(instance.id, signal);
      } catch (err) {
        if (isAbortError(err) && signal?.aborted) throw err;
        if (this.clock.now() >= deadline) {
          return { result: "failed", retryable: true, stillRunning: true, message: `lost track of the evacuation: ${errorMessage(err)}` };
        }
        log.warn({ err: errorMessage(err) }, "could not look at the evacuation, trying again");
        continue;
      }
      const s = insp.server;
      if (!s) return { result: "failed", retryable: false, message: "the server was deleted during its evacuation" };
      const mig =
        known !== undefined
          ? insp.evacuations.find((m) => m.id === known)
          : insp.evacuations.find((m) => !before.has(m.id) && m.source_compute === source);
      if (mig) known = mig.id;
      const at = s["OS-EXT-SRV-ATTR:host"] ?? null;
      const task = s["OS-EXT-STS:task_state"] ?? null;
      const state = `migration ${mig ? `${mig.id} ${mig.status}` : "not seen"}, server ${s.status} on ${at ?? "no host"}${task ? ` (${task})` : ""}`;
      if (state !== last) {
        log.debug({ migration: mig?.id, migrationStatus: mig?.status, status: s.status, at, task }, "evacuation progress");
        last = state;
      }
      if (mig && FAILED_MIGRATION_STATUSES.includes(mig.status)) {
        return { result: "failed", retryable: true, message: `evacuation failed in Nova: ${state}` };
      }
      if (at !== null && at !== source && task === null && (!mig || SUCCESS_MIGRATION_STATUSES.includes(mig.status))) {
        return this.arrived(s, instance, mig, log, "evacuated");
      }
      if (this.clock.now() >= deadline) {
        const secs = Math.round((this.clock.now() - started) / 1000);
        return { result: "failed", retryable: true, stillRunning: true, message: `not finished after ${secs}s of tracking: ${state}` };
      }
    }
  }

  private arrived(s: NovaServer, instance: InstanceInfo, mig: NovaMigration | undefined, log: Logger, how: string): Tracked {
    const at = s["OS-EXT-SRV-ATTR:host"]!;
    if (s.status === "ERROR") {
      return { result: "failed", retryable: false, message: `server is on ${at} but in ERROR after its evacuation` };
    }
    let message = `${how}: now ${s.status} on ${at}${mig ? ` (migration ${mig.id} ${mig.status})` : ""}`;
    if (instance.status === "SHUTOFF" && s.status !== "SHUTOFF") message += `; it was SHUTOFF before, now ${s.status}`;
    log.info({ target: at, status: s.status }, message);
    return { result: "evacuated", targetHost: at, status: s.status, message };
  }

  private async lockFor(server: NovaServer, source: string, opts: EvacuateOptions, log: Logger, signal?: AbortSignal): Promise<void> {
    if (!this.opts.lockInstances) return;
    if (server.locked) {
      if (this.ownedLocks.has(server.id) || isLifeboatReason(server.locked_reason)) {
        this.ownedLocks.add(server.id);
      } else {
        log.info({ reason: server.locked_reason }, "server locked by its owner: leaving the lock alone");
      }
      return;
    }
    const reason = opts.lockReason ? lifeboatReason(opts.lockReason) : `lifeboat: evacuating from ${source}`;
    try {
      await this.nova.lock(server.id, reason, signal);
      this.ownedLocks.add(server.id);
    } catch (err) {
      if (isAbortError(err) && signal?.aborted) throw err;
      log.warn({ err: errorMessage(err) }, "could not lock the server; evacuating it unlocked");
    }
  }

  /** Unlock what lifeboat locked once the evacuation has ended (a still-running one keeps its lock). */
  private async finish(instance: InstanceInfo, outcome: Tracked, log: Logger, signal?: AbortSignal): Promise<EvacuationOutcome> {
    const { stillRunning, ...result } = outcome;
    if (!stillRunning) await this.releaseLock(instance.id, log, signal);
    return result;
  }

  private async releaseLock(id: string, log: Logger, signal?: AbortSignal): Promise<void> {
    let owned = this.ownedLocks.has(id);
    if (!owned && this.opts.lockInstances && this.nova.supports("2.73")) {
      // A lock of an earlier lifeboat process is recognisable by its reason.
      const s = await this.nova.getServer(id, signal).catch(() => null);
      owned = Boolean(s?.locked && isLifeboatReason(s.locked_reason));
    }
    if (!owned) return;
    try {
      await this.nova.unlock(id, signal);
      this.ownedLocks.delete(id);
    } catch (err) {
      if (isAbortError(err) && signal?.aborted) throw err;
      log.warn({ err: errorMessage(err) }, "could not unlock the server");
    }
  }
}

export function createNovaEvacuationDriver(deps: NovaDriverDeps, opts: Partial<NovaDriverOptions> = {}): NovaEvacuationDriver {
  return new NovaEvacuationDriver(deps, opts);
}
