import type { GateResult, Recovery } from "../model.js";

/**
 * A gate is one check between `validating` and `fencing`. Evidence gates (nova-service,
 * bmc, alerts, prometheus) confirm the host is really dead; policy gates (pause, storm,
 * cooldown, approval, capacity, maintenance) decide whether acting now is wise.
 *
 * A gate that cannot decide returns `undecided`, which blocks exactly like `block`: no
 * check ever passes by failing.
 */
export interface GateVerdict {
  result: GateResult;
  reason: string;
  details?: Record<string, unknown>;
  /**
   * A blocked recovery is re-checked on its own (pause lifted, silence expired, API back,
   * storm cooled down). When false only an operator can move it on.
   */
  recheck?: boolean;
  /** An operator's approval overrides this block (policy gates). Evidence never is. */
  overridable?: boolean;
  /**
   * What a block is about, when that can change while the result stays (the recoveries the
   * capacity gate keeps room for): a blocked recovery whose gate names a new subject records
   * the decision again, so its reason says what blocks it now (same episode, no new mail).
   * Leave it out where only the wording moves (a heartbeat's age).
   */
  subject?: string;
  /**
   * What this decision obliges the recovery to do once (the storm guard's trip mail): the
   * stage runs each as a journaled step of the recovery, so a crash neither loses nor
   * repeats it. A gate itself never sends anything.
   */
  notices?: GateNotice[];
}

export interface GateNotice {
  /** The step's key in the recovery's journal: a step that succeeded is never run again. */
  key: string;
  send(signal: AbortSignal): Promise<unknown>;
}

export interface GateContext {
  recovery: Recovery;
  signal: AbortSignal;
  /**
   * Every gate before this one passed. Known only to gates that set `afterPrior`; the
   * others run concurrently and get true.
   */
  priorPass: boolean;
  /**
   * A re-check of a blocked recovery (every `recheck_interval_seconds`): look once rather
   * than confirm several times. The blocked stage records what changed.
   */
  quiet: boolean;
}

export interface Gate {
  readonly name: string;
  readonly kind: "evidence" | "policy";
  /**
   * Decide only once every gate before this one has (it reads `priorPass`). Gates without
   * it are independent checks and run at the same time.
   */
  readonly afterPrior?: boolean;
  evaluate(ctx: GateContext): Promise<GateVerdict>;
}
