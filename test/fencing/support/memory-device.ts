import type { CommonDeviceConfig } from "../../../src/fencing/config.js";
import { DeviceError, PowerLoopDevice, type PowerTarget } from "../../../src/fencing/power-loop.js";
import type { FenceDevice, FenceResult, PowerState, PowerStatus } from "../../../src/domain/ports/fencing.js";
import { defaultFenceRegistry, type FenceDriverRegistry } from "../../../src/fencing/registry.js";

/** An in-memory fence device for chain and table tests, registered as driver "memory". */
export interface MemoryDeviceConfig {
  driver: "memory";
  name: string;
  power?: PowerState;
  /** What off/on does: work (default), fail with a message, throw, claim success without changing power. */
  behaviour?: "work" | "fail" | "throw" | "lie";
  /** status() rejects with this. */
  statusError?: string;
  delayMs?: number;
}

export const memoryStats = { inFlight: 0, maxInFlight: 0, calls: [] as string[] };

export class MemoryDevice implements FenceDevice {
  readonly driver = "memory";
  readonly label: string;
  power: PowerState;

  constructor(private readonly config: MemoryDeviceConfig) {
    this.label = config.name;
    this.power = config.power ?? "on";
  }

  private async track<T>(what: string, fn: () => T): Promise<T> {
    memoryStats.calls.push(`${this.label} ${what}`);
    memoryStats.inFlight++;
    memoryStats.maxInFlight = Math.max(memoryStats.maxInFlight, memoryStats.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.config.delayMs ?? 1));
      return fn();
    } finally {
      memoryStats.inFlight--;
    }
  }

  status(): Promise<PowerStatus> {
    return this.track("status", () => {
      if (this.config.statusError) throw new Error(this.config.statusError);
      return { state: this.power, raw: `memory power ${this.power}` };
    });
  }

  off(): Promise<FenceResult> {
    return this.set("off");
  }

  on(): Promise<FenceResult> {
    return this.set("on");
  }

  private set(target: "on" | "off"): Promise<FenceResult> {
    return this.track(target, () => {
      const b = this.config.behaviour ?? "work";
      if (b === "throw") throw new Error(`${this.label} exploded`);
      if (b === "fail") return { ok: false, state: this.power, already: false, message: `${this.label} refuses`, durationMs: 1, attempts: 1 };
      if (b === "lie") return { ok: true, state: this.power, already: false, message: `${this.label} says done`, durationMs: 1, attempts: 1 };
      const already = this.power === target;
      this.power = target;
      return { ok: true, state: target, already, message: `${this.label} ${target}`, durationMs: 1, attempts: already ? 0 : 1 };
    });
  }
}

export function memoryRegistry(): FenceDriverRegistry {
  return defaultFenceRegistry().register<MemoryDeviceConfig>("memory", (c) => new MemoryDevice(c));
}

/**
 * An in-memory device that goes through the shared power loop (src/fencing/power-loop.ts),
 * for tests of the loop itself: its status reads can be scripted to answer what a
 * misbehaving BMC would, and every device call is logged ("read off", "read error", "off").
 */
export class ScriptedPowerDevice extends PowerLoopDevice {
  readonly driver = "scripted";
  readonly label = "scripted device";
  power: "on" | "off";
  /** The next reads answer these, one per read, whatever the power is; "error" fails the read. */
  readonly answers: (PowerState | "error")[];
  /** Power commands change nothing (a chassis that ignores them). */
  stuck = false;
  readonly log: string[] = [];

  constructor(opts: { power: "on" | "off"; answers?: (PowerState | "error")[]; timing?: Partial<CommonDeviceConfig> }) {
    super({
      timeout_seconds: 10,
      command_timeout_seconds: 1,
      retries: 0,
      retry_delay_seconds: 0,
      power_wait_seconds: 0,
      power_timeout_seconds: 0.5,
      poll_interval_seconds: 0.02,
      confirm_interval_seconds: 0.01,
      ...opts.timing,
    });
    this.power = opts.power;
    this.answers = [...(opts.answers ?? [])];
  }

  readStatus(): Promise<PowerStatus> {
    const answer = this.answers.shift() ?? this.power;
    this.log.push(`read ${answer}`);
    if (answer === "error") return Promise.reject(new DeviceError("no answer from the BMC"));
    return Promise.resolve({ state: answer, raw: `power is ${answer}` });
  }

  sendPower(_session: undefined, target: PowerTarget): Promise<string> {
    this.log.push(target);
    if (!this.stuck) this.power = target;
    return Promise.resolve(`${target} accepted`);
  }
}
