import type { ChainResult } from "./ports/fencing.js";
import type {
  AppendedEvent,
  BlockEpisode,
  GateDecision,
  HostEvent,
  HostState,
  HostStateRecord,
  InstanceResult,
  NewHostEvent,
  NewRecovery,
  NotificationPayload,
  NotificationRecord,
  OutboxEntry,
  Recovery,
  RecoveryDetail,
  RecoveryState,
  StepRecord,
  Transition,
  EventDisposition,
} from "./model.js";
import { deliverySummary } from "./model.js";

/** Most instance records one putInstances() takes (one etcd transaction, under its default bound of 128 operations). */
export const INSTANCES_PER_WRITE = 100;

/**
 * The recovery every record of one write belongs to (undefined when there are none): a
 * store's writes of several records (`putInstances`, `recordDecisions`) take one recovery's.
 */
export function recoveryOfWrite(records: readonly { recoveryId: string }[], what: string): string | undefined {
  const id = records[0]?.recoveryId;
  if (records.some((r) => r.recoveryId !== id)) throw new Error(`${what}: records of one recovery only`);
  return id;
}

/**
 * The durable journal. The embedded default is SQLite (one file, WAL); an etcd store gives
 * several instances one shared truth. All methods are async so both fit.
 *
 * Invariants every store keeps:
 *  - at most one open (non-terminal) recovery per host: `createRecovery` throws
 *    `HostBusyError` otherwise;
 *  - `transition` is a compare-and-swap on the current state: it throws
 *    `StateConflictError` when the recovery is no longer in `from`, so two actors can never
 *    both move one recovery;
 *  - everything a method writes is durable when its promise resolves.
 */
export interface Store {
  readonly kind: string;
  init(): Promise<void>;
  close(): Promise<void>;
  /** Write and read back a probe row: the store is writable (readiness). */
  ping(): Promise<void>;

  // Events: journaled by intake before the webhook answers, processed by the coordinator.
  /**
   * Journal events; an event whose key is already journaled only counts one more delivery
   * (a store may journal that count a little later when routing has decided the event for
   * good: etcd does, so such a re-send's answer waits for no transaction).
   */
  appendEvents(events: NewHostEvent[]): Promise<AppendedEvent[]>;
  unprocessedEvents(limit: number): Promise<HostEvent[]>;
  markEvent(id: number, disposition: EventDisposition, recoveryId: string | null, note: string | null): Promise<void>;
  listEvents(filter: { host?: string; recoveryId?: string; limit?: number }): Promise<HostEvent[]>;

  // Recoveries.
  createRecovery(r: NewRecovery): Promise<Recovery>;
  getRecovery(id: string): Promise<Recovery | null>;
  findOpenRecovery(host: string): Promise<Recovery | null>;
  findRecoveryByIncident(host: string, incidentKey: string): Promise<Recovery | null>;
  /** Newest first. */
  listRecoveries(filter: RecoveryFilter): Promise<Recovery[]>;
  /** Compare-and-swap `from` → `to`, append the transition, apply `patch`. */
  transition(id: string, from: RecoveryState, to: RecoveryState, reason: string, patch?: RecoveryPatch, actor?: string): Promise<Recovery>;
  /** Update fields other than the state (alerts, approval, what a stage learned…). */
  updateRecovery(id: string, patch: RecoveryPatch): Promise<Recovery>;
  transitions(recoveryId: string): Promise<Transition[]>;

  // Journal records of one recovery.
  /** The decisions of one evaluation of a recovery's gates, written together in their order: all or none. */
  recordDecisions(ds: readonly GateDecision[]): Promise<void>;
  decisions(recoveryId: string): Promise<GateDecision[]>;
  getStep(recoveryId: string, key: string): Promise<StepRecord | null>;
  putStep(step: StepRecord): Promise<void>;
  steps(recoveryId: string): Promise<StepRecord[]>;
  putInstance(r: InstanceResult): Promise<void>;
  /** Up to INSTANCES_PER_WRITE records of one recovery, written together (a host's instance list): all or none. */
  putInstances(list: readonly InstanceResult[]): Promise<void>;
  instances(recoveryId: string): Promise<InstanceResult[]>;
  /**
   * Insert or update a record (one per recovery and dedup key). A pending record keeps the
   * payload it was first given until it leaves `pending`; then the payload is dropped.
   */
  putNotification(r: NotificationRecord, payload?: NotificationPayload): Promise<void>;
  notifications(recoveryId: string): Promise<NotificationRecord[]>;
  /** Pending records that carry a payload, across recoveries, soonest `nextAttemptAt` first (the delivery worker's queue). */
  pendingNotifications(limit: number): Promise<OutboxEntry[]>;
  /** Notifications with this dedup key across all recoveries (tenant dedup per incident). */
  notificationsByKey(dedupKey: string): Promise<NotificationRecord[]>;

  // Host states: one record per host lifeboat holds something about (the hold).
  getHostState(host: string): Promise<HostState | null>;
  /** Compare-and-swap: written only when the stored record's version is `expected` (0: no record); throws HostStateConflictError otherwise. */
  putHostState(next: HostStateRecord, expected: number): Promise<HostState>;
  listHostStates(): Promise<HostState[]>;

  // Settings (pause switch, storm guard state…), JSON values.
  getSetting<T>(key: string): Promise<T | null>;
  putSetting(key: string, value: unknown): Promise<void>;
}

export interface RecoveryFilter {
  host?: string;
  state?: RecoveryState | RecoveryState[];
  open?: boolean;
  /** Created at or after this ISO instant. */
  since?: string;
  limit?: number;
}

/** Fields a transition or an update may change; `null` clears an optional record. */
export type RecoveryPatch = Partial<Pick<Recovery, "dryRun" | "confirmedOff" | "approved" | "approvedBy" | "outcome" | "fenceState" | "graceUntil" | "alerts">> & {
  block?: BlockEpisode | null;
  fence?: ChainResult | null;
  locksLeft?: string[] | null;
};

export class HostBusyError extends Error {
  override name = "HostBusyError";
  constructor(
    readonly host: string,
    readonly openRecoveryId: string,
  ) {
    super(`host ${host} already has an open recovery ${openRecoveryId}`);
  }
}

export class StateConflictError extends Error {
  override name = "StateConflictError";
  constructor(
    readonly recoveryId: string,
    readonly expected: RecoveryState,
    readonly actual: RecoveryState | null,
  ) {
    super(`recovery ${recoveryId} is ${actual ?? "missing"}, not ${expected}`);
  }
}

export class HostStateConflictError extends Error {
  override name = "HostStateConflictError";
  constructor(
    readonly host: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`the record of host ${host} is at version ${actual}, not ${expected}`);
  }
}

/** Assemble the full view of one recovery from its journal. */
export async function recoveryDetail(store: Store, id: string): Promise<RecoveryDetail | null> {
  const r = await store.getRecovery(id);
  if (!r) return null;
  const [timeline, decisions, steps, instances, notifications] = await Promise.all([
    store.transitions(id),
    store.decisions(id),
    store.steps(id),
    store.instances(id),
    store.notifications(id),
  ]);
  return { ...r, timeline, decisions, steps, instances, notifications, delivery: deliverySummary(notifications) };
}
