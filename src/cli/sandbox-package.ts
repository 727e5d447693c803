import { createRequire } from "node:module";
import { errorMessage } from "../util/errors.js";

/**
 * The simulated site (`lifeboat demo`, `lifeboat sandbox`) is a package of its own,
 * @lifeboat/sandbox (packages/sandbox in the repository): a development install (`npm ci`)
 * links it, a production install (`npm ci --omit=dev`, the container image) leaves it out
 * together with its fake Keystone/Nova/Redfish and its mail-parsing dependencies. These two
 * commands load it at run time; nothing else in lifeboat does, and lifeboat compiles
 * without it. The part of its API they use is written down here (test/cli/sandbox-package.test.ts
 * checks that the package still offers it).
 */
export const SANDBOX_PACKAGE = "@lifeboat/sandbox";

export interface SiteScenarioServer {
  host: string;
  status?: string;
  metadata?: Record<string, string>;
  /** The first `failTimes` evacuations of this server fail. */
  evacuation?: { failTimes?: number };
}

export interface SiteScenario {
  servers: SiteScenarioServer[];
}

export interface SiteOptions<Scenario extends SiteScenario = SiteScenario> {
  host?: string;
  ports?: { cloud?: number; redfish?: number; smtp?: number };
  controlPort?: number;
  /** Time a Redfish power change takes. */
  powerDelayMs?: number;
  cloud?: { scenario?: Scenario; generate?: { hosts?: number; serversPerHost?: number }; evacuationDurationMs?: number };
}

export interface SiteView {
  hosts: { host: string; zone: string; rack: string | null; power: string; service: string; forcedDown: boolean; disabled: boolean; servers: number }[];
  servers: { id: string; name: string; project: string; host: string | null; status: string }[];
}

export interface Site {
  cloud: { url: string; admin: { username: string; project_name: string } };
  redfish: { url: string };
  smtp: { port: number; messages: { to: string[]; subject: string }[] };
  controlUrl?: string;
  /** The host dies: nova-compute stops, its BMC still says On. */
  failHost(host: string): void;
  /** The hosts of each rack (a scenario with racks: `rackScenario`). */
  racks: ReadonlyMap<string, readonly string[]>;
  /** A whole rack loses power: its hosts are off (as their BMCs say) and their nova-compute silent. Returns the rack's hosts. */
  failRack(rack: string): string[];
  /** The sections of a lifeboat config that point at this site (plain data). */
  config(opts?: { graceSeconds?: number }): Record<string, unknown>;
  view(): SiteView;
  close(): Promise<void>;
}

/** `Scenario`: lifeboat only hands back, lightly changed, what `defaultScenario` gave it. */
export interface SandboxPackage<Scenario extends SiteScenario = SiteScenario> {
  defaultScenario: (opts?: { hosts?: number; serversPerHost?: number }) => Scenario;
  /** Hosts in racks in availability zones; `loadedRack`'s hosts carry `rackServersPerHost` instances each. */
  rackScenario: (opts?: { hosts?: number; zones?: number; racks?: number; serversPerHost?: number; loadedRack?: string; rackServersPerHost?: number }) => Scenario;
  startSandbox: (opts?: SiteOptions<Scenario>) => Promise<Site>;
}

/** The package is not there (a production install) or cannot be loaded: one line says what to do. */
export class SandboxUnavailableError extends Error {}

/**
 * Loads the simulated site for `command` ("demo" or "sandbox"). `specifier` is the package's
 * name; tests give another to see what a production install answers.
 */
export async function loadSandbox(command: string, specifier = SANDBOX_PACKAGE): Promise<SandboxPackage> {
  const require = createRequire(import.meta.url);
  try {
    require.resolve(`${specifier}/package.json`);
  } catch {
    throw new SandboxUnavailableError(`${command} needs the simulated site, ${specifier}, which a production install leaves out: in a clone of lifeboat's repository run \`npm ci && npm run ${command}\``);
  }
  try {
    return (await import(specifier)) as SandboxPackage;
  } catch (err) {
    throw new SandboxUnavailableError(`${command}: the simulated site, ${specifier}, is installed but does not load (${firstLine(errorMessage(err))}): run \`npm ci && npm run build\``);
  }
}

function firstLine(s: string): string {
  return s.split("\n", 1)[0] ?? s;
}
