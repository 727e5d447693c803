/**
 * The evacuation driver contract: what the pipeline needs from a cloud to isolate a failed
 * host and move its instances. The `nova` driver implements it over the Nova API; the
 * `simulated` driver in memory for tests.
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
   * When the request that read this from Nova was sent, for an answer that may be older than
   * the call (a shared listing). Absent: read just now. Judge the heartbeat's age at this
   * instant, not at `now`: a newer heartbeat may have come since.
   */
  readAt?: string;
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
}

export interface EvacuateOptions {
  /** Where to send the instance; undefined lets the scheduler choose. */
  targetHost?: string;
  /** 1-based attempt number (re-issues after a failed evacuation). */
  attempt: number;
  /** Give up tracking after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Reason recorded on the server lock (where the API supports it). */
  lockReason?: string;
}

export type EvacuationOutcome =
  | { result: "evacuated"; targetHost: string; status: string; message: string }
  | { result: "failed"; message: string; retryable: boolean };

export interface EvacuationDriver {
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
  /** Free capacity on the other enabled, up compute hosts (capacity pre-check). */
  capacity?(signal?: AbortSignal): Promise<HostCapacity[]>;
  /** Evacuate one instance away from `sourceHost` and track it to its end. Idempotent. */
  evacuate(instance: InstanceInfo, sourceHost: string, opts: EvacuateOptions): Promise<EvacuationOutcome>;
}
