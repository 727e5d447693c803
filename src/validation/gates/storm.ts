import type { EvacuationDriver } from "../../evacuation/types.js";
import type { Logger } from "../../logging.js";
import type { Metrics } from "../../metrics.js";
import { isTerminal } from "../../recovery/model.js";
import type { NotifierPort } from "../../recovery/ports.js";
import type { Store } from "../../store/types.js";
import { isLifeboatReason } from "../../openstack/compute-services.js";
import { errorMessage } from "../../util/errors.js";
import type { Gate, GateVerdict } from "../types.js";

export interface StormConfig {
  max_recoveries: number;
  max_percent: number;
  max_per_zone?: number | undefined;
  window_seconds: number;
  cooldown_seconds: number;
}

/** Persisted state of the guard (settings key "storm"). */
export interface StormState {
  tripped: boolean;
  trippedAt: string | null;
  /** When the count last fell back within the limits while tripped (cooldown start). */
  calmSince: string | null;
  /** Recoveries the guard let through: they count while in the window or still open. */
  admitted: Record<string, { host: string; zone: string | null; at: string }>;
  blockedHosts: string[];
}

function emptyState(): StormState {
  return { tripped: false, trippedAt: null, calmSince: null, admitted: {}, blockedHosts: [] };
}

/**
 * The storm guard (medik8s' maxUnhealthy + stormCooldownDuration, InstanceHA's THRESHOLD):
 * more than N recoveries, or F % of the enabled compute services, or M in one availability
 * zone within the window (in-flight recoveries included) → this and every further recovery
 * is blocked until an operator approves it, or the storm has been calm for the cooldown.
 * It runs last and admits a recovery only when every other gate passed, one at a time, so
 * concurrent recoveries cannot all slip under the limit together.
 */
export function stormGate(deps: {
  store: Store;
  evacuation: EvacuationDriver;
  config: StormConfig;
  now: () => number;
  metrics: Metrics;
  logger: Logger;
  notifier: NotifierPort;
}): Gate {
  let lock: Promise<unknown> = Promise.resolve();
  return {
    name: "storm",
    kind: "policy",
    afterPrior: true,
    evaluate(ctx) {
      const run = lock.then(() => evaluate(ctx.recovery.id, ctx.recovery.host, ctx.recovery.approved, ctx.priorPass, ctx.quiet, ctx.signal));
      lock = run.catch(() => undefined);
      return run;
    },
  };

  async function evaluate(id: string, host: string, approved: boolean, priorPass: boolean, quiet: boolean, signal: AbortSignal): Promise<GateVerdict> {
    const { store, config: c } = deps;
    const now = deps.now();
    const state: StormState = { ...emptyState(), ...((await store.getSetting<StormState>("storm")) ?? {}) };
    if (state.admitted[id]) return { result: "pass", reason: "already admitted by the storm guard" };

    let services;
    try {
      services = await deps.evacuation.listComputeServices(signal);
    } catch (err) {
      if (signal.aborted) throw err;
      return { result: "undecided", reason: `cannot count compute services: ${errorMessage(err)}`, recheck: true, overridable: true };
    }
    const zone = services.find((s) => s.host === host)?.zone ?? null;
    const enabled = services.filter((s) => s.status === "enabled" || isLifeboatReason(s.disabledReason)).length;

    // Who counts: admitted within the window, or still open.
    const windowStart = now - c.window_seconds * 1000;
    for (const [rid, a] of Object.entries(state.admitted)) {
      if (Date.parse(a.at) >= windowStart) continue;
      const r = await store.getRecovery(rid);
      if (!r || isTerminal(r.state)) delete state.admitted[rid];
    }
    const counted = Object.values(state.admitted);
    const total = counted.length + 1;
    const inZone = counted.filter((a) => a.zone !== null && a.zone === zone).length + 1;
    const percent = enabled > 0 ? (total / enabled) * 100 : 100;
    const over: string[] = [];
    if (total > c.max_recoveries) over.push(`${total} recoveries in ${c.window_seconds}s > max_recoveries ${c.max_recoveries}`);
    if (percent > c.max_percent) over.push(`${total} of ${enabled} enabled compute services (${Math.round(percent)}%) > max_percent ${c.max_percent}%`);
    if (c.max_per_zone !== undefined && zone !== null && inZone > c.max_per_zone) over.push(`${inZone} in zone ${zone} > max_per_zone ${c.max_per_zone}`);

    let verdict: GateVerdict;
    if (over.length) {
      if (!quiet) state.calmSince = null;
      verdict = { result: "block", reason: `storm guard: ${over.join("; ")}`, recheck: true, overridable: true, details: { counted: counted.map((a) => a.host) } };
    } else if (state.tripped) {
      const calm = state.calmSince ? Date.parse(state.calmSince) : now;
      if (!quiet && !state.calmSince) state.calmSince = new Date(now).toISOString();
      const until = calm + c.cooldown_seconds * 1000;
      verdict =
        now < until
          ? { result: "block", reason: `storm guard cooling down until ${new Date(until).toISOString()}`, recheck: true, overridable: true }
          : { result: "pass", reason: "storm over and cooled down" };
    } else {
      verdict = { result: "pass", reason: `${total} recovery(ies) in the window (${Math.round(percent)}% of ${enabled} compute services), within limits` };
    }

    // Only a recovery that would otherwise proceed trips the guard or takes a slot.
    if (quiet || !priorPass) {
      return verdict.result === "pass" && !priorPass ? { ...verdict, reason: `${verdict.reason} (not counted: other gates block)` } : verdict;
    }
    if (verdict.result === "block" && !approved) {
      if (!state.tripped) {
        state.tripped = true;
        state.trippedAt = new Date(now).toISOString();
        state.blockedHosts = [];
        deps.metrics.stormGuardTrips.inc();
        deps.logger.warn({ storm: true, reason: verdict.reason, admitted: counted.map((a) => a.host) }, "storm guard tripped: further recoveries are blocked");
        await store.putSetting("storm", { ...state, blockedHosts: [host] });
        await deps.notifier
          .stormTripped({ hosts: [host], reason: verdict.reason, at: state.trippedAt, recoveryId: id }, signal)
          .catch((err: unknown) => deps.logger.error({ err: errorMessage(err) }, "storm notification failed"));
      }
      if (!state.blockedHosts.includes(host)) state.blockedHosts.push(host);
    } else {
      if (state.tripped && verdict.result === "pass") {
        deps.logger.warn({ storm: false }, "storm guard cleared");
        Object.assign(state, { tripped: false, trippedAt: null, calmSince: null, blockedHosts: [] });
      }
      state.admitted[id] = { host, zone, at: new Date(now).toISOString() };
    }
    deps.metrics.stormGuardTripped.set(state.tripped ? 1 : 0);
    await store.putSetting("storm", state);
    return verdict;
  }
}
