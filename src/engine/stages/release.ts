import { FRESH_READ, type ComputeServiceInfo } from "../../domain/ports/cloud.js";
import type { ChainResult } from "../../domain/ports/fencing.js";
import { isLifeboatReason } from "../../domain/markers.js";
import type { RecoveryState } from "../../domain/model.js";
import { errorMessage } from "../../util/errors.js";
import type { Stage, StageSlice, StageResult } from "../context.js";
import { cloudCall, ONE_TRY } from "../retry-policy.js";

/**
 * A release: a repaired host brought back into service (`lifeboat release HOST`), as a
 * recovery of kind `release`. Its stages follow the only order Nova accepts, each one
 * journaled before the next starts, so a restart (or the other instance of an HA pair)
 * resumes exactly where it stopped:
 *
 *   powering-on       what Nova says of the host (journaled: the heartbeat before power-on), power on
 *   awaiting-compute  nova-compute heartbeats again, and its `done` evacuation records turned `completed`
 *   unforcing         forced_down=false (Nova refuses it while `done` records are left)
 *   awaiting-up       Nova sees the service up
 *   enabling          enabled (only when lifeboat disabled it), then lifeboat's hold is lifted
 *
 * Waits are bounded, counted from the journaled moment the stage began; a stage that waits
 * returns "come back later" rather than sleeping. Every side effect is checked against the
 * world first (power state, forced_down, status), so a step interrupted in flight is safe
 * to run again. A dry run's ports send nothing (../dry-run.ts): it ends, completed, at its
 * first write (see `dryRunEnd`).
 */

/** Poll interval of the waits. */
const POLL_MS = 2000;
/** nova-compute to start after power-on: servers boot slowly. */
const COMPUTE_START_MS = 600_000;
/** The host's `done` evacuation records to turn `completed` once nova-compute runs. */
const MIGRATIONS_MS = 300_000;
/** Nova to report the service up after un-forcing. */
const UP_MS = 120_000;

/** What the release found before it acted (journaled as the `precheck` step's result). */
export interface ReleasePlan {
  forced: boolean;
  /** Disabled by someone other than lifeboat: left disabled. */
  humanDisabled: boolean;
  /** The service's last heartbeat before power-on: nova-compute is back once it moves. */
  baseline: string | null;
  /** Neither forced down nor disabled: nothing to release. */
  nothingToDo: boolean;
  message: string;
}

const failed = (reason: string): StageResult => ({ to: "failed", reason, patch: { outcome: "failed" } });
/**
 * A dry run ends at its first write: the release's waits are for what that write would
 * cause (power-on → nova-compute, un-force → up), which cannot come. `what` says the rest.
 */
const dryRunEnd = (what: string): StageResult => ({ to: "completed", reason: what, patch: { outcome: "completed" } });

async function service(ctx: StageSlice<"recovery" | "evacuation" | "signal">): Promise<ComputeServiceInfo> {
  const s = await ctx.evacuation.getComputeService(ctx.recovery.host, ctx.signal, FRESH_READ);
  if (!s) throw new Error(`Nova has no nova-compute service on ${ctx.recovery.host}`);
  return s;
}

/** When the recovery entered its current state (journaled), ms since the epoch. */
async function enteredAt(ctx: StageSlice<"recovery" | "store">): Promise<number> {
  const timeline = await ctx.store.transitions(ctx.recovery.id);
  const last = timeline.findLast((t) => t.to === ctx.recovery.state);
  return Date.parse(last?.at ?? ctx.recovery.updatedAt);
}

/** Wait again, or give up once `boundMs` has passed since the stage began. */
async function waitOrGiveUp(ctx: StageSlice<"recovery" | "store" | "steps" | "clock">, what: string, boundMs: number): Promise<StageResult> {
  const waited = ctx.clock.now() - (await enteredAt(ctx));
  if (waited >= boundMs) {
    await ctx.steps.record(ctx.recovery.state, { ok: false, message: `${what}: not after ${Math.round(boundMs / 1000)}s` });
    return failed(`release of ${ctx.recovery.host} stopped in ${ctx.recovery.state}: ${what}, not after ${Math.round(boundMs / 1000)}s (the host stays forced down and held; run the release again once it is fixed)`);
  }
  return { after: Math.min(POLL_MS, boundMs - waited) };
}

async function plan(ctx: StageSlice<"recovery" | "store">): Promise<ReleasePlan> {
  const step = await ctx.store.getStep(ctx.recovery.id, "precheck");
  if (step?.state !== "succeeded") throw new Error("the release's precheck is not journaled");
  return step.result as ReleasePlan;
}

export const poweringOn: Stage<"recovery" | "evacuation" | "fencing" | "hold" | "steps" | "guard" | "signal"> = async (ctx) => {
  const host = ctx.recovery.host;
  if (!ctx.evacuation.release) return failed(`the ${ctx.evacuation.driver} driver cannot release hosts`);
  const p = await ctx.steps.run<ReleasePlan>("precheck", async () => {
    const s = await service(ctx);
    const forced = s.forcedDown;
    const humanDisabled = s.status === "disabled" && !isLifeboatReason(s.disabledReason);
    const described = `nova-compute on ${host}: forced_down=${String(forced)}, ${s.status}${s.disabledReason ? ` ("${s.disabledReason}")` : ""}`;
    return { forced, humanDisabled, baseline: s.updatedAt, nothingToDo: !forced && s.status === "enabled", message: described };
  });
  if (p.nothingToDo) {
    await ctx.hold.lift(`${host} was neither forced down nor disabled`);
    return { to: "completed", reason: `nova-compute on ${host} is neither forced down nor disabled: nothing to release`, patch: { outcome: "completed" } };
  }
  if (p.humanDisabled && !p.forced) {
    return failed(`nova-compute on ${host} was disabled by someone else, not by lifeboat (${p.message}): not touching it`);
  }
  if (!ctx.fencing.hasHost(host)) {
    await ctx.steps.record("power-on", { skipped: true, message: "no fencing configured: the host is powered on by hand" });
  } else {
    await ctx.guard("power-on");
    try {
      // Idempotent: the chain reads the power state first and sends "on" only to a host that is off.
      const res = await ctx.steps.run<ChainResult>(
        "power-on",
        async () => {
          const res = await ctx.fencing.powerOn(host, ctx.signal);
          if (!res.ok) throw new Error(res.message);
          return res;
        },
        // One try, as the fence: each device's power loop already retries its own commands.
        { retry: ONE_TRY, signal: ctx.signal },
      );
      // Nothing was powered on (a dry run's port): nothing that follows would happen by itself.
      if (res.dryRun) return dryRunEnd(`${res.message}, ${p.forced ? "wait for nova-compute, un-force" : "wait for Nova to see it up"} and enable it`);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      return failed(`release of ${host} stopped: power-on failed: ${errorMessage(err)} (the host stays forced down and held)`);
    }
  }
  const next: RecoveryState = p.forced ? "awaiting-compute" : "awaiting-up";
  return { to: next, reason: p.forced ? `${host} powered on; waiting for nova-compute to start` : `${host} powered on; waiting for Nova to see it up` };
};

export const awaitingCompute: Stage<"recovery" | "evacuation" | "store" | "steps" | "signal" | "clock"> = async (ctx) => {
  const host = ctx.recovery.host;
  const release = ctx.evacuation.release;
  if (!release) return failed(`the ${ctx.evacuation.driver} driver cannot release hosts`);
  const p = await plan(ctx);
  if ((await ctx.store.getStep(ctx.recovery.id, "compute-started"))?.state !== "succeeded") {
    const s = await service(ctx);
    // A running nova-compute heartbeats: updated_at moves even while the service is forced down.
    if (!s.updatedAt || s.updatedAt === p.baseline) return waitOrGiveUp(ctx, `nova-compute to start on ${host} (is the host still failing?)`, COMPUTE_START_MS);
    await ctx.steps.record("compute-started", { message: `nova-compute started on ${host} (heartbeat ${s.updatedAt})` });
  }
  const left = await release.evacuationRecordsLeft(host, ctx.signal);
  if (left > 0) return waitOrGiveUp(ctx, `the ${left} \`done\` evacuation record(s) from ${host} to become completed`, COMPUTE_START_MS + MIGRATIONS_MS);
  await ctx.steps.record("migrations-completed", { message: `no \`done\` evacuation record left on ${host}` });
  return { to: "unforcing", reason: `nova-compute runs on ${host} and has completed its evacuation records` };
};

export const unforcing: Stage<"recovery" | "evacuation" | "steps" | "guard" | "signal", "recovery"> = async (ctx) => {
  const host = ctx.recovery.host;
  const release = ctx.evacuation.release;
  if (!release) return failed(`the ${ctx.evacuation.driver} driver cannot release hosts`);
  await ctx.guard("unforce");
  try {
    const r = await ctx.steps.run<{ already: boolean; message: string; dryRun?: true }>(
      "unforce",
      async () => {
        const res = await release.unforce(host, ctx.signal);
        if (res.dryRun) {
          const message = res.already ? `dry run: would send nothing (nova-compute on ${host} is not forced down any more)` : `dry run: would un-force nova-compute on ${host}`;
          return { already: res.already, message, dryRun: res.dryRun };
        }
        return { already: res.already, message: res.already ? `nova-compute on ${host} was no longer forced down` : `nova-compute on ${host} no longer forced down` };
      },
      { retry: cloudCall(ctx.config), signal: ctx.signal },
    );
    // Not un-forced (a dry run's port): Nova would not see the service up.
    if (r.dryRun) return dryRunEnd(`${r.message}, wait for Nova to see it up and enable it`);
    return { to: "awaiting-up", reason: r.message };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return failed(`release of ${host} stopped: Nova refused to un-force it: ${errorMessage(err)} (the host stays forced down and held)`);
  }
};

export const awaitingUp: Stage<"recovery" | "evacuation" | "store" | "steps" | "signal" | "clock"> = async (ctx) => {
  const host = ctx.recovery.host;
  const s = await service(ctx);
  if (s.state !== "up") return waitOrGiveUp(ctx, `Nova to see nova-compute on ${host} up`, UP_MS);
  await ctx.steps.record("up", { message: `nova-compute on ${host} is up` });
  return { to: "enabling", reason: `nova-compute on ${host} is up` };
};

export const enabling: Stage<"recovery" | "evacuation" | "hold" | "store" | "steps" | "guard" | "signal", "recovery"> = async (ctx) => {
  const host = ctx.recovery.host;
  const release = ctx.evacuation.release;
  if (!release) return failed(`the ${ctx.evacuation.driver} driver cannot release hosts`);
  const p = await plan(ctx);
  let outcome: string;
  if (p.humanDisabled) {
    await ctx.steps.record("enable", { skipped: true, message: "left disabled: someone else disabled it" });
    outcome = `${host} is back, left disabled as someone else had disabled it`;
  } else {
    await ctx.guard("enable");
    try {
      const r = await ctx.steps.run<{ result: string; message: string; dryRun?: true }>(
        "enable",
        async () => {
          const res = await release.enable(host, ctx.signal);
          return { result: res.result, message: res.message, ...(res.result === "enabled" ? {} : { skipped: true }), ...(res.dryRun ? { dryRun: res.dryRun } : {}) };
        },
        { retry: cloudCall(ctx.config), signal: ctx.signal },
      );
      // A dry run's port says what it would have done.
      outcome = r.dryRun ? r.message : r.result === "left-disabled" ? `${host} is back, left disabled: ${r.message}` : `${host} is back in service`;
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      return failed(`release of ${host} stopped: could not enable it: ${errorMessage(err)} (un-forced and up, still held)`);
    }
  }
  await ctx.hold.lift(outcome);
  return { to: "completed", reason: outcome, patch: { outcome: "completed" } };
};
