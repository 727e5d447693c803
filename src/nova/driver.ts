import type { Logger } from "../logging.js";
import { abortReason, isAbortError } from "../util/abort.js";
import { systemClock, type Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { NovaRelease } from "./release.js";
import { isolateComputeService, readComputeService } from "./compute-services.js";
import { isLifeboatReason, lifeboatReason, reasonRecoveryId } from "../domain/markers.js";
import { ComputeServiceListing } from "./service-listing.js";
import { SharedRead } from "../util/shared-read.js";
import { getComputeCapacity, InventoryCache, type ComputeHostCapacity } from "./capacity.js";
import { EvacuationWatch, type LookPurpose, type ServerLook } from "./evacuation-watch.js";
import { PlacementClient } from "../openstack/placement.js";
import {
  FAILED_MIGRATION_STATUSES,
  NovaClient,
  OPEN_MIGRATION_STATUSES,
  type NovaMigration,
  type NovaServer,
} from "../openstack/nova.js";
import { OpenStackConnectionError } from "../openstack/errors.js";
import { isPermanent } from "../domain/errors.js";
import { OpenStackApiError, type OpenStackSession } from "../openstack/types.js";
import type { EvacuationConfig } from "./config.js";
import type {
  ComputeServiceInfo,
  EvacuateCall,
  EvacuateOptions,
  CloudPort,
  EvacuationOutcome,
  EvacuationSlot,
  InstanceInfo,
  IsolationResult,
  LockedServer,
  UnlockResult,
  ServiceRead,
} from "../domain/ports/cloud.js";
import { SHARED_READ } from "../domain/ports/cloud.js";

/**
 * The `nova` evacuation driver: isolation through os-services, instance listing through the
 * admin server list, and evacuations that are safe to repeat. Before it sends an evacuate it
 * looks at the server and its evacuation migrations: a server already elsewhere is reported
 * evacuated, and a running evacuation is tracked, never doubled (a real Nova answers 200 to a
 * second evacuate and leaves the server broken). It locks the server while it works (unless
 * its owner already locked it), tracks the migration to `done` and the server to its new
 * host with no task, and unlocks.
 *
 * Every look at a server goes through one shared watch (evacuation-watch.ts): all
 * evacuations, from however many failed hosts, are inspected and tracked with one or two
 * listings per poll cycle, whatever their number. What Nova pays per evacuated instance is
 * then its lock, its evacuate and its unlock, plus a share of those listings.
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

/** A watch nobody used for this long is dropped (its view would have to be brought up to date anyway). */
const WATCH_RETENTION_MS = 60_000;
/** How long a resource provider's inventory read from Placement is reused (an operator's change to it shows within this). */
const INVENTORY_TTL_MS = 60_000;

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

/** The server and its evacuation migrations from the failed host, newest first, as one look showed them. */
type Inspection = ServerLook;

/**
 * An attempt's outcome inside the driver. `stillRunning`: Nova's evacuation goes on past the
 * attempt; `keepLock`: the attempt is over but its lock stays for the re-issue that follows
 * (an unanswered call that did nothing), so the server is never unlocked and locked again.
 */
type Tracked = Exclude<EvacuationOutcome, { result: "would-evacuate" }> & {
  stillRunning?: boolean;
  keepLock?: boolean;
  /** A look that started after this attempt began showed lifeboat's lock on the server after the evacuation ended. */
  lockSeen?: boolean;
};

/**
 * One evacuate() of one instance and what its steps share — the instance, the failed host,
 * the caller's options, the deadline, the evacuations Nova had before lifeboat's call and the
 * call itself as journaled — passed whole from step to step.
 */
interface Attempt {
  readonly instance: InstanceInfo;
  readonly source: string;
  readonly opts: EvacuateOptions;
  readonly signal: AbortSignal | undefined;
  readonly log: Logger;
  /** Watching and tracking give up at this instant (clock ms). */
  deadline: number;
  /** The server's evacuation migration ids from before lifeboat's call: a newer one from `source` is the call's. */
  before: Set<number>;
  /** The evacuate call this attempt sent or watches, as journaled. */
  call?: EvacuateCall;
  /**
   * When this process gave up waiting for the call's answer (clock ms): Nova's window to act
   * on it runs from here, since the call reached Nova, if it did, before then. The journaled
   * `sentAt` comes before the call by the journal's write and the pacer's queue (more on a
   * disk slow to sync); it is the window's start only after a restart, with nothing better.
   */
  noAnswerAtMs?: number;
}

/**
 * No answer from Nova itself: the connection failed or timed out, or a gateway in front of
 * nova-api gave up waiting for it (502, 504). nova-api may have the request and act on it.
 */
function gotNoAnswer(err: unknown): boolean {
  if (err instanceof OpenStackConnectionError) return true;
  return err instanceof OpenStackApiError && (err.status === 502 || err.status === 504);
}

export class NovaEvacuationDriver implements CloudPort {
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
  /**
   * When this process last sent a server a lock or an evacuate (clock ms), until its
   * evacuation succeeds: a look before another evacuate of it must start after that.
   */
  private readonly actedAt = new Map<string, number>();
  /** One nova-compute listing shared by every reader that accepts one a few seconds old. */
  private readonly services: ComputeServiceListing;
  /** The site's free capacity, one reading shared by the checks that ask while it is under way. */
  /** Capacity readings, of the whole site ("") or of one availability zone: see capacity(). */
  private readonly capacityReads = new Map<string, SharedRead<ComputeHostCapacity[]>>();
  /** Placement inventories, reused by the capacity readings for INVENTORY_TTL_MS. */
  private readonly inventories: InventoryCache;
  readonly release: NovaRelease;
  /** One watch shared by every evacuation, from whichever failed host. */
  private readonly watch: EvacuationWatch;

  constructor(deps: NovaDriverDeps, opts: Partial<NovaDriverOptions> = {}) {
    this.log = deps.logger.child({ component: "evacuation", driver: "nova" });
    this.clock = deps.clock ?? systemClock;
    this.opts = { lockInstances: opts.lockInstances ?? true, pollIntervalMs: opts.pollIntervalMs ?? 2000, microversions: opts.microversions };
    this.nova = deps.nova ?? new NovaClient(deps.session, { logger: deps.logger, microversions: opts.microversions });
    this.placement = new PlacementClient(deps.session);
    this.services = new ComputeServiceListing(() => this.nova.readServices({ binary: "nova-compute" }), this.clock);
    this.inventories = new InventoryCache(INVENTORY_TTL_MS, () => this.clock.now());
    this.release = new NovaRelease(this.nova, this.log, () => {
      this.services.invalidate();
      this.capacityChanged();
    });
    this.watch = new EvacuationWatch({ nova: this.nova, clock: this.clock, log: this.log, pollIntervalMs: this.opts.pollIntervalMs, retentionMs: WATCH_RETENTION_MS });
  }

  async start(signal?: AbortSignal): Promise<string> {
    await this.nova.negotiate(signal);
    return this.nova.describe();
  }

  /** A new request asks Nova about this host alone; otherwise the shared listing answers. */
  async getComputeService(host: string, signal?: AbortSignal, read: ServiceRead = SHARED_READ): Promise<ComputeServiceInfo | null> {
    if (read.maxAgeMs === 0) {
      const svc = await readComputeService(this.nova, host, signal);
      // A shared listing read before this look may show the host as it was (up, when the
      // validation just saw it down): the next shared read asks Nova again.
      this.services.invalidate();
      return svc;
    }
    return (await this.listComputeServices(signal, read)).find((s) => s.host === host) ?? null;
  }

  listComputeServices(signal?: AbortSignal, read: ServiceRead = SHARED_READ): Promise<ComputeServiceInfo[]> {
    return this.services.read(read.maxAgeMs ?? SHARED_LISTING_MAX_AGE_MS, signal);
  }

  /** Free capacity of the enabled, up compute hosts (Placement, else os-hypervisors), of one zone or of all. */
  capacity(signal?: AbortSignal, zone?: string): Promise<ComputeHostCapacity[]> {
    // The checks that ask while a reading of the same hosts is under way share it (a reading
    // costs Placement a request per compute host, and a storm's gates ask for every failed
    // host at once); an answer already given is never reused: an evacuation moving between
    // its listing on the failed host and its claim on the destination would be counted by
    // neither in an older reading.
    const key = zone ?? "";
    let read = this.capacityReads.get(key);
    if (!read) {
      const query = zone === undefined ? {} : { availabilityZone: zone };
      read = new SharedRead(() => getComputeCapacity({ nova: this.nova, placement: this.placement, inventories: this.inventories, logger: this.log }, query), this.clock);
      this.capacityReads.set(key, read);
    }
    return read.readInFlight(signal);
  }

  /** lifeboat itself just changed what Placement shows: the next capacity reading asks anew. */
  private capacityChanged(): void {
    for (const read of this.capacityReads.values()) read.invalidate();
  }

  isolate(host: string, reason: string, signal?: AbortSignal): Promise<IsolationResult> {
    // The shared listing and capacity may predate the force-down: the next read asks Nova again.
    return isolateComputeService(this.nova, host, reason, { logger: this.log, signal }).finally(() => {
      this.services.invalidate();
      this.capacityChanged();
    });
  }

  async listInstances(host: string, signal?: AbortSignal): Promise<InstanceInfo[]> {
    const sentAt = this.clock.now();
    const listing = await this.nova.listServersDated({ all_tenants: 1, host }, signal);
    const out: InstanceInfo[] = [];
    for (const s of listing.items) {
      const on = s["OS-EXT-SRV-ATTR:host"];
      // Nova ignores `host` silently for non-admins: never trust the filter blindly.
      if (on === undefined) throw new Error("the server list carries no OS-EXT-SRV-ATTR:host: lifeboat's OpenStack user needs the admin role");
      if (on === host) out.push(toInstanceInfo(s));
    }
    // The evacuations that follow start from this listing rather than asking for it again.
    this.watch.seed(host, { items: listing.items.filter((s) => s["OS-EXT-SRV-ATTR:host"] === host), date: listing.date }, sentAt, this.clock.now());
    // And from one listing of the host's evacuations, after the servers (never older than
    // them), so that the looks before the first evacuates need no cycle. A failure here
    // only leaves it to the watch's first cycle.
    const migrationsSentAt = this.clock.now();
    try {
      const migrations = await this.nova.listMigrationsDated({ source_compute: host, migration_type: "evacuation" }, signal);
      this.watch.seedMigrations(host, migrations, migrationsSentAt, this.clock.now());
    } catch (err) {
      if (isAbortError(err) && signal?.aborted) throw err;
      this.log.debug({ host, err: errorMessage(err) }, "could not list the host's evacuations with its instances: the first look lists them");
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
        return { result: "failed", permanent: false, message: `could not reach Nova: ${errorMessage(err)}` };
      })
      .finally(() => {
        this.inFlight.delete(instance.id);
        // Whatever it did (moved, failed, released its claim), Placement's usage may have changed.
        this.capacityChanged();
      });
    this.inFlight.set(instance.id, p);
    return p;
  }

  /** The server and its evacuations from `source`, from the host's next look (one that starts after this call). */
  private async inspect(id: string, source: string, signal?: AbortSignal, purpose: LookPurpose = "decide"): Promise<Inspection> {
    const look = (await this.watch.look([id], source, signal, purpose)).get(id);
    if (!look) throw new Error(`the look at ${source}'s evacuations did not cover server ${id}`);
    return look;
  }

  /**
   * The server and its evacuation migrations, asked of Nova for this server alone (two
   * requests), from a look that starts now. For the one decision a shared look does not
   * make alone: that an unanswered evacuate did nothing, so that it may be sent again.
   */
  private async inspectDirect(id: string, signal?: AbortSignal): Promise<Inspection> {
    const sentAt = this.clock.now();
    const [server, evacuations] = await Promise.all([
      this.nova.getServer(id, signal),
      this.nova.listMigrations({ instance_uuid: id, migration_type: "evacuation" }, signal).catch((err: unknown) => ({ failed: err })),
    ]);
    if (!server) return { server: null, evacuations: [], sentAt };
    if ("failed" in evacuations) throw evacuations.failed;
    return { server, evacuations, sentAt };
  }

  private async evacuateOnce(instance: InstanceInfo, source: string, opts: EvacuateOptions): Promise<EvacuationOutcome> {
    const log = this.log.child({ instance: instance.id, name: instance.name, host: source, attempt: opts.attempt });
    const a: Attempt = { instance, source, opts, signal: opts.signal, log, deadline: this.clock.now() + opts.timeoutMs, before: new Set() };
    await this.nova.negotiate(a.signal);

    const unsettled = opts.lastCall && !opts.lastCall.settled ? opts.lastCall : undefined;
    if (unsettled) return this.finish(instance, await this.afterMaybeSent(a, unsettled), log, a.signal, opts.slot);

    for (;;) {
      let first: Inspection;
      try {
        first = this.watch.current([instance.id], source, this.actedAt.get(instance.id) ?? Number.NEGATIVE_INFINITY)?.get(instance.id) ?? (await this.inspect(instance.id, source, a.signal, "first"));
      } catch (err) {
        // A failed look (Nova did not answer the host's poll cycle): nothing was sent, so
        // look again at the next cycle, a poll interval on, until the attempt's deadline.
        if ((isAbortError(err) && a.signal?.aborted) || this.clock.now() >= a.deadline) throw err;
        log.warn({ err: errorMessage(err) }, "could not look at the server before evacuating it, looking again");
        continue;
      }
      const server = first.server;
      if (!server) return { result: "failed", message: `server ${instance.id} no longer exists (Nova answers 404)`, permanent: true };
      const at = server["OS-EXT-SRV-ATTR:host"] ?? null;
      const task = server["OS-EXT-STS:task_state"] ?? null;
      const fromSource = first.evacuations.filter((m) => m.source_compute === source);
      const open = fromSource.find((m) => OPEN_MIGRATION_STATUSES.includes(m.status));

      if (at !== source) {
        if (at === null) {
          return { result: "failed", message: `server is on no host (status ${server.status}): nothing to evacuate`, permanent: true };
        }
        // Arrived while nobody watched (e.g. during a restart): the lock an earlier attempt took is released too.
        if (task === null) return this.finish(instance, this.arrived(server, instance, fromSource[0], log, "already on another host"), log, a.signal, opts.slot);
        // Elsewhere already but still busy (e.g. the rebuild is finishing): follow it, send nothing.
        log.info({ at, task }, "server already left the failed host and is still busy: tracking");
        return this.finish(instance, await this.track(a, open?.id), log, a.signal, opts.slot);
      }
      if (open || (task !== null && REBUILD_TASKS.has(task))) {
        log.info({ migration: open?.id, status: open?.status, task }, "an evacuation is already running: tracking it, not sending another");
        return this.finish(instance, await this.track(a, open?.id), log, a.signal, opts.slot);
      }
      if (opts.slot && !opts.slot.held) {
        // This attempt only watched so far (its slot went to another instance while an earlier
        // evacuation ran past its time and then failed in Nova): wait for a slot, then look again.
        await opts.slot.acquire();
        continue;
      }

      const lockFailed = await this.lockFor(server, source, opts, log, a.signal);
      if (lockFailed !== undefined) {
        // Nothing sent: the stage's re-issue locks again after a new look. A lock Nova may have
        // taken without answering stays journaled as owed until then (keepLock).
        return this.finish(instance, { result: "failed", permanent: false, keepLock: true, message: `could not lock the server, so the evacuate was not sent: ${lockFailed}` }, log, a.signal, opts.slot);
      }
      a.before = new Set(first.evacuations.map((m) => m.id));
      return this.finish(instance, await this.send(a), log, a.signal, opts.slot);
    }
  }

  /** Journal the call, send it, journal that it was answered; then follow what Nova does with it. */
  private async send(a: Attempt): Promise<Tracked> {
    const call: EvacuateCall = { attempt: a.opts.attempt, sentAt: new Date(this.clock.now()).toISOString(), migrationsBefore: [...a.before] };
    try {
      await a.opts.recordCall?.(call);
    } catch (err) {
      if (isAbortError(err) && a.signal?.aborted) throw err;
      // The journal is out of reach (often: this instance is cut off and another will take over):
      // leave the lock for whoever evacuates the server next rather than unlock and lock again.
      return { result: "failed", permanent: false, keepLock: true, message: `could not journal the evacuate call, so it was not sent: ${errorMessage(err)}` };
    }
    a.call = call;
    try {
      await this.acting(a.instance.id, this.nova.evacuate(a.instance.id, { host: a.opts.targetHost }, a.signal));
    } catch (err) {
      // Stopping while the call is out: it stays journaled as sent and unanswered, so the
      // resumed attempt treats it as maybe sent.
      if (isAbortError(err) && a.signal?.aborted) throw err;
      if (gotNoAnswer(err)) {
        a.noAnswerAtMs = this.clock.now();
        return this.afterNoAnswer(a, `got no answer (${errorMessage(err)})`);
      }
      await this.settle(a, "answer");
      return this.afterRefusal(a, err);
    }
    await this.settle(a, "answer");
    // The scheduler has claimed room on the destination: a capacity reading from before is stale.
    this.capacityChanged();
    a.log.info({ target: a.opts.targetHost ?? "scheduler" }, "evacuate accepted by Nova");
    return this.track(a, undefined);
  }

  /** Journal that the call's fate is known. A failure is only logged: a restart then watches for it again, which is safe. */
  private async settle(a: Attempt, by: "answer" | "nova-records"): Promise<void> {
    if (!a.call || a.call.settled) return;
    a.call = { ...a.call, settled: { at: new Date(this.clock.now()).toISOString(), by } };
    try {
      await a.opts.recordCall?.(a.call);
    } catch (err) {
      if (isAbortError(err) && a.signal?.aborted) throw err;
      a.log.warn({ err: errorMessage(err) }, "could not journal the evacuate call's answer; after a restart it would be watched as maybe sent");
    }
  }

  /** What a refused call means (Nova answered: the call is over). */
  private async afterRefusal(a: Attempt, err: unknown): Promise<Tracked> {
    const { instance, source, log } = a;
    if (err instanceof OpenStackApiError && err.status < 500 && err.status !== 429) {
      const nova = err.message;
      if (err.status === 400 && /still in use/i.test(nova)) {
        return {
          result: "failed",
          permanent: false,
          message: `Nova still considers nova-compute on ${source} up (not forced down yet): isolate the host first, then retry. Nova: ${nova}`,
        };
      }
      if (err.status === 404) return { result: "failed", permanent: true, message: `Nova answers 404: ${nova}` };
      if (err.status === 409) {
        // Busy: maybe an evacuation started meanwhile; look before calling it a failure.
        const again = await this.inspect(instance.id, source, a.signal);
        const started = again.evacuations.find((m) => m.source_compute === source && OPEN_MIGRATION_STATUSES.includes(m.status));
        const task = again.server?.["OS-EXT-STS:task_state"] ?? null;
        if (started || (task !== null && REBUILD_TASKS.has(task))) {
          log.info({ migration: started?.id }, "evacuate refused (409) because one is already running: tracking it");
          return this.track(a, started?.id);
        }
        return { result: "failed", permanent: /vm_state/.test(nova), message: `Nova refuses the evacuation now (409): ${nova}` };
      }
      return { result: "failed", permanent: true, message: `Nova refuses the evacuation (${err.status}): ${nova}` };
    }
    // A 5xx from nova-api itself is its answer, and a 429 one that it did not take the call:
    // the call is over, so what it did is visible now. Look before retrying.
    const again = await this.inspect(instance.id, source, a.signal).catch((e: unknown) => {
      if (isAbortError(e) && a.signal?.aborted) throw e;
      return undefined;
    });
    const started = again?.evacuations.find((m) => !a.before.has(m.id) && m.source_compute === source);
    if (started) {
      log.warn({ migration: started.id, err: errorMessage(err) }, "evacuate call failed but Nova started it: tracking");
      return this.track(a, started.id);
    }
    // A 5xx with nothing started: worth another attempt (which inspects again before sending).
    return { result: "failed", permanent: false, message: `evacuate call failed: ${errorMessage(err)}` };
  }

  /**
   * The journal holds an evacuate call with no answer: lifeboat stopped (killed, restarted)
   * while the call may have been on its way to Nova or inside it. nova-api goes on with a
   * request whose client went away, so this is exactly the case of a call that got no answer
   * in-process, and is handled by the same code: watch Nova's records, never send again.
   */
  private afterMaybeSent(a: Attempt, call: EvacuateCall): Promise<Tracked> {
    a.call = call;
    a.before = new Set(call.migrationsBefore);
    // Nova's window to act on the call runs from when it was sent, not from the restart: a
    // lifeboat that was down longer than the window looks once and decides.
    const sent = Date.parse(call.sentAt);
    if (Number.isFinite(sent)) a.deadline = sent + a.opts.timeoutMs;
    return this.afterNoAnswer(a, `was in flight when lifeboat stopped (sent ${call.sentAt}, no answer journaled)`);
  }

  /**
   * The evacuate call got no answer (timeout, lost connection, a gateway that gave up, or
   * lifeboat stopped while it was out): Nova may still be handling it and accept it later, so
   * a look now proves nothing and a second evacuate could break the server. Watch Nova's own
   * records — a new evacuation migration from the failed host, a rebuild task, another host —
   * and follow the evacuation as soon as it shows up. Nothing else is sent until Nova can no
   * longer be acting on the call: `noAnswerWindowMs` after this process gave up waiting for
   * its answer, or after its journaled send when another process sent it (the config's
   * no_answer_window_seconds). nova-api writes the task state and the migration record before
   * it answers, so once that window has passed, records that still show none of them prove
   * the call did nothing: the attempt fails as transient (not permanent) and the stage re-issues it (within
   * evacuation.retries), inspecting again first. If Nova cannot be read until the attempt's
   * deadline, nothing is proven: the instance is left to an operator.
   */
  private async afterNoAnswer(a: Attempt, why: string): Promise<Tracked> {
    const { instance, source, log } = a;
    // Only watching from here on: another instance may have the slot.
    a.opts.slot?.release();
    const sent = a.call ? Date.parse(a.call.sentAt) : this.clock.now();
    const windowEnd = (a.noAnswerAtMs ?? (Number.isFinite(sent) ? sent : this.clock.now())) + (a.opts.noAnswerWindowMs ?? a.opts.timeoutMs);
    log.warn({ why, until: new Date(windowEnd).toISOString() }, "evacuate call may have reached Nova without an answer: watching whether Nova acts on it, not sending it again");
    const accepted = (insp: Inspection): NovaMigration | true | undefined => {
      const mig = insp.evacuations.find((m) => !a.before.has(m.id) && m.source_compute === source);
      const at = insp.server?.["OS-EXT-SRV-ATTR:host"] ?? null;
      const task = insp.server?.["OS-EXT-STS:task_state"] ?? null;
      return mig ?? (at !== source || (task !== null && REBUILD_TASKS.has(task)) ? true : undefined);
    };
    for (;;) {
      // Each look is the host's next poll cycle: looks are a poll interval apart.
      let insp = await this.inspect(instance.id, source, a.signal).catch((e: unknown) => {
        if (isAbortError(e) && a.signal?.aborted) throw e;
        return undefined;
      });
      // Only a look that started after the window proves anything. The shared look is Nova's
      // changes laid over earlier listings: the conclusion that lets the call be sent again
      // rests on a look of its own at this server (its record and its migrations).
      if (insp?.server && !accepted(insp) && insp.sentAt >= windowEnd) {
        insp = await this.inspectDirect(instance.id, a.signal).catch((e: unknown) => {
          if (isAbortError(e) && a.signal?.aborted) throw e;
          return undefined;
        });
      }
      if (insp) {
        if (!insp.server) return { result: "failed", permanent: true, message: "the server was deleted during its evacuation" };
        const seen = accepted(insp);
        if (seen) {
          const mig = seen === true ? undefined : seen;
          log.warn({ migration: mig?.id }, "the unanswered evacuate was accepted by Nova: tracking it");
          await this.settle(a, "nova-records");
          return this.track(a, mig?.id);
        }
        if (insp.sentAt >= windowEnd) {
          const secs = Math.round((windowEnd - (Number.isFinite(sent) ? sent : windowEnd)) / 1000);
          log.warn({ why }, "Nova's records show no evacuation of the unanswered call after its window: it did nothing");
          await this.settle(a, "nova-records");
          return {
            result: "failed",
            permanent: false,
            keepLock: true,
            message: `evacuate call ${why}; ${secs}s after it was sent Nova's records show no evacuation of it (no migration, no rebuild, same host): it did nothing`,
          };
        }
      }
      if (!insp && this.clock.now() >= a.deadline) {
        const secs = Number.isFinite(sent) ? Math.round((this.clock.now() - sent) / 1000) : undefined;
        return {
          result: "failed",
          permanent: true,
          message:
            `evacuate call ${why}, and Nova could not be read to see what became of it${secs !== undefined ? ` ${secs}s after it was sent` : ""}. ` +
            `Not sent again: the call may have been received and Nova may still act on it, and a second evacuate breaks the server. ` +
            `An operator must look at the server and evacuate it by hand if it is still on ${source}`,
        };
      }
    }
  }

  /** Follow one evacuation until the server is elsewhere with no task, the migration fails, or time is up. */
  private async track(a: Attempt, migrationId: number | undefined): Promise<Tracked> {
    const { instance, source, log } = a;
    let known = migrationId;
    let last = "";
    const started = this.clock.now();
    for (;;) {
      // Each look is the host's next poll cycle, shared with every evacuation from the host.
      let insp: Inspection;
      try {
        insp = await this.inspect(instance.id, source, a.signal, "track");
      } catch (err) {
        if (isAbortError(err) && a.signal?.aborted) throw err;
        if (this.clock.now() >= a.deadline) return this.stuck(a, `lost track of the evacuation: ${errorMessage(err)}`);
        log.warn({ err: errorMessage(err) }, "could not look at the evacuation, trying again");
        continue;
      }
      const s = insp.server;
      if (!s) return { result: "failed", permanent: true, message: "the server was deleted during its evacuation" };
      const mig =
        known !== undefined
          ? insp.evacuations.find((m) => m.id === known)
          : insp.evacuations.find((m) => !a.before.has(m.id) && m.source_compute === source);
      if (mig) known = mig.id;
      const at = s["OS-EXT-SRV-ATTR:host"] ?? null;
      const task = s["OS-EXT-STS:task_state"] ?? null;
      const state = `migration ${mig ? `${mig.id} ${mig.status}` : "not seen"}, server ${s.status} on ${at ?? "no host"}${task ? ` (${task})` : ""}`;
      if (state !== last) {
        log.debug({ migration: mig?.id, migrationStatus: mig?.status, status: s.status, at, task }, "evacuation progress");
        last = state;
      }
      if (mig && FAILED_MIGRATION_STATUSES.includes(mig.status)) {
        return { result: "failed", permanent: false, message: `evacuation failed in Nova: ${state}` };
      }
      // On another host and idle: Nova moves the server's host only once the evacuation has
      // succeeded, so its record says so even when the migration was last listed still open.
      if (at !== null && at !== source && task === null) {
        // This look started after the attempt did (look()): a lock of lifeboat's it shows needs no second look to be recognised.
        return { ...this.arrived(s, instance, mig, log, "evacuated"), lockSeen: s.locked === true && isLifeboatReason(s.locked_reason) };
      }
      if (this.clock.now() >= a.deadline) {
        const secs = Math.round((this.clock.now() - started) / 1000);
        return this.stuck(a, `not finished after ${secs}s of tracking: ${state}`);
      }
    }
  }

  /**
   * Past its deadline and Nova still at it: the lock stays, a re-issue only tracks it again,
   * and the slot goes to another instance meanwhile (a stuck one never holds the others back).
   */
  private stuck(a: Attempt, message: string): Tracked {
    a.opts.slot?.release();
    return { result: "failed", permanent: false, stillRunning: true, message };
  }

  private arrived(s: NovaServer, instance: InstanceInfo, mig: NovaMigration | undefined, log: Logger, how: string): Tracked {
    const at = s["OS-EXT-SRV-ATTR:host"]!;
    if (s.status === "ERROR") {
      return { result: "failed", permanent: true, message: `server is on ${at} but in ERROR after its evacuation` };
    }
    let message = `${how}: now ${s.status} on ${at}${mig ? ` (migration ${mig.id} ${mig.status})` : ""}`;
    if (instance.status === "SHUTOFF" && s.status !== "SHUTOFF") message += `; it was SHUTOFF before, now ${s.status}`;
    // The usual end is logged once, by the evacuating stage ("instance evacuated"); a server
    // found already moved is worth its own line.
    if (how === "evacuated") log.debug({ target: at, status: s.status }, message);
    else log.info({ target: at, status: s.status }, message);
    return { result: "evacuated", targetHost: at, status: s.status, message };
  }

  /**
   * A call that changes the server: a look before another evacuate of it must start after
   * Nova answered (or the call gave up), not merely after it was sent — a cycle that began
   * while the call was on its way may not show what it did.
   */
  private async acting<T>(id: string, call: Promise<T>): Promise<T> {
    this.actedAt.set(id, Number.POSITIVE_INFINITY);
    try {
      return await call;
    } finally {
      this.actedAt.set(id, this.clock.now());
    }
  }

  /**
   * Lock the server for its evacuation. Returns why a transient failure is left to the
   * stage's re-issue (nothing is sent then); undefined to go on, locked or not: a lock Nova
   * refuses, or one that fails on the last attempt, leaves the server evacuated unlocked.
   */
  private async lockFor(server: NovaServer, source: string, opts: EvacuateOptions, log: Logger, signal?: AbortSignal): Promise<string | undefined> {
    if (!this.opts.lockInstances) return undefined;
    if (server.locked) {
      if (this.ownedLocks.has(server.id) || isLifeboatReason(server.locked_reason)) {
        this.ownedLocks.add(server.id);
      } else {
        log.info({ reason: server.locked_reason }, "server locked by its owner: leaving the lock alone");
      }
      return undefined;
    }
    const reason = opts.lockReason ? lifeboatReason(opts.lockReason) : `lifeboat: evacuating from ${source}`;
    try {
      await this.acting(server.id, this.nova.lock(server.id, reason, signal));
      this.ownedLocks.add(server.id);
    } catch (err) {
      if (isAbortError(err) && signal?.aborted) throw err;
      // No answer: the lock may be on (below 2.73 only this process can tell it is lifeboat's).
      if (gotNoAnswer(err)) this.ownedLocks.add(server.id);
      if (!isPermanent(err) && !opts.finalAttempt) {
        log.warn({ err: errorMessage(err) }, "could not lock the server; the evacuation is issued again");
        return errorMessage(err);
      }
      log.warn({ err: errorMessage(err) }, "could not lock the server; evacuating it unlocked");
    }
    return undefined;
  }

  /**
   * Unlock what lifeboat locked once the evacuation has ended (a still-running one keeps its
   * lock). A lock that may still be on the server is said in `lockLeft`, never dropped.
   */
  private async finish(instance: InstanceInfo, outcome: Tracked, log: Logger, signal?: AbortSignal, slot?: EvacuationSlot): Promise<EvacuationOutcome> {
    const { stillRunning, keepLock, lockSeen, ...result } = outcome;
    // Nova has finished the evacuation: nothing of it runs there any more, so its slot goes to
    // the next instance now rather than after the unlock and the journal's record of it.
    if (result.result === "evacuated") slot?.release();
    if (stillRunning || keepLock) {
      // Below 2.73 only a lock this process took is known to be lifeboat's.
      const mayHoldLock = this.opts.lockInstances && (this.ownedLocks.has(instance.id) || this.nova.supports("2.73"));
      const why = stillRunning ? "stays on while Nova's evacuation still runs" : "stays on for the evacuation sent anew";
      return mayHoldLock ? { ...result, lockLeft: `lifeboat's lock (if it took one) ${why}` } : result;
    }
    const left = await this.releaseLock(instance.id, log, signal, lockSeen === true);
    if (result.result === "evacuated") this.actedAt.delete(instance.id);
    // The next attempt's look starts after this one's end was seen: the cycle that saw it
    // may show the server as it was just before (servers are listed before migrations: still
    // rebuilding beside its migration's error), and an attempt that looked there would follow
    // the failed evacuation instead of sending its own.
    else this.actedAt.set(instance.id, Math.max(this.actedAt.get(instance.id) ?? Number.NEGATIVE_INFINITY, this.clock.now()));
    return left === null ? result : { ...result, lockLeft: left };
  }

  /**
   * Take lifeboat's lock off after an evacuation: null once no lock of lifeboat's is left,
   * else why one may be. An abort is not an answer: it propagates (an aborted look must
   * never pass for "not our lock", or the server would stay locked for good).
   */
  private async releaseLock(id: string, log: Logger, signal?: AbortSignal, lockSeen = false): Promise<string | null> {
    // A lock of an earlier lifeboat process (one that stopped; the leader before a takeover)
    // is recognisable by its reason: in the look that saw the evacuation end, else asked of Nova.
    let owned = this.ownedLocks.has(id) || (lockSeen && this.opts.lockInstances);
    if (!owned && this.opts.lockInstances && this.nova.supports("2.73")) {
      let s: NovaServer | null;
      try {
        s = await this.nova.getServer(id, signal);
      } catch (err) {
        if (signal?.aborted) throw isAbortError(err) ? err : abortReason(signal);
        log.warn({ err: errorMessage(err) }, "could not check whether lifeboat's lock is still on the server");
        return `could not check whether lifeboat's lock is still on it: ${errorMessage(err)}`;
      }
      owned = Boolean(s?.locked && isLifeboatReason(s.locked_reason));
    }
    if (!owned) return null;
    try {
      // A change of the server: a later look must not come from before it (still locked).
      await this.acting(id, this.nova.unlock(id, signal));
      this.ownedLocks.delete(id);
      return null;
    } catch (err) {
      if (signal?.aborted) throw isAbortError(err) ? err : abortReason(signal);
      log.warn({ err: errorMessage(err) }, "could not unlock the server");
      return `could not unlock it: ${errorMessage(err)}`;
    }
  }

  forgetLocks(): void {
    this.ownedLocks.clear();
  }

  /** One listing of the servers locked with a lifeboat reason (`locked` filter, 2.73+). */
  async listLifeboatLocks(signal?: AbortSignal): Promise<LockedServer[] | null> {
    await this.nova.negotiate(signal);
    if (!this.nova.supports("2.73")) return null;
    const servers = await this.nova.listServers({ all_tenants: 1, locked: "true" }, signal);
    // The filter narrows the listing; the reason decides.
    return servers
      .filter((s) => s.locked === true && isLifeboatReason(s.locked_reason))
      .map((s) => ({
        id: s.id,
        name: s.name,
        host: s["OS-EXT-SRV-ATTR:host"] ?? null,
        taskState: s["OS-EXT-STS:task_state"] ?? null,
        reason: s.locked_reason ?? "",
      }));
  }

  async releaseLifeboatLock(serverId: string, recoveryId: string, signal?: AbortSignal): Promise<UnlockResult> {
    const s = await this.nova.getServer(serverId, signal);
    if (!s) {
      this.ownedLocks.delete(serverId);
      return "gone";
    }
    if (!s.locked) {
      this.ownedLocks.delete(serverId);
      return "not-locked";
    }
    if (this.nova.supports("2.73")) {
      if (!isLifeboatReason(s.locked_reason)) return "locked-by-someone-else";
      const named = reasonRecoveryId(s.locked_reason);
      if (named !== null && named !== recoveryId) return "locked-for-another-recovery";
    }
    const task = s["OS-EXT-STS:task_state"] ?? null;
    if (task !== null) throw new Error(`the server is still busy in Nova (task ${task}): its lock stays on until it is idle`);
    await this.nova.unlock(serverId, signal);
    this.ownedLocks.delete(serverId);
    return "unlocked";
  }
}

export function createNovaEvacuationDriver(deps: NovaDriverDeps, opts: Partial<NovaDriverOptions> = {}): NovaEvacuationDriver {
  return new NovaEvacuationDriver(deps, opts);
}
