import type { ComputeServiceInfo } from "../domain/ports/cloud.js";
import { untilAborted } from "../util/abort.js";
import type { Clock } from "../util/clock.js";
import { toComputeServiceInfo } from "./compute-services.js";
import type { NovaService } from "../openstack/nova.js";

/**
 * One listing of nova-compute services shared by every reader in the process: the router
 * deciding whether a host exists, the quiet re-checks of blocked recoveries, the storm guard.
 *
 * Each read says how old an answer it accepts (`maxAgeMs`, counted from when the request was
 * sent). The last listing sent within that time — answered or still in flight — is shared;
 * otherwise a new one is sent, and later readers share that one. A failed listing is shared
 * the same way, so a burst of readers while Nova is down or slow costs one request per
 * interval, not one each. A reader's signal ends its own wait, never the shared request
 * (which the session bounds with its timeout).
 */
export class ComputeServiceListing {
  #last: { sentAt: number; result: Promise<ComputeServiceInfo[]> } | null = null;

  constructor(
    private readonly fetch: () => Promise<{ services: NovaService[]; novaTime: string | null }>,
    private readonly clock: Clock,
  ) {}

  /**
   * Every nova-compute service, each with `readAt` (when the request that read it was sent)
   * and `novaTime` (Nova's time of its answer): a shared answer is judged at the time Nova
   * gave it, however long after it is read here.
   */
  read(maxAgeMs: number, signal?: AbortSignal): Promise<ComputeServiceInfo[]> {
    const now = this.clock.now();
    let last = this.#last;
    if (!last || now - last.sentAt > maxAgeMs) {
      const readAt = new Date(now).toISOString();
      const result = this.fetch().then(({ services, novaTime }) =>
        services.filter((s) => s.binary === "nova-compute").map((s) => ({ ...toComputeServiceInfo(s, novaTime), readAt })),
      );
      // Readers may all have gone (aborted): the rejection is still theirs to see, not unhandled.
      result.catch(() => undefined);
      last = { sentAt: now, result };
      this.#last = last;
    }
    return untilAborted(last.result, signal);
  }

  /** Forget the last listing: lifeboat itself just changed a service (isolation). */
  invalidate(): void {
    this.#last = null;
  }
}
