import type { ComputeServiceInfo } from "../domain/ports/cloud.js";
import { SharedRead } from "../util/shared-read.js";
import type { Clock } from "../util/clock.js";
import { toComputeServiceInfo } from "./compute-services.js";
import type { NovaService } from "../openstack/nova.js";

/**
 * One listing of nova-compute services shared by every reader in the process: the router
 * deciding whether a host exists, the quiet re-checks of blocked recoveries, the storm guard.
 *
 * Each read says how old an answer it accepts (`maxAgeMs`, counted from when the request was
 * sent): see SharedRead.
 */
export class ComputeServiceListing {
  readonly #shared: SharedRead<ComputeServiceInfo[]>;

  constructor(fetch: () => Promise<{ services: NovaService[]; novaTime: string | null }>, clock: Clock) {
    this.#shared = new SharedRead(async (sentAt) => {
      const readAt = new Date(sentAt).toISOString();
      const { services, novaTime } = await fetch();
      return services.filter((s) => s.binary === "nova-compute").map((s) => ({ ...toComputeServiceInfo(s, novaTime), readAt }));
    }, clock);
  }

  /**
   * Every nova-compute service, each with `readAt` (when the request that read it was sent)
   * and `novaTime` (Nova's time of its answer): a shared answer is judged at the time Nova
   * gave it, however long after it is read here.
   */
  read(maxAgeMs: number, signal?: AbortSignal): Promise<ComputeServiceInfo[]> {
    return this.#shared.read(maxAgeMs, signal);
  }

  /** Forget the last listing: lifeboat itself just changed a service (isolation). */
  invalidate(): void {
    this.#shared.invalidate();
  }
}
