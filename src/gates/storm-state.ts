import { z } from "zod";
import type { Recovery, StormStatus } from "../domain/model.js";
import type { Store } from "../domain/journal.js";

/** The settings key the storm guard keeps its state under. */
export const STORM_SETTING = "storm";

/**
 * The storm guard's durable state (settings key "storm"). Which failures count is read from
 * the recoveries themselves each time; this keeps only what the recoveries cannot say:
 *
 * - `granted`: recoveries the guard let through, or kept a place for when it tripped (one
 *   of the first failures within the limits). They are counted first and never held.
 * - `storm`: the storm in progress, if any: when and why it tripped, its members (the
 *   failures past the limits, and every failure seen since) and the last member's failure
 *   time. Members are held until approved or until `until` (`cooldown_seconds` after the
 *   last failure of the storm).
 * - `released`: members of storms that ended. They went ahead when their storm ended and
 *   are not counted again (else the storm they were part of would trip anew).
 * - `notice`: the storm mail still to send, and the recovery whose journaled step sends it.
 *
 * Entries of `granted` and `released` are dropped once their recovery has ended and its
 * failure left the window.
 */
export interface StormState {
  version: 2;
  granted: Record<string, string>;
  released: Record<string, string>;
  storm: Storm | null;
  notice: StormNotice | null;
}

export interface Storm {
  /** When the guard tripped. */
  since: string;
  /** The limit the failures went past, in plain words. */
  reason: string;
  /** The latest failure of the storm (when lifeboat saw it). */
  lastFailureAt: string;
  /** Members are held until this instant: `lastFailureAt` + `cooldown_seconds`. */
  until: string;
  members: Record<string, StormMember>;
}

export interface StormMember {
  host: string;
  /** When lifeboat saw the failure: its recovery's creation. */
  failureAt: string;
}

export interface StormNotice {
  /** The step key under which the holder's journal sends the mail: one per storm. */
  step: string;
  /** The recovery whose journal sends it (the one that tripped the guard, while it can). */
  holder: string;
  hosts: string[];
  reason: string;
  at: string;
  until: string;
}

export class StormStateError extends Error {
  override name = "StormStateError";
}

export function emptyStormState(): StormState {
  return { version: 2, granted: {}, released: {}, storm: null, notice: null };
}

const member = z.object({ host: z.string(), failureAt: z.string() });
const stateV2 = z.object({
  version: z.literal(2),
  granted: z.record(z.string(), z.string()),
  released: z.record(z.string(), z.string()),
  storm: z
    .object({ since: z.string(), reason: z.string(), lastFailureAt: z.string(), until: z.string(), members: z.record(z.string(), member) })
    .nullable(),
  notice: z
    .object({ step: z.string(), holder: z.string(), hosts: z.array(z.string()), reason: z.string(), at: z.string(), until: z.string() })
    .nullable(),
});

/** The state as versions before 2 kept it: slots taken by admitted recoveries, a calm-since clock. */
const legacyState = z.object({
  tripped: z.boolean().optional(),
  trippedAt: z.string().nullable().optional(),
  calmSince: z.string().nullable().optional(),
  admitted: z.record(z.string(), z.looseObject({ host: z.string() })).optional(),
  blockedHosts: z.array(z.string()).optional(),
});

/**
 * Read the stored state. An older shape is carried over: its admitted recoveries keep their
 * place, and a storm it had tripped stays tripped; its held recoveries join it when next
 * checked, and its cooldown runs from when it became calm (from `now` if it never did).
 * The older guard already sent its storm mail: none is sent again.
 */
export function parseStormState(raw: unknown, nowMs: number, cooldownMs: number): { state: StormState; legacy: boolean } {
  if (raw === null || raw === undefined) return { state: emptyStormState(), legacy: false };
  const v2 = stateV2.safeParse(raw);
  if (v2.success) return { state: v2.data, legacy: false };
  const old = legacyState.safeParse(raw);
  if (!old.success) throw new StormStateError(`the storm guard's stored state is unreadable: ${old.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const state = emptyStormState();
  for (const [id, a] of Object.entries(old.data.admitted ?? {})) state.granted[id] = a.host;
  if (old.data.tripped) {
    const since = old.data.trippedAt ?? new Date(nowMs).toISOString();
    const last = old.data.calmSince ?? new Date(nowMs).toISOString();
    state.storm = {
      since,
      reason: `tripped at ${since} (${(old.data.blockedHosts ?? []).length} host(s) held then)`,
      lastFailureAt: last,
      until: new Date(Date.parse(last) + cooldownMs).toISOString(),
      members: {},
    };
  }
  return { state, legacy: true };
}

export function isHeld(r: Recovery | null): boolean {
  return !!r && (r.state === "pending" || r.state === "validating" || r.state === "blocked") && !r.approved;
}

/** The guard's state as people see it: tripped until its cooldown has passed. */
export async function stormStatus(store: Store, nowMs: number, cooldownMs: number): Promise<StormStatus> {
  let state: StormState;
  try {
    ({ state } = parseStormState(await store.getSetting<unknown>(STORM_SETTING), nowMs, cooldownMs));
  } catch (err) {
    // Unreadable: the guard logs it and starts afresh at its next decision.
    if (err instanceof StormStateError) return { tripped: false, hosts: [], held: [] };
    throw err;
  }
  const s = state.storm;
  if (!s || nowMs >= Date.parse(s.until)) return { tripped: false, hosts: [], held: [] };
  const members = Object.entries(s.members);
  const open = await Promise.all(members.map(([id]) => store.getRecovery(id)));
  return {
    tripped: true,
    since: s.since,
    reason: s.reason,
    lastFailureAt: s.lastFailureAt,
    until: s.until,
    hosts: [...new Set(members.map(([, m]) => m.host))],
    held: [...new Set(members.filter((_, i) => isHeld(open[i] ?? null)).map(([, m]) => m.host))],
  };
}

/** Is a storm holding recoveries now (the gauge, without reading any recovery). */
export async function stormTripped(store: Store, nowMs: number, cooldownMs: number): Promise<boolean> {
  const { state } = parseStormState(await store.getSetting<unknown>(STORM_SETTING), nowMs, cooldownMs);
  return state.storm !== null && nowMs < Date.parse(state.storm.until);
}
