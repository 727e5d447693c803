import { enterBlock } from "../block.js";
import { blockReason, evaluateGates, recordGateOutcome, runGateNotices } from "../gate-runner.js";
import type { Stage } from "../context.js";

/** Run every gate; all pass → fencing (the point of no return), else blocked. */
export const validating: Stage<"recovery" | "gates" | "store" | "steps" | "metrics" | "log" | "signal" | "nowIso"> = async (ctx) => {
  const outcome = await evaluateGates(ctx.gates, ctx.recovery, ctx.signal, () => ctx.nowIso());
  await recordGateOutcome(outcome, ctx);
  await runGateNotices(outcome, ctx);
  if (outcome.pass) {
    const names = outcome.decisions.map((d) => d.gate).join(", ");
    return { to: "fencing", reason: outcome.decisions.length ? `all gates pass (${names})` : "no gates configured" };
  }
  return {
    to: "blocked",
    reason: blockReason(outcome),
    patch: { block: enterBlock(outcome, ctx.nowIso(), ctx.recovery.block) },
  };
};
