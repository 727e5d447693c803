import { isHeldElsewhere, isLeadershipLoss } from "../../domain/errors.js";
import { errorMessage } from "../../util/errors.js";
import type { StageSlice } from "../context.js";
import { UNLOCK_STEP_PREFIX, isOwedUnlock, unlockStepKey, type LockLeft, type UnlockStepResult } from "../../domain/unlocks.js";
import { cloudCall } from "../retry-policy.js";

/**
 * The evacuating stage's side of lifeboat's locks (see ../unlocks.ts): journal an unlock
 * an evacuation attempt left owed, and retry the owed ones before the stage ends.
 */

/** Journal that lifeboat's lock may still be on this server (before the instance's own record). */
export async function recordOwedUnlock(ctx: StageSlice<"recovery" | "store" | "nowIso">, serverId: string, why: string): Promise<void> {
  const key = unlockStepKey(serverId);
  const prev = await ctx.store.getStep(ctx.recovery.id, key);
  const now = ctx.nowIso();
  await ctx.store.putStep({ recoveryId: ctx.recovery.id, key, state: "failed", attempts: (prev?.attempts ?? 0) + 1, startedAt: prev?.startedAt ?? now, finishedAt: now, error: why });
}

/**
 * Retry every unlock this recovery owes (each behind the host's claim, with the stage's
 * retries). Returns the servers whose unlock still failed; an abort or a lost claim
 * propagates, so nothing is taken for settled that was not.
 */
export async function settleUnlocks(
  ctx: StageSlice<"recovery" | "store" | "steps" | "evacuation" | "guard" | "signal" | "log" | "nowIso", "recovery">,
): Promise<LockLeft[]> {
  const r = ctx.recovery;
  const owed = (await ctx.store.steps(r.id)).filter(isOwedUnlock);
  if (owed.length === 0) return [];
  const names = new Map((await ctx.store.instances(r.id)).map((i) => [i.instanceId, i.name]));
  const release = ctx.evacuation.releaseLifeboatLock?.bind(ctx.evacuation);
  const left: LockLeft[] = [];
  for (const step of owed) {
    const id = step.key.slice(UNLOCK_STEP_PREFIX.length);
    const name = names.get(id) ?? id;
    if (!release) {
      left.push({ instanceId: id, name, error: step.error ?? "unlock not confirmed", at: step.finishedAt ?? step.startedAt });
      continue;
    }
    try {
      await ctx.steps.run<UnlockStepResult>(
        step.key,
        async () => {
          await ctx.guard(`unlock ${id}`);
          const result = await release(id, r.id, ctx.signal);
          ctx.log.info({ instance: id, name, result }, `owed unlock settled: ${result}`);
          return { result, by: "evacuating" };
        },
        { retry: cloudCall(ctx.config), signal: ctx.signal },
      );
    } catch (err) {
      if (ctx.signal.aborted || isLeadershipLoss(err) || isHeldElsewhere(err)) throw err;
      const error = errorMessage(err);
      ctx.log.error({ instance: id, name, err: error }, "lifeboat could not unlock the server: its owner cannot stop, resize or delete it until it is unlocked");
      left.push({ instanceId: id, name, error, at: ctx.nowIso() });
    }
  }
  return left;
}
