import type { Logger } from "../logging.js";
import type { IpmiDeviceConfig } from "./config.js";
import { CommandKilled, oneLine, runCommand } from "./exec.js";
import { DeviceError, PowerLoopDevice, type PowerTarget } from "./power-loop.js";
import type { PowerStatus } from "../domain/ports/fencing.js";

/**
 * IPMI fencing through `ipmitool` (fence_ipmilan's way): `chassis power off`, then poll
 * `chassis power status` until it says off twice in a row (see power-loop.ts).
 *
 * The password reaches ipmitool only through its environment (`-E` reads
 * IPMITOOL_PASSWORD): never argv (visible in `ps`), never a log line.
 */

/** fence_ipmilan's parse of `chassis power status`, case-insensitive on purpose. */
const STATUS_RE = /[Cc]hassis [Pp]ower is\s*([a-zA-Z]{2,3})/;

/** Answers that retrying cannot change: configuration problems, not transport trouble. */
const DEFINITE_RE = /insufficient privilege|invalid authentication algorithm|invalid user ?name|unauthorized name|invalid command|not supported/i;

export class IpmiDevice extends PowerLoopDevice {
  readonly driver = "ipmi";
  readonly label: string;
  readonly #config: IpmiDeviceConfig;

  constructor(config: IpmiDeviceConfig, _ctx: { logger: Logger }) {
    super(config);
    this.#config = config;
    this.label = config.name ?? `ipmi ${config.address}:${config.port}`;
  }

  /** The ipmitool argv up to the command: no secret in it, by construction. */
  args(command: readonly string[]): string[] {
    const c = this.#config;
    const args = ["-I", c.interface, "-H", c.address, "-p", String(c.port), "-U", c.username, "-E", "-L", c.privilege];
    if (c.cipher_suite !== undefined) args.push("-C", String(c.cipher_suite));
    args.push("-N", String(c.ipmitool_timeout_seconds), "-R", String(c.ipmitool_retries));
    return [...args, ...command];
  }

  async readStatus(_session: undefined, signal: AbortSignal): Promise<PowerStatus> {
    const out = await this.#run(["chassis", "power", "status"], signal);
    const m = STATUS_RE.exec(out);
    const word = m?.[1]?.toLowerCase();
    if (!m) throw new DeviceError(`ipmitool gave no power status: ${oneLine(out) || "(empty output)"}`);
    return { state: word === "on" ? "on" : word === "off" ? "off" : "unknown", raw: m[0] };
  }

  async sendPower(_session: undefined, target: PowerTarget, signal: AbortSignal): Promise<string> {
    return oneLine(await this.#run(["chassis", "power", target], signal));
  }

  async #run(command: string[], signal: AbortSignal): Promise<string> {
    // Only what ipmitool needs: no inherited IPMI_PASSWORD (which -E would also read).
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C", IPMITOOL_PASSWORD: this.#config.password.reveal() };
    let out;
    try {
      out = await runCommand(this.#config.ipmitool_path, this.args(command), { env, signal });
    } catch (err) {
      if (err instanceof CommandKilled) throw new DeviceError(`ipmitool ${command.join(" ")}: ${err.message}`);
      throw new DeviceError(`cannot run ${this.#config.ipmitool_path}: ${(err as Error).message}`, { permanent: true });
    }
    if (out.code !== 0) {
      const words = oneLine(out.stderr) || oneLine(out.stdout) || "no output";
      throw new DeviceError(`ipmitool ${command.join(" ")} exited ${out.code}: ${words}`, { permanent: DEFINITE_RE.test(words) });
    }
    return out.stdout;
  }
}
