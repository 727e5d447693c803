import type { GateResult } from "../domain/model.js";
import type { GateVerdict } from "../domain/ports/gate.js";

/**
 * What a block asks of operators: a person, or only patience.
 *
 * - `person`: nothing changes until someone acts (approve, resume, expire a silence, add
 *   capacity, end maintenance, look at a BMC). Operators are told at once.
 * - `may-clear`: evidence that may clear by itself within minutes — Nova still hears a
 *   heartbeat of a host that is dying right now, an alert or a query not true yet, an API
 *   that did not answer this time. Operators are told only if the block lasts
 *   `notifications.blocked_delay_seconds` (a gate undecided for that long is worth a look),
 *   and a blocked recovery re-checks these gates alone every
 *   `recovery.evidence_recheck_interval_seconds` (only those of `kind: evidence`).
 *
 * A recovery's block is `may-clear` only when every blocking verdict is. A verdict that will
 * not be re-checked (`recheck` false: a service a human disabled, approval required,
 * excluded host) always needs a person, and so does any gate missing from this table.
 * README "The safety model" lists the same table for operators.
 */
export type BlockNeed = "person" | "may-clear";

type Blocking = Extract<GateResult, "block" | "undecided">;

/** Per gate: what its block and its undecided verdict need. */
export const BLOCK_NEEDS: Readonly<Record<string, Readonly<Record<Blocking, BlockNeed>>>> = {
  // Confirmations not yet true: the host may be failing right now; the next reads decide.
  "nova-service": { block: "may-clear", undecided: "may-clear" },
  alerts: { block: "may-clear", undecided: "may-clear" },
  prometheus: { block: "may-clear", undecided: "may-clear" },
  // A host that cannot be fenced is never started elsewhere: someone must look at its BMC.
  bmc: { block: "person", undecided: "person" },
  // Policies: a person decides. When only the API a policy reads did not answer, it may
  // answer at the next check.
  approval: { block: "person", undecided: "may-clear" },
  pause: { block: "person", undecided: "may-clear" },
  maintenance: { block: "person", undecided: "may-clear" },
  cooldown: { block: "person", undecided: "may-clear" },
  silences: { block: "person", undecided: "may-clear" },
  capacity: { block: "person", undecided: "may-clear" },
  storm: { block: "person", undecided: "may-clear" },
};

/** What one gate's verdict needs, when it blocks. */
export function blockNeed(gate: string, verdict: Pick<GateVerdict, "result" | "recheck">): BlockNeed {
  if (verdict.recheck !== true) return "person";
  if (verdict.result !== "block" && verdict.result !== "undecided") return "person";
  return BLOCK_NEEDS[gate]?.[verdict.result] ?? "person";
}
