import type { Store } from "../domain/journal.js";
import type { InFlightEvacuation } from "./evacuation-budget.js";

/**
 * The failed host's availability zone as Nova gave it when the isolating stage forced its
 * nova-compute down: the `isolate` step journals Nova's answer (the service, its zone
 * included), so a resumed recovery and a new leader read the same zone without asking Nova.
 * null when unknown (Nova gave none).
 */
export async function recoveryZone(store: Store, recoveryId: string): Promise<string | null> {
  const step = await store.getStep(recoveryId, "isolate");
  return zoneOf(step?.state === "succeeded" ? step.result : undefined);
}

function zoneOf(result: unknown): string | null {
  if (typeof result !== "object" || result === null || !("service" in result)) return null;
  const service: unknown = result.service;
  if (typeof service !== "object" || service === null || !("zone" in service)) return null;
  return typeof service.zone === "string" && service.zone !== "" ? service.zone : null;
}

/**
 * The evacuations the journal shows in flight: instances in state `evacuating` of the open
 * recoveries in `evacuating` (a call that may have been sent, or a sent one still tracked).
 * Dry runs send nothing and are left out.
 */
export async function inFlightEvacuations(store: Store): Promise<InFlightEvacuation[]> {
  const open = await store.listRecoveries({ state: "evacuating", limit: 100_000 });
  const out: InFlightEvacuation[] = [];
  for (const r of open) {
    if (r.dryRun) continue;
    const running = (await store.instances(r.id)).filter((i) => i.state === "evacuating");
    if (running.length === 0) continue;
    const zone = await recoveryZone(store, r.id);
    for (const i of running) out.push({ recoveryId: r.id, instanceId: i.instanceId, zone });
  }
  return out;
}
