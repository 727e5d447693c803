import { recoveryDetail } from "../../store/types.js";
import type { Outcome } from "../model.js";
import type { Stage } from "../context.js";

/** Tell operators (and tenants, when instances moved) how it ended; then end. Never fails. */
export const notifying: Stage = async (ctx) => {
  const r = ctx.recovery;
  const outcome: Outcome = r.outcome ?? "completed";
  await ctx.steps.run("notify", async () => {
    const detail = await recoveryDetail(ctx.store, r.id);
    if (!detail) return null;
    try {
      if (outcome === "failed" && r.fenceState === "unknown") return await ctx.notifier.fenceFailed(detail, ctx.signal);
      return await ctx.notifier.recoveryFinished(detail, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      // Notifiers record their own failures; a throw here must not fail the recovery.
      ctx.log.error({ err }, "notification failed");
      return null;
    }
  });
  return { to: outcome, reason: finalReason(outcome, r.reason) };
};

function finalReason(outcome: Outcome, last: string): string {
  switch (outcome) {
    case "completed":
      return "recovery completed; people notified";
    case "partial":
      return `recovery partial: ${last}`;
    case "failed":
      return `recovery failed: ${last}`;
    case "aborted":
      return last;
  }
}
