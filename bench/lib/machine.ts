import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, readdirSync, realpathSync, rmSync, writeSync } from "node:fs";
import { cpus, release, tmpdir, totalmem, type } from "node:os";
import { basename, join } from "node:path";
import { distribution, round } from "./stats.js";

/** What the numbers were measured on: they mean little without it. */
export interface Machine {
  cpuModel: string;
  cores: number;
  ramGiB: number;
  node: string;
  os: string;
  /** Where the benchmarks' SQLite files live (the OS temporary directory). */
  dataDir: string;
  disk: {
    device: string;
    filesystem: string;
    /** From /sys/block: rotational flag, model, driver; a virtual disk reports what its hypervisor says. */
    description: string;
    /** 4 KiB write + fdatasync in dataDir, the cost of one durable commit. */
    fdatasyncMs: { p50: number; p99: number };
  };
}

export function describeMachine(): Machine {
  const dataDir = realpathSync(tmpdir());
  const mount = mountOf(dataDir);
  return {
    cpuModel: cpuModel(),
    cores: cpus().length,
    ramGiB: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    os: `${type()} ${release()}`,
    dataDir,
    disk: {
      device: mount.device,
      filesystem: mount.fstype,
      description: blockDescription(mount.device),
      fdatasyncMs: fsyncLatency(dataDir),
    },
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Node ${m.node}, ${m.os}; data on ${m.disk.device} (${m.disk.filesystem}, ${m.disk.description}), fdatasync p50 ${m.disk.fdatasyncMs.p50} ms / p99 ${m.disk.fdatasyncMs.p99} ms`;
}

function cpuModel(): string {
  const fromOs = cpus()[0]?.model?.trim();
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const name = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim();
    if (name) return name;
  } catch {
    /* not Linux */
  }
  return fromOs ?? "unknown";
}

function mountOf(path: string): { device: string; fstype: string } {
  try {
    let best = { mountPoint: "", device: "unknown", fstype: "unknown" };
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [device, mountPoint, fstype] = line.split(" ");
      if (!device || !mountPoint || !fstype) continue;
      const mp = mountPoint.replace(/\\040/g, " ");
      const inside = path === mp || path.startsWith(mp.endsWith("/") ? mp : `${mp}/`);
      if (inside && mp.length >= best.mountPoint.length) best = { mountPoint: mp, device, fstype };
    }
    return { device: best.device, fstype: best.fstype };
  } catch {
    return { device: "unknown", fstype: "unknown" };
  }
}

/** rotational / model / driver of the block device behind a /dev path, as far as sysfs tells. */
function blockDescription(device: string): string {
  if (!device.startsWith("/dev/")) return "not a block device";
  let name = basename(device);
  const parts: string[] = [];
  try {
    // A partition (vda1, nvme0n1p2) → its disk.
    const disks = readdirSync("/sys/block");
    if (!disks.includes(name)) name = disks.find((d) => name.startsWith(d)) ?? name;
    const read = (p: string): string | undefined => {
      try {
        return readFileSync(join("/sys/block", name, p), "utf8").trim() || undefined;
      } catch {
        return undefined;
      }
    };
    const rotational = read("queue/rotational");
    const model = read("device/model");
    let driver: string | undefined;
    try {
      driver = basename(realpathSync(join("/sys/block", name, "device/driver")));
    } catch {
      driver = name.startsWith("vd") ? "virtio_blk" : undefined;
    }
    if (driver) parts.push(driver);
    if (model) parts.push(`model ${model}`);
    if (rotational !== undefined) parts.push(rotational === "1" ? "reports rotational" : "reports non-rotational (SSD)");
  } catch {
    /* no sysfs */
  }
  return parts.length ? parts.join(", ") : "unknown";
}

function fsyncLatency(dir: string): { p50: number; p99: number } {
  const tmp = mkdtempSync(join(dir, "lifeboat-bench-fsync-"));
  try {
    const fd = openSync(join(tmp, "probe"), "w");
    const buf = Buffer.alloc(4096, 7);
    const samples: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = process.hrtime.bigint();
      writeSync(fd, buf, 0, buf.length, (i % 64) * 4096);
      fdatasyncSync(fd);
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    closeSync(fd);
    const d = distribution(samples);
    return { p50: round(d.p50, 2), p99: round(d.p99, 2) };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
