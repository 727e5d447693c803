import { createHash } from "node:crypto";
import type { ChainResult } from "./ports/fencing.js";

/**
 * The recovery data model shared by the store, the pipeline, the API and the notifiers.
 *
 * A recovery is one attempt to bring one failed host's instances back elsewhere. Its
 * journal is its history: every state change is a Transition, every gate verdict a
 * GateDecision, every side effect a Step, and every instance and recipient has its own
 * result record.
 */

export const RECOVERY_STATES = [
  "pending",
  "validating",
  "blocked",
  "fencing",
  "isolating",
  "evacuating",
  "notifying",
  // A release (kind "release"): a repaired host brought back into service.
  "powering-on",
  "awaiting-compute",
  "unforcing",
  "awaiting-up",
  "enabling",
  "completed",
  "partial",
  "failed",
  "aborted",
] as const;
export type RecoveryState = (typeof RECOVERY_STATES)[number];

export const TERMINAL_STATES: readonly RecoveryState[] = ["completed", "partial", "failed", "aborted"];
/** States from which a resolved alert or an operator may still abort: nothing was done yet. */
export const ABORTABLE_STATES: readonly RecoveryState[] = ["pending", "validating", "blocked"];

export function isTerminal(state: RecoveryState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function isAbortable(state: RecoveryState): boolean {
  return ABORTABLE_STATES.includes(state);
}

export type Outcome = "completed" | "partial" | "failed" | "aborted";
/** Who detected the failure (or asked for the recovery): an alert, the native monitor, an operator. */
export type Trigger = "alert" | "manual" | "monitor";
/**
 * What a recovery does, which decides its stages:
 *  - alert: a detected failure (an alert or the native monitor): grace, gates, fence, isolate, evacuate, notify;
 *  - manual: an operator's `lifeboat recover HOST`: the same, policy gates approved by that operator;
 *  - fence-only: an operator's `lifeboat fence off HOST`: power off, proven, and nothing else;
 *  - release: an operator's `lifeboat release HOST`: bring a repaired host back into service.
 */
export type RecoveryKind = "alert" | "manual" | "fence-only" | "release";
export const RECOVERY_KINDS: readonly RecoveryKind[] = ["alert", "manual", "fence-only", "release"];
/** What lifeboat knows of the host's power after its fencing stage. */
export type FenceState = "not-attempted" | "off" | "confirmed-off-by-operator" | "would-fence" | "unknown";

/** One firing alert tracked on a recovery (keyed by fingerprint in `Recovery.alerts`). */
export interface TrackedAlert {
  alertname: string;
  status: "firing" | "resolved";
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
  labels: Record<string, string>;
}

export interface Recovery {
  id: string;
  host: string;
  kind: RecoveryKind;
  /** host + incident: the first trigger alert's startsAt, or a manual/monitor marker. */
  incidentKey: string;
  state: RecoveryState;
  trigger: Trigger;
  dryRun: boolean;
  /** An operator stated the host is powered off (`recover --confirm-off`). */
  confirmedOff: boolean;
  /** An operator approved the recovery past the policy gates. */
  approved: boolean;
  approvedBy?: string;
  outcome?: Outcome;
  fenceState: FenceState;
  /** The reason of the latest transition, in plain words. */
  reason: string;
  /** When the failure was first detected (first trigger alert's startsAt, or creation). */
  detectedAt: string;
  createdAt: string;
  updatedAt: string;
  /** Validation does not start before this instant. */
  graceUntil: string;
  alerts: Record<string, TrackedAlert>;
  /** While blocked: what blocks it now (the current block episode). */
  block?: BlockEpisode;
  /** What the fence chain did, once the fencing stage ran (every device's own words). */
  fence?: ChainResult;
  /** Servers whose unlock lifeboat still owes, once evacuating ended (see unlocks.ts). */
  locksLeft?: string[];
}

/**
 * What lifeboat holds about one host, kept per host and written by compare-and-swap (the
 * `version`): a host fenced by a recovery stays held down, and alerts about it start no new
 * recovery, until a release brings it back.
 */
export interface HostState {
  host: string;
  /** Held down: fenced and forced down by lifeboat, awaiting `lifeboat release`. */
  fenced: boolean;
  /** The recovery that set the hold, or the release that lifted it. */
  recoveryId: string;
  by: string;
  at: string;
  /** In plain words, what the last change was. */
  note?: string;
  /** Compare-and-swap token, 1 for a new record. */
  version: number;
}

/** A host's record as written (the store sets the version). */
export type HostStateRecord = Omit<HostState, "version">;

/**
 * What blocks a blocked recovery, refreshed by each re-check.
 *
 * A block *episode* is a stretch of `blocked` during which what a person can do stays the
 * same: approve it (every block is a policy an approval overrides) or not, and wait for it
 * to clear on its own or not. Operators get one blocked mail per episode; a change of the
 * blocking gates that leaves that unchanged (a silence expires while the storm guard still
 * holds it) is recorded (decisions, reason) but not mailed again. Episodes are keyed by the
 * time the recovery entered `blocked` and what can be done, so a block that flips back to an
 * earlier situation is not mailed twice.
 */
export interface BlockEpisode {
  /** The blocking gates. */
  gates: string[];
  /** Every block can clear on its own: re-checked without an operator. */
  recheck: boolean;
  /** Every block is a policy an approval overrides. */
  approvable: boolean;
  /** When the recovery entered `blocked` (this stretch of it). */
  at: string;
  /** The episode's key: one blocked mail each. */
  episode: string;
  /** The blocking gates and results, to tell a change worth recording from the same block. */
  signature: string;
  /** When the blocking gates last changed. */
  since: string;
  /** The blocking gates of the previous episode, when this one follows another. */
  previous?: string[];
  /**
   * Present while every blocking verdict is evidence that may clear by itself (Nova still
   * hears a heartbeat, a confirmation not yet true): since when the recovery has been held
   * by such evidence alone. The episode's mail waits until this is
   * `notifications.blocked_delay_seconds` old; absent, a person is needed and told at once.
   */
  evidenceSince?: string;
}

export interface NewRecovery {
  host: string;
  kind: RecoveryKind;
  incidentKey: string;
  trigger: Trigger;
  dryRun: boolean;
  confirmedOff: boolean;
  detectedAt: string;
  graceUntil: string;
  reason: string;
  alerts?: Record<string, TrackedAlert>;
  /** Recorded as the creator on the first transition. */
  actor?: string;
  /** Created already approved by this operator (manual recoveries). */
  approvedBy?: string;
}

export interface Transition {
  recoveryId: string;
  seq: number;
  from: RecoveryState | null;
  to: RecoveryState;
  at: string;
  reason: string;
  actor?: string;
}

export type GateResult = "pass" | "block" | "undecided" | "warn";

export interface GateDecision {
  recoveryId: string;
  gate: string;
  result: GateResult;
  reason: string;
  at: string;
  details?: Record<string, unknown>;
  /** The verdict's subject (GateVerdict.subject), part of what makes a block the same block. */
  subject?: string;
}

export type StepState = "started" | "succeeded" | "failed";

/** A side effect, journaled before it runs and after it ends (see recovery/steps.ts). */
export interface StepRecord {
  recoveryId: string;
  key: string;
  state: StepState;
  attempts: number;
  startedAt: string;
  finishedAt?: string;
  result?: unknown;
  error?: string;
}

export type InstanceState =
  | "pending"
  | "evacuating"
  | "evacuated"
  | "failed"
  | "skipped"
  | "unprotected"
  | "would-evacuate";

/**
 * The latest evacuate call lifeboat made for an instance, journaled before the POST goes out
 * and again once its fate is known. A call that is not `settled` may have reached Nova, which
 * may still be acting on it: after a restart it is watched, never followed by another
 * evacuate (see evacuation/nova.ts).
 */
export interface EvacuateCall {
  /** The attempt it belongs to (`InstanceResult.attempts` when it was sent). */
  attempt: number;
  /** When it was about to be sent (ISO 8601): Nova's window to act on it runs from here. */
  sentAt: string;
  /** The server's evacuation migration ids before the call: a newer one from the failed host is the call's. */
  migrationsBefore: number[];
  /**
   * When its fate became known and how: Nova answered it (accepted, refused, or an error
   * status: the call is over), or Nova's records showed the evacuation it started.
   */
  settled?: { at: string; by: "answer" | "nova-records" };
}

export interface InstanceResult {
  recoveryId: string;
  instanceId: string;
  name: string;
  projectId: string;
  userId?: string;
  /** Nova status before the recovery touched it (ACTIVE, SHUTOFF, ERROR…). */
  originalStatus: string;
  state: InstanceState;
  priority: number;
  targetHost?: string;
  attempts: number;
  error?: string;
  /** Why the instance was skipped or not protected, in plain words. */
  note?: string;
  startedAt?: string;
  finishedAt?: string;
  /** The latest evacuate call sent for it (none before the first). */
  evacuateCall?: EvacuateCall;
}

/**
 * pending: journaled, waiting for the delivery worker (or between its tries); sent, failed:
 * its end; would-send: a dry run's message, only recorded; done: a planning entry (the
 * lookup of tenants' recipients) whose messages were queued.
 */
export type NotificationState = "pending" | "sent" | "failed" | "would-send" | "done";

/** The channel of planning entries: not a message, the work of finding who to tell. */
export const PLANNER_CHANNEL = "planner";

export interface NotificationRecord {
  recoveryId: string;
  /** Stable identity of this message for this recipient: re-sends are deduplicated on it. */
  dedupKey: string;
  channel: string;
  kind: string;
  recipient: string;
  subject: string;
  state: NotificationState;
  attempts: number;
  error?: string;
  sentAt?: string;
  projectId?: string;
  /** Message-ID of the mail (a webhook's X-Lifeboat-Message-Id): the same on every try, so a resend is recognisable. */
  messageId?: string;
  /** When it was journaled for delivery. */
  queuedAt?: string;
  /** While pending: when the delivery worker tries it next. */
  nextAttemptAt?: string;
}

/**
 * What the delivery worker needs besides the record, kept with a pending record until it
 * leaves `pending`: a rendered message, or a planning entry (whose messages are planned in
 * the background because finding their recipients asks Keystone and Nova).
 */
export type NotificationPayload =
  | { type: "message"; subject: string; text: string; html?: string; data: Record<string, unknown> }
  | { type: "plan"; plan: "recovery-finished" };

/** One pending notification and what to do with it. */
export interface OutboxEntry {
  record: NotificationRecord;
  payload: NotificationPayload;
}

/** How a recovery's notifications fared, as far as is known now (planning entries aside). */
export interface DeliverySummary {
  /** none: nothing to tell; pending: some not delivered yet; delivered: all sent; partly-failed; failed: none sent, some failed; dry-run: only recorded. */
  state: "none" | "pending" | "delivered" | "partly-failed" | "failed" | "dry-run";
  pending: number;
  sent: number;
  failed: number;
  wouldSend: number;
  /** In plain words, naming what failed. */
  text: string;
}

export function deliverySummary(records: readonly NotificationRecord[]): DeliverySummary {
  const planning = records.filter((r) => r.channel === PLANNER_CHANNEL && r.state === "pending").length;
  const messages = records.filter((r) => r.channel !== PLANNER_CHANNEL);
  const n = (s: NotificationState): number => messages.filter((r) => r.state === s).length;
  const pending = n("pending") + planning;
  const sent = n("sent");
  const failed = n("failed");
  const wouldSend = n("would-send");
  const failures = [...new Set(messages.filter((r) => r.state === "failed").map((r) => `${r.channel} to ${r.recipient}: ${r.error ?? "no error recorded"}`))];
  const failedText = failures.slice(0, 3).join("; ") + (failures.length > 3 ? `; and ${failures.length - 3} more` : "");
  const waiting = planning ? `${pending} pending (finding tenants' recipients)` : `${pending} pending (being delivered, retried on failure)`;
  let state: DeliverySummary["state"];
  let text: string;
  if (pending > 0) {
    state = "pending";
    text = [waiting, sent ? `${sent} sent` : "", failed ? `${failed} failed: ${failedText}` : ""].filter(Boolean).join(", ");
  } else if (failed > 0) {
    state = sent > 0 ? "partly-failed" : "failed";
    text = sent > 0 ? `${sent} sent, ${failed} failed: ${failedText}` : `every notification failed (${failed}): ${failedText}`;
  } else if (sent > 0) {
    state = "delivered";
    text = `all ${sent} sent`;
  } else if (wouldSend > 0) {
    state = "dry-run";
    text = `dry run: ${wouldSend} recorded, none sent`;
  } else {
    state = "none";
    text = "nothing to send";
  }
  return { state, pending, sent, failed, wouldSend, text };
}

export type EventSource = "alertmanager" | "cli" | "monitor";
export type EventDisposition =
  | "unprocessed"
  | "started"
  | "attached"
  | "resolved"
  | "aborted"
  | "ignored";

/**
 * Why routing ignored an event, in one word (the `reason` label of
 * lifeboat_alerts_ignored_total; the event's note says it in full):
 *  - no_host: intake found no host in the alert (`alerts.host_label` / `host_pattern`);
 *  - not_trigger: the alertname is not one of `alerts.trigger_alertnames`;
 *  - unknown_host: neither a fencing device nor a nova-compute service has that name;
 *  - host_name_mismatch: the same, but the name differs from a known host only in case, a
 *    trailing dot or a domain (the alerts name hosts differently from Nova and fencing.hosts);
 *  - host_unconfirmed: no fencing device, and Nova could not be asked (routed again later);
 *  - host_held: the host is held down after an earlier recovery, awaiting `lifeboat release`;
 *  - not_tracked: a resolved (or stale firing) alert that no open recovery tracks.
 */
export const IGNORE_REASONS = ["no_host", "not_trigger", "unknown_host", "host_name_mismatch", "host_unconfirmed", "host_held", "not_tracked"] as const;
export type IgnoreReason = (typeof IGNORE_REASONS)[number];

/**
 * One alert, as journaled. Deliveries of the same alert state (same labels, status and
 * startsAt — repeat_interval re-sends, retries, each Alertmanager of an HA pair) share one
 * record: `key` identifies it and `deliveries` counts them.
 */
export interface HostEvent {
  id: number;
  key: string;
  deliveries: number;
  receivedAt: string;
  lastReceivedAt: string;
  source: EventSource;
  host: string | null;
  alertname: string;
  status: "firing" | "resolved";
  fingerprint: string;
  startsAt: string;
  endsAt: string | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generatorURL: string;
  groupKey: string;
  receiver: string;
  disposition: EventDisposition;
  recoveryId: string | null;
  note: string | null;
}

export type NewHostEvent = Omit<HostEvent, "id" | "deliveries" | "lastReceivedAt" | "disposition" | "recoveryId" | "note"> & {
  /** Why intake could not map the alert to a host, when it could not. */
  note?: string | null;
};

/**
 * The journal identity of an alert state: repeated deliveries map to the same key.
 *
 * It comes from the alert's content — lifeboat's own hash of its label set, with source,
 * status and startsAt — never from the fingerprint the sender claims: a delivery that reuses
 * a real alert's fingerprint with other labels (malformed, or hostile) is another event and
 * cannot swallow the real one's later deliveries. A genuine Alertmanager derives the
 * fingerprint from the labels, so its re-sends still share one record. The fingerprint stays
 * in the event as data (recoveries track their alerts by it).
 *
 * Format: `<source>|labels:<hash>|<status>|<startsAt>`. Journals written before this format
 * hold `<source>|<fingerprint>|<status>|<startsAt>` keys; they stay valid as they are (a
 * fingerprint is hex, so the two formats never collide): the first delivery after an upgrade
 * is journaled once more under its new key and routed like any repeat.
 */
export function eventKey(e: Pick<HostEvent, "source" | "labels" | "status" | "startsAt">): string {
  return `${e.source}|labels:${labelSetHash(e.labels)}|${e.status}|${e.startsAt}`;
}

/** SHA-256 (first 128 bits, hex) of the label set, names sorted: the same labels in any order give the same hash. */
export function labelSetHash(labels: Record<string, string>): string {
  const pairs = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]]);
  return createHash("sha256").update(JSON.stringify(pairs)).digest("hex").slice(0, 32);
}

export interface AppendedEvent {
  event: HostEvent;
  /** The same alert state was already journaled and routed (or is waiting to be): only its delivery count changed, nothing new to route. */
  duplicate: boolean;
  /**
   * The same alert state was journaled before and routing ignored it: this delivery put it
   * back in the queue, with the host and note intake gave it now, to be routed again (a
   * fixed `alerts.host_label`, a host added to Nova, a released hold take effect on the
   * next re-send). Not a duplicate.
   */
  requeued: boolean;
}

/** Everything known about one recovery, as the API and the notifiers see it. */
export interface RecoveryDetail extends Recovery {
  timeline: Transition[];
  decisions: GateDecision[];
  steps: StepRecord[];
  instances: InstanceResult[];
  notifications: NotificationRecord[];
  /** How its notifications fared (delivery happens in the background, after the recovery may have ended). */
  delivery?: DeliverySummary;
}

/** The operator's pause switch (setting `pause`). */
export interface PauseState {
  paused: boolean;
  by: string;
  reason: string;
  at: string;
}

/** What the API and `lifeboat status` show of the guard. */
export interface StormStatus {
  tripped: boolean;
  since?: string;
  reason?: string;
  lastFailureAt?: string;
  /** Held recoveries go ahead on their own at this instant, unless another host fails first. */
  until?: string;
  /** Every host of the storm. */
  hosts: string[];
  /** Hosts whose recovery the storm holds now (open, before fencing, not approved). */
  held: string[];
}
