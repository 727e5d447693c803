import type { EngineSettings } from "../domain/settings.js";
import type { CloudPort } from "../domain/ports/cloud.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { RecoveryPatch, Store } from "../domain/journal.js";
import type { Clock } from "../util/clock.js";
import type { Gate } from "../domain/ports/gate.js";
import type { Recovery, RecoveryState } from "../domain/model.js";
import type { NotifierPort } from "../domain/ports/notifier.js";
import type { FencingPort } from "../domain/ports/fencing.js";
import type { StepRunner } from "./steps.js";
import type { EvacuationBudget } from "./evacuation-budget.js";

/** Everything the pipeline is wired to (built by app.ts from the config). */
export interface PipelineDeps {
  store: Store;
  config: EngineSettings;
  logger: Logger;
  metrics: Metrics;
  fencing: FencingPort;
  evacuation: CloudPort;
  notifier: NotifierPort;
  /**
   * The one bound on evacuations in flight shared by every recovery of this process (made
   * once by the composition root, restored at the start of each term).
   */
  evacuationBudget: EvacuationBudget;
  /** Gates run in `validating`, in this order. */
  gates: readonly Gate[];
  clock: Clock;
  /**
   * Checked right before every side effect (fence, force-down, each evacuate). In an HA
   * pair it proves this instance still holds the host's claim; it throws otherwise.
   */
  beforeSideEffect?: (recovery: Recovery, what: string) => Promise<void>;
  /** Called once a recovery reached its end (HA: release the host's claim). */
  onRecoveryEnded?: (recoveryId: string) => Promise<void>;
}

/**
 * lifeboat's hold on the recovery's host (host-states.ts): alerts about a held host start
 * no recovery until an operator releases it.
 */
export interface HostHold {
  /** Hold the host down: it was fenced (`by` the device) or declared off by an operator. */
  hold(by: string): Promise<void>;
  /** Lift the hold: a release brought the host back (`why`, in words). */
  lift(why: string): Promise<void>;
}

/**
 * What a stage acts through. The runner chooses them per recovery: the real ports, or for a
 * dry run their recording variants (dry-run.ts), which send nothing.
 */
export interface StagePorts {
  fencing: FencingPort;
  evacuation: CloudPort;
  hold: HostHold;
}

export interface StageContext extends PipelineDeps, StagePorts {
  recovery: Recovery;
  /** Logger with `recovery` and `host` on every line. */
  log: Logger;
  steps: StepRunner;
  signal: AbortSignal;
  /** Sleep up to `ms`; returns early when the coordinator wakes this recovery. */
  wait(ms: number): Promise<void>;
  nowIso(): string;
  guard(what: string): Promise<void>;
}

/**
 * What a stage decided: move the recovery on; come back after `after` ms (a wait, cut short
 * when the recovery is woken); or null, to be called again at once.
 */
export type StageResult = StageMove | { after: number } | null;
export interface StageMove {
  to: RecoveryState;
  reason: string;
  patch?: RecoveryPatch;
}

/**
 * What a stage may name of its context. Not the pipeline's wiring it has a narrower form of:
 * it acts through `guard` (never `beforeSideEffect` itself), logs through `log`, and ends by
 * what it returns (the runner calls `onRecoveryEnded`). The settings come by section (`config`).
 */
export type StageNeed = Exclude<keyof StageContext, "config" | "logger" | "beforeSideEffect" | "onRecoveryEnded">;

/**
 * The part of the context a stage (or a helper of stages) is given: what it names of it
 * (`Needs`) and, of the settings, the sections it reads (`Sections`; with none, no `config`).
 */
export type StageSlice<Needs extends StageNeed, Sections extends keyof EngineSettings = never> = Pick<StageContext, Needs> &
  ([Sections] extends [never] ? unknown : { config: Pick<EngineSettings, Sections> });

/**
 * One state's step of a recovery. Each stage declares in its type what it uses, and is
 * held to it: `Stage<"recovery" | "steps", "recovery">` reads the recovery, its journaled
 * steps and the `recovery` settings, and nothing else. The runner builds one context and
 * hands each stage its slice.
 */
export type Stage<Needs extends StageNeed, Sections extends keyof EngineSettings = never> = (ctx: StageSlice<Needs, Sections>) => Promise<StageResult>;
