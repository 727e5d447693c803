import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A real IPMI BMC for tests: OpenIPMI's `ipmi_sim` on 127.0.0.1 (a free UDP port chosen at
 * run time), with a `chassis_control` script that keeps the power state in a file. Tests
 * talk to it with the real ipmitool, and can read or set the power file directly, or make
 * the chassis ignore power commands ("power stays on"). Every status read and every command
 * the chassis sees is logged with its wall-clock time (`events()`), and the next status reads
 * can be scripted to answer what a misbehaving BMC would (`scriptPowerReads`).
 */

export interface IpmiSimUser {
  name: string;
  password: string;
  /** IPMI privilege of the user (lan.conf): callback, user, operator, admin. */
  priv?: "callback" | "user" | "operator" | "admin";
}

export interface IpmiSimOptions {
  users: IpmiSimUser[];
  power?: "on" | "off";
}

export interface IpmiSim {
  host: string;
  port: number;
  dir: string;
  /** Power state as the chassis script keeps it. */
  power(): Promise<"on" | "off">;
  setPower(state: "on" | "off"): Promise<void>;
  /** While true, `set power` answers success but changes nothing. */
  ignorePowerCommands(ignore: boolean): Promise<void>;
  /** Every `set` the BMC passed to the chassis script, e.g. "power 0". */
  commands(): Promise<string[]>;
  /** Every power read and every command the chassis script saw, in order, with its time. */
  events(): Promise<IpmiSimEvent[]>;
  /** The next power reads answer these values, one per read, whatever the power is; then the power again. */
  scriptPowerReads(answers: ("on" | "off")[]): Promise<void>;
  stop(): Promise<void>;
}

export interface IpmiSimEvent {
  /** Wall-clock time (Date.now() scale) at which the chassis script ran. */
  atMs: number;
  /** "get power" (a status read; value is what it answered) or "set power" (a command). */
  op: "get" | "set";
  parm: string;
  /** As the chassis speaks: "1" on, "0" off. */
  value: string;
}

// The chassis_control contract (OpenIPMI lanserv/ipmi_sim_chassiscontrol):
//   <script> <device> get <parm>...       → prints "<parm>:<value>" per parm
//   <script> <device> set <parm> <val>... → empty output, exit 0
const CHASSIS_SCRIPT = `#!/bin/sh
dir=$(dirname "$0")
device=$1; op=$2; shift 2
case "$op" in
get)
  for parm in "$@"; do
    case "$parm" in
      power)
        value=$(cat "$dir/power")
        # A scripted answer (what the BMC says, whatever the power is), one per read.
        if [ -s "$dir/read-script" ]; then
          value=$(head -n 1 "$dir/read-script")
          sed -i 1d "$dir/read-script"
        fi
        echo "$(date +%s%N) get power $value" >> "$dir/events"
        echo "power:$value" ;;
      boot) echo "boot:default" ;;
      *) echo "invalid parameter $parm"; exit 1 ;;
    esac
  done ;;
set)
  while [ $# -ge 2 ]; do
    echo "$1 $2" >> "$dir/commands"
    echo "$(date +%s%N) set $1 $2" >> "$dir/events"
    case "$1" in
      power) [ -e "$dir/ignore" ] || echo "$2" > "$dir/power" ;;
      reset|boot|identify) ;;
      *) echo "invalid parameter $1"; exit 1 ;;
    esac
    shift 2
  done ;;
*) echo "invalid operation $op"; exit 1 ;;
esac
exit 0
`;

const EMU = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
`;

function lanConf(dir: string, port: number, users: IpmiSimUser[]): string {
  const userLines = users.map(
    (u, i) => `  user ${i + 2} true "${u.name}" "${u.password}" ${u.priv ?? "admin"} 10 none md2 md5 straight`,
  );
  return [
    'name "lifeboat-test"',
    "set_working_mc 0x20",
    "  startlan 1",
    `    addr 127.0.0.1 ${port}`,
    "    priv_limit admin",
    "    allowed_auths_callback none md2 md5 straight",
    "    allowed_auths_user none md2 md5 straight",
    "    allowed_auths_operator none md2 md5 straight",
    "    allowed_auths_admin none md2 md5 straight",
    "    guid a123456789abcdefa123456789abcdef",
    "  endlan",
    `  chassis_control "${join(dir, "chassis.sh")} 0x20"`,
    ...userLines,
    "",
  ].join("\n");
}

/** A UDP port free right now on 127.0.0.1 (the simulator's bind is checked afterwards). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Does process `pid` own the UDP socket bound to 127.0.0.1:port? (Linux /proc) */
async function ownsUdpPort(pid: number, port: number): Promise<boolean> {
  const table = await readFile("/proc/net/udp", "utf8");
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set<string>();
  for (const line of table.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local && cols[9]) inodes.add(cols[9]);
  }
  if (inodes.size === 0) return false;
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m?.[1] && inodes.has(m[1])) return true;
  }
  return false;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function launch(dir: string, users: IpmiSimUser[]): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    await writeFile(join(dir, "lan.conf"), lanConf(dir, port, users));
    const child = spawn("ipmi_sim", ["-c", join(dir, "lan.conf"), "-f", join(dir, "bmc.emu"), "-s", join(dir, "state"), "-n"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (/Unable to bind/.test(stderr) || exited(child)) break;
      if (child.pid !== undefined && (await ownsUdpPort(child.pid, port))) return { child, port };
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill("SIGKILL");
    if (!/Unable to bind/.test(stderr)) throw new Error(`ipmi_sim did not start: ${stderr.trim() || "no output"}`);
    // Someone took the port between our probe and the simulator's bind: try another.
  }
  throw new Error("ipmi_sim: no free UDP port after 5 attempts");
}

export async function startIpmiSim(opts: IpmiSimOptions): Promise<IpmiSim> {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-ipmi-sim-"));
  await writeFile(join(dir, "chassis.sh"), CHASSIS_SCRIPT);
  await chmod(join(dir, "chassis.sh"), 0o755);
  await writeFile(join(dir, "bmc.emu"), EMU);
  await writeFile(join(dir, "power"), opts.power === "off" ? "0\n" : "1\n");
  await writeFile(join(dir, "commands"), "");
  await writeFile(join(dir, "events"), "");
  await mkdir(join(dir, "state"));
  const { child, port } = await launch(dir, opts.users);

  return {
    host: "127.0.0.1",
    port,
    dir,
    async power() {
      return (await readFile(join(dir, "power"), "utf8")).trim() === "1" ? "on" : "off";
    },
    async setPower(state) {
      await writeFile(join(dir, "power"), state === "on" ? "1\n" : "0\n");
    },
    async ignorePowerCommands(ignore) {
      if (ignore) await writeFile(join(dir, "ignore"), "");
      else await rm(join(dir, "ignore"), { force: true });
    },
    async commands() {
      return (await readFile(join(dir, "commands"), "utf8")).split("\n").filter(Boolean);
    },
    async events() {
      return (await readFile(join(dir, "events"), "utf8"))
        .split("\n")
        .filter(Boolean)
        .map((line) => {
          const [ns, op, parm, value] = line.split(" ");
          return { atMs: Number(BigInt(ns ?? "0") / 1_000_000n), op: op as IpmiSimEvent["op"], parm: parm ?? "", value: value ?? "" };
        });
    },
    async scriptPowerReads(answers) {
      await writeFile(join(dir, "read-script"), answers.map((a) => (a === "on" ? "1\n" : "0\n")).join(""));
    },
    async stop() {
      if (!exited(child)) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await gone;
      }
      if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
    },
  };
}
