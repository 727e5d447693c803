import { FRESH_READ, type CloudPort, type ComputeServiceInfo, type EvacuationOutcome, type ReleasePort } from "../domain/ports/cloud.js";
import type { ChainResult, FenceDevice, FenceResult, FencingPort, PowerState } from "../domain/ports/fencing.js";
import { isLifeboatReason } from "../domain/markers.js";
import type { Logger } from "../logging.js";
import type { HostHold, StagePorts } from "./context.js";

/**
 * A dry run (`recovery.dry_run: true`, `lifeboat recover HOST --dry-run`) is a choice of
 * ports: for a dry-run recovery the runner hands its stages these recording variants, and
 * the stages run exactly as for a real one. Reads pass through to the real port, so every
 * decision is taken on what Nova and the BMCs say now. A write sends nothing: it answers
 * what would have happened, marked `dryRun: true` (an evacuation: `would-evacuate`), in
 * words that start "dry run: would", and logs it. The stages journal those answers like
 * real ones: that is what a dry run shows.
 */
export function dryRunPorts(real: StagePorts, log: Logger): StagePorts {
  const dry = log.child({ dryRun: true });
  return { fencing: dryRunFencing(real.fencing, dry), evacuation: dryRunCloud(real.evacuation, dry), hold: dryRunHold(dry) };
}

/** Power status passes through; power off and on (chain or device) send nothing. */
export function dryRunFencing(real: FencingPort, log: Logger): FencingPort {
  const chain = async (host: string, wanted: "off" | "on", signal?: AbortSignal): Promise<ChainResult> => {
    const [first] = real.devices(host);
    if (!first) return { ok: false, attempts: [], message: `no fencing configured for ${host}`, dryRun: true };
    // What each device reads now stands in for its attempt: the chain would start there.
    const status = await real.status(host, signal);
    const message = `dry run: would power ${wanted} ${host} through ${first.label}`;
    log.info({ host, devices: status.map((s) => s.device), status }, message);
    const attempts = status.map((s) => ({
      device: s.device,
      driver: s.driver,
      result: readBack(s.status?.state ?? "unknown", wanted, `dry run: ${s.error ?? s.status?.raw ?? "no answer"}`),
    }));
    return { ok: true, attempts, message, dryRun: true, wouldUse: first.label };
  };
  return {
    hosts: () => real.hosts(),
    hasHost: (host) => real.hasHost(host),
    devices: (host) => real.devices(host).map((d) => dryRunDevice(d, log)),
    status: (host, signal) => real.status(host, signal),
    fenceOff: (host, signal) => chain(host, "off", signal),
    powerOn: (host, signal) => chain(host, "on", signal),
  };
}

function dryRunDevice(real: FenceDevice, log: Logger): FenceDevice {
  const power = async (wanted: "off" | "on", signal?: AbortSignal): Promise<FenceResult> => {
    const now = await real.status(signal);
    const message = `dry run: would power ${wanted} through ${real.label} (${now.raw})`;
    log.info({ device: real.label }, message);
    return readBack(now.state, wanted, message);
  };
  return {
    driver: real.driver,
    label: real.label,
    status: (signal) => real.status(signal),
    off: (signal) => power("off", signal),
    on: (signal) => power("on", signal),
  };
}

/** A device's answer when nothing was sent: what it reads, and whether that is already the wanted state. */
function readBack(state: PowerState, wanted: "off" | "on", message: string): FenceResult {
  return { ok: state === wanted, state, already: state === wanted, message, durationMs: 0, attempts: 0, dryRun: true };
}

/**
 * Nova reads pass through; isolate, evacuate, the lock release and the release's un-force
 * and enable send nothing. A process's own lifecycle (`start`, `forgetLocks`) is not a
 * stage's to call and is left out.
 */
export function dryRunCloud(real: CloudPort, log: Logger): CloudPort {
  const capacity = real.capacity?.bind(real);
  const listLifeboatLocks = real.listLifeboatLocks?.bind(real);
  return {
    driver: real.driver,
    getComputeService: (host, signal, read) => real.getComputeService(host, signal, read),
    listComputeServices: (signal, read) => real.listComputeServices(signal, read),
    listInstances: (host, signal) => real.listInstances(host, signal),
    ...(capacity ? { capacity } : {}),
    ...(listLifeboatLocks ? { listLifeboatLocks } : {}),
    isolate: async (host, reason, signal) => {
      const service = await currentService(real, host, signal);
      const already = service.forcedDown && service.status === "disabled";
      const message = already
        ? `dry run: would send nothing: nova-compute on ${host} is already forced down and disabled`
        : "dry run: would force the compute service down and disable it";
      log.info({ host, service, wouldSetReason: reason }, message);
      return { already, service, message, dryRun: true, wouldSetReason: reason };
    },
    evacuate: (instance, sourceHost, opts) => {
      const to = opts.targetHost ? ` to ${opts.targetHost}` : "";
      const message = `dry run: would evacuate ${instance.name} (${instance.id}) from ${sourceHost}${to}`;
      log.info({ instance: instance.id, name: instance.name, attempt: opts.attempt }, message);
      const outcome: EvacuationOutcome = { result: "would-evacuate", dryRun: true, message, ...(opts.targetHost ? { targetHost: opts.targetHost } : {}) };
      return Promise.resolve(outcome);
    },
    ...(real.releaseLifeboatLock
      ? {
          releaseLifeboatLock: (serverId: string, recoveryId: string) => {
            log.info({ server: serverId, recovery: recoveryId }, "dry run: would take lifeboat's lock off the server if it is still there");
            return Promise.resolve("would-unlock" as const);
          },
        }
      : {}),
    ...(real.release ? { release: dryRunRelease(real, real.release, log) } : {}),
  };
}

function dryRunRelease(cloud: CloudPort, real: ReleasePort, log: Logger): ReleasePort {
  return {
    evacuationRecordsLeft: (host, signal) => real.evacuationRecordsLeft(host, signal),
    unforce: async (host, signal) => {
      const service = await currentService(cloud, host, signal);
      log.info({ host, service }, service.forcedDown ? `dry run: would un-force nova-compute on ${host}` : `dry run: would send nothing: nova-compute on ${host} is not forced down`);
      return { already: !service.forcedDown, service, dryRun: true };
    },
    enable: async (host, signal) => {
      const service = await currentService(cloud, host, signal);
      const [result, message] =
        service.status === "enabled"
          ? (["already", `dry run: would send nothing: nova-compute on ${host} is enabled`] as const)
          : isLifeboatReason(service.disabledReason)
            ? (["enabled", `dry run: would enable nova-compute on ${host}`] as const)
            : (["left-disabled", `dry run: would leave nova-compute on ${host} disabled: someone else disabled it`] as const);
      log.info({ host, service }, message);
      return { result, message, service, dryRun: true };
    },
  };
}

/** The service as Nova shows it now; a write on a host Nova does not know would fail, and so does its dry run. */
async function currentService(cloud: CloudPort, host: string, signal?: AbortSignal): Promise<ComputeServiceInfo> {
  const service = await cloud.getComputeService(host, signal, FRESH_READ);
  if (!service) throw new Error(`Nova has no nova-compute service on host ${host}`);
  return service;
}

/** The host hold is not written: a dry run leaves lifeboat's view of the host as it was. */
function dryRunHold(log: Logger): HostHold {
  return {
    hold: (by) => {
      log.info({ by }, "dry run: would hold the host down until an operator releases it");
      return Promise.resolve();
    },
    lift: (why) => {
      log.info({ why }, "dry run: would lift the hold on the host");
      return Promise.resolve();
    },
  };
}
