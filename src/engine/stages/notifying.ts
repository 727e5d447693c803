import { recoveryDetail } from "../../domain/journal.js";
import type { Outcome } from "../../domain/model.js";
import type { NotifySummary } from "../../domain/ports/notifier.js";
import type { Stage } from "../context.js";

/**
 * Queue the messages telling operators (and tenants, when instances moved) how it ended;
 * then end. Delivery happens in the background and is shown on the recovery once known.
 * Never fails.
 */
export const notifying: Stage<"recovery" | "store" | "notifier" | "steps" | "signal" | "log"> = async (ctx) => {
  const r = ctx.recovery;
  const outcome: Outcome = r.outcome ?? "completed";
  const summary = await ctx.steps.run("notify", async () => {
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
  return { to: outcome, reason: finalReason(outcome, r.reason, summary) };
};

/** What the notifier did, in words: queued is all it can know; delivery comes later. */
function notified(s: NotifySummary | null): string {
  if (!s) return "notifications could not be queued";
  if ((s.queued ?? 0) > 0) return "notifications queued for delivery";
  if (s.sent > 0) return "people notified";
  if (s.failed > 0) return `notifications failed (${s.failed})`;
  if (s.problems?.length) return `notifications could not be queued: ${s.problems[0]}`;
  return s.skipped > 0 ? "notifications already queued or only recorded" : "nobody to notify";
}

function finalReason(outcome: Outcome, last: string, summary: NotifySummary | null): string {
  switch (outcome) {
    case "completed":
      return `recovery completed; ${notified(summary)}`;
    case "partial":
      return `recovery partial: ${last}`;
    case "failed":
      return `recovery failed: ${last}`;
    case "aborted":
      return last;
  }
}
