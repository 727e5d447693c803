import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { IGNORE_REASONS } from "./domain/model.js";

/**
 * Every metric lifeboat exports, in one place (the README's metrics reference and the
 * Grafana dashboard are checked against this file). Labels are low-cardinality by rule:
 * no instance ids, no recovery ids, no host names.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly buildInfo = new Gauge({
    name: "lifeboat_build_info",
    help: "Build information; always 1.",
    labelNames: ["version", "node_version"] as const,
    registers: [this.registry],
  });

  readonly alertsReceived = new Counter({
    name: "lifeboat_alerts_received_total",
    help: "Alerts received on the webhook, by alert status and whether the alertname is a trigger.",
    labelNames: ["status", "trigger"] as const,
    registers: [this.registry],
  });

  readonly alertsIgnored = new Counter({
    name: "lifeboat_alerts_ignored_total",
    help: "Alerts routing ignored, by reason (no_host, not_trigger, unknown_host, host_name_mismatch, host_unconfirmed, host_held, not_tracked); a re-delivery of an ignored alert is routed and counted again.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly webhookRequests = new Counter({
    name: "lifeboat_webhook_requests_total",
    help: "Webhook requests answered, by HTTP status code.",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });

  readonly recoveries = new Counter({
    name: "lifeboat_recoveries_total",
    help: "Recoveries that reached an end, by outcome (completed, partial, failed, aborted).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly releases = new Counter({
    name: "lifeboat_releases_total",
    help: "Releases of repaired hosts (lifeboat release) that reached an end, by outcome (completed, failed, aborted).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly recoveriesStarted = new Counter({
    name: "lifeboat_recoveries_started_total",
    help: "Recoveries created, by trigger (alert, manual, monitor).",
    labelNames: ["trigger"] as const,
    registers: [this.registry],
  });

  /** Sets the in-progress gauge from the journal; asked at each scrape (see onScrapeInProgress). */
  #readInProgress: (() => Promise<void>) | null = null;

  readonly recoveriesInProgress = new Gauge({
    name: "lifeboat_recoveries_in_progress",
    help: "Recoveries not yet ended, by current state.",
    labelNames: ["state"] as const,
    registers: [this.registry],
    // Read when scraped, not after every transition: a storm's approval moves dozens of
    // recoveries at once, and each read lists every open recovery in the journal.
    collect: () => this.#readInProgress?.(),
  });

  readonly recoveryDuration = new Histogram({
    name: "lifeboat_recovery_duration_seconds",
    help: "Time from detection (first firing alert) to the recovery's end, by outcome.",
    labelNames: ["outcome"] as const,
    buckets: [10, 30, 60, 120, 180, 300, 600, 900, 1800, 3600],
    registers: [this.registry],
  });

  readonly recoveryMilestone = new Histogram({
    name: "lifeboat_recovery_milestone_seconds",
    help: "Time from detection to each milestone: validated, fenced, isolated, instance_active, done.",
    labelNames: ["milestone"] as const,
    buckets: [1, 5, 10, 20, 30, 60, 120, 180, 300, 600, 1200, 1800],
    registers: [this.registry],
  });

  readonly stageDuration = new Histogram({
    name: "lifeboat_stage_duration_seconds",
    help: "Time spent in each pipeline stage.",
    labelNames: ["stage"] as const,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
  });

  readonly gateDecisions = new Counter({
    name: "lifeboat_gate_decisions_total",
    help: "Safety gate decisions, by gate and result (pass, block, undecided, warn).",
    labelNames: ["gate", "result"] as const,
    registers: [this.registry],
  });

  readonly fenceOperations = new Counter({
    name: "lifeboat_fence_operations_total",
    help: "Fencing device operations, by driver, operation (status, off, on) and result (success, failure).",
    labelNames: ["driver", "operation", "result"] as const,
    registers: [this.registry],
  });

  readonly fenceDuration = new Histogram({
    name: "lifeboat_fence_duration_seconds",
    help: "Duration of fencing device operations, by driver and operation.",
    labelNames: ["driver", "operation"] as const,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120],
    registers: [this.registry],
  });

  readonly instancesEvacuated = new Counter({
    name: "lifeboat_instances_evacuated_total",
    help: "Instances handled by evacuation, by result (evacuated, failed, skipped, unprotected).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly evacuationDuration = new Histogram({
    name: "lifeboat_evacuation_duration_seconds",
    help: "Time from the evacuate call to the instance running on its new host.",
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });

  readonly notifications = new Counter({
    name: "lifeboat_notifications_total",
    help: "Notifications that reached their end, by channel and result (sent, failed: given up after its tries or refused for good).",
    labelNames: ["channel", "result"] as const,
    registers: [this.registry],
  });

  readonly evacuationsInFlight = new Gauge({
    name: "lifeboat_evacuations_in_flight",
    help: "Evacuations counted against evacuation.site_concurrency now: from the evacuate call until Nova's evacuation ended, and after a restart or takeover those the journal shows in flight (leader).",
    registers: [this.registry],
  });

  readonly evacuationsWaiting = new Gauge({
    name: "lifeboat_evacuations_waiting",
    help: "Instances waiting for the evacuation budget (site, zone or per-recovery bound) before their evacuate call (leader).",
    registers: [this.registry],
  });

  readonly notificationsPending = new Gauge({
    name: "lifeboat_notifications_pending",
    help: "Notifications journaled and not yet delivered (waiting for the delivery worker or for their next try), as the leader last saw them.",
    registers: [this.registry],
  });

  readonly automationPaused = new Gauge({
    name: "lifeboat_automation_paused",
    help: "1 while automation is paused by the operator (API/CLI) or by an Alertmanager silence.",
    labelNames: ["source"] as const,
    registers: [this.registry],
  });

  #stormProbe: (() => Promise<boolean>) | null = null;

  readonly stormGuardTripped = new Gauge({
    name: "lifeboat_storm_guard_tripped",
    help: "1 while the storm guard holds new recoveries blocked.",
    registers: [this.registry],
    // Read from the guard's durable state when scraped: a storm outlives a restart, and it
    // ends when its cooldown has passed, whether or not a recovery was judged since.
    collect: async () => {
      const probe = this.#stormProbe;
      if (!probe) return;
      try {
        this.stormGuardTripped.set((await probe()) ? 1 : 0);
      } catch {
        // The store did not answer: keep the last value.
      }
    },
  });

  /** Let the storm guard answer for `lifeboat_storm_guard_tripped` at each scrape. */
  watchStorm(probe: () => Promise<boolean>): void {
    this.#stormProbe = probe;
  }

  readonly stormGuardTrips = new Counter({
    name: "lifeboat_storm_guard_trips_total",
    help: "Times the storm guard tripped.",
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: "lifeboat_leader",
    help: "1 when this instance is the leader that runs recoveries.",
    registers: [this.registry],
  });

  /**
   * Who reads the open recoveries into `recoveriesInProgress` when it is scraped: the acting
   * coordinator (null when it stops: the gauge then keeps what it showed last).
   */
  onScrapeInProgress(read: (() => Promise<void>) | null): void {
    this.#readInProgress = read;
  }

  constructor(opts: { version: string; defaultMetrics?: boolean }) {
    this.buildInfo.set({ version: opts.version, node_version: process.version }, 1);
    this.automationPaused.set({ source: "operator" }, 0);
    this.automationPaused.set({ source: "silence" }, 0);
    this.stormGuardTripped.set(0);
    this.evacuationsInFlight.set(0);
    this.evacuationsWaiting.set(0);
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "lifeboat_" });
    // Every known label value is exported from the start, at zero: Prometheus' increase()
    // and rate() cannot count the sample that creates a series, so a series born at 1
    // (the first evacuated instance, the first recovery's duration) would show 0 or NaN.
    for (const outcome of ["completed", "partial", "failed", "aborted"]) {
      this.recoveries.inc({ outcome }, 0);
      this.recoveryDuration.zero({ outcome });
    }
    for (const trigger of ["alert", "manual", "monitor"]) this.recoveriesStarted.inc({ trigger }, 0);
    for (const milestone of ["validated", "fenced", "isolated", "instance_active", "done"]) this.recoveryMilestone.zero({ milestone });
    for (const stage of ["pending", "validating", "blocked", "fencing", "isolating", "evacuating", "notifying"]) this.stageDuration.zero({ stage });
    for (const result of ["evacuated", "failed", "skipped", "unprotected"]) this.instancesEvacuated.inc({ result }, 0);
    for (const status of ["firing", "resolved"]) for (const trigger of ["true", "false"]) this.alertsReceived.inc({ status, trigger }, 0);
    for (const reason of IGNORE_REASONS) this.alertsIgnored.inc({ reason }, 0);
  }
}
