import type { RecoveryPatch } from "../domain/journal.js";
import type { BlockEpisode, Recovery, RecoveryKind } from "../domain/model.js";
import type { ChainResult } from "../domain/ports/fencing.js";

/**
 * What the stages learned about a recovery (its block, its fence, the locks it left), kept by
 * both stores as one JSON document (SQLite's `facts` column, the etcd record's `facts`).
 *
 * Journals written before these were typed kept them in a free-form bag under other names:
 * `facts.block` (without an episode), `facts.fence`, `facts.locksLeft`, and `facts.fenceOnly`
 * for a power-off by hand. They are read here, so an older journal opens and resumes as is.
 */
export interface StoredFacts {
  block?: BlockEpisode;
  fence?: ChainResult;
  locksLeft?: string[];
  /** Older journals: a power-off by hand. */
  fenceOnly?: boolean;
}

type Learned = Pick<Recovery, "block" | "fence" | "locksLeft">;

export function factsOf(raw: unknown, updatedAt: string): Learned {
  const f = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const out: Learned = {};
  const block = readBlock(f.block, updatedAt);
  if (block) out.block = block;
  if (isChainResult(f.fence)) out.fence = f.fence;
  if (Array.isArray(f.locksLeft)) out.locksLeft = f.locksLeft.filter((x): x is string => typeof x === "string");
  return out;
}

/** The kind of a row written before kinds existed: from its trigger and facts. */
export function legacyKind(trigger: string, raw: unknown): RecoveryKind {
  const f = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  if (f.fenceOnly === true) return "fence-only";
  return trigger === "manual" ? "manual" : "alert";
}

/** The stored facts after a patch (`null` clears one). */
export function patchFacts(current: Learned, patch: RecoveryPatch): StoredFacts {
  const next: StoredFacts = { ...current };
  if (patch.block !== undefined) assign(next, "block", patch.block);
  if (patch.fence !== undefined) assign(next, "fence", patch.fence);
  if (patch.locksLeft !== undefined) assign(next, "locksLeft", patch.locksLeft && patch.locksLeft.length ? patch.locksLeft : null);
  return next;
}

export function patchesFacts(patch: RecoveryPatch): boolean {
  return patch.block !== undefined || patch.fence !== undefined || patch.locksLeft !== undefined;
}

function assign<K extends keyof StoredFacts>(o: StoredFacts, k: K, v: StoredFacts[K] | null): void {
  if (v === null || v === undefined) delete o[k];
  else o[k] = v;
}

function readBlock(b: unknown, updatedAt: string): BlockEpisode | undefined {
  if (!b || typeof b !== "object") return undefined;
  const o = b as Partial<BlockEpisode>;
  const at = typeof o.at === "string" ? o.at : updatedAt;
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
    ...(typeof o.evidenceSince === "string" ? { evidenceSince: o.evidenceSince } : {}),
  };
}

function isChainResult(v: unknown): v is ChainResult {
  return !!v && typeof v === "object" && typeof (v as ChainResult).ok === "boolean" && Array.isArray((v as ChainResult).attempts) && typeof (v as ChainResult).message === "string";
}

/**
 * A recovery as the etcd store keeps it (the whole record as JSON): typed fields as they are;
 * one written before kinds and typed fields existed has a `facts` bag instead.
 */
export function recoveryFromDocument(doc: Recovery & { facts?: unknown }): Recovery {
  const { facts, block, fence, locksLeft, ...rest } = doc;
  const learned = facts !== undefined ? factsOf(facts, rest.updatedAt) : factsOf({ block, fence, locksLeft }, rest.updatedAt);
  return { ...rest, kind: (rest.kind) ?? legacyKind(rest.trigger, facts), ...learned };
}

/** A recovery with a patch applied to what the stages learned (`null` clears one). */
export function withLearned<R extends Learned>(r: R, patch: RecoveryPatch): R {
  if (!patchesFacts(patch)) return r;
  const { block: _b, fence: _f, locksLeft: _l, ...rest } = r;
  const facts = patchFacts(r, patch);
  return { ...rest, ...(facts.block ? { block: facts.block } : {}), ...(facts.fence ? { fence: facts.fence } : {}), ...(facts.locksLeft ? { locksLeft: facts.locksLeft } : {}) } as R;
}
