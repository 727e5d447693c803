import type { Recovery } from "../../src/domain/model.js";
import type { Gate, GateVerdict } from "../../src/domain/ports/gate.js";

/** A recovery of `host` waiting in `validating`, as a gate sees it. */
export function validatingRecovery(host: string, extra: Partial<Recovery> = {}): Recovery {
  const now = new Date().toISOString();
  return {
    id: `r-${host}`,
    host,
    kind: "alert",
    incidentKey: `${host}@${now}`,
    state: "validating",
    trigger: "alert",
    dryRun: false,
    confirmedOff: false,
    approved: false,
    fenceState: "not-attempted",
    reason: "",
    detectedAt: now,
    createdAt: now,
    updatedAt: now,
    graceUntil: now,
    alerts: {},
    ...extra,
  };
}

/** Ask one gate about a recovery, as the gate runner does (priorPass true, not quiet, unless said). */
export function askGate(gate: Gate, recovery: Recovery, opts: { priorPass?: boolean; quiet?: boolean } = {}): Promise<GateVerdict> {
  return gate.evaluate({ recovery, signal: new AbortController().signal, priorPass: opts.priorPass ?? true, quiet: opts.quiet ?? false });
}
