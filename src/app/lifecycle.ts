import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "../config/schema.js";
import type { ReadinessCheck } from "../util/readiness.js";
import type { StatusInfo } from "../http/control.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { ClaimGuard } from "../ha/claim-guard.js";
import { isLeadershipLoss } from "../domain/errors.js";
import type { EtcdHa } from "./ha.js";
import { runWhileLeader } from "../ha/while-leader.js";
import type { Coordinator } from "../engine/engine.js";
import type { OperatorCommands } from "../engine/commands.js";
import { monitorEventsToHostEvents } from "../intake/monitor-events.js";
import { reconcileIsolatedHosts } from "../engine/reconcile.js";
import { releaseStaleLocks } from "../engine/stale-locks.js";
import { inFlightEvacuations } from "../engine/in-flight-evacuations.js";
import type { JournalChanges } from "../store/observed.js";
import type { Store } from "../domain/journal.js";
import { sleep } from "../util/abort.js";
import type { Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { stormStatus } from "../gates/storm-state.js";
import { VERSION } from "../version.js";
import { buildHttpApp, compose, type AppGraph, type AppOptions, type Drivers } from "./compose.js";

export type { AppOptions, BackgroundWorker, DriverFactory, Drivers } from "./compose.js";

/** Pauses between tries of the stale-lock sweep while the cloud does not answer. */
const STALE_LOCK_RETRY_MS = [5_000, 15_000, 45_000, 120_000];

/**
 * The lifecycle of a lifeboat built by compose.ts: `start()` opens the store, resumes
 * unfinished recoveries, starts the notification delivery worker (on the leader) and
 * listens; `stop()` stops acting and closes everything, leaving every recovery and every
 * undelivered notification where it was for the next start.
 */
export class Lifeboat {
  readonly config: Config;
  readonly logger: Logger;
  readonly store: Store;
  /** Every journal write of this process, as it happens (the console's live pages listen). */
  readonly changes: JournalChanges;
  readonly metrics: Metrics;
  readonly coordinator: Coordinator;
  /** The operator's commands (API, console): intents journaled, carried out by the coordinator. */
  readonly commands: OperatorCommands;
  readonly clock: Clock;
  readonly instanceId: string;
  readonly drivers: Drivers & { close?(): void };
  /** Active-passive HA on etcd (store driver etcd): election and host claims. */
  readonly ha: EtcdHa | undefined;
  readonly #claimGuard: ClaimGuard | undefined;
  readonly #graph: AppGraph;
  #leaderWork: { stop(): Promise<void> } | null = null;
  #sweep: { stop(): Promise<void> } | null = null;
  #monitor: { start(): void; stop(): Promise<void> } | null = null;
  #server: Server | null = null;

  constructor(opts: AppOptions) {
    const g = compose(opts);
    this.#graph = g;
    this.config = g.config;
    this.logger = g.logger;
    this.clock = g.clock;
    this.metrics = g.metrics;
    this.store = g.store;
    this.changes = g.changes;
    this.instanceId = g.instanceId;
    this.drivers = g.drivers;
    this.ha = g.ha;
    this.#claimGuard = g.claimGuard;
    this.coordinator = g.coordinator;
    this.commands = g.commands;
  }

  /** The HTTP app (also usable without listening, e.g. with supertest-like clients). */
  httpApp(): ReturnType<typeof buildHttpApp> {
    return buildHttpApp(this.#graph, { status: () => this.statusInfo(), readiness: () => this.readiness() });
  }

  /**
   * /readyz beyond the store: is a leader known, and did the cloud answer lifeboat's last
   * calls. Cheap (one etcd read at most, never a cloud call) and advisory: an instance
   * keeps journaling alerts while its cloud or the election is in trouble.
   */
  async readiness(): Promise<Record<string, ReadinessCheck>> {
    const checks: Record<string, ReadinessCheck> = {};
    if (this.ha) {
      const self = this.ha.election.isLeader();
      const id = await this.ha.election.leaderId().catch(() => undefined);
      checks.leader =
        id === undefined
          ? { ok: false, required: false, detail: "leader unknown: etcd did not answer" }
          : id === null
            ? { ok: false, required: false, detail: "nobody leads: no recovery runs until an instance is elected" }
            : { ok: true, detail: self ? `this instance (${id}) leads` : `${id} leads; this instance follows` };
    } else {
      checks.leader = this.coordinator.running ? { ok: true, detail: "single instance, running recoveries" } : { ok: false, required: false, detail: "not running recoveries" };
    }
    const cloud = this.drivers.cloudReachability?.readiness();
    if (cloud) checks.openstack = cloud;
    return checks;
  }

  async statusInfo(): Promise<StatusInfo> {
    const self = this.ha ? this.ha.election.isLeader() : this.coordinator.running;
    const id = this.ha ? await this.ha.election.leaderId().catch(() => null) : self ? this.instanceId : null;
    return {
      version: VERSION,
      instance: this.instanceId,
      leader: { self, id },
      store: this.store.kind,
      dryRun: this.config.recovery.dry_run,
      storm: await stormStatus(this.store, this.clock.now(), this.config.gates.storm.cooldown_seconds * 1000),
    };
  }

  /**
   * Negotiate with the cloud and reconcile with what Nova says lifeboat did. Bounded: an
   * unreachable cloud is logged, never fatal (the webhook must keep journaling alerts).
   */
  private async connect(): Promise<void> {
    const signal = AbortSignal.timeout(15_000);
    try {
      const what = await this.drivers.evacuation.start?.(signal);
      if (what) this.logger.info({ driver: this.drivers.evacuation.driver }, `cloud: ${what}`);
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, "cannot reach the cloud at start; will retry on first use");
      return;
    }
    const report = await reconcileIsolatedHosts({ store: this.store, evacuation: this.drivers.evacuation, logger: this.logger, signal, now: () => new Date(this.clock.now()).toISOString() });
    if (report.isolated.length) this.logger.info(report, "hosts isolated by lifeboat in Nova");
  }

  /**
   * Unlock the servers lifeboat left locked for recoveries that ended (recovery/stale-locks.ts),
   * in the background; tried again a few times while the cloud or the store does not answer.
   * Not in dry-run mode, which changes nothing.
   */
  private async sweepStaleLocks(trigger: string, signal: AbortSignal, mayAct?: () => void): Promise<void> {
    if (this.config.recovery.dry_run || !this.drivers.evacuation.releaseLifeboatLock) return;
    const now = (): string => new Date(this.clock.now()).toISOString();
    for (let attempt = 0; ; attempt++) {
      try {
        const report = await releaseStaleLocks({ store: this.store, evacuation: this.drivers.evacuation, logger: this.logger, signal, now, trigger, ...(mayAct ? { mayAct } : {}) });
        const { settled, failed, leftAlone } = report;
        if (settled.length || failed.length || leftAlone.length) {
          this.logger.info({ trigger, settled: settled.length, failed: failed.length, leftAlone: leftAlone.length }, "servers lifeboat left locked: looked at");
        }
        return;
      } catch (err) {
        if (signal.aborted || isLeadershipLoss(err)) return;
        const delay = STALE_LOCK_RETRY_MS[attempt];
        if (delay === undefined) {
          this.logger.error({ err: errorMessage(err), trigger }, "could not look for servers lifeboat left locked; next try at the next start-up or takeover");
          return;
        }
        this.logger.warn({ err: errorMessage(err), trigger, retryInMs: delay }, "could not look for servers lifeboat left locked; trying again");
        await sleep(delay, signal).catch(() => undefined);
      }
    }
  }

  /**
   * A new term of running recoveries: the evacuations the journal shows in flight count
   * against the site's budget before any new one is granted, whichever recovery's runner
   * gets there first. Started before the runners; the journal is read in the background.
   */
  private restoreEvacuationBudget(): void {
    void this.#graph.evacuationBudget.restore(() => inFlightEvacuations(this.store));
  }

  async start(opts: { listen?: string | false; connect?: boolean } = {}): Promise<void> {
    await this.store.init();
    const pause = await this.commands.pauseState();
    this.metrics.automationPaused.set({ source: "operator" }, pause.paused ? 1 : 0);
    if (this.config.recovery.dry_run) this.logger.warn("DRY RUN: every decision is recorded, nothing is fenced, isolated or evacuated");
    const connect = opts.connect ?? true;
    if (connect) await this.connect();
    if (this.ha) {
      // Every instance journals webhooks; only the leader runs recoveries.
      const election = this.ha.election;
      election.onChange((leader) => {
        this.metrics.leader.set(leader ? 1 : 0);
        this.logger.warn({ instance: this.instanceId, leader }, leader ? "this instance leads: running recoveries" : "this instance follows: not acting");
      });
      this.#leaderWork = runWhileLeader(
        election,
        async (term) => {
          this.restoreEvacuationBudget();
          await this.coordinator.start();
          // Only the leader delivers: it alone journals new messages, and a message sent by two instances is a duplicate.
          this.drivers.delivery?.start();
          const sweep = new AbortController();
          const swept = connect ? this.sweepStaleLocks("takeover", AbortSignal.any([term.signal, sweep.signal]), () => term.assertFresh()) : Promise.resolve();
          return {
            stop: async () => {
              sweep.abort();
              await this.drivers.delivery?.stop();
              await this.coordinator.stop();
              this.#graph.evacuationBudget.reset();
              this.#claimGuard?.forget();
              this.drivers.evacuation.forgetLocks?.();
              await swept;
            },
          };
        },
        this.logger,
      );
      election.start();
    } else {
      this.restoreEvacuationBudget();
      await this.coordinator.start();
      this.drivers.delivery?.start();
      this.metrics.leader.set(1);
      const sweep = new AbortController();
      const swept = connect ? this.sweepStaleLocks("start-up", sweep.signal) : Promise.resolve();
      this.#sweep = {
        stop: () => {
          sweep.abort();
          return swept;
        },
      };
    }
    if (this.config.monitor.enabled && this.drivers.monitor) {
      this.#monitor = this.drivers.monitor(this.config.monitor.interval_seconds * 1000, async (events) => {
        await this.store.appendEvents(monitorEventsToHostEvents(events, new Date(this.clock.now()).toISOString()));
        this.coordinator.kick();
      });
      this.#monitor.start();
      this.logger.info({ interval: this.config.monitor.interval_seconds }, "native monitor polling Nova's os-services");
    }
    const listen = opts.listen ?? this.config.server.listen;
    if (listen !== false) await this.listen(listen);
  }

  private listen(address: string): Promise<void> {
    const idx = address.lastIndexOf(":");
    const host = address.slice(0, idx).replace(/^\[|\]$/g, "") || "0.0.0.0";
    const port = Number(address.slice(idx + 1));
    const app = this.httpApp();
    return new Promise((resolve, reject) => {
      const server = app.listen(port, host);
      server.once("listening", () => {
        this.#server = server;
        this.logger.info({ listen: `${host}:${this.port}` }, "listening");
        resolve();
      });
      server.once("error", reject);
    });
  }

  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    await this.#monitor?.stop();
    await this.#leaderWork?.stop();
    await this.drivers.delivery?.stop();
    await this.#sweep?.stop();
    await this.coordinator.stop();
    this.#graph.evacuationBudget.reset();
    this.metrics.leader.set(0);
    this.drivers.close?.();
    if (this.ha) await this.ha.close();
    else await this.store.close();
  }
}
