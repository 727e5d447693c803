/**
 * The one fencing contract every device implements (fence-agents style): read the power
 * state, power off and prove it by read-back, power on for release.
 *
 * A device never reports `off` unless the device itself read back "off". Failures carry
 * the device's own words (ipmitool's stderr, the Redfish error body, virsh's message).
 */

export type PowerState = "on" | "off" | "unknown";

export interface PowerStatus {
  state: PowerState;
  /** The device's own answer, e.g. "Chassis Power is off" or `PowerState: PoweringOff`. */
  raw: string;
}

export interface FenceResult {
  ok: boolean;
  /** Power state read back at the end of the operation. */
  state: PowerState;
  /** The device was already in the wanted state: nothing was sent. */
  already: boolean;
  /** Plain-words account, including the device's own words on failure. */
  message: string;
  durationMs: number;
  attempts: number;
  /** Nothing was sent: a dry run's answer (src/engine/dry-run.ts). */
  dryRun?: true;
}

export interface FenceDevice {
  /** Registry name of the driver: ipmi, redfish, libvirt, noop… */
  readonly driver: string;
  /** Where the device is, for tables and logs (never credentials): "ipmi 10.0.0.7:623". */
  readonly label: string;
  status(signal?: AbortSignal): Promise<PowerStatus>;
  /** Power off, then poll until the device reads back off (or the deadline passes). */
  off(signal?: AbortSignal): Promise<FenceResult>;
  /** Power on (release of a repaired host). */
  on(signal?: AbortSignal): Promise<FenceResult>;
}

/** Result of running a host's escalation chain (devices tried in order until one confirms off). */
export interface ChainResult {
  ok: boolean;
  /** The device that confirmed off, when ok. */
  device?: string;
  attempts: { device: string; driver: string; result: FenceResult }[];
  message: string;
  /**
   * Nothing was sent: a dry run's answer (src/engine/dry-run.ts). `message` says what would
   * have been done; `attempts` hold what each device reads now (`attempts: 0`).
   */
  dryRun?: true;
  /** Dry run: the device the chain would try first. */
  wouldUse?: string;
}

/**
 * What the engine needs from fencing: a host's escalation chain (src/fencing/service.ts),
 * powered off and proven off by read-back, powered on for a release, and its devices' state.
 */
export interface FencingPort {
  /** Hosts with a fencing chain, sorted. */
  hosts(): string[];
  hasHost(host: string): boolean;
  devices(host: string): FenceDevice[];
  fenceOff(host: string, signal?: AbortSignal): Promise<ChainResult>;
  powerOn(host: string, signal?: AbortSignal): Promise<ChainResult>;
  status(host: string, signal?: AbortSignal): Promise<{ device: string; driver: string; status?: PowerStatus; error?: string }[]>;
}
