import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import { HostBusyError, StateConflictError, type Store } from "../domain/journal.js";
import type { Clock } from "../util/clock.js";
import type { HostDirectory } from "./host-directory.js";
import { isAbortable, type EventDisposition, type HostEvent, type IgnoreReason, type Recovery, type TrackedAlert } from "../domain/model.js";

export interface RouterConfig {
  triggerAlertnames: readonly string[];
  graceSeconds: number;
  dryRun: boolean;
}

export interface RouteResult {
  disposition: EventDisposition;
  recoveryId: string | null;
  note: string;
  /** A recovery whose runner should start or wake. */
  touched?: string;
  created?: boolean;
  /** Why an ignored event was ignored (the metric's label; `note` says it in full). */
  ignored?: IgnoreReason;
  /** The alert named a host lifeboat cannot act on (for the operators' aggregated notice). */
  unknownHost?: { host: string; likely: string | null };
}

export function incidentKey(host: string, startsAt: string): string {
  return `${host}@${startsAt}`;
}

/**
 * Map one journaled event to recoveries. Events are processed one at a time, in journal
 * order, by the leader only, so "find the open recovery, else create one" cannot race;
 * the store's one-open-recovery-per-host invariant is the second net.
 *
 * - A firing trigger alert attaches to the host's open recovery, or to the recovery that
 *   already handled this incident (same host and startsAt), or starts a new one — unless
 *   the host is held down by an earlier recovery awaiting `lifeboat release`.
 * - A resolved alert aborts the open recovery when it was the last firing alert of the
 *   recovery and the recovery has not reached fencing (the point of no return). It matches
 *   a tracked alert by fingerprint, startsAt and labels: a delivery reusing a real alert's
 *   fingerprint with other labels is not that alert.
 * - A firing alert for a host lifeboat cannot act on (no fencing device, unknown to Nova)
 *   is ignored before anything else is looked up: it never becomes a recovery.
 */
export async function routeEvent(
  e: HostEvent,
  deps: { store: Store; config: RouterConfig; clock: Clock; logger: Logger; metrics: Metrics; hosts: HostDirectory; signal?: AbortSignal },
): Promise<RouteResult> {
  const { store, config } = deps;
  if (e.host === null) return { disposition: "ignored", recoveryId: null, note: e.note ?? "no host", ignored: "no_host" };
  if (e.source === "alertmanager" && !config.triggerAlertnames.includes(e.alertname)) {
    return { disposition: "ignored", recoveryId: null, note: `alertname ${e.alertname} is not a trigger`, ignored: "not_trigger" };
  }
  const host = e.host;

  if (e.status === "firing") {
    const standing = await deps.hosts.standing(host, deps.signal);
    if (standing.kind === "unknown") {
      return { disposition: "ignored", recoveryId: null, note: standing.note, ignored: standing.likely ? "host_name_mismatch" : "unknown_host", unknownHost: { host, likely: standing.likely } };
    }
    if (standing.kind === "unconfirmed") {
      // Nova could not say whether it knows this host, and it has no fencing device. Not a
      // recovery on a guess (a flood of made-up names while Nova is down would become one
      // recovery each), but not lost either: the coordinator routes it again once Nova
      // answers. A host with a fencing device never gets here: it is acted on, and the
      // gates decide.
      return { disposition: "ignored", recoveryId: null, note: standing.note, ignored: "host_unconfirmed" };
    }
  }

  const open = await store.findOpenRecovery(host);

  if (e.status === "resolved") {
    if (!open) return { disposition: "ignored", recoveryId: null, note: "resolved, and no open recovery for this host", ignored: "not_tracked" };
    const tracked = open.alerts[e.fingerprint];
    if (!tracked || !sameAlert(tracked, e)) {
      return { disposition: "ignored", recoveryId: open.id, note: "resolved alert is not one this recovery tracks", ignored: "not_tracked" };
    }
    const alerts: Record<string, TrackedAlert> = { ...open.alerts, [e.fingerprint]: { ...tracked, status: "resolved", ...(e.endsAt ? { endsAt: e.endsAt } : {}) } };
    const stillFiring = Object.values(alerts).filter((a) => a.status === "firing");
    if (stillFiring.length > 0 || !isAbortable(open.state)) {
      await store.updateRecovery(open.id, { alerts });
      const note = stillFiring.length > 0 ? `resolved; ${stillFiring.length} other alert(s) still firing` : `resolved after the point of no return (${open.state}); the recovery continues`;
      return { disposition: "resolved", recoveryId: open.id, note };
    }
    try {
      await store.transition(open.id, open.state, "aborted", `alert resolved during ${open.state}: nothing was done`, { alerts, outcome: "aborted" });
      return { disposition: "aborted", recoveryId: open.id, note: `aborted the recovery (was ${open.state})`, touched: open.id };
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      // The runner moved it meanwhile (e.g. into fencing): too late to abort.
      await store.updateRecovery(open.id, { alerts });
      return { disposition: "resolved", recoveryId: open.id, note: `resolved while moving to ${err.actual ?? "?"}; too late to abort` };
    }
  }

  const alert: TrackedAlert = { alertname: e.alertname, status: "firing", startsAt: e.startsAt, generatorURL: e.generatorURL, labels: e.labels };
  if (open?.kind === "release") {
    // The host is still held while it is being brought back: its alert starts nothing.
    return { disposition: "ignored", recoveryId: open.id, note: `host is being released by ${open.id} (${open.state}); it stays held until that ends`, ignored: "host_held" };
  }
  if (open) {
    const tracked = open.alerts[e.fingerprint];
    if (tracked?.status === "resolved" && sameAlert(tracked, e)) {
      return { disposition: "ignored", recoveryId: open.id, note: "stale firing delivery of an alert already resolved", ignored: "not_tracked" };
    }
    if (tracked?.status === "firing") {
      // A re-delivery of an alert the recovery already tracks changes nothing: no wake-up,
      // or every Alertmanager re-send would make a blocked recovery re-run its gates.
      return { disposition: "attached", recoveryId: open.id, note: `attached to the open recovery (${open.state})` };
    }
    await store.updateRecovery(open.id, { alerts: { ...open.alerts, [e.fingerprint]: alert } });
    return { disposition: "attached", recoveryId: open.id, note: `attached to the open recovery (${open.state})`, touched: open.id };
  }

  const key = incidentKey(host, e.startsAt);
  const previous = await store.findRecoveryByIncident(host, key);
  if (previous) return { disposition: "attached", recoveryId: previous.id, note: `this incident was already handled (${previous.state})` };

  const hold = await store.getHostState(host);
  if (hold?.fenced) {
    return {
      disposition: "ignored",
      recoveryId: hold.recoveryId,
      note: `host is held down by recovery ${hold.recoveryId} since ${hold.at}; run "lifeboat release ${host}" once it is repaired`,
      ignored: "host_held",
    };
  }

  const now = deps.clock.now();
  let created: Recovery;
  try {
    created = await store.createRecovery({
      host,
      kind: "alert",
      incidentKey: key,
      trigger: e.source === "monitor" ? "monitor" : "alert",
      dryRun: config.dryRun,
      confirmedOff: false,
      detectedAt: e.startsAt,
      graceUntil: new Date(now + config.graceSeconds * 1000).toISOString(),
      reason: `${e.alertname} firing for ${host} since ${e.startsAt}`,
      alerts: { [e.fingerprint]: alert },
      actor: e.source,
    });
  } catch (err) {
    if (err instanceof HostBusyError) return { disposition: "attached", recoveryId: err.openRecoveryId, note: "attached to the open recovery", touched: err.openRecoveryId };
    throw err;
  }
  deps.metrics.recoveriesStarted.inc({ trigger: e.source === "monitor" ? "monitor" : "alert" });
  deps.logger.info({ recovery: created.id, host, alertname: e.alertname, graceUntil: created.graceUntil, dryRun: created.dryRun }, "recovery started");
  return { disposition: "started", recoveryId: created.id, note: "recovery started", touched: created.id, created: true };
}

/** The tracked alert is this event's alert: same start and the same labels (its identity). */
function sameAlert(tracked: TrackedAlert, e: HostEvent): boolean {
  if (tracked.startsAt !== e.startsAt) return false;
  const a = Object.keys(tracked.labels);
  return a.length === Object.keys(e.labels).length && a.every((k) => Object.hasOwn(e.labels, k) && e.labels[k] === tracked.labels[k]);
}
