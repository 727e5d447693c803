import type { Logger } from "../logging.js";
import type { LibvirtDeviceConfig } from "./config.js";
import { CommandKilled, oneLine, runCommand } from "./exec.js";
import { DeviceError, PowerLoopDevice, type PowerTarget } from "./power-loop.js";
import type { PowerState, PowerStatus } from "../domain/ports/fencing.js";

/**
 * libvirt fencing for labs whose "compute nodes" are VMs: `virsh destroy` (a hard power
 * off), `virsh start`, and the state from `virsh domstate` under LC_ALL=C (its words are
 * translated otherwise).
 */

/** `virsh domstate` words (virsh-domain-monitor.c) → power. */
const DOMSTATE: Record<string, PowerState> = {
  running: "on",
  idle: "on",
  paused: "on",
  "in shutdown": "on",
  blocked: "on",
  pmsuspended: "on",
  "no state": "on",
  "shut off": "off",
  crashed: "off",
};

export function domstateToPower(word: string): PowerState {
  return DOMSTATE[word.trim().toLowerCase()] ?? "unknown";
}

export class LibvirtDevice extends PowerLoopDevice {
  readonly driver = "libvirt";
  readonly label: string;
  readonly #config: LibvirtDeviceConfig;

  constructor(config: LibvirtDeviceConfig, _ctx: { logger: Logger }) {
    super(config);
    this.#config = config;
    this.label = config.name ?? `libvirt ${redactUri(config.uri)} ${config.domain}`;
  }

  async readStatus(_session: undefined, signal: AbortSignal): Promise<PowerStatus> {
    const out = await this.#run("domstate", signal);
    const word = out.split("\n")[0]?.trim() ?? "";
    return { state: domstateToPower(word), raw: `domstate: ${word || "(empty)"}` };
  }

  async sendPower(_session: undefined, target: PowerTarget, signal: AbortSignal): Promise<string> {
    return oneLine(await this.#run(target === "off" ? "destroy" : "start", signal));
  }

  async #run(command: "domstate" | "destroy" | "start", signal: AbortSignal): Promise<string> {
    const c = this.#config;
    // Inherit the environment: qemu+ssh needs SSH_AUTH_SOCK/HOME for its keys.
    const env = { ...process.env, LC_ALL: "C" };
    let out;
    try {
      out = await runCommand(c.virsh_path, ["-c", c.uri, command, c.domain], { env, signal });
    } catch (err) {
      if (err instanceof CommandKilled) throw new DeviceError(`virsh ${command}: ${err.message}`);
      throw new DeviceError(`cannot run ${c.virsh_path}: ${(err as Error).message}`, { permanent: true });
    }
    if (out.code === 0) return out.stdout;
    const words = oneLine(out.stderr) || oneLine(out.stdout) || "no output";
    const message = `virsh ${command} ${c.domain} exited ${out.code}: ${words}`;
    // "Already in that state" answers: read the state back rather than fail or trust them.
    if (command === "destroy" && /domain is not running/i.test(words)) throw new DeviceError(message, { recheck: true });
    if (command === "start" && /already (active|running)/i.test(words)) throw new DeviceError(message, { recheck: true });
    if (/failed to get domain|domain not found/i.test(words)) throw new DeviceError(message, { permanent: true });
    throw new DeviceError(message);
  }
}

/** A libvirt URI for labels: no password in user-info. */
function redactUri(uri: string): string {
  return uri.replace(/\/\/([^/@:]+):[^/@]*@/, "//$1@");
}
