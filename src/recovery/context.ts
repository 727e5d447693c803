import type { Config } from "../config/schema.js";
import type { EvacuationDriver } from "../evacuation/types.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { RecoveryPatch, Store } from "../store/types.js";
import type { Clock } from "../util/clock.js";
import type { Gate } from "../validation/types.js";
import type { Recovery, RecoveryState } from "./model.js";
import type { FencingPort, NotifierPort } from "./ports.js";
import type { StepRunner } from "./steps.js";

/** Everything the pipeline is wired to (built by app.ts from the config). */
export interface PipelineDeps {
  store: Store;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  fencing: FencingPort;
  evacuation: EvacuationDriver;
  notifier: NotifierPort;
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

export interface StageContext extends PipelineDeps {
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

/** A stage either moves the recovery on, or returns null to be called again (after waiting). */
export type StageResult = { to: RecoveryState; reason: string; patch?: RecoveryPatch } | null;

export type Stage = (ctx: StageContext) => Promise<StageResult>;
