import type { GateResult, Recovery } from "../recovery/model.js";

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
}

export interface GateContext {
  recovery: Recovery;
  signal: AbortSignal;
  /**
   * Every gate before this one passed (the storm guard admits a recovery only then).
   * Known only to gates that set `afterPrior`; the others run concurrently and get true.
   */
  priorPass: boolean;
  /** A quiet re-check of a blocked recovery: gates must not record or notify anything. */
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
