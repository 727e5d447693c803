/**
 * The cloud port: what the engine needs from the cloud to judge a failed host, isolate it
 * and move its instances. src/nova/driver.ts implements it over the Nova API; tests use an
 * in-memory cloud.
 *
 * Every method is idempotent: calling it again after a crash (or twice) must never do a
 * finished side effect a second time. In particular `evacuate` inspects the instance's
 * current host, task state and evacuation records before it sends anything.
 */

export interface ComputeServiceInfo {
  host: string;
  /** Nova's computed view: "down" once the heartbeat is stale or the service is forced down. */
  state: "up" | "down";
  status: "enabled" | "disabled";
  forcedDown: boolean;
  disabledReason: string | null;
  /** Last heartbeat, ISO 8601 UTC. */
  updatedAt: string | null;
  zone: string | null;
  /**
   * When the request that read this from Nova was sent (lifeboat's clock), for an answer
   * that may be older than the call (a shared listing). Absent: read just now. It tells how
   * old the answer is; the heartbeat's age is measured against `novaTime`, never this.
   */
  readAt?: string;
  /**
   * Nova's own time when it gave the answer this came from (its `Date` header: whole
   * seconds, ISO 8601 UTC), a shared answer included. The heartbeat's age is measured
   * against it (domain/heartbeat.ts), never against lifeboat's clock. Absent: the answer
   * carried no usable Date.
   */
  novaTime?: string;
}

/**
 * How recent an answer about nova-compute services must be. Reads that only look (the
 * router, quiet re-checks of blocked recoveries, the storm guard) share one listing a few
 * seconds old at most; a read that must be a separate look at Nova (each of the nova-service
 * gate's checks before a fence) asks for a new request.
 */
export interface ServiceRead {
  /** Accept an answer to a request sent at most this long ago, ms; 0: send a new request. Default: the driver's shared listing. */
  maxAgeMs?: number;
}

/** A new request to Nova. */
export const FRESH_READ: ServiceRead = { maxAgeMs: 0 };
/** The driver's shared listing (a few seconds old at most). */
export const SHARED_READ: ServiceRead = {};

export interface InstanceInfo {
  id: string;
  name: string;
  projectId: string;
  userId?: string;
  /** Nova status: ACTIVE, SHUTOFF, ERROR, REBUILD… */
  status: string;
  host: string | null;
  taskState: string | null;
  metadata: Record<string, string>;
  flavor: { name: string; vcpus: number; ramMb: number; diskGb: number; extraSpecs: Record<string, string> };
  /** Image properties/tags where known (for `evacuable`-style opt-in). */
  imageProperties: Record<string, string>;
  locked?: boolean;
}

import type { EvacuateCall } from "../model.js";

export type { EvacuateCall };

export interface HostCapacity {
  host: string;
  zone: string | null;
  free: { vcpus: number; ramMb: number; diskGb: number };
}

export interface IsolationResult {
  /** True when the service was already forced down and disabled: nothing sent. */
  already: boolean;
  service: ComputeServiceInfo;
  message: string;
  /** Nothing was sent: a dry run's answer (src/engine/dry-run.ts); `message` says what would have been done. */
  dryRun?: true;
  /** Dry run: the disabled_reason the service would have been given. */
  wouldSetReason?: string;
}

export interface EvacuateOptions {
  /** Where to send the instance; undefined lets the scheduler choose. */
  targetHost?: string;
  /** 1-based attempt number (re-issues after a failed evacuation). */
  attempt: number;
  /**
   * No re-issue follows this attempt (the caller's policy has none left): what the driver
   * would leave to the next attempt (a lock Nova failed to take) it does without instead.
   */
  finalAttempt?: boolean;
  /** Give up tracking after this long. */
  timeoutMs: number;
  /**
   * How long after an unanswered call was sent nova-api may still act on it: until then its
   * fate is only watched; after it, Nova's records decide (see the driver's afterNoAnswer).
   */
  noAnswerWindowMs?: number;
  signal?: AbortSignal;
  /** Reason recorded on the server lock (where the API supports it). */
  lockReason?: string;
  /**
   * The instance's latest evacuate call as journaled. One that is not settled may have
   * reached Nova (lifeboat stopped before its answer): it is only watched, never followed
   * by another evacuate.
   */
  lastCall?: EvacuateCall;
  /**
   * Journal the evacuate call: called before it is sent (the POST goes out only once this
   * resolved) and again once its fate is known (`settled`).
   */
  recordCall?: (call: EvacuateCall) => Promise<void>;
  /**
   * The caller's concurrency slot. The driver hands it on while it only watches Nova's
   * records (a call with no answer, an evacuation still running past `timeoutMs`) and takes
   * one again before it sends a new call.
   */
  slot?: EvacuationSlot;
}

export interface EvacuationSlot {
  readonly held: boolean;
  /** Wait for a slot; at once when held. */
  acquire(): Promise<void>;
  /** Hand it on; nothing when not held. */
  release(): void;
}

/**
 * `permanent`: a failure no re-issue can change (the server is gone, Nova refuses it as it
 * stands); any other failed attempt may be issued again (domain/errors.ts's one word).
 * `lockLeft`: lifeboat's lock may still be on the server after this attempt (the unlock
 * failed or could not be checked, or the evacuation still runs in Nova), in plain words.
 * The caller journals the unlock as owed and retries it (`releaseLifeboatLock`).
 * `would-evacuate`: a dry run's answer (src/engine/dry-run.ts): nothing was sent, nothing
 * locked; `targetHost` is the host it would have been sent to, when one was asked for.
 */
export type EvacuationOutcome =
  | { result: "evacuated"; targetHost: string; status: string; message: string; lockLeft?: string }
  | { result: "failed"; message: string; permanent: boolean; lockLeft?: string }
  | { result: "would-evacuate"; dryRun: true; message: string; targetHost?: string };

/** A server with a lock lifeboat wrote (its reason starts with `lifeboat:`). */
export interface LockedServer {
  id: string;
  name: string;
  /** The compute host it is on now. */
  host: string | null;
  /** Nova's task state: not null while something (an evacuation) still runs. */
  taskState: string | null;
  /** The lock reason, e.g. "lifeboat: evacuating from compute-2 (recovery r-…)". */
  reason: string;
}

/**
 * What releasing lifeboat's lock on one server found: unlocked it; nothing to do (not
 * locked any more, or the server is gone); or a lock that is not lifeboat's for this
 * recovery (its owner's, or another recovery's), left alone. `would-unlock`: a dry run's
 * answer (src/engine/dry-run.ts): nothing was sent; lifeboat's lock would have been taken
 * off if it is still there.
 */
export type UnlockResult = "unlocked" | "not-locked" | "gone" | "locked-by-someone-else" | "locked-for-another-recovery" | "would-unlock";

export interface CloudPort {
  readonly driver: string;
  /** Connect and say what is in use (e.g. "Nova microversion 2.88"). */
  start?(signal?: AbortSignal): Promise<string>;
  /** The host's nova-compute service, or null when Nova has none; `read` says how recent (default: the shared listing). */
  getComputeService(host: string, signal?: AbortSignal, read?: ServiceRead): Promise<ComputeServiceInfo | null>;
  /** Force the host's compute service down, then disable it with `reason`. Idempotent. */
  isolate(host: string, reason: string, signal?: AbortSignal): Promise<IsolationResult>;
  listInstances(host: string, signal?: AbortSignal): Promise<InstanceInfo[]>;
  /** Every nova-compute service (storm guard: share of the cloud; zones; hosts Nova knows); `read` says how recent (default: the shared listing). */
  listComputeServices(signal?: AbortSignal, read?: ServiceRead): Promise<ComputeServiceInfo[]>;
  /** Free capacity on the enabled, up compute hosts, of one availability zone or of all (capacity pre-check). */
  capacity?(signal?: AbortSignal, zone?: string): Promise<HostCapacity[]>;
  /** Evacuate one instance away from `sourceHost` and track it to its end. Idempotent. */
  evacuate(instance: InstanceInfo, sourceHost: string, opts: EvacuateOptions): Promise<EvacuationOutcome>;
  /**
   * Every server locked with a lifeboat reason, from one listing; null where Nova does not
   * show lock reasons (below microversion 2.73).
   */
  listLifeboatLocks?(signal?: AbortSignal): Promise<LockedServer[] | null>;
  /**
   * Take lifeboat's lock (for `recoveryId`) off a server if it is still on it. Idempotent.
   * Where Nova does not show lock reasons (below 2.73) any lock is taken for lifeboat's: call
   * it only for servers the journal says lifeboat still owes an unlock. Throws when Nova
   * fails, and while the server is still busy (its lock stays on until it is idle).
   */
  releaseLifeboatLock?(serverId: string, recoveryId: string, signal?: AbortSignal): Promise<UnlockResult>;
  /**
   * Forget the locks this process took (its leadership ended): another instance may have
   * released them since, and a lock there later may be the owner's. Locks are then judged
   * by what Nova shows.
   */
  forgetLocks?(): void;
  /** Bringing a repaired host back (`lifeboat release`); absent where the driver cannot. */
  readonly release?: ReleasePort;
}

/**
 * Bringing a repaired host back into service (a release's stages, src/engine/stages/release.ts).
 * Each call looks first and acts only when needed: calling it again after a crash is safe.
 */
export interface ReleasePort {
  /** Evacuation records from `host` still `done` (nova-compute turns them `completed` when it starts). */
  evacuationRecordsLeft(host: string, signal?: AbortSignal): Promise<number>;
  /** forced_down=false, unless it is not forced down already. Throws when Nova refuses (records still `done`). */
  unforce(host: string, signal?: AbortSignal): Promise<UnforceResult>;
  /** Enable the service if lifeboat disabled it; one someone else disabled is left as it is. */
  enable(host: string, signal?: AbortSignal): Promise<EnableResult>;
}

export interface UnforceResult {
  already: boolean;
  service: ComputeServiceInfo;
  /** Nothing was sent: a dry run's answer (src/engine/dry-run.ts). */
  dryRun?: true;
}

export interface EnableResult {
  result: "enabled" | "already" | "left-disabled";
  message: string;
  service: ComputeServiceInfo;
  /** Nothing was sent: a dry run's answer (src/engine/dry-run.ts); `message` says what would have been done. */
  dryRun?: true;
}
