import type { Drivers } from "./compose.js";
import type { Config } from "../config/schema.js";
import { CloudReachability, trackReachability } from "../openstack/reachability.js";
import { createNovaEvacuationDriver, novaDriverOptions } from "../nova/driver.js";
import { NovaServiceMonitor } from "../nova/monitor.js";
import { createFencing } from "../fencing/service.js";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import { createNotifier } from "../notify/service.js";
import { createKeystoneSession, type KeystoneSession } from "../openstack/keystone.js";
import type { Store } from "../domain/journal.js";

export interface BuiltDrivers extends Drivers {
  session: KeystoneSession;
  close(): void;
}

/** Build the drivers the config names: fencing chains, Keystone + Nova, notification channels. */
export function buildDrivers(config: Config, deps: { logger: Logger; metrics: Metrics; store: Store; env?: NodeJS.ProcessEnv }): BuiltDrivers {
  const fencing = createFencing(config.fencing, { logger: deps.logger.child({ component: "fencing" }), metrics: deps.metrics });
  // Every OpenStack call's outcome is remembered for /readyz, which never calls the cloud itself.
  const cloudReachability = new CloudReachability();
  const session = trackReachability(createKeystoneSession(config.openstack, { logger: deps.logger, ...(deps.env ? { env: deps.env } : {}) }), cloudReachability);
  const evacuation = createNovaEvacuationDriver({ session, logger: deps.logger }, novaDriverOptions(config.evacuation));
  const notifier = createNotifier(config.notifications, { store: deps.store, logger: deps.logger, metrics: deps.metrics, session });
  return {
    fencing,
    evacuation,
    notifier,
    session,
    cloudReachability,
    monitor: (intervalMs, onEvents) => new NovaServiceMonitor(evacuation.nova, { intervalMs, staleSeconds: config.monitor.stale_seconds, onEvents, logger: deps.logger }),
    delivery: notifier.delivery,
    close: () => notifier.close(),
  };
}
