import type { ComputeServiceInfo, CloudPort } from "../domain/ports/cloud.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { Recovery } from "../domain/model.js";
import type { NotifierPort } from "../domain/ports/notifier.js";
import type { Store } from "../domain/journal.js";
import { isLifeboatReason } from "../domain/markers.js";
import { errorMessage } from "../util/errors.js";
import type { Gate, GateNotice, GateVerdict } from "../domain/ports/gate.js";
import { STORM_SETTING, emptyStormState, parseStormState, stormTripped, type Storm, type StormState } from "./storm-state.js";

export interface StormConfig {
  max_recoveries: number;
  max_percent: number;
  max_per_zone?: number | undefined;
  window_seconds: number;
  cooldown_seconds: number;
}

/** States in which a recovery acts on its host: it counts whenever it was detected. */
const ACTING = new Set<Recovery["state"]>(["fencing", "isolating", "evacuating", "notifying"]);

interface Judged {
  failure: Failure;
  /** The limits this failure goes past, counting it and those before it; empty: within. */
  over: string[];
}

/** One failure the guard counts. */
interface Failure {
  id: string;
  host: string;
  createdAt: string;
  granted: boolean;
}

/**
 * The storm guard (medik8s' maxUnhealthy + stormCooldownDuration, InstanceHA's THRESHOLD).
 *
 * It judges the failures lifeboat has seen, not the recoveries that passed their other
 * gates: a failure counts from its detection, whatever else blocks its recovery (a
 * monitoring outage that makes three hosts look dead is a storm too). A failure's time is
 * when lifeboat saw it, i.e. its recovery's creation: an alert's startsAt can be much older
 * (lifeboat was down, or the alert waited in Alertmanager), and failures lifeboat learns of
 * only now are new to it. What counts: recoveries triggered by an alert or by the native
 * monitor that lifeboat saw within `window_seconds`, ended ones included, plus any that is
 * acting on its host now. Not counted: an operator's recoveries (`lifeboat recover`,
 * `fence off`: a decision, not a failure signal), aborted ones (the alert resolved, or an
 * operator cancelled: the failure was withdrawn), and members of a storm that already ended.
 * A host counts once.
 *
 * The failures are taken in order (those the guard let through first, then as lifeboat saw
 * them); the first ones within `max_recoveries`, `max_percent` of the enabled compute
 * services and `max_per_zone` go ahead. A failure past a limit trips the guard: it and every
 * failure seen while tripped are the storm's members and are held, until an operator
 * approves one (a policy block: the approval overrides it) or `cooldown_seconds` have passed
 * since the storm's last failure. A failure leaving the window never releases a member.
 *
 * The trip is mailed once per storm, by a journaled step of the recovery that tripped it (see
 * `GateVerdict.notices`). Evaluations are serialised in this process, so recoveries validated
 * at the same time cannot all slip under a limit; the state is written before the verdict is
 * returned, so a crash leaves it as it was decided. The state's shape: ./storm-state.ts.
 */
export function stormGate(deps: {
  store: Store;
  evacuation: CloudPort;
  config: StormConfig;
  now: () => number;
  metrics: Metrics;
  logger: Logger;
  notifier: NotifierPort;
}): Gate {
  const { store, config: c } = deps;
  const cooldownMs = c.cooldown_seconds * 1000;
  let lock: Promise<unknown> = Promise.resolve();
  deps.metrics.watchStorm(() => stormTripped(store, deps.now(), cooldownMs));
  return {
    name: "storm",
    kind: "policy",
    evaluate(ctx) {
      if (ctx.recovery.trigger === "manual") {
        return Promise.resolve({ result: "pass", reason: "an operator's recovery: not a failure the storm guard counts" });
      }
      const run = lock.then(() => evaluate(ctx.recovery, ctx.signal));
      lock = run.catch(() => undefined);
      return run;
    },
  };

  async function evaluate(recovery: Recovery, signal: AbortSignal): Promise<GateVerdict> {
    const now = deps.now();
    const raw = await store.getSetting<unknown>(STORM_SETTING);
    let state: StormState;
    let legacy = false;
    try {
      ({ state, legacy } = parseStormState(raw, now, cooldownMs));
    } catch (err) {
      deps.logger.error({ err: errorMessage(err) }, "storm guard state unreadable; starting from an empty one");
      state = emptyStormState();
      legacy = true;
    }
    const before = JSON.stringify(state);

    let services: ComputeServiceInfo[] | null = null;
    let servicesError = "";
    try {
      services = await deps.evacuation.listComputeServices(signal);
    } catch (err) {
      if (signal.aborted) throw err;
      servicesError = errorMessage(err);
    }

    const windowStart = now - c.window_seconds * 1000;
    const seen = await recoveriesToCount(recovery, windowStart);
    prune(state, seen);
    const failures = [...seen.values()]
      .filter((r) => r.trigger !== "manual" && r.state !== "aborted" && !state.released[r.id])
      .filter((r) => r.id === recovery.id || ACTING.has(r.state) || inWindow(r, windowStart))
      .map((r): Failure => ({ id: r.id, host: r.host, createdAt: r.createdAt, granted: !!state.granted[r.id] }));

    if (state.storm) {
      const s = state.storm;
      // Every failure seen while tripped joins the storm and pushes its cooldown.
      for (const f of failures) if (!f.granted && !s.members[f.id]) s.members[f.id] = { host: f.host, failureAt: f.createdAt };
      s.lastFailureAt = latest([s.lastFailureAt, ...Object.values(s.members).map((m) => m.failureAt)])!;
      s.until = new Date(Date.parse(s.lastFailureAt) + cooldownMs).toISOString();
      if (now >= Date.parse(s.until)) {
        for (const [id, m] of Object.entries(s.members)) state.released[id] = m.host;
        state.storm = null;
        deps.logger.warn({ storm: false, since: s.since, lastFailureAt: s.lastFailureAt, hosts: hostsOf(s) }, "storm over: no new failure for the cooldown; its held recoveries go ahead");
      }
    }

    let verdict: GateVerdict | null = null;
    const zoneOf = (host: string): string | null => services?.find((x) => x.host === host)?.zone ?? null;
    const enabled = services ? services.filter((x) => x.status === "enabled" || isLifeboatReason(x.disabledReason)).length : null;
    if (!state.storm) {
      const judged = judge(failures, enabled, zoneOf);
      const over = judged.filter((j) => !j.failure.granted && j.over.length > 0);
      if (over.length > 0) {
        trip(state, judged, over, recovery.id, now);
      } else if (state.granted[recovery.id] || state.released[recovery.id]) {
        // Judged below.
      } else if (enabled === null) {
        verdict = { result: "undecided", reason: `cannot count compute services: ${servicesError}`, recheck: true, overridable: true };
      } else {
        state.granted[recovery.id] = recovery.host;
        verdict = { result: "pass", reason: `${countText(judged.length, enabled)}, within limits` };
      }
    }
    const s = state.storm;
    if (s?.members[recovery.id]) {
      // Only what stays true while the storm lasts: its end moves with every new failure.
      verdict = {
        result: "block",
        reason: `storm guard: ${s.reason} (tripped at ${s.since}); held until an operator approves it, or until no other host has failed for ${c.cooldown_seconds}s`,
        recheck: true,
        overridable: true,
        details: { since: s.since, hosts: hostsOf(s), lastFailureAt: s.lastFailureAt, until: s.until },
      };
    } else if (state.released[recovery.id]) {
      verdict = { result: "pass", reason: "released: the storm that held it is over (no new failure for the cooldown)" };
    } else if (state.granted[recovery.id] && !verdict) {
      verdict = { result: "pass", reason: s ? `one of the first failures within the limits when the storm guard tripped at ${s.since}` : "let through earlier, within the limits" };
    }
    // Not counted (an aborted recovery judged again): nothing to hold it for.
    verdict ??= { result: "pass", reason: "not a failure the storm guard counts" };

    const notices = await noticeFor(state, recovery);
    const after = JSON.stringify(state);
    if (legacy || after !== before) await store.putSetting(STORM_SETTING, state);
    deps.metrics.stormGuardTripped.set(state.storm ? 1 : 0);
    return notices.length ? { ...verdict, notices } : verdict;
  }

  /** Trip: the failures past the limits are the storm's members; those within keep their place. */
  function trip(state: StormState, judged: Judged[], over: Judged[], by: string, now: number): void {
    const members = Object.fromEntries(over.map((j) => [j.failure.id, { host: j.failure.host, failureAt: j.failure.createdAt }]));
    for (const j of judged) if (!j.failure.granted && j.over.length === 0) state.granted[j.failure.id] = j.failure.host;
    const lastFailureAt = latest(Object.values(members).map((m) => m.failureAt)) ?? new Date(now).toISOString();
    const since = new Date(now).toISOString();
    const storm: Storm = { since, reason: over[0]!.over.join("; "), lastFailureAt, until: new Date(Date.parse(lastFailureAt) + cooldownMs).toISOString(), members };
    state.storm = storm;
    state.notice = { step: `notify-storm:${since}`, holder: by, hosts: hostsOf(storm), reason: storm.reason, at: since, until: storm.until };
    deps.metrics.stormGuardTrips.inc();
    deps.logger.warn({ storm: true, reason: storm.reason, held: hostsOf(storm), granted: Object.values(state.granted) }, "storm guard tripped: the failures past its limits are held");
  }

  /** Recoveries created within the window, every open one, and the one being judged. */
  async function recoveriesToCount(recovery: Recovery, windowStart: number): Promise<Map<string, Recovery>> {
    const [recent, open] = await Promise.all([
      store.listRecoveries({ since: new Date(windowStart).toISOString(), limit: 100_000 }),
      store.listRecoveries({ open: true, limit: 100_000 }),
    ]);
    const all = new Map<string, Recovery>();
    for (const r of [...recent, ...open]) all.set(r.id, r);
    all.set(recovery.id, recovery);
    return all;
  }

  /**
   * The storm mail goes out as a journaled step of one recovery: the one that tripped the
   * guard, or, should it end or move past validation before its step succeeded, the next
   * recovery the guard judges. Once that step succeeded the notice is done.
   */
  async function noticeFor(state: StormState, recovery: Recovery): Promise<GateNotice[]> {
    const n = state.notice;
    if (!n) return [];
    const step = await store.getStep(n.holder, n.step);
    if (step?.state === "succeeded") {
      state.notice = null;
      return [];
    }
    if (n.holder !== recovery.id) {
      const holder = await store.getRecovery(n.holder);
      if (holder && (holder.state === "pending" || holder.state === "validating" || holder.state === "blocked")) return [];
      n.holder = recovery.id;
    }
    const info = { hosts: n.hosts, reason: n.reason, at: n.at, until: n.until, recoveryId: recovery.id };
    return [{ key: n.step, send: (signal) => deps.notifier.stormTripped(info, signal) }];
  }

  /** Judge each failure in order: the limits it goes past, counting it and those before it. */
  function judge(failures: Failure[], enabled: number | null, zoneOf: (host: string) => string | null): Judged[] {
    const ordered = [...failures].sort(
      (a, b) => Number(b.granted) - Number(a.granted) || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id),
    );
    const hosts = new Set<string>();
    const zones = new Map<string, number>();
    return ordered.map((failure) => {
      const zone = zoneOf(failure.host);
      // A host counts once, however many recoveries it had in the window.
      if (!hosts.has(failure.host)) {
        hosts.add(failure.host);
        if (zone !== null) zones.set(zone, (zones.get(zone) ?? 0) + 1);
      }
      const n = hosts.size;
      const over: string[] = [];
      if (n > c.max_recoveries) over.push(`${n} recoveries in ${c.window_seconds}s > max_recoveries ${c.max_recoveries}`);
      if (enabled !== null) {
        const percent = enabled > 0 ? (n / enabled) * 100 : 100;
        if (percent > c.max_percent) over.push(`${n} of ${enabled} enabled compute services (${Math.round(percent)}%) > max_percent ${c.max_percent}%`);
      }
      const inZone = zone !== null ? (zones.get(zone) ?? 0) : 0;
      if (c.max_per_zone !== undefined && zone !== null && inZone > c.max_per_zone) over.push(`${inZone} in zone ${zone} > max_per_zone ${c.max_per_zone}`);
      return { failure, over };
    });
  }

  function countText(n: number, enabled: number | null): string {
    const share = enabled === null ? "" : ` (${Math.round(enabled > 0 ? (n / enabled) * 100 : 100)}% of ${enabled} compute services)`;
    return `${n} recovery(ies) in the window${share}`;
  }
}

/** Keep `granted` and `released` to the recoveries that may still count or be judged. */
function prune(state: StormState, seen: ReadonlyMap<string, Recovery>): void {
  for (const id of Object.keys(state.granted)) if (!seen.has(id)) delete state.granted[id];
  for (const id of Object.keys(state.released)) if (!seen.has(id)) delete state.released[id];
}

function inWindow(r: Recovery, windowStart: number): boolean {
  return Date.parse(r.createdAt) >= windowStart;
}

function latest(isos: string[]): string | undefined {
  return isos.reduce<string | undefined>((a, b) => (a === undefined || Date.parse(b) > Date.parse(a) ? b : a), undefined);
}

function hostsOf(s: Storm): string[] {
  return [...new Set(Object.values(s.members).map((m) => m.host))];
}

