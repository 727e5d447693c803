import type { Config } from "../config/schema.js";
import type { EvacuationDriver } from "../evacuation/types.js";
import type { FencingPort } from "../recovery/ports.js";
import type { Store } from "../store/types.js";
import type { Clock } from "../util/clock.js";
import { bmcGate } from "./gates/bmc.js";
import { novaServiceGate } from "./gates/nova-service.js";
import { approvalGate, cooldownGate, exclusionGate, pauseGate } from "./gates/policy.js";
import type { Gate } from "./types.js";

export interface GateDeps {
  config: Config;
  store: Store;
  fencing: FencingPort;
  evacuation: EvacuationDriver;
  clock: Clock;
}

/**
 * The gate chain, in the order it runs: cheap policy first, then the evidence that the
 * host is dead. (Every gate runs every time: the operator sees every reason at once.)
 */
export function buildGates(deps: GateDeps): Gate[] {
  const g = deps.config.gates;
  const now = (): number => deps.clock.now();
  const gates: Gate[] = [exclusionGate(g.exclude_hosts), pauseGate(deps.store), approvalGate(g.require_approval), cooldownGate(deps.store, g.cooldown_seconds, now)];
  for (const c of g.confirmations) {
    switch (c.driver) {
      case "nova-service":
        gates.push(novaServiceGate(deps.evacuation, { staleSeconds: c.stale_seconds, checks: c.checks, intervalSeconds: c.interval_seconds, now }));
        break;
      case "bmc":
        gates.push(bmcGate(deps.fencing));
        break;
      case "alerts":
      case "prometheus":
        break;
    }
  }
  return gates;
}
