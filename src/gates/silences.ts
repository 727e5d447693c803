import { parseMatcher, silenceMatches, type AlertmanagerClient, type AmMatcher, type AmSilence } from "../alertmanager/client.js";
import type { Metrics } from "../metrics.js";
import { errorMessage } from "../util/errors.js";
import type { Gate } from "../domain/ports/gate.js";

/**
 * Alertmanager silences pause automation: an active silence carrying the pause matcher
 * (default `lifeboat="paused"`) pauses everything; a silence that mutes the host's alert
 * (Alertmanager reports it `suppressed` with `silencedBy`) pauses that host. Silences are
 * checked right before fencing: one created after the webhook was sent still counts.
 *
 * A silence is a person's "hands off" said in Alertmanager: an approval in lifeboat does not
 * override it (it would fence a host someone is working on). It lifts when the silence ends
 * — it expires, or someone expires it — and the re-check then goes on if the host is still
 * down. The silences are in the decision's details, for the blocked message to name them.
 */
export function silencesGate(
  am: AlertmanagerClient,
  opts: { pauseMatcher: string; onError: "block" | "proceed"; hostLabel: string; triggerAlertnames: readonly string[]; metrics: Metrics },
): Gate {
  const pause = parseMatcher(opts.pauseMatcher);
  return {
    name: "silences",
    kind: "policy",
    async evaluate({ recovery, signal }) {
      let silences, alerts;
      try {
        [silences, alerts] = await Promise.all([am.activeSilences(signal), am.alerts({ [opts.hostLabel]: recovery.host }, signal)]);
      } catch (err) {
        if (signal.aborted) throw err;
        const why = `cannot ask Alertmanager at ${am.baseUrl}: ${errorMessage(err)}`;
        return opts.onError === "block"
          ? { result: "undecided", reason: `${why} (silences.on_error: block)`, recheck: true, overridable: true }
          : { result: "warn", reason: `${why} (silences.on_error: proceed)` };
      }
      const global = silences.find((s) => s.matchers.some((m) => sameMatcher(m, pause)));
      opts.metrics.automationPaused.set({ source: "silence" }, global ? 1 : 0);
      if (global) {
        return {
          result: "block",
          reason: `automation paused by silence ${global.id} (${opts.pauseMatcher}) by ${global.createdBy} until ${global.endsAt}: ${global.comment}`,
          recheck: true,
          overridable: false,
          details: { silences: [silenceFact(global)] },
        };
      }
      const silencedBy = new Set(alerts.filter((a) => a.status.state === "suppressed").flatMap((a) => a.status.silencedBy));
      // A recovery started by hand has no alert: evaluate the silences against the host's labels too.
      for (const name of opts.triggerAlertnames) {
        for (const s of silences) if (silenceMatches(s, { alertname: name, [opts.hostLabel]: recovery.host })) silencedBy.add(s.id);
      }
      if (silencedBy.size) {
        const s = silences.find((x) => silencedBy.has(x.id));
        return {
          result: "block",
          reason: `${recovery.host} is silenced in Alertmanager (${[...silencedBy].join(", ")}${s ? ` by ${s.createdBy} until ${s.endsAt}: ${s.comment}` : ""})`,
          recheck: true,
          overridable: false,
          details: { silences: [...silencedBy].map((id) => silenceFact(silences.find((x) => x.id === id) ?? { id })) },
        };
      }
      return { result: "pass", reason: `no silence covers ${recovery.host}; automation not paused by silence` };
    },
  };
}

function silenceFact(s: Pick<AmSilence, "id"> & Partial<Pick<AmSilence, "endsAt" | "createdBy">>): Record<string, string> {
  return { id: s.id, ...(s.endsAt !== undefined ? { endsAt: s.endsAt } : {}), ...(s.createdBy !== undefined ? { createdBy: s.createdBy } : {}) };
}

function sameMatcher(a: AmMatcher, b: AmMatcher): boolean {
  return a.name === b.name && a.value === b.value && a.isRegex === b.isRegex && (a.isEqual ?? true) === (b.isEqual ?? true);
}
