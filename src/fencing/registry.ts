import type { Logger } from "../logging.js";
import type { IpmiDeviceConfig, LibvirtDeviceConfig, NoopDeviceConfig, RedfishDeviceConfig } from "./config.js";
import { IpmiDevice } from "./ipmi.js";
import { LibvirtDevice } from "./libvirt.js";
import { NoopDevice } from "./noop.js";
import { RedfishDevice } from "./redfish.js";
import type { FenceDevice } from "../domain/ports/fencing.js";

/** What a factory gets besides its device's config. */
export interface FenceDeviceContext {
  logger: Logger;
}

/** Any device config: the registry only looks at `driver`. */
export interface DeviceConfigLike {
  driver: string;
}

export type FenceDeviceFactory<C extends DeviceConfigLike = DeviceConfigLike> = (config: C, ctx: FenceDeviceContext) => FenceDevice;

/**
 * Driver name → factory. Adding a driver is one file and one `register` call; tests
 * register their own (an in-memory device) or replace a built-in one.
 */
export class FenceDriverRegistry {
  readonly #factories = new Map<string, FenceDeviceFactory>();

  register<C extends DeviceConfigLike>(driver: string, factory: FenceDeviceFactory<C>): this {
    // The factory's own config type is the caller's promise that configs of this driver fit it.
    this.#factories.set(driver, factory as unknown as FenceDeviceFactory);
    return this;
  }

  has(driver: string): boolean {
    return this.#factories.has(driver);
  }

  names(): string[] {
    return [...this.#factories.keys()].sort();
  }

  create(config: DeviceConfigLike, ctx: FenceDeviceContext): FenceDevice {
    const factory = this.#factories.get(config.driver);
    if (!factory) throw new Error(`unknown fencing driver "${config.driver}" (known: ${this.names().join(", ")})`);
    return factory(config, ctx);
  }
}

/** A registry with the built-in drivers: ipmi, redfish, libvirt, noop. */
export function defaultFenceRegistry(): FenceDriverRegistry {
  return new FenceDriverRegistry()
    .register<IpmiDeviceConfig>("ipmi", (c, ctx) => new IpmiDevice(c, ctx))
    .register<RedfishDeviceConfig>("redfish", (c, ctx) => new RedfishDevice(c, ctx))
    .register<LibvirtDeviceConfig>("libvirt", (c, ctx) => new LibvirtDevice(c, ctx))
    .register<NoopDeviceConfig>("noop", (c, ctx) => new NoopDevice(c, ctx));
}
