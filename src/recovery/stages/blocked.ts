import { recoveryDetail } from "../../store/types.js";
import { evaluateGates } from "../gate-runner.js";
import type { Stage } from "../context.js";

interface BlockFacts {
  gates: string[];
  recheck: boolean;
  approvable: boolean;
  at: string;
}

/**
 * Blocked: operators are told once, then the recovery waits. An approval moves it back to
 * validating. Blocks that can clear on their own (pause lifted, silence expired, API back,
 * storm cooled down) are re-checked quietly every `recheck_interval_seconds`; only when every
 * gate passes does the recovery go back to validating, where the decision is recorded.
 */
export const blocked: Stage = async (ctx) => {
  const r = ctx.recovery;
  const block = r.facts.block as BlockFacts | undefined;
  const notifyKey = `notify-blocked:${block?.at ?? r.updatedAt}`;
  await ctx.steps.run(notifyKey, async () => {
    const detail = await recoveryDetail(ctx.store, r.id);
    return detail ? ctx.notifier.recoveryBlocked(detail, r.reason, ctx.signal) : null;
  });

  if (r.approved && block?.approvable) {
    return { to: "validating", reason: `approved by ${r.approvedBy ?? "operator"}` };
  }
  await ctx.wait(ctx.config.recovery.recheck_interval_seconds * 1000);
  const fresh = await ctx.store.getRecovery(r.id);
  if (!fresh || fresh.state !== "blocked") return null;
  if (fresh.approved && block?.approvable) return { to: "validating", reason: `approved by ${fresh.approvedBy ?? "operator"}` };
  if (block?.recheck || fresh.approved) {
    const outcome = await evaluateGates(ctx.gates, fresh, ctx.signal, () => ctx.nowIso(), true);
    if (outcome.pass) return { to: "validating", reason: "the block cleared; validating again" };
  }
  return null;
};
