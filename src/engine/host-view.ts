import type { Store } from "../domain/journal.js";
import { isTerminal, type HostState, type Recovery, type RecoveryState, type StepRecord } from "../domain/model.js";

/** One stage's step of a release, as `lifeboat host` shows it. */
export interface ReleaseStepView {
  step: string;
  ok: boolean;
  skipped?: boolean;
  message: string;
}

/** The host's latest release (a recovery of kind `release`), as the API and the console show it. */
export interface ReleaseView {
  recoveryId: string;
  state: RecoveryState;
  /** The release ended (completed, failed or aborted). */
  done: boolean;
  by: string;
  startedAt: string;
  finishedAt?: string;
  /** Its latest transition's reason: where it is, or how it ended. */
  reason: string;
  steps: ReleaseStepView[];
}

export interface HostView {
  host: string;
  hold: HostState | null;
  release: ReleaseView | null;
  openRecovery: string | null;
  fencing: boolean;
}

/** Steps of a release, in the order its stages take them. */
const RELEASE_STEPS = ["precheck", "power-on", "compute-started", "migrations-completed", "unforce", "up", "enable"];

export async function releaseView(store: Store, r: Recovery): Promise<ReleaseView> {
  const steps = (await store.steps(r.id)).filter((s) => RELEASE_STEPS.includes(s.key)).sort((a, b) => RELEASE_STEPS.indexOf(a.key) - RELEASE_STEPS.indexOf(b.key));
  const done = isTerminal(r.state);
  return {
    recoveryId: r.id,
    state: r.state,
    done,
    by: r.approvedBy ?? "",
    startedAt: r.createdAt,
    ...(done ? { finishedAt: r.updatedAt } : {}),
    reason: r.reason,
    steps: steps.map(stepView),
  };
}

function stepView(s: StepRecord): ReleaseStepView {
  const result = (s.result ?? {}) as { message?: string; skipped?: boolean; ok?: boolean };
  const ok = s.state === "succeeded" && result.ok !== false;
  return { step: s.key, ok, ...(result.skipped ? { skipped: true } : {}), message: s.state === "failed" ? (s.error ?? "failed") : s.state === "started" ? "running" : (result.message ?? "") };
}
