/**
 * How a gate outcome becomes a recovery's block episode (see BlockEpisode in domain/model.ts),
 * and what a blocked recovery may look at between two full passes of its gates.
 */
import type { GateOutcome } from "./gate-runner.js";
import type { BlockEpisode } from "../domain/model.js";
import type { Gate } from "../domain/ports/gate.js";

/**
 * The block a gate outcome describes: a new stretch of `blocked` (from validating).
 * `previous` is the recovery's block before it was validated again: when it was held by
 * evidence alone and still is, the evidence never cleared (a quick re-check saw it pass,
 * the full validation did not), so the time it has lasted keeps counting.
 */
export function enterBlock(outcome: GateOutcome, at: string, previous?: BlockEpisode): BlockEpisode {
  return { ...describe(outcome), at, episode: episodeKey(at, outcome), since: at, ...evidence(outcome, previous?.evidenceSince ?? at) };
}

/**
 * The block after a re-check, or null when it is the same block. A new episode starts only
 * when what a person can do changed.
 */
export function changedBlock(prev: BlockEpisode | undefined, outcome: GateOutcome, now: string): BlockEpisode | null {
  const next = describe(outcome);
  if (prev && prev.signature === next.signature) return null;
  const at = prev?.at ?? now;
  const held = evidence(outcome, prev?.evidenceSince ?? now);
  const sameAction = prev !== undefined && prev.approvable === next.approvable && prev.recheck === next.recheck;
  if (sameAction) return { ...next, at, episode: prev.episode, since: now, ...(prev.previous ? { previous: prev.previous } : {}), ...held };
  return { ...next, at, episode: episodeKey(at, outcome), since: now, ...(prev && prev.gates.length ? { previous: prev.gates } : {}), ...held };
}

/** The same blocking gates and results as `block` (an outcome of some of the gates will do). */
export function sameBlock(block: BlockEpisode | undefined, outcome: GateOutcome): boolean {
  return block !== undefined && block.signature === describe(outcome).signature;
}

/**
 * When the episode's blocked message is due (ms since the epoch): at once when a person is
 * needed, else once the evidence has held it `delaySeconds`. Counted from the journaled
 * block, so a restart neither loses the message nor sends it early.
 */
export function blockedMessageDue(block: BlockEpisode | undefined, delaySeconds: number): number {
  const since = block?.evidenceSince !== undefined ? Date.parse(block.evidenceSince) : Number.NaN;
  return Number.isFinite(since) ? since + delaySeconds * 1000 : Number.NEGATIVE_INFINITY;
}

/**
 * The gates worth asking between two full passes: the blocking ones, when the block is
 * evidence that may clear by itself and every blocking gate is a confirmation that decides
 * on its own (none of them reads the verdicts before it). Empty otherwise: then only full
 * passes look again.
 */
export function evidenceGates(gates: readonly Gate[], block: BlockEpisode | undefined): Gate[] {
  if (block?.evidenceSince === undefined || block.gates.length === 0) return [];
  const picked = block.gates.map((name) => gates.find((g) => g.name === name));
  return picked.every((g): g is Gate => g !== undefined && g.kind === "evidence" && !g.afterPrior) ? picked : [];
}

function describe(outcome: GateOutcome): Pick<BlockEpisode, "gates" | "recheck" | "approvable" | "signature"> {
  const gates = outcome.blocking.map((d) => d.gate);
  const signature = [...outcome.blocking.map((d) => `${d.gate}:${d.result}${d.subject !== undefined ? `(${d.subject})` : ""}`)].sort().join(",") + `|${outcome.approvable ? "approvable" : "evidence"}|${outcome.recheckable ? "recheck" : "operator"}`;
  return { gates, recheck: outcome.recheckable, approvable: outcome.approvable, signature };
}

function evidence(outcome: GateOutcome, since: string): Pick<BlockEpisode, "evidenceSince"> {
  return outcome.clearsItself ? { evidenceSince: since } : {};
}

function episodeKey(at: string, outcome: GateOutcome): string {
  return `${at}|${outcome.approvable ? "approvable" : "not-approvable"}|${outcome.recheckable ? "clears-itself" : "needs-operator"}`;
}
