import { isPermanent, NotOursError } from "../domain/errors.js";
import type { EngineSettings } from "../domain/settings.js";

/**
 * How a step retries its side effect: the one place in lifeboat where a failed call is
 * tried again on purpose. A transport under a step retries only what the step cannot see
 * (a Keystone token refreshed after a 401, one reconnect of an idempotent call whose
 * connection broke before any answer); a device's power loop retries its own commands
 * (fence-agents' contract, fencing/power-loop.ts) and is a step's single call. So the worst
 * case a step sends one call is (retries + 1) × what its one call sends, written down per
 * step in the README ("Retries and what they cost").
 *
 * Never retried: a permanent failure (domain/errors.ts: a refusal, bad credentials, a
 * missing object), an instance that lost the host or its leadership (NotOursError), and a
 * step whose recovery was stopped (its signal aborted).
 */
export interface RetryPolicy {
  /** Tries after the first. */
  readonly retries: number;
  /** Wait before the first retry; doubles with each one, jittered. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

/** One try: a step whose side effect is judged again elsewhere (a gate's notice, the fence's own power loop). */
export const ONE_TRY: RetryPolicy = { retries: 0, firstDelayMs: 0, maxDelayMs: 0 };

/** A call to the cloud inside a stage (isolate, list, un-force, enable, unlock): `recovery.step_retries`. */
export function cloudCall(settings: Pick<EngineSettings, "recovery">): RetryPolicy {
  return { retries: settings.recovery.step_retries, firstDelayMs: 1000, maxDelayMs: 30_000 };
}

/**
 * Re-issuing a failed evacuation (`evacuation.retries`): the evacuating stage's one policy for
 * an instance, over whole attempts (look, lock, evacuate, track, unlock). No wait between
 * attempts here: the next attempt's first look is the host's next poll cycle (the driver's
 * watch), at least a poll interval after the last. An attempt the driver calls permanent
 * (the server is gone, Nova refuses it as it stands) is never re-issued.
 */
export function evacuationReissue(settings: Pick<EngineSettings, "evacuation">): RetryPolicy {
  return { retries: settings.evacuation.retries, firstDelayMs: 0, maxDelayMs: 0 };
}

/** Whether an evacuation attempt that failed is issued again: transient, and attempts left under the policy. */
export function reissueAfter(outcome: { permanent: boolean }, attempts: number, policy: RetryPolicy): boolean {
  return !outcome.permanent && attempts <= policy.retries;
}

/** Worth another try under a policy: not permanent, not another instance's business. */
export function isTransient(err: unknown): boolean {
  return !isPermanent(err) && !(err instanceof NotOursError);
}
