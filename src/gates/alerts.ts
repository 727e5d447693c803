import type { AlertmanagerClient } from "../alertmanager/client.js";
import { errorMessage } from "../util/errors.js";
import type { Gate } from "../domain/ports/gate.js";

/** Several signals must agree: every listed alertname must be firing for the host. */
export function alertsGate(am: AlertmanagerClient, opts: { alertnames: readonly string[]; hostLabel: string }): Gate {
  return {
    name: "alerts",
    kind: "evidence",
    async evaluate({ recovery, signal }) {
      let alerts;
      try {
        alerts = await am.alerts({ [opts.hostLabel]: recovery.host }, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        return { result: "undecided", reason: `cannot ask Alertmanager: ${errorMessage(err)}`, recheck: true };
      }
      const firing = new Set(alerts.map((a) => a.labels.alertname ?? ""));
      const missing = opts.alertnames.filter((n) => !firing.has(n));
      if (missing.length) return { result: "block", reason: `not firing for ${recovery.host}: ${missing.join(", ")}`, recheck: true };
      return { result: "pass", reason: `firing for ${recovery.host}: ${opts.alertnames.join(", ")}` };
    },
  };
}
