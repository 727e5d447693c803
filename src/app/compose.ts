import { hostname } from "node:os";
import type { Config } from "../config/schema.js";
import type { CloudPort } from "../domain/ports/cloud.js";
import type { ReadinessCheck } from "../util/readiness.js";
import { createHttpApp } from "../http/server.js";
import type { StatusInfo } from "../http/control.js";
import type { Logger } from "../logging.js";
import { Metrics } from "../metrics.js";
import { ClaimGuard } from "../ha/claim-guard.js";
import { createEtcdHa, type EtcdHa } from "./ha.js";
import { Coordinator } from "../engine/engine.js";
import { EvacuationBudget } from "../engine/evacuation-budget.js";
import { OperatorCommands } from "../engine/commands.js";
import type { MonitorEvent } from "../intake/monitor-events.js";
import type { Recovery } from "../domain/model.js";
import type { PipelineDeps } from "../engine/context.js";
import type { NotifierPort } from "../domain/ports/notifier.js";
import type { FencingPort } from "../domain/ports/fencing.js";
import { createConsole } from "../http/console/router.js";
import { consoleDepsFromApp } from "./console.js";
import { JournalChanges, observeWrites } from "../store/observed.js";
import { SqliteStore } from "../store/sqlite.js";
import type { Store } from "../domain/journal.js";
import { systemClock, type Clock } from "../util/clock.js";
import { alertmanagerClient, buildGates } from "./gates.js";
import type { Gate } from "../domain/ports/gate.js";
import { VERSION } from "../version.js";

/**
 * The composition root: the one place where the configuration becomes lifeboat's object
 * graph (store, HA, drivers, gates, engine, operator commands, HTTP app). Nothing here
 * starts or stops anything: lifecycle.ts does, in order.
 */

/** The drivers a running lifeboat talks to; built from the config by drivers.ts, or faked in tests. */
export interface Drivers {
  fencing: FencingPort;
  evacuation: CloudPort;
  notifier: NotifierPort;
  /** Last known reachability of the cloud, from the calls lifeboat made anyway (for /readyz). */
  cloudReachability?: { readiness(): ReadinessCheck };
  /** The native monitor (config `monitor`), for clouds without Prometheus. */
  monitor?: (intervalMs: number, onEvents: (events: MonitorEvent[]) => Promise<void>) => { start(): void; stop(): Promise<void> };
  /** Sends the journaled notifications in the background; runs with the coordinator, on the leader only. */
  delivery?: BackgroundWorker;
}

/** Work that runs in the background while this instance leads (started, then stopped once). */
export interface BackgroundWorker {
  start(): void;
  /** Resolves once nothing runs any more. */
  stop(): Promise<void>;
}

/** Given the app's store, metrics and logger, build the drivers (they may need the store). */
export type DriverFactory = (ctx: { store: Store; metrics: Metrics; logger: Logger }) => Drivers & { close?(): void };

export interface AppOptions {
  config: Config;
  logger: Logger;
  drivers: Drivers | DriverFactory;
  store?: Store;
  metrics?: Metrics;
  clock?: Clock;
  gates?: Gate[];
  instanceId?: string;
}

/** Everything a running lifeboat is made of, built once from the config. */
export interface AppGraph {
  config: Config;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** The journal, telling `changes` of every write. */
  store: Store;
  /** Every journal write of this process, as it happens (the console's live pages listen). */
  changes: JournalChanges;
  instanceId: string;
  drivers: Drivers & { close?(): void };
  /** Active-passive HA on etcd (store driver etcd): election and host claims. */
  ha: EtcdHa | undefined;
  /** Proves the host's claim before every side effect (HA only). */
  claimGuard: ClaimGuard | undefined;
  coordinator: Coordinator;
  commands: OperatorCommands;
  /** The site's bound on evacuations in flight, shared by every recovery; restored at the start of each term. */
  evacuationBudget: EvacuationBudget;
}

export function compose(opts: AppOptions): AppGraph {
  const { config, logger } = opts;
  const clock = opts.clock ?? systemClock;
  const metrics = opts.metrics ?? new Metrics({ version: VERSION });
  const changes = new JournalChanges();
  const storeCfg = config.store;
  const ha = !opts.store && storeCfg.driver === "etcd" ? createEtcdHa(storeCfg, logger.child({ component: "ha" })) : undefined;
  const claimGuard = ha ? new ClaimGuard(ha.claims, logger.child({ component: "claims" })) : undefined;
  const store = observeWrites(opts.store ?? ha?.store ?? new SqliteStore(storeCfg.driver === "sqlite" ? storeCfg.path : ""), changes);
  const instanceId = opts.instanceId ?? (storeCfg.driver === "etcd" ? storeCfg.instance_id : hostname());
  const drivers = typeof opts.drivers === "function" ? opts.drivers({ store, metrics, logger }) : opts.drivers;
  const { fencing, evacuation, notifier } = drivers;
  const base = { store, config, clock, fencing, evacuation, notifier };
  const gates = opts.gates ?? buildGates({ ...base, metrics, logger });
  const evacuationBudget = new EvacuationBudget(
    { site: config.evacuation.site_concurrency, zone: config.evacuation.zone_concurrency },
    { metrics, logger: logger.child({ component: "evacuation-budget" }) },
  );
  const deps: PipelineDeps = {
    ...base,
    logger,
    metrics,
    gates,
    evacuationBudget,
    ...(claimGuard ? { beforeSideEffect: (r: Recovery, what: string) => claimGuard.check(r, what), onRecoveryEnded: (id: string) => claimGuard.release(id) } : {}),
  };
  const coordinator = new Coordinator(deps);
  const commands = new OperatorCommands({ store, config, logger, metrics, fencing, cloud: evacuation, clock, engine: coordinator });
  return { config, logger, clock, metrics, store, changes, instanceId, drivers, ha, claimGuard, coordinator, commands, evacuationBudget };
}

/** The HTTP app over a graph: webhook, control API, probes, metrics, console. */
export function buildHttpApp(g: AppGraph, live: { status: () => Promise<StatusInfo>; readiness: () => Promise<Record<string, ReadinessCheck>> }): ReturnType<typeof createHttpApp> {
  const c = g.config;
  return createHttpApp({
    logger: g.logger,
    metrics: g.metrics,
    store: g.store,
    alerts: {
      store: g.store,
      logger: g.logger,
      metrics: g.metrics,
      clock: g.clock,
      auth:
        c.server.auth === "none"
          ? "none"
          : { ...(c.server.auth.bearer_token ? { bearer: c.server.auth.bearer_token } : {}), ...(c.server.auth.basic ? { basic: c.server.auth.basic } : {}) },
      bodyLimitBytes: c.server.body_limit_bytes,
      mapping: { label: c.alerts.host_label, ...(c.alerts.host_pattern ? { pattern: new RegExp(c.alerts.host_pattern) } : {}) },
      triggerAlertnames: c.alerts.trigger_alertnames,
      onJournaled: () => g.coordinator.kick(),
    },
    control: {
      store: g.store,
      commands: g.commands,
      adminToken: c.server.admin_token,
      status: live.status,
    },
    readiness: live.readiness,
    ...(c.console.enabled
      ? {
          console: createConsole({
            deps: consoleDepsFromApp({
              config: c,
              store: g.store,
              commands: g.commands,
              fencing: g.drivers.fencing,
              status: live.status,
              changes: g.changes,
              alertmanager: alertmanagerClient(c),
              clock: g.clock,
            }),
            adminToken: c.server.admin_token,
            config: c.console,
            logger: g.logger,
            clock: g.clock,
          }).router,
        }
      : {}),
  });
}
