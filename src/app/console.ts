import type { AlertmanagerClient } from "../alertmanager/client.js";
import { silenceMatches } from "../alertmanager/client.js";
import type { Config } from "../config/schema.js";
import type { ChainResult } from "../domain/ports/fencing.js";
import type { ReleaseView as HostReleaseView } from "../engine/host-view.js";
import type { OperatorCommands } from "../engine/commands.js";
import type { Recovery } from "../domain/model.js";
import type { FencingPort } from "../domain/ports/fencing.js";
import type { JournalChanges } from "../store/observed.js";
import { recoveryDetail, type Store } from "../domain/journal.js";
import type { Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { actionOutcome, statusSnapshot, type StatusInfo } from "../http/control.js";
import type { ActionResult, ConsoleDeps, ConsoleStatus, FenceDeviceView, HeldHost, ReleaseView, SilencesView } from "../http/console/deps.js";

/** Today's objects the console is built from: the one place that knows them. */
export interface ConsoleSources {
  config: Config;
  store: Store;
  commands: OperatorCommands;
  fencing: FencingPort;
  status: () => Promise<StatusInfo>;
  changes: JournalChanges;
  alertmanager: AlertmanagerClient | null;
  clock: Clock;
}

/** Silences are asked of Alertmanager at most this often, and never for longer than this. */
const SILENCES_CACHE_MS = 10_000;
const SILENCES_TIMEOUT_MS = 2_000;
/** Recent recoveries looked at for hosts that may still be held down. */

/**
 * ConsoleDeps over the running lifeboat: the journal for reads, and for actions the same
 * operator commands as the control API, through the API's own error mapping.
 */
export function consoleDepsFromApp(src: ConsoleSources): ConsoleDeps {
  const { store, commands, config } = src;
  let silencesCache: { at: number; value: SilencesView } | null = null;

  const status = async (): Promise<ConsoleStatus> => {
    const snap = await statusSnapshot({ store, commands, status: src.status });
    return {
      version: snap.version,
      instance: snap.instance,
      leader: snap.leader,
      store: snap.store,
      dryRun: snap.dryRun,
      pause: snap.paused,
      storm: { tripped: snap.storm.tripped, since: snap.storm.since ?? null, blockedHosts: snap.storm.held },
      openByState: snap.openRecoveries,
    };
  };

  /** The follower's word on what it did: the leader carries it out. */
  const act = async <T>(fn: () => Promise<T>, message: (v: T) => string): Promise<ActionResult> => {
    const out = await actionOutcome(fn);
    const s = await src.status().catch(() => null);
    const leader = s && !s.leader.self ? (s.leader.id ?? "nobody (no leader elected)") : null;
    if (!out.ok) {
      const who = leader && out.status === 409 && /does not lead/.test(out.error) ? ` ${leader} leads.` : "";
      return { ok: false, status: out.status, message: `${out.error}${who}` };
    }
    return { ok: true, message: `${message(out.value)}${leader ? `; this instance follows: ${leader} carries it out` : ""}` };
  };

  const releaseView = (r: HostReleaseView | null): ReleaseView | null =>
    r ? { state: r.done ? r.state : "running", by: r.by, startedAt: r.startedAt, ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}), message: r.reason } : null;

  return {
    status,

    async silences() {
      const am = src.alertmanager;
      if (!am || !config.gates.silences.enabled) return null;
      const now = src.clock.now();
      if (silencesCache && now - silencesCache.at < SILENCES_CACHE_MS) return silencesCache.value;
      let value: SilencesView;
      try {
        const active = await am.activeSilences(AbortSignal.timeout(SILENCES_TIMEOUT_MS));
        const open = await store.listRecoveries({ open: true, limit: 500 });
        const hosts = [...new Set([...Object.keys(config.fencing.hosts), ...open.map((r) => r.host)])];
        const pauseMatcher = config.gates.silences.pause_matcher;
        const pausing: SilencesView["pausing"] = [];
        for (const s of active) {
          const global = s.matchers.some((m) => `${m.name}="${m.value}"` === pauseMatcher && !m.isRegex && (m.isEqual ?? true));
          const muted = global ? [] : hosts.filter((h) => config.alerts.trigger_alertnames.some((a) => silenceMatches(s, { alertname: a, [config.alerts.host_label]: h })));
          if (global || muted.length) pausing.push({ id: s.id, scope: global ? "everything" : muted.join(", "), createdBy: s.createdBy, endsAt: s.endsAt, comment: s.comment });
        }
        value = { pausing };
      } catch (err) {
        value = { pausing: [], error: errorMessage(err) };
      }
      silencesCache = { at: now, value };
      return value;
    },

    async recoveries(q) {
      const rows = await store.listRecoveries({
        ...(q.host ? { host: q.host } : {}),
        ...(q.states ? { state: q.states } : {}),
        ...(q.open !== undefined ? { open: q.open } : {}),
        limit: q.offset + q.limit + 1,
      });
      return { rows: rows.slice(q.offset, q.offset + q.limit), more: rows.length > q.offset + q.limit };
    },

    recovery: (id) => recoveryDetail(store, id),

    async host(host) {
      const [d, recoveries] = await Promise.all([src.commands.describeHost(host), store.listRecoveries({ host, limit: 20 })]);
      return {
        host,
        hold: d.hold,
        release: releaseView(d.release),
        openRecovery: d.openRecovery,
        devices: await lastKnownPower(store, src.fencing, host, recoveries),
        recoveries,
      };
    },

    async heldHosts() {
      const held = (await store.listHostStates()).filter((h) => h.fenced);
      return Promise.all(
        held.map(async (hold): Promise<HeldHost> => {
          const release = await src.commands.latestRelease(hold.host);
          return { host: hold.host, recoveryId: hold.recoveryId, since: hold.at, by: hold.by, release: releaseView(release) };
        }),
      );
    },

    actions: {
      approve: (id, actor) => act(() => commands.approve(id, actor), (r) => `recovery of ${r.host} approved by ${actor}`),
      cancel: (id, actor, reason) => act(() => commands.cancel(id, actor, reason), (r) => `recovery of ${r.host} cancelled`),
      pause: (actor, reason) => act(() => commands.pause(actor, reason), () => "automation paused"),
      resume: (actor) => act(() => commands.resume(actor), () => "automation resumed"),
      release: (host, actor) => act(() => src.commands.release(host, actor), () => `release of ${host} started`),
    },

    onChange: (listener) => src.changes.on(listener),
  };
}

/**
 * Each device's last power reading that lifeboat journaled: the fence step of the host's
 * recent recoveries (the device's own words), newest first. No device is asked.
 */
async function lastKnownPower(store: Store, fencing: FencingPort, host: string, recoveries: Recovery[]): Promise<FenceDeviceView[]> {
  const devices = fencing.hasHost(host) ? fencing.devices(host) : [];
  const known = new Map<string, NonNullable<FenceDeviceView["lastKnown"]>>();
  for (const r of recoveries) {
    if (known.size === devices.length) break;
    if (r.fenceState === "not-attempted" && r.state !== "failed") continue;
    const step = await store.getStep(r.id, "fence");
    if (!step?.finishedAt) continue;
    const res = step.result as Partial<ChainResult> & { status?: { device: string; status?: { state: string; raw: string }; error?: string }[] };
    for (const a of res?.attempts ?? []) {
      if (!known.has(a.device)) known.set(a.device, { state: a.result.state, words: a.result.message, at: step.finishedAt, recoveryId: r.id });
    }
    for (const s of res?.status ?? []) {
      if (!known.has(s.device)) known.set(s.device, { state: s.status?.state ?? "unknown", words: s.error ?? s.status?.raw ?? "", at: step.finishedAt, recoveryId: r.id });
    }
  }
  return devices.map((d) => ({ label: d.label, driver: d.driver, lastKnown: known.get(d.label) ?? null }));
}
