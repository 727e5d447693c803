import type { PauseState } from "../domain/model.js";
import type { Store } from "../domain/journal.js";
import type { Gate } from "../domain/ports/gate.js";

/** Hosts in `gates.exclude_hosts` are never recovered automatically (maintenance). */
export function exclusionGate(excluded: readonly string[]): Gate {
  return {
    name: "maintenance",
    kind: "policy",
    evaluate: ({ recovery }) =>
      Promise.resolve(
        excluded.includes(recovery.host)
          ? { result: "block", reason: `${recovery.host} is listed in gates.exclude_hosts (maintenance)`, overridable: true, recheck: false }
          : { result: "pass", reason: "host not excluded" },
      ),
  };
}

/** The operator's global pause switch (API/CLI), persisted in the store. */
export function pauseGate(store: Store): Gate {
  return {
    name: "pause",
    kind: "policy",
    async evaluate() {
      const p = await store.getSetting<PauseState>("pause");
      if (p?.paused) return { result: "block", reason: `automation paused by ${p.by} at ${p.at}: ${p.reason}`, recheck: true, overridable: true };
      return { result: "pass", reason: "automation not paused" };
    },
  };
}

/** `require_approval`: every recovery, or those of listed hosts, waits for an operator. */
export function approvalGate(require: boolean | readonly string[]): Gate {
  return {
    name: "approval",
    kind: "policy",
    evaluate: ({ recovery }) => {
      const needed = require === true || (Array.isArray(require) && require.includes(recovery.host));
      return Promise.resolve(
        needed
          ? { result: "block", reason: `approval required (gates.require_approval): lifeboat approve ${recovery.id}`, overridable: true, recheck: false }
          : { result: "pass", reason: "no approval required" },
      );
    },
  };
}

/**
 * Cooldown per host: a host whose previous recovery went past fencing less than
 * `cooldown_seconds` ago is not recovered again without an operator (a flapping host).
 */
export function cooldownGate(store: Store, cooldownSeconds: number, now: () => number): Gate {
  return {
    name: "cooldown",
    kind: "policy",
    async evaluate({ recovery }) {
      if (cooldownSeconds <= 0) return { result: "pass", reason: "no cooldown configured" };
      const since = new Date(now() - cooldownSeconds * 1000).toISOString();
      const recent = (await store.listRecoveries({ host: recovery.host, since, limit: 50 })).filter(
        (r) => r.id !== recovery.id && (r.state === "completed" || r.state === "partial" || r.state === "failed") && r.fenceState !== "not-attempted",
      );
      const last = recent[0];
      if (!last) return { result: "pass", reason: `no recovery of ${recovery.host} in the last ${cooldownSeconds}s` };
      const until = new Date(Date.parse(last.updatedAt) + cooldownSeconds * 1000).toISOString();
      return {
        result: "block",
        reason: `${recovery.host} was recovered by ${last.id} (${last.state}) at ${last.updatedAt}; cooldown until ${until}`,
        recheck: true,
        overridable: true,
        details: { previous: last.id, until },
      };
    },
  };
}
