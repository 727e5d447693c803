import type { FenceDevice, FenceResult, PowerState, PowerStatus } from "../../../src/fencing/types.js";
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
