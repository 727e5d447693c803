import { recoveryDetail } from "../../domain/journal.js";
import { blockedMessageDue, changedBlock } from "../block.js";
import { blockReason, evaluateGates, recordGateOutcome, runGateNotices } from "../gate-runner.js";
import type { Stage } from "../context.js";

/**
 * Blocked: operators are told once per block episode (see ../block.ts) — at once when a
 * person is needed, or once evidence that may clear by itself has held the recovery
 * `notifications.blocked_delay_seconds` (../block-needs.ts); a block that clears sooner is
 * told to nobody. An approval of an approvable block moves it back to validating at once.
 * Every `recheck_interval_seconds` the gates are asked again (looking once, not confirming):
 * when all pass the recovery goes back to validating, where the full decision is recorded;
 * when what blocks it changed, the decisions are recorded and the recovery moves to `blocked`
 * again with the new reason, so its reason, decisions and mail say what blocks it now.
 */
export const blocked: Stage = async (ctx) => {
  const r = ctx.recovery;
  const block = r.block;
  const messageDue = blockedMessageDue(block, ctx.config.notifications.blocked_delay_seconds);
  const told = ctx.clock.now() >= messageDue;
  if (told) {
    await ctx.steps.run(`notify-blocked:${block?.episode ?? r.updatedAt}`, async () => {
      const detail = await recoveryDetail(ctx.store, r.id);
      return detail ? ctx.notifier.recoveryBlocked(detail, r.reason, ctx.signal) : null;
    });
  }

  if (r.approved && block?.approvable) {
    return { to: "validating", reason: `approved by ${r.approvedBy ?? "operator"}` };
  }
  const recheckMs = ctx.config.recovery.recheck_interval_seconds * 1000;
  // Come back when the message is due, if that is sooner than the next re-check.
  await ctx.wait(told ? recheckMs : Math.max(0, Math.min(recheckMs, messageDue - ctx.clock.now())));
  const fresh = await ctx.store.getRecovery(r.id);
  if (!fresh || fresh.state !== "blocked") return null;
  const current = fresh.block;
  if (fresh.approved && current?.approvable) return { to: "validating", reason: `approved by ${fresh.approvedBy ?? "operator"}` };
  const outcome = await evaluateGates(ctx.gates, fresh, ctx.signal, () => ctx.nowIso(), true);
  await runGateNotices(outcome, ctx);
  if (outcome.pass) return { to: "validating", reason: "the block cleared; validating again" };
  const next = changedBlock(current, outcome, ctx.nowIso());
  if (!next) return null;
  await recordGateOutcome(outcome, { store: ctx.store, metrics: ctx.metrics, logger: ctx.log });
  return { to: "blocked", reason: blockReason(outcome), patch: { block: next } };
};
