import type { FencingPort } from "../domain/ports/fencing.js";
import { errorMessage } from "../util/errors.js";
import type { Gate } from "../domain/ports/gate.js";

/**
 * The host's fencing device must answer a power-status query: a node that cannot be fenced
 * must never be started elsewhere. (No fencing configured at all is left to the fencing
 * stage, which fails the recovery with that reason.)
 */
export function bmcGate(fencing: FencingPort): Gate {
  return {
    name: "bmc",
    kind: "evidence",
    async evaluate({ recovery, signal }) {
      if (recovery.confirmedOff) return { result: "pass", reason: "an operator confirmed the host is off" };
      if (!fencing.hasHost(recovery.host)) return { result: "warn", reason: `no fencing configured for ${recovery.host}: the recovery will fail at fencing` };
      let rows;
      try {
        rows = await fencing.status(recovery.host, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        return { result: "undecided", reason: `power status query failed: ${errorMessage(err)}`, recheck: true };
      }
      const answered = rows.filter((r) => r.status && r.status.state !== "unknown");
      if (answered.length === 0) {
        const words = rows.map((r) => `${r.device}: ${r.error ?? r.status?.raw ?? "no answer"}`).join("; ");
        return { result: "block", reason: `no fencing device answers: ${words}`, recheck: true };
      }
      const states = answered.map((r) => `${r.device} says ${r.status?.state ?? "?"}`).join(", ");
      return { result: "pass", reason: `fencing reachable: ${states}`, details: { devices: answered.map((r) => r.device) } };
    },
  };
}
