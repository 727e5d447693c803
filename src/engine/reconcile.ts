import type { CloudPort } from "../domain/ports/cloud.js";
import type { Logger } from "../logging.js";
import { isLifeboatReason } from "../domain/markers.js";
import type { Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";
import { updateHostState } from "./host-states.js";

export interface ReconcileReport {
  isolated: string[];
  holdsAdded: string[];
  holdsCleared: string[];
}

/**
 * At start, compare what Nova says lifeboat did with what the store says. A host whose
 * nova-compute is forced down with a `lifeboat:` reason is held down (a new alert must not
 * fence it again), even if this store never heard of the recovery (a restored or new
 * store). A hold on a host that Nova shows back in service was lifted by a human: drop it.
 */
export async function reconcileIsolatedHosts(deps: { store: Store; evacuation: CloudPort; logger: Logger; signal?: AbortSignal; now: () => string }): Promise<ReconcileReport> {
  const report: ReconcileReport = { isolated: [], holdsAdded: [], holdsCleared: [] };
  let services;
  try {
    services = await deps.evacuation.listComputeServices(deps.signal);
  } catch (err) {
    deps.logger.warn({ err: errorMessage(err) }, "start-up reconciliation skipped: cannot list compute services");
    return report;
  }
  // Every host's hold in one read (a site of hundreds of hosts made as many round trips to etcd).
  const holds = new Map((await deps.store.listHostStates()).map((h) => [h.host, h]));
  for (const s of services) {
    const hold = holds.get(s.host) ?? null;
    const ours = s.forcedDown && isLifeboatReason(s.disabledReason);
    if (ours) {
      report.isolated.push(s.host);
      const recoveryId = /recovery (\S+)/.exec(s.disabledReason ?? "")?.[1] ?? "unknown";
      const known = recoveryId !== "unknown" ? await deps.store.getRecovery(recoveryId) : null;
      if (!hold?.fenced) {
        await updateHostState(deps.store, s.host, (cur) => (cur?.fenced ? null : { host: s.host, fenced: true, recoveryId, by: "start-up reconciliation", at: deps.now() }));
        report.holdsAdded.push(s.host);
        deps.logger.warn(
          { host: s.host, recovery: recoveryId, knownToStore: known !== null, reason: s.disabledReason },
          "host isolated by lifeboat in Nova: held down until `lifeboat release`",
        );
      }
    } else if (hold?.fenced && !s.forcedDown && s.status === "enabled" && s.state === "up") {
      await updateHostState(deps.store, s.host, (cur) =>
        cur?.fenced ? { host: s.host, fenced: false, recoveryId: cur.recoveryId, by: "start-up reconciliation (back in service in Nova)", at: deps.now() } : null,
      );
      report.holdsCleared.push(s.host);
      deps.logger.warn({ host: s.host, recovery: hold.recoveryId }, "host held by lifeboat is back in service in Nova: hold cleared");
    }
  }
  return report;
}
