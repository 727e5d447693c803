import type { Logger } from "../logging.js";
import type { ComputeServiceInfo, IsolationResult } from "../domain/ports/cloud.js";
import type { NovaClient, NovaService } from "../openstack/nova.js";
import { isLifeboatReason, lifeboatReason } from "../domain/markers.js";

/**
 * nova-compute services: reading them as lifeboat's ComputeServiceInfo, isolating a failed
 * host (force down first, then disable with a `lifeboat:` reason), and finding the hosts
 * lifeboat isolated (start-up reconciliation).
 */

/** os-services' `updated_at` is naive UTC ("2026-11-25T13:20:48.000000"): make it ISO 8601 with Z. */
export function naiveUtcToIso(value: string | null | undefined): string | null {
  if (!value) return null;
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(value);
  const ms = Date.parse(hasZone ? value : `${value}Z`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** `novaTime`: Nova's time of the answer the service came from (its Date header), when known. */
export function toComputeServiceInfo(s: NovaService, novaTime?: string | null): ComputeServiceInfo {
  const info: ComputeServiceInfo = {
    host: s.host,
    state: s.state === "up" ? "up" : "down",
    status: s.status === "disabled" ? "disabled" : "enabled",
    forcedDown: s.forced_down === true,
    disabledReason: s.disabled_reason ?? null,
    updatedAt: naiveUtcToIso(s.updated_at),
    zone: s.zone ?? null,
  };
  if (novaTime) info.novaTime = novaTime;
  return info;
}

export async function findComputeService(nova: NovaClient, host: string, signal?: AbortSignal): Promise<NovaService | null> {
  const services = await nova.listServices({ binary: "nova-compute", host }, signal);
  return services.find((s) => s.host === host && s.binary === "nova-compute") ?? null;
}

/** A new request about this host's nova-compute alone, with Nova's time of the answer. */
export async function readComputeService(nova: NovaClient, host: string, signal?: AbortSignal): Promise<ComputeServiceInfo | null> {
  const { services, novaTime } = await nova.readServices({ binary: "nova-compute", host }, signal);
  const svc = services.find((s) => s.host === host && s.binary === "nova-compute");
  return svc ? toComputeServiceInfo(svc, novaTime) : null;
}

export class ComputeServiceNotFoundError extends Error {
  override name = "ComputeServiceNotFoundError";
}

/**
 * Force the host's nova-compute down, then disable it with `reason` — in that order: a
 * disable while Nova still believes the service up makes nova-api wait ~60 s for an RPC to
 * the dead host. Idempotent: a service already forced down and disabled with a lifeboat
 * reason gets nothing. A human's disable (non-lifeboat reason) is kept as it is.
 */
export async function isolateComputeService(
  nova: NovaClient,
  host: string,
  reason: string,
  deps: { logger: Logger; signal?: AbortSignal },
): Promise<IsolationResult> {
  const log = deps.logger.child({ host });
  const svc = await findComputeService(nova, host, deps.signal);
  if (!svc) throw new ComputeServiceNotFoundError(`Nova has no nova-compute service on host ${host}`);
  const ourReason = lifeboatReason(reason);
  const humanDisabled = svc.status === "disabled" && !isLifeboatReason(svc.disabled_reason);
  const needForce = svc.forced_down !== true;
  const needDisable = svc.status !== "disabled";
  if (!needForce && !needDisable) {
    const info = toComputeServiceInfo(svc);
    const msg = humanDisabled
      ? `nova-compute on ${host} already forced down; disabled by someone else ("${svc.disabled_reason ?? ""}"), reason kept`
      : `nova-compute on ${host} already forced down and disabled ("${svc.disabled_reason ?? ""}")`;
    log.info({ service: info }, msg);
    return { already: true, service: info, message: msg };
  }
  let current: NovaService = svc;
  const id = String(svc.id);
  if (needForce) {
    current = await nova.updateService(id, { forced_down: true }, deps.signal);
    log.info({ serviceId: id }, `forced nova-compute on ${host} down`);
  }
  if (needDisable) {
    current = await nova.updateService(id, { status: "disabled", disabled_reason: ourReason }, deps.signal);
    log.info({ serviceId: id, reason: ourReason }, `disabled nova-compute on ${host}`);
  }
  const info = toComputeServiceInfo(current);
  const parts = [needForce ? "forced down" : "was already forced down", needDisable ? `disabled ("${ourReason}")` : humanDisabled ? `left disabled by someone else ("${svc.disabled_reason ?? ""}")` : "was already disabled"];
  return { already: false, service: info, message: `nova-compute on ${host}: ${parts.join(", ")}` };
}
