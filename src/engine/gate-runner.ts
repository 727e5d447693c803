import type { Gate, GateNotice, GateVerdict } from "../domain/ports/gate.js";
import { errorMessage } from "../util/errors.js";
import type { GateDecision, Recovery } from "../domain/model.js";
import type { StageSlice } from "./context.js";
import { blockNeed } from "./block-needs.js";

export interface GateOutcome {
  /** Every gate passed (or warned, or was overridden by an approval). */
  pass: boolean;
  decisions: GateDecision[];
  /** Blocking decisions only. */
  blocking: GateDecision[];
  /** Every blocking verdict can clear on its own: worth re-checking without an operator. */
  recheckable: boolean;
  /** Every blocking verdict is a policy an approval overrides. */
  approvable: boolean;
  /**
   * Something blocks, and every blocking verdict is evidence that may clear by itself
   * (./block-needs.ts): operators are told only if it lasts.
   */
  clearsItself: boolean;
  /** What the gates' decisions oblige the recovery to do once (see `runGateNotices`). */
  notices: GateNotice[];
}

/**
 * Run the gates and collect their verdicts in gate order. Independent gates run at the same
 * time (their checks ask Nova, Placement, the BMC, Alertmanager: the slowest sets the pace,
 * not the sum); a gate marked `afterPrior` decides after every gate before it. All gates
 * run even after a block, so the operator sees every reason at once. A gate that throws is
 * "undecided" (it blocks). An approved recovery passes overridable (policy) blocks;
 * evidence blocks stand.
 */
export async function evaluateGates(
  gates: readonly Gate[],
  recovery: Recovery,
  signal: AbortSignal,
  now: () => string,
  quiet = false,
): Promise<GateOutcome> {
  const verdicts: GateVerdict[] = [];
  const decided: string[] = [];
  const judge = async (gate: Gate, i: number, priorPass: boolean): Promise<void> => {
    let v: GateVerdict;
    try {
      v = await gate.evaluate({ recovery, signal, priorPass, quiet });
    } catch (err) {
      if (signal.aborted) throw err;
      v = { result: "undecided", reason: `check failed: ${errorMessage(err)}`, recheck: true };
    }
    if ((v.result === "block" || v.result === "undecided") && v.overridable && recovery.approved) {
      v = { ...v, result: "pass", reason: `approved by ${recovery.approvedBy ?? "operator"} over: ${v.reason}` };
    }
    verdicts[i] = v;
    decided[i] = now();
  };
  let running: Promise<void>[] = [];
  for (const [i, gate] of gates.entries()) {
    if (!gate.afterPrior) {
      running.push(judge(gate, i, true));
      continue;
    }
    await settleAll(running);
    running = [];
    await judge(gate, i, verdicts.slice(0, i).every((p) => p.result === "pass" || p.result === "warn"));
  }
  await settleAll(running);
  const decisions: GateDecision[] = gates.map((gate, i) => {
    const v = verdicts[i]!;
    return {
      recoveryId: recovery.id,
      gate: gate.name,
      result: v.result,
      reason: v.reason,
      at: decided[i]!,
      ...(v.details ? { details: v.details } : {}),
      ...(v.subject !== undefined ? { subject: v.subject } : {}),
    };
  });
  const blockingIdx = verdicts.map((v, i) => (v.result === "block" || v.result === "undecided" ? i : -1)).filter((i) => i >= 0);
  return {
    pass: blockingIdx.length === 0,
    decisions,
    blocking: blockingIdx.map((i) => decisions[i]!),
    recheckable: blockingIdx.every((i) => verdicts[i]!.recheck === true),
    approvable: blockingIdx.every((i) => verdicts[i]!.overridable === true),
    clearsItself: blockingIdx.length > 0 && blockingIdx.every((i) => blockNeed(gates[i]!.name, verdicts[i]!) === "may-clear"),
    notices: verdicts.flatMap((v) => v.notices ?? []),
  };
}

/**
 * Run the gates' notices as journaled steps of the recovery: each once, even across a
 * crash. A notice that fails is logged and offered again by its gate; it never holds the
 * recovery.
 */
export async function runGateNotices(outcome: GateOutcome, ctx: StageSlice<"steps" | "signal" | "log">): Promise<void> {
  for (const n of outcome.notices) {
    try {
      await ctx.steps.run(n.key, () => n.send(ctx.signal), { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      ctx.log.error({ step: n.key, err: errorMessage(err) }, "gate notice failed; it is offered again at the next check");
    }
  }
}

/** Wait for every check; the first failure (an abort) is thrown once all have settled. */
async function settleAll(running: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(running);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Persist the decisions, count them, and write the one "decision" log line. */
export async function recordGateOutcome(outcome: GateOutcome, ctx: StageSlice<"store" | "metrics" | "log">): Promise<void> {
  // One write for the evaluation (one etcd transaction, not one round trip per gate before fencing).
  await ctx.store.recordDecisions(outcome.decisions);
  for (const d of outcome.decisions) ctx.metrics.gateDecisions.inc({ gate: d.gate, result: d.result });
  ctx.log.info(
    {
      decision: outcome.pass ? "proceed" : "block",
      gates: Object.fromEntries(outcome.decisions.map((d) => [d.gate, d.result])),
      reasons: outcome.blocking.map((d) => `${d.gate}: ${d.reason}`),
    },
    outcome.pass ? "decision: all gates pass, fencing next" : "decision: blocked before fencing",
  );
}

export function blockReason(outcome: GateOutcome): string {
  return outcome.blocking.map((d) => `${d.gate}: ${d.reason}`).join("; ");
}
