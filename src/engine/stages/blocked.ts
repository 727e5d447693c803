import { recoveryDetail } from "../../domain/journal.js";
import { blockedMessageDue, changedBlock, evidenceGates, sameBlock } from "../block.js";
import { blockReason, evaluateGates, recordGateOutcome, runGateNotices } from "../gate-runner.js";
import type { Recovery } from "../../domain/model.js";
import type { Stage, StageSlice, StageResult } from "../context.js";

/**
 * Blocked: operators are told once per block episode (see ../block.ts) — at once when a
 * person is needed, or once evidence that may clear by itself has held the recovery
 * `notifications.blocked_delay_seconds` (../block-needs.ts); a block that clears sooner is
 * told to nobody. An approval of an approvable block moves it back to validating at once.
 *
 * Every `recheck_interval_seconds`, and whenever the recovery is woken, the whole gate set
 * is asked again (looking once, not confirming): when all pass the recovery goes back to
 * validating, where every gate decides again before anything is fenced; when what blocks it
 * changed, the decisions are recorded and the recovery moves to `blocked` again with the new
 * reason, so its reason, decisions and mail say what blocks it now. In between, a recovery
 * held by confirmations alone asks just those every `evidence_recheck_interval_seconds`, and
 * runs the whole set as soon as one of them says something new.
 */
export const blocked: Stage<
  "recovery" | "gates" | "store" | "steps" | "notifier" | "metrics" | "log" | "signal" | "clock" | "wait" | "nowIso",
  "notifications" | "recovery"
> = async (ctx) => {
  const r = ctx.recovery;
  const block = r.block;
  const messageDue = blockedMessageDue(block, ctx.config.notifications.blocked_delay_seconds);
  let told = false;
  const tell = async (): Promise<void> => {
    await ctx.steps.run(`notify-blocked:${block?.episode ?? r.updatedAt}`, async () => {
      const detail = await recoveryDetail(ctx.store, r.id);
      return detail ? ctx.notifier.recoveryBlocked(detail, r.reason, ctx.signal) : null;
    });
    told = true;
  };
  if (ctx.clock.now() >= messageDue) await tell();
  if (r.approved && block?.approvable) {
    return { to: "validating", reason: `approved by ${r.approvedBy ?? "operator"}` };
  }

  const quick = evidenceGates(ctx.gates, block);
  const fullMs = ctx.config.recovery.recheck_interval_seconds * 1000;
  const quickMs = Math.min(ctx.config.recovery.evidence_recheck_interval_seconds * 1000, fullMs);
  // Intervals run on the monotonic clock; only the message's due time is the journal's.
  const fullAt = performance.now() + fullMs;
  let quickAt = performance.now() + quickMs;
  for (;;) {
    const now = performance.now();
    const untilMessage = told ? Number.POSITIVE_INFINITY : messageDue - ctx.clock.now();
    const ms = Math.max(0, Math.min(fullAt - now, quick.length ? quickAt - now : Number.POSITIVE_INFINITY, untilMessage));
    await ctx.wait(ms);
    // Cut short: the recovery was woken (an approval, a resume, a new event).
    const woken = performance.now() - now < ms - WAKE_TOLERANCE_MS;
    const fresh = await ctx.store.getRecovery(r.id);
    if (!fresh || fresh.state !== "blocked") return null;
    if (fresh.block?.episode !== block?.episode || fresh.block?.signature !== block?.signature) return null;
    if (fresh.approved && fresh.block?.approvable) return { to: "validating", reason: `approved by ${fresh.approvedBy ?? "operator"}` };
    if (!told && ctx.clock.now() >= messageDue) await tell();
    if (woken || performance.now() >= fullAt) return fullPass(ctx, fresh);
    if (quick.length === 0 || performance.now() < quickAt) continue;
    const look = await evaluateGates(quick, fresh, ctx.signal, () => ctx.nowIso(), true);
    quickAt = performance.now() + quickMs;
    if (!sameBlock(fresh.block, look)) return fullPass(ctx, fresh);
  }
};

/** A timer may fire a hair early by the monotonic clock; a wake cuts a wait by far more. */
const WAKE_TOLERANCE_MS = 5;

/** Ask every gate again; all pass → validating (which decides again), changed → blocked anew. */
async function fullPass(ctx: StageSlice<"gates" | "store" | "steps" | "metrics" | "log" | "signal" | "nowIso">, fresh: Recovery): Promise<StageResult> {
  const current = fresh.block;
  const outcome = await evaluateGates(ctx.gates, fresh, ctx.signal, () => ctx.nowIso(), true);
  await runGateNotices(outcome, ctx);
  if (outcome.pass) return { to: "validating", reason: "the block cleared; validating again" };
  const next = changedBlock(current, outcome, ctx.nowIso());
  if (!next) return null;
  await recordGateOutcome(outcome, ctx);
  return { to: "blocked", reason: blockReason(outcome), patch: { block: next } };
}
