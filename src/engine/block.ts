/**
 * How a gate outcome becomes a recovery's block episode (see BlockEpisode in domain/model.ts).
 */
import type { GateOutcome } from "./gate-runner.js";
import type { BlockEpisode } from "../domain/model.js";

/** The block a gate outcome describes: a new stretch of `blocked` (from validating). */
export function enterBlock(outcome: GateOutcome, at: string): BlockEpisode {
  return { ...describe(outcome), at, episode: episodeKey(at, outcome), since: at };
}

/**
 * The block after a re-check, or null when it is the same block. A new episode starts only
 * when what a person can do changed.
 */
export function changedBlock(prev: BlockEpisode | undefined, outcome: GateOutcome, now: string): BlockEpisode | null {
  const next = describe(outcome);
  if (prev && prev.signature === next.signature) return null;
  const at = prev?.at ?? now;
  const sameAction = prev !== undefined && prev.approvable === next.approvable && prev.recheck === next.recheck;
  if (sameAction) return { ...next, at, episode: prev.episode, since: now, ...(prev.previous ? { previous: prev.previous } : {}) };
  return { ...next, at, episode: episodeKey(at, outcome), since: now, ...(prev && prev.gates.length ? { previous: prev.gates } : {}) };
}

function describe(outcome: GateOutcome): Pick<BlockEpisode, "gates" | "recheck" | "approvable" | "signature"> {
  const gates = outcome.blocking.map((d) => d.gate);
  const signature = [...outcome.blocking.map((d) => `${d.gate}:${d.result}`)].sort().join(",") + `|${outcome.approvable ? "approvable" : "evidence"}|${outcome.recheckable ? "recheck" : "operator"}`;
  return { gates, recheck: outcome.recheckable, approvable: outcome.approvable, signature };
}

function episodeKey(at: string, outcome: GateOutcome): string {
  return `${at}|${outcome.approvable ? "approvable" : "not-approvable"}|${outcome.recheckable ? "clears-itself" : "needs-operator"}`;
}
