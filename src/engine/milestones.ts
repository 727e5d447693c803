import { isTerminal, type Recovery } from "../domain/model.js";
import type { Metrics } from "../metrics.js";
import { secondsSince } from "../util/time.js";
import type { TransitionEvent } from "./runner.js";

/**
 * `lifeboat_recovery_milestone_seconds`: time from detection to each milestone of a
 * recovery of instances. Every milestone is decided here; the stages only say where a
 * recovery goes next. A dry run (nothing was done) and a release (not a recovery of
 * instances; it has lifeboat_releases_total) observe none.
 */
export type Milestone = "validated" | "fenced" | "isolated" | "instance_active" | "done";

function counts(r: Recovery): boolean {
  return !r.dryRun && r.kind !== "release";
}

/**
 * The milestones a transition reaches, observed once per recovery: the runner reports each
 * transition once, after its compare-and-swap, so a resumed stage does not count again.
 * Called by the coordinator for every transition of its runners.
 */
export function observeTransition(metrics: Metrics, e: TransitionEvent, now: number): void {
  const milestone = reached(e);
  if (milestone && counts(e.after)) metrics.recoveryMilestone.observe({ milestone }, secondsSince(e.after.detectedAt, now));
}

function reached({ before, after }: TransitionEvent): Milestone | null {
  if (before.state === "validating" && after.state === "fencing") return "validated";
  // Powered off and proven by read-back; an operator's --confirm-off is not a fence.
  if (before.state === "fencing" && after.fenceState === "off") return "fenced";
  if (before.state === "isolating" && after.state === "evacuating") return "isolated";
  if (isTerminal(after.state) && after.state !== "aborted") return "done";
  return null;
}

/**
 * One instance of the recovery runs on its new host. This is not a transition of the
 * recovery, so the evacuating stage calls it, right where it journals the instance
 * `evacuated` (the one place an instance becomes active), with the other per-instance
 * metrics. Deriving it from the evacuating stage's end instead would report every instance
 * only once the host's last one had moved (minutes later on a busy host): the dashboard
 * would show nothing while instances come back one by one.
 */
export function observeInstanceActive(metrics: Metrics, recovery: Recovery, now: number): void {
  if (counts(recovery)) metrics.recoveryMilestone.observe({ milestone: "instance_active" }, secondsSince(recovery.detectedAt, now));
}
