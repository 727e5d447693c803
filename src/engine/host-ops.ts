import type { Store } from "../domain/journal.js";
import { RefusedError } from "../domain/errors.js";
import { ConflictError } from "../domain/errors.js";
import { isTerminal, type HostState, type Recovery, type RecoveryState, type StepRecord } from "../domain/model.js";
import type { FencingPort } from "../domain/ports/fencing.js";
import type { Coordinator } from "./engine.js";

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

/**
 * Operator actions on a host as a whole. Both are recoveries the engine runs like any other
 * (journaled, claim-guarded, resumed after a restart): `release` brings a repaired host back
 * and lifts lifeboat's hold (kind `release`); `fenceOff` powers a host off by hand (kind
 * `fence-only`). Nothing here acts on the host itself.
 */
export class HostOperations {
  constructor(private readonly deps: { store: Store; coordinator: Coordinator; fencing: FencingPort }) {}

  async describe(host: string): Promise<HostView> {
    const { store } = this.deps;
    const [hold, open, recent] = await Promise.all([store.getHostState(host), store.findOpenRecovery(host), store.listRecoveries({ host, limit: 50 })]);
    const latest = recent.find((r) => r.kind === "release");
    return { host, hold, release: latest ? await releaseView(store, latest) : null, openRecovery: open?.id ?? null, fencing: this.deps.fencing.hasHost(host) };
  }

  /** Start releasing `host`; its progress is in `describe(host).release` (and `lifeboat show`). */
  async release(host: string, actor: string): Promise<ReleaseView> {
    // In an HA pair only the leader acts on hosts; a follower's release could race the leader.
    if (!this.deps.coordinator.running) throw new ConflictError("this instance does not lead: send the release to the leader (lifeboat status names it)");
    const r = await this.deps.coordinator.release(host, actor);
    return releaseView(this.deps.store, r);
  }

  /** `lifeboat fence off HOST --yes`: power off by hand, journaled as a fence-only recovery. */
  async fenceOff(host: string, actor: string): Promise<string> {
    if (!this.deps.fencing.hasHost(host)) throw new RefusedError(`no fencing configured for ${host}`);
    const r = await this.deps.coordinator.fenceManually(host, actor);
    return r.id;
  }
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
