import { errorMessage } from "../util/errors.js";
import { HostBusyError, StateConflictError, type Store } from "../domain/journal.js";
import { ConflictError, NotFoundError, RefusedError } from "../domain/errors.js";
import { isAbortable, isTerminal, type PauseState, type Recovery, type RecoveryKind, type RecoveryState } from "../domain/model.js";
import { SHARED_READ, type CloudPort } from "../domain/ports/cloud.js";
import type { FencingPort } from "../domain/ports/fencing.js";
import type { EngineSettings } from "../domain/settings.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { Clock } from "../util/clock.js";
import { releaseView, type HostView, type ReleaseView } from "./host-view.js";

/** What a command may ask of the engine once its intent is journaled. */
export interface EngineHandle {
  /** This instance runs recoveries (it leads, in an HA pair). */
  readonly running: boolean;
  /** Run the recovery now, or cut its wait short. */
  wake(id: string): void;
  wakeAll(): void;
}

export interface CommandDeps {
  store: Store;
  config: EngineSettings;
  logger: Logger;
  metrics: Metrics;
  fencing: FencingPort;
  cloud: CloudPort;
  clock: Clock;
  engine: EngineHandle;
}

type OperatorKind = Exclude<RecoveryKind, "alert">;

/** Which recoveries `approveMany` approves: the ids named, and every blocked one a selector matches. */
export interface ApprovalSelection {
  ids?: string[];
  /** Blocked recoveries whose current block includes this gate (e.g. "storm"). */
  blockedBy?: string;
  /** Blocked recoveries of hosts in this availability zone. */
  zone?: string;
}

export interface ApprovalReport {
  approved: { id: string; host: string; state: RecoveryState }[];
  skipped: { id: string; host?: string; reason: string }[];
}

/**
 * The operator's commands (API, CLI, console): each one checks that it may be done, writes
 * its intent to the journal (an approval, a cancel, a pause, a new recovery) and wakes the
 * engine. None of them acts on a host or the cloud itself: the engine's runners do, under
 * the same journal, claims and retries as every automatic recovery.
 */
export class OperatorCommands {
  constructor(private readonly deps: CommandDeps) {}

  /** `lifeboat recover HOST`: a recovery now (no grace, policy gates approved by this operator). */
  async recover(host: string, opts: { dryRun: boolean; confirmOff: boolean; actor: string }): Promise<Recovery> {
    const r = await this.start(host, opts.actor, {
      kind: "manual",
      dryRun: opts.dryRun || this.deps.config.recovery.dry_run,
      confirmedOff: opts.confirmOff,
      reason: `recovery requested by ${opts.actor}${opts.confirmOff ? ", who confirmed the host is powered off" : ""}`,
    });
    this.deps.logger.warn({ recovery: r.id, host, actor: opts.actor, confirmOff: opts.confirmOff, dryRun: r.dryRun }, "manual recovery requested");
    return r;
  }

  /** `lifeboat fence off HOST --yes`: power off by hand, a fence-only recovery (no gates, no evacuation). */
  async fenceOff(host: string, actor: string): Promise<Recovery> {
    if (!this.deps.fencing.hasHost(host)) throw new RefusedError(`no fencing configured for ${host}`);
    const r = await this.start(host, actor, { kind: "fence-only", dryRun: false, confirmedOff: false, reason: `power-off by hand requested by ${actor}` });
    this.deps.logger.warn({ recovery: r.id, host, actor }, "power-off by hand requested");
    return r;
  }

  /**
   * `lifeboat release HOST`: bring a repaired host back into service, as a recovery of kind
   * `release` (stages/release.ts). Refused while the host has an open recovery (it is still
   * failing, or a release already runs).
   */
  async release(host: string, actor: string): Promise<ReleaseView> {
    if (!this.deps.cloud.release) throw new RefusedError(`the ${this.deps.cloud.driver} driver cannot release hosts`);
    const open = await this.deps.store.findOpenRecovery(host);
    if (open?.kind === "release") throw new ConflictError(`a release of ${host} is already running: recovery ${open.id} (${open.state})`);
    if (open) throw new ConflictError(`${host} has an open recovery ${open.id} (${open.state}): release refused while the host is still failing`);
    const r = await this.start(host, actor, { kind: "release", dryRun: this.deps.config.recovery.dry_run, confirmedOff: false, reason: `release of ${host} requested by ${actor}` });
    this.deps.logger.warn({ recovery: r.id, host, actor }, "release of a repaired host requested");
    return releaseView(this.deps.store, r);
  }

  async approve(id: string, actor: string): Promise<Recovery> {
    const r = await this.mustGet(id);
    if (isTerminal(r.state)) throw new ConflictError(`recovery ${id} already ended (${r.state})`);
    const updated = await this.deps.store.updateRecovery(id, { approved: true, approvedBy: actor });
    this.deps.logger.warn({ recovery: id, host: r.host, actor }, "recovery approved by operator");
    this.deps.engine.wake(id);
    return updated;
  }

  /**
   * Approve several recoveries at once: the ones named, and/or every blocked recovery a
   * selector matches (blocked by one gate, e.g. the storm guard; of one availability zone).
   * Each approval is journaled on its recovery, by this operator, as `approve` does; what
   * cannot be approved is said, per recovery, and approves nothing else less.
   */
  async approveMany(selection: ApprovalSelection, actor: string): Promise<ApprovalReport> {
    const report: ApprovalReport = { approved: [], skipped: [] };
    const targets = new Map<string, Recovery>();
    for (const id of selection.ids ?? []) {
      const r = await this.deps.store.getRecovery(id);
      if (!r) report.skipped.push({ id, reason: `no recovery ${id}` });
      else if (isTerminal(r.state)) report.skipped.push({ id, host: r.host, reason: `already ended (${r.state})` });
      else targets.set(r.id, r);
    }
    if (selection.blockedBy !== undefined || selection.zone !== undefined) {
      const blocked = await this.deps.store.listRecoveries({ state: "blocked", limit: 100_000 });
      const zones = selection.zone !== undefined ? await this.zonesOf(blocked.map((r) => r.host)) : new Map<string, string | null>();
      for (const r of blocked) {
        if (selection.blockedBy !== undefined && !(r.block?.gates ?? []).includes(selection.blockedBy)) continue;
        if (selection.zone !== undefined && zones.get(r.host) !== selection.zone) continue;
        targets.set(r.id, r);
      }
    }
    const approving: Recovery[] = [];
    for (const r of targets.values()) {
      if (r.approved) report.skipped.push({ id: r.id, host: r.host, reason: `already approved by ${r.approvedBy ?? "an operator"}` });
      else approving.push(r);
    }
    // Journaled together (one commit on SQLite, one read and one compare-and-swap on etcd): a
    // storm's approval of dozens of hosts does not wait for one write after another.
    const written = await Promise.allSettled(approving.map((r) => this.deps.store.updateRecovery(r.id, { approved: true, approvedBy: actor })));
    approving.forEach((r, i) => {
      const w = written[i]!;
      if (w.status === "rejected") {
        report.skipped.push({ id: r.id, host: r.host, reason: `could not journal the approval: ${errorMessage(w.reason)}` });
        return;
      }
      this.deps.engine.wake(r.id);
      report.approved.push({ id: r.id, host: r.host, state: r.state });
    });
    if (report.approved.length) this.deps.logger.warn({ actor, recoveries: report.approved.map((a) => a.id), selection }, `${report.approved.length} recovery(ies) approved by operator`);
    return report;
  }

  /** Each host's availability zone, from Nova's shared listing of nova-compute services. */
  private async zonesOf(hosts: string[]): Promise<Map<string, string | null>> {
    if (hosts.length === 0) return new Map();
    const services = await this.deps.cloud.listComputeServices(undefined, SHARED_READ);
    return new Map(services.map((s) => [s.host, s.zone]));
  }

  /** Cancel a recovery before the point of no return (fencing); a release at any of its stages (each leaves the host held). */
  async cancel(id: string, actor: string, reason?: string): Promise<Recovery> {
    const r = await this.mustGet(id);
    if (r.kind === "release" && isTerminal(r.state)) throw new ConflictError(`release ${id} already ended (${r.state})`);
    if (r.kind !== "release" && !isAbortable(r.state)) {
      throw new ConflictError(`recovery ${id} is ${r.state}: past the point of no return, it cannot be cancelled`);
    }
    try {
      const after = await this.deps.store.transition(id, r.state, "aborted", `cancelled by ${actor}${reason ? `: ${reason}` : ""}`, { outcome: "aborted" }, actor);
      if (r.kind === "release") this.deps.metrics.releases.inc({ outcome: "aborted" });
      else this.deps.metrics.recoveries.inc({ outcome: "aborted" });
      this.deps.engine.wake(id);
      return after;
    } catch (err) {
      if (err instanceof StateConflictError) throw new ConflictError(`recovery ${id} moved to ${err.actual ?? "?"} meanwhile; not cancelled`);
      throw err;
    }
  }

  async pause(actor: string, reason: string): Promise<PauseState> {
    const state: PauseState = { paused: true, by: actor, reason, at: this.now() };
    await this.deps.store.putSetting("pause", state);
    this.deps.metrics.automationPaused.set({ source: "operator" }, 1);
    this.deps.logger.warn({ actor, reason }, "automation paused");
    return state;
  }

  async resume(actor: string): Promise<PauseState> {
    const state: PauseState = { paused: false, by: actor, reason: "resumed", at: this.now() };
    await this.deps.store.putSetting("pause", state);
    this.deps.metrics.automationPaused.set({ source: "operator" }, 0);
    this.deps.logger.warn({ actor }, "automation resumed");
    this.deps.engine.wakeAll();
    return state;
  }

  async pauseState(): Promise<PauseState> {
    return (await this.deps.store.getSetting<PauseState>("pause")) ?? { paused: false, by: "", reason: "", at: "" };
  }

  /** What lifeboat holds about a host: its hold, its latest release, its open recovery. */
  async describeHost(host: string): Promise<HostView> {
    const { store } = this.deps;
    const [hold, open, release] = await Promise.all([store.getHostState(host), store.findOpenRecovery(host), this.latestRelease(host)]);
    return { host, hold, release, openRecovery: open?.id ?? null, fencing: this.deps.fencing.hasHost(host) };
  }

  /** The host's latest release, if it ever had one. */
  async latestRelease(host: string): Promise<ReleaseView | null> {
    const latest = (await this.deps.store.listRecoveries({ host, limit: 50 })).find((r) => r.kind === "release");
    return latest ? releaseView(this.deps.store, latest) : null;
  }

  /** A recovery an operator asked for: starts at once, approved by that operator, run right away. */
  private async start(host: string, actor: string, o: { kind: OperatorKind; dryRun: boolean; confirmedOff: boolean; reason: string }): Promise<Recovery> {
    // Journaled on whichever instance was asked; in an HA pair the leader runs it (it adopts
    // open recoveries it did not create within a few seconds).
    const now = this.now();
    let r: Recovery;
    try {
      r = await this.deps.store.createRecovery({
        host,
        kind: o.kind,
        // Older journals named a power-off by hand "fence" here: kept, for one incident-key format.
        incidentKey: `${host}@${o.kind === "fence-only" ? "fence" : o.kind}:${now}`,
        trigger: "manual",
        dryRun: o.dryRun,
        confirmedOff: o.confirmedOff,
        detectedAt: now,
        graceUntil: now,
        reason: o.reason,
        actor,
        approvedBy: actor,
      });
    } catch (err) {
      if (err instanceof HostBusyError) throw new ConflictError(`${host} already has an open recovery ${err.openRecoveryId}`);
      throw err;
    }
    if (o.kind !== "release") this.deps.metrics.recoveriesStarted.inc({ trigger: "manual" });
    this.deps.engine.wake(r.id);
    return r;
  }

  private async mustGet(id: string): Promise<Recovery> {
    const r = await this.deps.store.getRecovery(id);
    if (!r) throw new NotFoundError(`no recovery ${id}`);
    return r;
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}
