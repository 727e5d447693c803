import type { Logger } from "../logging.js";
import { isLifeboatReason } from "../domain/markers.js";
import { PermanentError } from "../domain/errors.js";
import type { ComputeServiceInfo, ReleasePort } from "../domain/ports/cloud.js";
import type { NovaClient, NovaService } from "../openstack/nova.js";
import { OpenStackApiError } from "../openstack/types.js";
import { ComputeServiceNotFoundError, findComputeService, toComputeServiceInfo } from "./compute-services.js";

/**
 * The Nova side of a release (`lifeboat release HOST`): the three writes and the one look the
 * engine's release stages need, each checking the service before it changes anything. The
 * order (power on, nova-compute back, `done` records completed, un-force, up, enable) is the
 * engine's; Nova refuses to un-force a host while its evacuation records are still `done`.
 */
export class NovaRelease implements ReleasePort {
  constructor(
    private readonly nova: NovaClient,
    private readonly logger: Logger,
    /** Called after every write: cached service listings must not show the old state. */
    private readonly changed: () => void = () => undefined,
  ) {}

  async evacuationRecordsLeft(host: string, signal?: AbortSignal): Promise<number> {
    const done = await this.nova.listMigrations({ source_compute: host, migration_type: "evacuation", status: "done" }, signal);
    return done.filter((m) => m.status === "done" && m.source_compute === host).length;
  }

  async unforce(host: string, signal?: AbortSignal): Promise<{ already: boolean; service: ComputeServiceInfo }> {
    const s = await this.service(host, signal);
    if (s.forced_down !== true) return { already: true, service: toComputeServiceInfo(s) };
    try {
      const after = await this.nova.updateService(String(s.id), { forced_down: false }, signal);
      this.logger.info({ host, serviceId: s.id }, "un-forced nova-compute (forced_down=false)");
      return { already: false, service: toComputeServiceInfo(after) };
    } catch (err) {
      if (err instanceof OpenStackApiError) {
        // Named for the operator, and still a refusal for the step's retry policy when it is one.
        const message = `Nova refused to un-force ${host} (${err.status}): ${err.message}`;
        throw err.permanent ? new PermanentError(message) : new Error(message);
      }
      throw err;
    } finally {
      this.changed();
    }
  }

  async enable(host: string, signal?: AbortSignal): Promise<{ result: "enabled" | "already" | "left-disabled"; message: string; service: ComputeServiceInfo }> {
    const s = await this.service(host, signal);
    if (s.status === "enabled") return { result: "already", message: "already enabled", service: toComputeServiceInfo(s) };
    if (!isLifeboatReason(s.disabled_reason)) {
      return { result: "left-disabled", message: `someone else disabled it ("${s.disabled_reason ?? ""}")`, service: toComputeServiceInfo(s) };
    }
    try {
      const after = await this.nova.updateService(String(s.id), { status: "enabled" }, signal);
      this.logger.info({ host, serviceId: s.id }, "enabled nova-compute");
      return { result: "enabled", message: `nova-compute on ${host} enabled`, service: toComputeServiceInfo(after) };
    } finally {
      this.changed();
    }
  }

  private async service(host: string, signal?: AbortSignal): Promise<NovaService> {
    const s = await findComputeService(this.nova, host, signal);
    if (!s) throw new ComputeServiceNotFoundError(`Nova has no nova-compute service on host ${host}`);
    return s;
  }
}
