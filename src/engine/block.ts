import type { GateOutcome } from "./gate-runner.js";
import type { Recovery } from "../domain/model.js";

/**
 * What blocks a blocked recovery, kept in its facts (`facts.block`) and refreshed by each
 * re-check.
 *
 * A block *episode* is a stretch of `blocked` during which what a person can do stays the
 * same: approve it (every block is a policy an approval overrides) or not, and wait for it
 * to clear on its own or not. Operators get one blocked mail per episode; a change of the
 * blocking gates that leaves that unchanged (a silence expires while the storm guard still
 * holds it) is recorded (decisions, reason) but not mailed again. Episodes are keyed by the
 * time the recovery entered `blocked` and what can be done, so a block that flips back to an
 * earlier situation is not mailed twice.
 */
export interface BlockFacts {
  /** The blocking gates. */
  gates: string[];
  /** Every block can clear on its own: re-checked without an operator. */
  recheck: boolean;
  /** Every block is a policy an approval overrides. */
  approvable: boolean;
  /** When the recovery entered `blocked` (this stretch of it). */
  at: string;
  /** The episode's key: one blocked mail each. */
  episode: string;
  /** The blocking gates and results, to tell a change worth recording from the same block. */
  signature: string;
  /** When the blocking gates last changed. */
  since: string;
  /** The blocking gates of the previous episode, when this one follows another. */
  previous?: string[];
}

export function readBlock(r: Recovery): BlockFacts | undefined {
  const b = r.facts.block;
  if (!b || typeof b !== "object") return undefined;
  const o = b as Partial<BlockFacts>;
  const at = typeof o.at === "string" ? o.at : r.updatedAt;
  return {
    gates: Array.isArray(o.gates) ? o.gates.map(String) : [],
    recheck: o.recheck === true,
    approvable: o.approvable === true,
    at,
    // Blocks recorded before episodes existed: their first mail was keyed by `at`.
    episode: typeof o.episode === "string" ? o.episode : at,
    signature: typeof o.signature === "string" ? o.signature : "",
    since: typeof o.since === "string" ? o.since : at,
    ...(Array.isArray(o.previous) ? { previous: o.previous.map(String) } : {}),
  };
}

/** The block a gate outcome describes: a new stretch of `blocked` (from validating). */
export function enterBlock(outcome: GateOutcome, at: string): BlockFacts {
  return { ...describe(outcome), at, episode: episodeKey(at, outcome), since: at };
}

/**
 * The block after a re-check, or null when it is the same block. A new episode starts only
 * when what a person can do changed.
 */
export function changedBlock(prev: BlockFacts | undefined, outcome: GateOutcome, now: string): BlockFacts | null {
  const next = describe(outcome);
  if (prev && prev.signature === next.signature) return null;
  const at = prev?.at ?? now;
  const sameAction = prev !== undefined && prev.approvable === next.approvable && prev.recheck === next.recheck;
  if (sameAction) return { ...next, at, episode: prev.episode, since: now, ...(prev.previous ? { previous: prev.previous } : {}) };
  return { ...next, at, episode: episodeKey(at, outcome), since: now, ...(prev && prev.gates.length ? { previous: prev.gates } : {}) };
}

function describe(outcome: GateOutcome): Pick<BlockFacts, "gates" | "recheck" | "approvable" | "signature"> {
  const gates = outcome.blocking.map((d) => d.gate);
  const signature = [...outcome.blocking.map((d) => `${d.gate}:${d.result}`)].sort().join(",") + `|${outcome.approvable ? "approvable" : "evidence"}|${outcome.recheckable ? "recheck" : "operator"}`;
  return { gates, recheck: outcome.recheckable, approvable: outcome.approvable, signature };
}

function episodeKey(at: string, outcome: GateOutcome): string {
  return `${at}|${outcome.approvable ? "approvable" : "not-approvable"}|${outcome.recheckable ? "clears-itself" : "needs-operator"}`;
}
