import type { CloudPort, LockedServer, UnlockResult } from "../domain/ports/cloud.js";
import type { Logger } from "../logging.js";
import { reasonRecoveryId } from "../domain/markers.js";
import type { Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";
import { TERMINAL_STATES, isTerminal, type Recovery } from "../domain/model.js";
import { unlockStepKey, type UnlockStepResult } from "../domain/unlocks.js";

/**
 * Servers lifeboat left locked for a recovery that has ended: found by the leader at
 * start-up and after each takeover, and unlocked, each journaled on its recovery (step
 * `unlock/<server id>`) and logged. Two sources, few Nova calls:
 *  - from microversion 2.73, one listing of the cloud's locked servers
 *    (`GET /servers/detail?all_tenants=1&locked=true`): a lock whose reason is lifeboat's and
 *    names a recovery this journal holds as ended is stale; a lock of a recovery still open
 *    is left to that recovery, one naming no recovery or one this journal does not know
 *    is left alone and logged (another deployment's, or a restored store: a human decides);
 *  - the unlocks the journal says are still owed (fact `locksLeft`) by recoveries that
 *    ended in the last OWED_WINDOW_MS. Below 2.73 this is the only source: lock reasons are
 *    not visible there, so lifeboat cannot tell a lock of an earlier process from the
 *    owner's and releases only locks its journal says it owes.
 * Each server is looked at once more (one GET) right before its unlock.
 */

export const OWED_WINDOW_MS = 30 * 24 * 3600 * 1000;

export interface StaleLockDeps {
  store: Store;
  evacuation: CloudPort;
  logger: Logger;
  signal: AbortSignal;
  now: () => string;
  /** Why the sweep runs ("start-up", "takeover"): recorded with every unlock. */
  trigger: string;
  /** Throws when this instance may no longer act (HA: its leadership is not fresh). */
  mayAct?: () => void;
}

export interface StaleLock {
  serverId: string;
  name: string;
  recoveryId: string;
}

export interface StaleLockReport {
  /** Looked at and settled: unlocked, or found with no lock of lifeboat's any more. */
  settled: (StaleLock & { result: UnlockResult })[];
  /** The unlock failed: still owed, tried again at the next start-up or takeover. */
  failed: (StaleLock & { error: string })[];
  /** lifeboat locks not touched, and why. */
  leftAlone: (StaleLock & { why: string })[];
}

export async function releaseStaleLocks(deps: StaleLockDeps): Promise<StaleLockReport> {
  const { store, evacuation, signal, logger } = deps;
  const report: StaleLockReport = { settled: [], failed: [], leftAlone: [] };
  const release = evacuation.releaseLifeboatLock?.bind(evacuation);
  if (!release) return report;

  const listed: LockedServer[] | null = (await evacuation.listLifeboatLocks?.(signal)) ?? null;
  const open = await store.listRecoveries({ open: true, limit: 100_000 });
  const openIds = new Set(open.map((r) => r.id));
  const openHosts = new Set(open.map((r) => r.host));
  const known = new Map<string, Recovery | null>();
  const recovery = async (id: string): Promise<Recovery | null> => {
    if (!known.has(id)) known.set(id, await store.getRecovery(id));
    return known.get(id) ?? null;
  };

  const todo = new Map<string, StaleLock>();
  for (const l of listed ?? []) {
    const recoveryId = reasonRecoveryId(l.reason);
    const lock = { serverId: l.id, name: l.name, recoveryId: recoveryId ?? "" };
    if (recoveryId === null) {
      report.leftAlone.push({ ...lock, why: `its lock names no recovery ("${l.reason}")` });
      continue;
    }
    if (openIds.has(recoveryId)) continue; // its own recovery runs and unlocks it
    const r = await recovery(recoveryId);
    if (!r) report.leftAlone.push({ ...lock, why: `its lock names recovery ${recoveryId}, which this journal does not hold` });
    else if (!isTerminal(r.state)) continue;
    else if (l.host !== null && openHosts.has(l.host)) report.leftAlone.push({ ...lock, why: `it is on ${l.host}, which has a recovery open` });
    else if (l.taskState !== null) report.leftAlone.push({ ...lock, why: `it is still busy in Nova (task ${l.taskState})` });
    else todo.set(l.id, lock);
  }

  // Unlocks the journal still owes. With a listing, one that is not in it carries no lock
  // of lifeboat's any more: settled without asking Nova again.
  const since = new Date(Date.parse(deps.now()) - OWED_WINDOW_MS).toISOString();
  const ended = await store.listRecoveries({ state: [...TERMINAL_STATES], since, limit: 100_000 });
  const listedIds = new Set((listed ?? []).map((l) => l.id));
  for (const r of ended) {
    const owed = r.locksLeft ?? [];
    if (owed.length === 0) continue;
    known.set(r.id, r);
    const names = new Map((await store.instances(r.id)).map((i) => [i.instanceId, i.name]));
    for (const serverId of owed) {
      const lock = { serverId, name: names.get(serverId) ?? serverId, recoveryId: r.id };
      if (todo.has(serverId) || report.leftAlone.some((x) => x.serverId === serverId)) continue;
      if (listed !== null && !listedIds.has(serverId)) await settle(deps, report, lock, "not-locked");
      else todo.set(serverId, lock);
    }
  }

  for (const lock of todo.values()) {
    signal.throwIfAborted();
    deps.mayAct?.();
    const key = unlockStepKey(lock.serverId);
    const prev = await store.getStep(lock.recoveryId, key);
    const startedAt = deps.now();
    const attempts = (prev?.attempts ?? 0) + 1;
    await store.putStep({ recoveryId: lock.recoveryId, key, state: "started", attempts, startedAt });
    let result: UnlockResult;
    try {
      result = await release(lock.serverId, lock.recoveryId, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      const error = errorMessage(err);
      await store.putStep({ recoveryId: lock.recoveryId, key, state: "failed", attempts, startedAt, finishedAt: deps.now(), error });
      await markOwed(store, lock.recoveryId, lock.serverId, true);
      logger.error({ server: lock.serverId, name: lock.name, recovery: lock.recoveryId, trigger: deps.trigger, err: error }, "could not unlock a server lifeboat left locked: tried again at the next start-up or takeover");
      report.failed.push({ ...lock, error });
      continue;
    }
    await settle(deps, report, lock, result, { attempts, startedAt });
  }

  for (const l of report.leftAlone) {
    logger.warn({ server: l.serverId, name: l.name, recovery: l.recoveryId || undefined, why: l.why }, "server locked by lifeboat left alone");
  }
  return report;
}

/** Journal a server's unlock as done (with what was found), log it, and strike it from the owed list. */
async function settle(deps: StaleLockDeps, report: StaleLockReport, lock: StaleLock, result: UnlockResult, run?: { attempts: number; startedAt: string }): Promise<void> {
  const now = deps.now();
  const done: UnlockStepResult = { result, by: deps.trigger };
  await deps.store.putStep({ recoveryId: lock.recoveryId, key: unlockStepKey(lock.serverId), state: "succeeded", attempts: run?.attempts ?? 0, startedAt: run?.startedAt ?? now, finishedAt: now, result: done });
  await markOwed(deps.store, lock.recoveryId, lock.serverId, false);
  deps.logger.warn(
    { server: lock.serverId, name: lock.name, recovery: lock.recoveryId, trigger: deps.trigger, result },
    result === "unlocked" ? "unlocked a server lifeboat had left locked for a recovery that ended" : `owed unlock settled: ${result}`,
  );
  report.settled.push({ ...lock, result });
}

/** Add the server to (or strike it from) its recovery's `locksLeft`. */
async function markOwed(store: Store, recoveryId: string, serverId: string, owed: boolean): Promise<void> {
  const r = await store.getRecovery(recoveryId);
  if (!r) return;
  const ids = r.locksLeft ?? [];
  const next = owed ? [...new Set([...ids, serverId])] : ids.filter((x) => x !== serverId);
  if (next.length === ids.length && next.every((x, i) => x === ids[i])) return;
  await store.updateRecovery(recoveryId, { locksLeft: next });
}
