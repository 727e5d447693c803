import type { Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";
import type { PipelineDeps } from "./context.js";
import { routeEvent } from "./event-router.js";
import { HostDirectory } from "./host-directory.js";
import { RECOVERY_STATES, isTerminal, type HostEvent } from "../domain/model.js";
import type { FencingPort } from "../domain/ports/fencing.js";
import { RecoveryRunner, type TransitionEvent } from "./runner.js";
import { secondsSince } from "../util/time.js";
import { observeTransition } from "./milestones.js";
import { UnconfirmedEvents } from "./unconfirmed-events.js";
import { UnknownHostNotices } from "./unknown-host-notices.js";
import { Coalesced } from "../util/coalesced.js";

/** Events routed per pass (and marked in one group commit). */
const ROUTE_BATCH = 1000;
/** Events routed between two turns of the event loop. */
const YIELD_EVERY = 50;
/** Marks written per transaction at the end of a pass. */
const MARK_SLICE = 100;

/**
 * The batch with the events of hosts lifeboat can fence first, each part in journal order:
 * a real failure must not wait behind thousands of alerts for names nobody can act on. Order
 * only matters between events of one host, and a host's events all fall in the same part.
 */
function fencedFirst(events: HostEvent[], fencing: FencingPort): HostEvent[] {
  const fenced = events.filter((e) => e.host !== null && fencing.hasHost(e.host));
  if (fenced.length === 0 || fenced.length === events.length) return events;
  return [...fenced, ...events.filter((e) => e.host === null || !fencing.hasHost(e.host))];
}

/**
 * The coordinator turns journaled events into recoveries and runs one runner per open
 * recovery. It resumes every unfinished recovery when it starts. Operators' commands
 * (commands.ts) journal their intent and wake it; it never takes commands itself.
 */
export class Coordinator {
  readonly #runners = new Map<string, RecoveryRunner>();
  readonly #gauges = new Coalesced(() => this.readGauges());
  #running = false;
  #processing: Promise<void> | null = null;
  #again = false;
  #adopting = false;
  #timer: NodeJS.Timeout | null = null;
  /** Ends the routing pass's waits (on Nova) when the coordinator stops. */
  #abort = new AbortController();
  readonly #hosts: HostDirectory;
  #unconfirmed: UnconfirmedEvents;
  #notices: UnknownHostNotices;

  constructor(private readonly deps: PipelineDeps) {
    this.#hosts = new HostDirectory({ fencing: deps.fencing, evacuation: deps.evacuation, fencingHosts: deps.fencing.hosts() });
    this.#unconfirmed = this.newUnconfirmed();
    this.#notices = this.newNotices();
  }

  private newUnconfirmed(): UnconfirmedEvents {
    return new UnconfirmedEvents({ store: this.deps.store, evacuation: this.deps.evacuation, logger: this.deps.logger });
  }

  private newNotices(): UnknownHostNotices {
    const c = this.deps.config.alerts.unknown_hosts;
    return new UnknownHostNotices({
      store: this.deps.store,
      notifier: this.deps.notifier,
      clock: this.deps.clock,
      logger: this.deps.logger,
      intervalMs: c.notify_interval_seconds * 1000,
      maxListed: c.max_listed,
    });
  }

  get store(): Store {
    return this.deps.store;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Resume unfinished recoveries, process events journaled while nobody was acting. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    // What another leader did meanwhile is in the store, not in these.
    this.#abort = new AbortController();
    this.#unconfirmed = this.newUnconfirmed();
    this.#notices = this.newNotices();
    const open = await this.deps.store.listRecoveries({ open: true, limit: 100_000 });
    for (const r of open) {
      this.deps.logger.info({ recovery: r.id, host: r.host, state: r.state }, "resuming recovery");
      this.ensureRunner(r.id);
    }
    this.deps.metrics.onScrapeInProgress(() => this.#gauges.request());
    this.kick();
    // Safety net: pick up anything journaled without a kick (e.g. by another instance):
    // events, and recoveries started through another instance's API (recover, fence off).
    this.#timer = setInterval(() => {
      // A notice due after its interval goes out here; never in the middle of a pass, which
      // sends it itself once the queue is drained (a flood routed in many batches is one notice).
      if (!this.#processing) void this.#notices.flush();
      this.kick();
      void this.adoptOpen();
      void this.#unconfirmed.retry(this.#abort.signal).then((requeued) => {
        if (requeued) this.kick();
      });
    }, 2000);
    this.#timer.unref();
  }

  /** Stop acting; recoveries stay where they are and resume on the next start. */
  async stop(): Promise<void> {
    this.#running = false;
    this.deps.metrics.onScrapeInProgress(null);
    this.#abort.abort(new Error("stopping"));
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    // Recoveries first: an event pass waiting on a slow or unreachable store must not keep
    // them acting (after a lost leadership, every moment counts).
    const runners = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.all(runners.map((r) => r.stop()));
    await this.#processing;
  }

  /** Run every open recovery that has no runner here (one pass at a time). */
  private async adoptOpen(): Promise<void> {
    if (!this.#running || this.#adopting) return;
    this.#adopting = true;
    try {
      const open = await this.deps.store.listRecoveries({ open: true, limit: 100_000 });
      for (const r of open) {
        if (!this.#running || this.#runners.has(r.id)) continue;
        this.deps.logger.info({ recovery: r.id, host: r.host, state: r.state }, "picking up a recovery started elsewhere");
        this.ensureRunner(r.id);
      }
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err) }, "could not look for open recoveries; will retry");
    } finally {
      this.#adopting = false;
    }
  }

  /** New events were journaled: process them soon (coalesced). */
  kick(): void {
    if (!this.#running) return;
    if (this.#processing) {
      this.#again = true;
      return;
    }
    this.#processing = this.processEvents()
      .catch((err: unknown) => {
        if (this.#running) this.deps.logger.error({ err: errorMessage(err) }, "event processing failed; will retry");
      })
      .finally(() => {
        this.#processing = null;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  /** Resolves once every event journaled so far has been routed. */
  async drain(): Promise<void> {
    while (this.#processing) await this.#processing;
  }

  private async processEvents(): Promise<void> {
    const { store } = this.deps;
    const signal = this.#abort.signal;
    for (;;) {
      if (!this.#running) return;
      const events = fencedFirst(await store.unprocessedEvents(ROUTE_BATCH), this.deps.fencing);
      if (events.length === 0) {
        // Once the queue is drained: a flood routed over several batches is one notice.
        void this.#notices.flush();
        return;
      }
      // Marks are written together at the end of the pass (one group commit, not one per
      // event, nor one per turn of the event loop): routing depends on recoveries, which
      // routeEvent writes and awaits itself, never on earlier marks, and an event left
      // unmarked by a crash is routed again.
      const toMark: Parameters<Store["markEvent"]>[] = [];
      const marks: Promise<void>[] = [];
      // In transactions of MARK_SLICE, a turn of the event loop apart: a recovery's own writes
      // queued meanwhile never wait for a thousand of them.
      const markAll = async (): Promise<void> => {
        const all = toMark.splice(0);
        for (let i = 0; i < all.length; i += MARK_SLICE) {
          if (i > 0) await new Promise((r) => setImmediate(r));
          for (const m of all.slice(i, i + MARK_SLICE)) marks.push(store.markEvent(...m));
        }
      };
      const unconfirmed: { id: number; note: string }[] = [];
      const unknown: string[] = [];
      try {
        for (const [i, e] of events.entries()) {
          if (!this.#running) break;
          // Routing an alert for an unknown host awaits nothing but settled promises: give
          // the event loop a turn now and then (health checks, webhooks, runners).
          if (i > 0 && i % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
          const res = await routeEvent(e, {
            store,
            clock: this.deps.clock,
            logger: this.deps.logger,
            metrics: this.deps.metrics,
            hosts: this.#hosts,
            signal,
            config: {
              triggerAlertnames: this.deps.config.alerts.trigger_alertnames,
              graceSeconds: this.deps.config.recovery.grace_seconds,
              dryRun: this.deps.config.recovery.dry_run,
            },
          });
          if (res.ignored) this.deps.metrics.alertsIgnored.inc({ reason: res.ignored });
          // Marked only once it is on the list of events to route again (below).
          if (res.ignored === "host_unconfirmed") unconfirmed.push({ id: e.id, note: res.note });
          else toMark.push([e.id, res.disposition, res.recoveryId, res.note]);
          if (res.unknownHost) {
            this.#notices.add(res.unknownHost.host, res.unknownHost.likely);
            unknown.push(res.unknownHost.host);
          }
          if (res.touched) {
            this.ensureRunner(res.touched)?.wake();
            if (res.disposition === "aborted") this.deps.metrics.recoveries.inc({ outcome: "aborted" });
          }
        }
        if (unconfirmed.length) {
          await this.#unconfirmed.add(unconfirmed.map((u) => u.id));
          for (const u of unconfirmed) toMark.push([u.id, "ignored", null, u.note]);
        }
        await markAll();
      } catch (err) {
        await markAll();
        await Promise.allSettled(marks);
        throw err;
      } finally {
        // One line per pass, not one per alert: a flood of made-up names must not flood the logs.
        if (unknown.length) this.deps.logger.warn({ alerts: unknown.length, hosts: [...new Set(unknown)].slice(0, 10) }, "alerts for hosts lifeboat cannot act on: ignored");
      }
      await Promise.all(marks);
    }
  }

  private ensureRunner(id: string): RecoveryRunner | undefined {
    if (!this.#running) return undefined;
    const existing = this.#runners.get(id);
    if (existing && !existing.stopped) return existing;
    const runner = new RecoveryRunner(id, this.deps, (e) => this.onTransition(e));
    this.#runners.set(id, runner);
    void runner.start().finally(() => {
      if (this.#runners.get(id) === runner) this.#runners.delete(id);
    });
    return runner;
  }

  private onTransition(e: TransitionEvent): void {
    const { metrics } = this.deps;
    // blocked → blocked records a change of what blocks it: the stage goes on.
    if (e.before.state !== e.after.state) metrics.stageDuration.observe({ stage: e.before.state }, e.stageMs / 1000);
    observeTransition(metrics, e, this.deps.clock.now());
    if (isTerminal(e.after.state) && e.after.kind === "release") {
      // A release is not a recovery of instances: its own count, none of the recovery timings.
      metrics.releases.inc({ outcome: e.after.state });
      void this.deps.onRecoveryEnded?.(e.after.id);
    } else if (isTerminal(e.after.state)) {
      metrics.recoveries.inc({ outcome: e.after.state });
      const secs = secondsSince(e.after.detectedAt, this.deps.clock.now());
      metrics.recoveryDuration.observe({ outcome: e.after.state }, secs);
      void this.deps.onRecoveryEnded?.(e.after.id);
    }
  }

  /** Read the open recoveries into the in-progress gauges (scrapes of one moment share one read). */
  private async readGauges(): Promise<void> {
    try {
      const open = await this.deps.store.listRecoveries({ open: true, limit: 100_000 });
      for (const s of RECOVERY_STATES) {
        if (!isTerminal(s)) this.deps.metrics.recoveriesInProgress.set({ state: s }, open.filter((r) => r.state === s).length);
      }
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err) }, "could not refresh gauges");
    }
  }

  // ---- what operator commands ask of the engine (commands.ts) --------------------------

  /** Run a recovery now (created or changed by an operator command), or cut its wait short. */
  wake(id: string): void {
    this.ensureRunner(id)?.wake();
  }

  /** Cut every runner's wait short (automation resumed). */
  wakeAll(): void {
    for (const r of this.#runners.values()) r.wake();
  }
}
