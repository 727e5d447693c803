import type { Logger } from "../logging.js";
import type { NoopDeviceConfig } from "./config.js";
import type { FenceDevice, FenceResult, PowerStatus } from "../domain/ports/fencing.js";

/**
 * A device that fences nothing and says the host is off. Only for tests and demos: the
 * config refuses it without `fencing.unsafe_noop: true`, and it warns on construction and
 * on every use, because a recovery behind it evacuates instances from a host that may
 * still be running them.
 */
export class NoopDevice implements FenceDevice {
  readonly driver = "noop";
  readonly label: string;
  readonly #logger: Logger;

  constructor(config: NoopDeviceConfig, ctx: { logger: Logger }) {
    this.label = config.name ?? "noop";
    this.#logger = ctx.logger;
    this.#warn("configured");
  }

  status(): Promise<PowerStatus> {
    this.#warn("status");
    return Promise.resolve({ state: "off", raw: "noop device: no power was read" });
  }

  off(): Promise<FenceResult> {
    this.#warn("off");
    return Promise.resolve(this.#result("off", "noop device: nothing was powered off — the host may still be running (unsafe_noop)"));
  }

  on(): Promise<FenceResult> {
    this.#warn("on");
    return Promise.resolve(this.#result("on", "noop device: nothing was powered on (unsafe_noop)"));
  }

  #result(state: "on" | "off", message: string): FenceResult {
    return { ok: true, state, already: false, message, durationMs: 0, attempts: 0 };
  }

  #warn(operation: string): void {
    this.#logger.warn(
      { device: this.label, driver: "noop", operation },
      "UNSAFE: noop fencing device in use — it powers nothing off; never use it with real hosts",
    );
  }
}
