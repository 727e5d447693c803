import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import { errorMessage } from "../util/errors.js";
import type { FencingConfig } from "./config.js";
import { defaultFenceRegistry, type DeviceConfigLike, type FenceDriverRegistry } from "./registry.js";
import type { ChainResult, FenceDevice, FenceResult, PowerStatus } from "../domain/ports/fencing.js";

/**
 * The fencing service: every configured host's escalation chain of devices. Power-off
 * tries the devices in order until one *confirms* off by read-back; nothing else counts.
 * Every device operation is counted and timed in the metrics and logged with the device's
 * label (never its credentials).
 */

export interface DeviceStatus {
  device: string;
  driver: string;
  status?: PowerStatus;
  error?: string;
}

export interface Fencing {
  /** Configured hosts, sorted. */
  hosts(): string[];
  hasHost(host: string): boolean;
  /** The chain, in order (empty for an unknown host). */
  devices(host: string): FenceDevice[];
  /** Try each device until one confirms off. */
  fenceOff(host: string, signal?: AbortSignal): Promise<ChainResult>;
  /** For release: the first device that confirms on. */
  powerOn(host: string, signal?: AbortSignal): Promise<ChainResult>;
  /** Every device of the chain, asked in parallel. */
  status(host: string, signal?: AbortSignal): Promise<DeviceStatus[]>;
}

export interface FencingDeps {
  logger: Logger;
  metrics: Metrics;
  registry?: FenceDriverRegistry;
}

type Operation = "status" | "off" | "on";

export function createFencing(config: FencingConfig, deps: FencingDeps): Fencing {
  const registry = deps.registry ?? defaultFenceRegistry();
  const log = deps.logger;
  const chains = new Map<string, FenceDevice[]>();
  for (const [host, entry] of Object.entries(config.hosts)) {
    chains.set(
      host,
      entry.devices.map((device: DeviceConfigLike, i) => {
        try {
          return registry.create(device, { logger: log.child({ host }) });
        } catch (err) {
          throw new Error(`fencing.hosts.${host}.devices.${i}: cannot set up the ${device.driver} device: ${errorMessage(err)}`, { cause: err });
        }
      }),
    );
  }

  // Every configured driver's series exported at zero from the start: Prometheus' increase()
  // cannot count the sample that creates a series, so the first failure would count 0.
  for (const driver of new Set([...chains.values()].flat().map((d) => d.driver))) {
    for (const operation of ["status", "off", "on"] as const) {
      deps.metrics.fenceDuration.zero({ driver, operation });
      for (const result of ["success", "failure"]) deps.metrics.fenceOperations.inc({ driver, operation, result }, 0);
    }
  }

  const record = (device: FenceDevice, operation: Operation, ok: boolean, startedMs: number): void => {
    deps.metrics.fenceOperations.inc({ driver: device.driver, operation, result: ok ? "success" : "failure" });
    deps.metrics.fenceDuration.observe({ driver: device.driver, operation }, (performance.now() - startedMs) / 1000);
  };

  /** One power operation on one device; a device that throws is a failed result, never an escape. */
  const power = async (host: string, device: FenceDevice, target: "off" | "on", signal?: AbortSignal): Promise<FenceResult> => {
    const started = performance.now();
    const fields = { host, device: device.label, driver: device.driver, operation: target };
    log.info(fields, `fencing: asking ${device.label} to power ${host} ${target}`);
    let result: FenceResult;
    try {
      result = await (target === "off" ? device.off(signal) : device.on(signal));
    } catch (err) {
      result = { ok: false, state: "unknown", already: false, message: errorMessage(err), durationMs: Math.round(performance.now() - started), attempts: 0 };
    }
    // Only a read-back of the wanted state is success, whatever else the device says.
    const confirmed = result.ok && result.state === target;
    if (!confirmed && result.ok) result = { ...result, ok: false, message: `device reported success but read back ${result.state}: ${result.message}` };
    record(device, target, confirmed, started);
    const outcome = { ...fields, ok: confirmed, state: result.state, already: result.already, attempts: result.attempts, durationMs: result.durationMs };
    if (confirmed) log.info({ ...outcome, detail: result.message }, `fencing: ${device.label} confirms ${host} ${target}`);
    else log.warn({ ...outcome, error: result.message }, `fencing: ${device.label} did not confirm ${host} ${target}`);
    return result;
  };

  const chain = async (host: string, target: "off" | "on", signal?: AbortSignal): Promise<ChainResult> => {
    const devices = chains.get(host);
    if (!devices) {
      log.error({ host, operation: target }, `no fencing configured for ${host}`);
      return { ok: false, attempts: [], message: `no fencing configured for ${host}` };
    }
    const attempts: ChainResult["attempts"] = [];
    for (const device of devices) {
      if (signal?.aborted) break;
      const result = await power(host, device, target, signal);
      attempts.push({ device: device.label, driver: device.driver, result });
      if (result.ok) return { ok: true, device: device.label, attempts, message: `${host} is ${target}, confirmed by ${device.label}: ${result.message}` };
    }
    const words = attempts.map((a) => `${a.device}: ${a.result.message}`).join("; ");
    const aborted = signal?.aborted ? ` (aborted: ${errorMessage(signal.reason)})` : "";
    const message = `no fencing device confirmed ${host} ${target}${aborted}${words ? ` — ${words}` : ""}`;
    log.error({ host, operation: target, devices: attempts.map((a) => a.device) }, message);
    return { ok: false, attempts, message };
  };

  return {
    hosts: () => [...chains.keys()].sort(),
    hasHost: (host) => chains.has(host),
    devices: (host) => [...(chains.get(host) ?? [])],
    fenceOff: (host, signal) => chain(host, "off", signal),
    powerOn: (host, signal) => chain(host, "on", signal),
    status: async (host, signal) =>
      Promise.all(
        (chains.get(host) ?? []).map(async (device): Promise<DeviceStatus> => {
          const started = performance.now();
          try {
            const status = await device.status(signal);
            record(device, "status", true, started);
            return { device: device.label, driver: device.driver, status };
          } catch (err) {
            record(device, "status", false, started);
            log.warn({ host, device: device.label, driver: device.driver, operation: "status", error: errorMessage(err) }, `fencing: ${device.label} did not answer a status query`);
            return { device: device.label, driver: device.driver, error: errorMessage(err) };
          }
        }),
      ),
  };
}
