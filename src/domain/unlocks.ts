import type { UnlockResult } from "./ports/cloud.js";
import type { InstanceResult, StepRecord } from "./model.js";

/**
 * lifeboat's locks on the servers it evacuates, as the journal keeps them. The evacuation
 * driver locks a server before its evacuate and unlocks it after. When that unlock is not
 * confirmed (Nova failed it, could not be asked, or the evacuation still runs), the unlock
 * is owed: it is journaled as the step `unlock/<server id>` in state `failed` with the
 * reason, retried before the recovery leaves `evacuating`, and again by the leader at
 * every start-up and takeover (see stale-locks.ts) until a look at the server confirms it
 * carries no lock of lifeboat's any more (the step then `succeeded`, with what was found).
 * A server whose unlock is still owed is named by `lifeboat show` and the operators' mail.
 */

export const UNLOCK_STEP_PREFIX = "unlock/";

export function unlockStepKey(serverId: string): string {
  return `${UNLOCK_STEP_PREFIX}${serverId}`;
}

/** What an unlock step records once it succeeded. */
export interface UnlockStepResult {
  result: UnlockResult;
  /** Who confirmed it: "evacuating", "start-up", "takeover". */
  by: string;
}

/** A server lifeboat may have left locked. */
export interface LockLeft {
  instanceId: string;
  name: string;
  /** Why the unlock is not confirmed. */
  error: string;
  at: string;
}

export function isOwedUnlock(s: StepRecord): boolean {
  return s.key.startsWith(UNLOCK_STEP_PREFIX) && s.state !== "succeeded";
}

/** The servers of a recovery whose unlock is owed, from its journal (for show and mails). */
export function locksLeft(d: { steps: readonly StepRecord[]; instances: readonly InstanceResult[] }): LockLeft[] {
  const names = new Map(d.instances.map((i) => [i.instanceId, i.name]));
  return d.steps.filter(isOwedUnlock).map((s) => {
    const id = s.key.slice(UNLOCK_STEP_PREFIX.length);
    return { instanceId: id, name: names.get(id) ?? id, error: s.error ?? "unlock not confirmed yet", at: s.finishedAt ?? s.startedAt };
  });
}
