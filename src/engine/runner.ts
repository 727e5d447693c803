import { setMaxListeners } from "node:events";
import { isHeldElsewhere, isLeadershipLoss } from "../domain/errors.js";
import { logContext, type Logger } from "../logging.js";
import { StateConflictError } from "../domain/journal.js";
import { AbortError, abortReason, isAbortError, sleep } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";
import type { PipelineDeps, Stage, StageContext, StageMove, StageNeed, StagePorts, StageResult } from "./context.js";
import type { EngineSettings } from "../domain/settings.js";
import { isTerminal, isAbortable, type BlockEpisode, type Recovery, type RecoveryState } from "../domain/model.js";
import { StepRunner } from "./steps.js";
import { dryRunPorts } from "./dry-run.js";
import { journalHold } from "./host-states.js";
import { blocked } from "./stages/blocked.js";
import { evacuating } from "./stages/evacuating.js";
import { fencing } from "./stages/fencing.js";
import { isolating } from "./stages/isolating.js";
import { notifying } from "./stages/notifying.js";
import { pending } from "./stages/pending.js";
import { validating } from "./stages/validating.js";
import { awaitingCompute, awaitingUp, enabling, poweringOn, unforcing } from "./stages/release.js";

/** Every stage takes its own slice of the one context the runner builds (see `context()`). */
const STAGES: Partial<Record<RecoveryState, Stage<StageNeed, keyof EngineSettings>>> = {
  pending,
  validating,
  blocked,
  fencing,
  isolating,
  evacuating,
  notifying,
  "powering-on": poweringOn,
  "awaiting-compute": awaitingCompute,
  unforcing,
  "awaiting-up": awaitingUp,
  enabling,
};

/** After this many unexpected errors in a row a stage gives up (see `onStageError`). */
const MAX_STAGE_ERRORS = 5;

export interface TransitionEvent {
  before: Recovery;
  after: Recovery;
  /** Milliseconds the recovery spent in `before.state` (as seen by this runner). */
  stageMs: number;
}

/**
 * Drives one recovery through its state machine. Each loop iteration re-reads the
 * recovery, runs the stage of its current state and persists the move with a
 * compare-and-swap, so a concurrent abort, cancel or approval always wins cleanly.
 */
export class RecoveryRunner {
  readonly #abort = new AbortController();
  #wake = new AbortController();
  #done: Promise<void> | null = null;

  constructor(
    readonly id: string,
    private readonly deps: PipelineDeps,
    private readonly onTransition: (e: TransitionEvent) => void,
  ) {}

  start(): Promise<void> {
    this.#done ??= this.loop().catch((err: unknown) => {
      if (!isAbortError(err)) this.deps.logger.error({ recovery: this.id, err: errorMessage(err) }, "recovery runner stopped on an error");
    });
    return this.#done;
  }

  /** Cut a wait short (new event, approval, cancel, resume). */
  wake(): void {
    this.#wake.abort();
  }

  /** Stop acting (shutdown, lost leadership). The recovery resumes at its stage later. */
  async stop(reason = "stopping"): Promise<void> {
    // An AbortError, so drivers tell a cancellation from a failure (and record no failure).
    this.#abort.abort(new AbortError(reason));
    await this.#done;
  }

  get stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  private async loop(): Promise<void> {
    const { store } = this.deps;
    const signal = this.#abort.signal;
    let errors = 0;
    let stageStart = this.deps.clock.now();
    let lastState: RecoveryState | null = null;
    while (!signal.aborted) {
      const r = await store.getRecovery(this.id);
      if (!r || isTerminal(r.state)) return;
      if (r.state !== lastState) {
        lastState = r.state;
        stageStart = this.deps.clock.now();
      }
      const log = this.deps.logger.child({ recovery: r.id, host: r.host, state: r.state });
      const stage = STAGES[r.state];
      if (!stage) throw new Error(`no stage for state ${r.state}`);
      // The stage's own signal: work it started in parallel (other evacuations in flight)
      // must not outlive it when it throws.
      const stageRun = new AbortController();
      // One listener per instance waiting on it (for a slot of the budget, for a look): a
      // host's hundred instances are fan-out, not a leak, and Node's warning past ten listeners
      // would put a false "memory leak detected" in the logs of every storm.
      setMaxListeners(0, stageRun.signal);
      const cancelStage = (): void => stageRun.abort(abortReason(signal));
      signal.addEventListener("abort", cancelStage, { once: true });
      let result: StageResult;
      try {
        result = await logContext.run({ recovery: r.id, host: r.host }, () => stage(this.context(r, log, stageRun.signal)));
        errors = 0;
      } catch (err) {
        stageRun.abort(new AbortError(`${r.state} stage ended: ${errorMessage(err)}`));
        if (signal.aborted) return;
        // Not ours to act on now: change nothing and look again after a pause. If leadership
        // really ended, the coordinator stops this runner at once; if only a claim check
        // failed (etcd slow, claim gone) while this instance still leads, it claims again.
        const notOurs = isLeadershipLoss(err)
          ? "stopped acting: this instance does not lead or hold the host now; checking again shortly"
          : isHeldElsewhere(err)
            ? "host claimed by another instance; waiting"
            : null;
        if (notOurs) {
          log.warn({ err: errorMessage(err) }, notOurs);
          await sleep(2000, signal).catch(() => undefined);
          continue;
        }
        errors += 1;
        log.error({ err: errorMessage(err), consecutive: errors }, "stage error");
        if (errors < MAX_STAGE_ERRORS) {
          await sleep(Math.min(30_000, 500 * 2 ** errors), signal).catch(() => undefined);
          continue;
        }
        result = this.onStageError(r, err);
        errors = 0;
      } finally {
        signal.removeEventListener("abort", cancelStage);
      }
      if (!result) continue;
      if ("after" in result) {
        await this.waitOrWake(result.after, signal).catch(() => undefined);
        continue;
      }
      try {
        const after = await store.transition(r.id, r.state, result.to, result.reason, result.patch);
        // Evacuations the budget still reserved for it (in flight per the journal, never claimed) count no more.
        if (r.state === "evacuating") this.deps.evacuationBudget.forget(r.id);
        log.info({ from: r.state, to: result.to, reason: result.reason }, `recovery ${r.state} → ${result.to}`);
        this.onTransition({ before: r, after, stageMs: this.deps.clock.now() - stageStart });
      } catch (err) {
        if (err instanceof StateConflictError) {
          log.info({ actual: err.actual }, "recovery was moved by someone else; re-reading");
          continue;
        }
        throw err;
      }
    }
  }

  /** Give up a stage that keeps failing: before fencing it blocks; after, it fails (fenced or not). */
  private onStageError(r: Recovery, err: unknown): StageMove | null {
    const msg = `internal error in ${r.state}: ${errorMessage(err)}`;
    // A release that keeps failing stops where it is: the host stays held, as it was.
    if (r.kind === "release") return { to: "failed", reason: `${msg} (the host stays held; run the release again)`, patch: { outcome: "failed" } };
    if (isAbortable(r.state)) return r.state === "blocked" ? null : { to: "blocked", reason: msg, patch: { block: internalErrorBlock(new Date(this.deps.clock.now()).toISOString()) } };
    if (r.state === "notifying") return { to: r.outcome ?? "failed", reason: `${msg} (notifications may be incomplete)` };
    return { to: "notifying", reason: msg, patch: { outcome: "failed", ...(r.state === "fencing" ? { fenceState: "unknown" as const } : {}) } };
  }

  /** Sleep up to `ms`, or less when woken; a wake that arrived since the last wait counts (return at once). */
  private async waitOrWake(ms: number, signal: AbortSignal): Promise<void> {
    const wake = this.#wake;
    if (!wake.signal.aborted) {
      try {
        await sleep(ms, AbortSignal.any([signal, wake.signal]));
      } catch (err) {
        if (signal.aborted) throw abortReason(signal);
        if (!wake.signal.aborted) throw err;
      }
    }
    if (this.#wake === wake && wake.signal.aborted) this.#wake = new AbortController();
  }

  private context(r: Recovery, log: Logger, signal: AbortSignal): StageContext {
    const deps = this.deps;
    const nowIso = (): string => new Date(deps.clock.now()).toISOString();
    const ports: StagePorts = { fencing: deps.fencing, evacuation: deps.evacuation, hold: journalHold(deps.store, r, nowIso) };
    return {
      ...deps,
      // A dry run is the ports' business: the stages act the same, the recording variants send nothing.
      ...(r.dryRun ? dryRunPorts(ports, log) : ports),
      recovery: r,
      log,
      signal,
      steps: new StepRunner(deps.store, r.id, log, nowIso),
      nowIso,
      wait: (ms: number) => this.waitOrWake(ms, signal),
      guard: async (what: string) => {
        if (signal.aborted) throw abortReason(signal);
        await deps.beforeSideEffect?.(r, what);
      },
    };
  }
}

/** The block of a stage that kept failing before fencing: re-checked, not approvable. */
function internalErrorBlock(at: string): BlockEpisode {
  return { gates: [], recheck: true, approvable: false, at, episode: `${at}|internal-error`, signature: "internal-error", since: at };
}
