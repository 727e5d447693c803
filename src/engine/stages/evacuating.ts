import type { EvacuateCall, EvacuationOutcome, InstanceInfo } from "../../domain/ports/cloud.js";
import { isolationReason } from "../../domain/markers.js";
import { abortReason, sleep } from "../../util/abort.js";
import { errorMessage } from "../../util/errors.js";
import { nextTurn } from "../../util/turns.js";
import { isPermanent } from "../../domain/errors.js";
import { EvacuationBudget, type BudgetSlot } from "../evacuation-budget.js";
import { recoveryZone } from "../in-flight-evacuations.js";
import type { InstanceResult } from "../../domain/model.js";
import { INSTANCES_PER_WRITE } from "../../domain/journal.js";
import { classifyInstance, type SelectionPolicy } from "../../domain/selection.js";
import { recordOwedUnlock, settleUnlocks } from "./owed-unlocks.js";
import type { Stage, StageSlice } from "../context.js";
import { observeInstanceActive } from "../milestones.js";
import { cloudCall, evacuationReissue, reissueAfter } from "../retry-policy.js";

/**
 * Move every selected instance off the fenced host: bounded concurrency, priority order,
 * optional stagger, re-issue of failed evacuations, one result record per instance. The
 * instance list is journaled once, so a resumed recovery works from the same list; the
 * driver's `evacuate` inspects before it acts, and journals each evacuate call before it is
 * sent and once it is answered, so a call that may have reached Nova before a crash is only
 * watched after the restart: nothing is evacuated twice.
 *
 * Slots come from the site's evacuation budget (evacuation-budget.ts), shared by every
 * recovery: site, zone and this recovery's own bound, granted in priority order across
 * recoveries. An instance the journal shows `evacuating` may already run in Nova: it takes
 * its slot at once, never behind the others. One that is only watched (a call with no
 * answer, an evacuation stuck past its timeout) gives its slot within this recovery on;
 * a call with no answer still counts for the site until its fate is known.
 */
export const evacuating: Stage<
  "recovery" | "evacuation" | "evacuationBudget" | "store" | "steps" | "metrics" | "log" | "guard" | "signal" | "clock" | "nowIso",
  "evacuation" | "recovery"
> = async (ctx) => {
  const r = ctx.recovery;
  const cfg = ctx.config.evacuation;
  const records = new Map((await ctx.store.instances(r.id)).map((i) => [i.instanceId, i]));
  // The records the listing adds: journaled with the listing's own record (one commit where the
  // store can), or after it when the listing was recorded by an earlier run of the stage.
  let fresh: InstanceResult[] | undefined;
  const journalFresh = async (list: InstanceInfo[]): Promise<void> => {
    fresh = list.filter((inst) => !records.has(inst.id)).map((inst) => instanceRecord(r.id, inst, cfg));
    // One write for the whole list (one etcd transaction per hundred).
    for (let i = 0; i < fresh.length; i += INSTANCES_PER_WRITE) await ctx.store.putInstances(fresh.slice(i, i + INSTANCES_PER_WRITE));
  };
  // A failed write of the records is the journal's failure, not the listing's: it fails the
  // stage run (which runs again) rather than the recovery.
  let unwritten: unknown;
  const listed = await ctx.steps.run<InstanceInfo[]>("list-instances", () => ctx.evacuation.listInstances(r.host, ctx.signal), {
    retry: cloudCall(ctx.config),
    signal: ctx.signal,
    readOnly: true,
    journalWith: (list) =>
      journalFresh(list).catch((err: unknown) => {
        fresh = undefined;
        unwritten = err;
      }),
  }).catch((err: unknown) => {
    if (ctx.signal.aborted) throw err;
    return err instanceof Error ? err : new Error(errorMessage(err));
  });
  if (unwritten !== undefined) throw unwritten instanceof Error ? unwritten : new Error(errorMessage(unwritten));
  if (listed instanceof Error) {
    return { to: "notifying", reason: `could not list the host's instances: ${listed.message}`, patch: { outcome: "failed" } };
  }
  if (!fresh) await journalFresh(listed);
  for (const rec of fresh ?? []) {
    records.set(rec.instanceId, rec);
    if (rec.state !== "pending") ctx.metrics.instancesEvacuated.inc({ result: rec.state });
  }

  const byId = new Map(listed.map((i) => [i.id, i]));
  const work = [...records.values()]
    .filter((i) => i.state === "pending" || i.state === "evacuating")
    .sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));

  // A dry run sends nothing to Nova: it takes nothing from the site's budget, only its own bound.
  const budget = r.dryRun ? new EvacuationBudget({ site: cfg.concurrency, zone: 0 }) : ctx.evacuationBudget;
  const zone = await recoveryZone(ctx.store, r.id);
  ctx.log.info({ instances: work.length, concurrency: cfg.concurrency, siteConcurrency: budget.limits.site, zone }, "evacuating instances");
  const keepIsolated = isolationKeeper(ctx);
  let nextStart = ctx.clock.now();
  const stagger = async (): Promise<void> => {
    if (cfg.stagger_ms <= 0) return;
    const at = nextStart;
    nextStart = Math.max(nextStart, ctx.clock.now()) + cfg.stagger_ms;
    await sleep(at - ctx.clock.now(), ctx.signal);
  };
  await Promise.all(
    work.map(async (rec) => {
      const info = byId.get(rec.instanceId);
      if (!info) {
        await ctx.store.putInstance({ ...rec, state: "failed", error: "instance missing from the recorded list", finishedAt: ctx.nowIso() });
        return;
      }
      const run: InstanceRun = { rec };
      const slot = budget.slot({
        recoveryId: r.id,
        recoveryCreatedAt: r.createdAt,
        zone,
        recoveryLimit: cfg.concurrency,
        instanceId: rec.instanceId,
        name: rec.name,
        priority: rec.priority,
        signal: ctx.signal,
        callUnsettled: () => maybeSent(run.rec),
      });
      try {
        // Journaled as evacuating: it may run in Nova already, and counts before anything new starts.
        if (rec.state === "evacuating") slot.resume();
        else {
          await slot.acquire();
          await stagger();
        }
        // Stopping: queued instances are not started (nor recorded as evacuating).
        ctx.signal.throwIfAborted();
        await evacuateOne(ctx, run, info, keepIsolated, slot);
      } finally {
        // Stopped while it may run in Nova: it stays counted for the stage's next run.
        if (ctx.signal.aborted && run.rec.state === "evacuating") slot.suspend();
        else slot.close();
      }
    }),
  );

  // Unlocks left owed by the attempts are retried now; what still fails is named.
  const locked = await settleUnlocks(ctx);
  const lockNote = locked.length ? `; lifeboat could not unlock ${locked.length} server(s): ${locked.map((l) => l.name).join(", ")}` : "";
  const locksLeft = locked.map((l) => l.instanceId);
  const final = await ctx.store.instances(r.id);
  const failed = final.filter((i) => i.state === "failed");
  const moved = final.filter((i) => i.state === "evacuated").length;
  const would = final.filter((i) => i.state === "would-evacuate").length;
  if (failed.length) {
    const names = failed.map((i) => `${i.name} (${i.error ?? "failed"})`).join(", ");
    return { to: "notifying", reason: `${failed.length} of ${moved + would + failed.length} instance(s) not recovered: ${names}${lockNote}`, patch: { outcome: "partial", locksLeft } };
  }
  const others = final.length - moved - would;
  const notSelected = others ? `, ${others} not selected (see instances)` : "";
  // Instances a dry run's port only said it would evacuate (nothing was sent).
  if (would) return { to: "notifying", reason: `dry run: would evacuate ${would} instance(s)${notSelected}${lockNote}`, patch: { outcome: "completed", locksLeft } };
  return { to: "notifying", reason: `${moved} instance(s) evacuated${notSelected}${lockNote}`, patch: { outcome: "completed", locksLeft } };
};

/** The journal's record of an instance just listed, before anything is done to it. */
function instanceRecord(recoveryId: string, inst: InstanceInfo, cfg: SelectionPolicy): InstanceResult {
  const c = classifyInstance(inst, cfg);
  return {
    recoveryId,
    instanceId: inst.id,
    name: inst.name,
    projectId: inst.projectId,
    ...(inst.userId ? { userId: inst.userId } : {}),
    originalStatus: inst.status,
    state: c.state,
    priority: c.priority,
    attempts: 0,
    ...(c.note ? { note: c.note } : {}),
  };
}

/**
 * Before an evacuation is issued again: the host must still be forced down in Nova. A
 * force-down that did not hold makes Nova refuse every evacuate (400 "still in use"), so
 * re-issuing without isolating again can only fail. One check at a time serves every
 * instance waiting for it; a failed check is logged and the re-issue goes on (Nova refuses
 * it if the host is not isolated).
 */
function isolationKeeper(ctx: StageSlice<"recovery" | "evacuation" | "log" | "guard" | "signal" | "nowIso">): () => Promise<void> {
  const host = ctx.recovery.host;
  let running: Promise<void> | null = null;
  const check = async (): Promise<void> => {
    const svc = await ctx.evacuation.getComputeService(host, ctx.signal);
    if (!svc || svc.forcedDown) return;
    ctx.log.warn({ service: svc }, "nova-compute of the fenced host is no longer forced down: isolating it again before re-issuing evacuations");
    await ctx.guard("isolate again");
    await ctx.evacuation.isolate(host, isolationReason(ctx.recovery.id, ctx.nowIso()), ctx.signal);
  };
  return () =>
    (running ??= check()
      .catch((err: unknown) => {
        if (ctx.signal.aborted) throw err;
        ctx.log.warn({ err: errorMessage(err) }, "could not check the host's isolation before re-issuing evacuations");
      })
      .finally(() => {
        running = null;
      }));
}

/** One instance's record as this stage run last journaled it (the slot reads it). */
interface InstanceRun {
  rec: InstanceResult;
}

/** The journal holds an evacuate call for it with no answer: lifeboat stopped while the call was out. */
function maybeSent(rec: InstanceResult): boolean {
  return rec.state === "evacuating" && rec.evacuateCall !== undefined && rec.evacuateCall.settled === undefined;
}

async function evacuateOne(
  ctx: StageSlice<"recovery" | "evacuation" | "store" | "metrics" | "log" | "guard" | "signal" | "clock" | "nowIso", "evacuation">,
  run: InstanceRun,
  info: InstanceInfo,
  keepIsolated: () => Promise<void>,
  slot: BudgetSlot,
): Promise<void> {
  const cfg = ctx.config.evacuation;
  let rec = run.rec;
  const set = (next: InstanceResult): void => {
    rec = next;
    run.rec = next;
  };
  const log = ctx.log.child({ instance: info.id, name: info.name });
  // The driver journals each evacuate call on the instance's record: before it is sent, and once its fate is known.
  const recordCall = async (call: EvacuateCall): Promise<void> => {
    const next = { ...rec, evacuateCall: call };
    if (call.settled) {
      // A settled call is known here even if its journal write fails.
      set(next);
      // Nova's answer needs no write of its own: the record written next (the outcome's, at
      // the latest) carries it. Until then a restart takes the call for one that may have
      // been sent and follows Nova's records, which show what the answer said.
      if (call.settled.by === "answer") return;
    }
    // A call about to be sent counts only once journaled (the driver does not send it otherwise).
    await ctx.store.putInstance(next);
    set(next);
  };
  for (;;) {
    const beforeAttempt = rec;
    if (rec.state === "pending") {
      // The attempt is journaled with its evacuate call (recordCall), before the call is sent:
      // a resumed recovery re-inspects, never re-counts. Before that only the lock may have
      // been sent, which a restart handles as any lock found on the server (driver.ts).
      set({ ...rec, state: "evacuating", attempts: rec.attempts + 1, startedAt: rec.startedAt ?? ctx.nowIso() });
    }
    const targetHost = cfg.reserved_hosts.length ? cfg.reserved_hosts[(rec.attempts - 1) % cfg.reserved_hosts.length] : undefined;
    const began = ctx.clock.now();
    // The one policy for re-issuing an evacuation, declared here (retry-policy.ts).
    const reissue = evacuationReissue(ctx.config);
    // Instances granted together start a few per turn of the event loop (util/turns.ts).
    await nextTurn();
    await ctx.guard(`evacuate ${info.id}`);
    const outcome = await ctx.evacuation
      .evacuate(info, ctx.recovery.host, {
        attempt: rec.attempts,
        finalAttempt: !reissueAfter({ permanent: false }, rec.attempts, reissue),
        timeoutMs: cfg.instance_timeout_seconds * 1000,
        noAnswerWindowMs: cfg.no_answer_window_seconds * 1000,
        signal: ctx.signal,
        lockReason: `lifeboat: evacuating from ${ctx.recovery.host} (recovery ${ctx.recovery.id})`,
        ...(targetHost ? { targetHost } : {}),
        ...(rec.evacuateCall ? { lastCall: rec.evacuateCall } : {}),
        recordCall,
        slot,
      })
      .catch((err: unknown): EvacuationOutcome => {
        if (ctx.signal.aborted) throw err;
        return { result: "failed", message: errorMessage(err), permanent: isPermanent(err) };
      });
    // What the driver handed on while the call had no known fate: the driver is done with it now.
    slot.attemptEnded();
    // An aborted stage records nothing as done: whatever this attempt saw, the re-run looks again.
    if (ctx.signal.aborted) throw abortReason(ctx.signal);
    if (outcome.result === "would-evacuate") {
      // A dry run's port sent nothing: no attempt is counted, and the instance stays where it is.
      set({ ...beforeAttempt, state: "would-evacuate", ...(outcome.targetHost ? { targetHost: outcome.targetHost } : {}) });
      await ctx.store.putInstance(rec);
      return;
    }
    if (outcome.lockLeft) await recordOwedUnlock(ctx, info.id, outcome.lockLeft);
    if (outcome.result === "evacuated") {
      set({ ...rec, state: "evacuated", targetHost: outcome.targetHost, finishedAt: ctx.nowIso() });
      delete rec.error;
      await ctx.store.putInstance(rec);
      ctx.metrics.instancesEvacuated.inc({ result: "evacuated" });
      ctx.metrics.evacuationDuration.observe((ctx.clock.now() - began) / 1000);
      observeInstanceActive(ctx.metrics, ctx.recovery, ctx.clock.now());
      log.info({ target: outcome.targetHost, status: outcome.status, attempt: rec.attempts }, "instance evacuated");
      return;
    }
    const canRetry = reissueAfter(outcome, rec.attempts, reissue);
    log.warn({ attempt: rec.attempts, error: outcome.message, retry: canRetry }, "evacuation attempt failed");
    if (!canRetry) {
      set({ ...rec, state: "failed", error: outcome.message, finishedAt: ctx.nowIso() });
      await ctx.store.putInstance(rec);
      ctx.metrics.instancesEvacuated.inc({ result: "failed" });
      return;
    }
    set({ ...rec, state: "pending", error: outcome.message });
    await ctx.store.putInstance(rec);
    await keepIsolated();
  }
}
