import { HostStateConflictError, type Store } from "../domain/journal.js";
import type { HostState, HostStateRecord, Recovery } from "../domain/model.js";
import type { HostHold } from "./context.js";

/** Conflicting writers of one host's record are rare (a stale leader): a few re-reads settle it. */
const CAS_TRIES = 5;

/**
 * Change one host's record by compare-and-swap: `change` sees the current record (null when
 * the host has none) and returns the next one, or null to leave it as it is. Re-read and
 * re-decided when someone else wrote it meanwhile.
 */
export async function updateHostState(store: Store, host: string, change: (current: HostState | null) => HostStateRecord | null): Promise<HostState | null> {
  for (let i = 1; ; i++) {
    const current = await store.getHostState(host);
    const next = change(current);
    if (!next) return current;
    try {
      return await store.putHostState(next, current?.version ?? 0);
    } catch (err) {
      if (!(err instanceof HostStateConflictError) || i >= CAS_TRIES) throw err;
    }
  }
}

/** Hold a host down until an operator releases it: alerts about it start no recovery meanwhile. */
export function holdHost(store: Store, host: string, recoveryId: string, by: string, at: string): Promise<HostState | null> {
  return updateHostState(store, host, (cur) => ({ ...(cur ? withoutVersion(cur) : {}), host, fenced: true, recoveryId, by, at }));
}

/** Lift the hold once a release brought the host back (the release recovery is named). */
export async function liftHold(ctx: { store: Store; recovery: { id: string; host: string; approvedBy?: string }; nowIso(): string }, why: string): Promise<void> {
  const { recovery: r } = ctx;
  await updateHostState(ctx.store, r.host, (cur) => ({
    ...(cur ? withoutVersion(cur) : {}),
    host: r.host,
    fenced: false,
    recoveryId: r.id,
    by: r.approvedBy ?? "release",
    at: ctx.nowIso(),
    note: why,
  }));
}

/** The recovery's hold on its host, as the journal keeps it. */
export function journalHold(store: Store, recovery: Recovery, nowIso: () => string): HostHold {
  return {
    hold: async (by) => {
      await holdHost(store, recovery.host, recovery.id, by, nowIso());
    },
    lift: (why) => liftHold({ store, recovery, nowIso }, why),
  };
}

function withoutVersion(s: HostState): HostStateRecord {
  const { version: _version, ...rest } = s;
  return rest;
}
