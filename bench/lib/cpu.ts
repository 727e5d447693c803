import { readFileSync } from "node:fs";
import { cpus } from "node:os";

/**
 * CPU accounting from /proc, to tell how much of the machine a measurement really had:
 * on a shared machine other work steals the cores the numbers depend on, so every
 * benchmark records the share of CPU used by processes that are not its own.
 */
const TICK_MS = 10; // USER_HZ is 100 on every Linux architecture Node supports

/** Busy and total CPU time of the whole machine, in ms. */
export function systemCpu(): { busyMs: number; totalMs: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
    const busy = user + nice + system + irq + softirq + steal;
    return { busyMs: busy * TICK_MS, totalMs: (busy + idle + iowait) * TICK_MS };
  } catch {
    return { busyMs: Number.NaN, totalMs: Number.NaN };
  }
}

/** User + system CPU time of one process so far, in ms (NaN once it has exited). */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return Number.NaN;
  }
}

export interface CpuWindow {
  /** Wall time of the window, ms. */
  wallMs: number;
  /** Share of all cores busy with anything, 0..1. */
  machineBusy: number;
  /** Share of all cores busy with processes other than the ones named, 0..1. */
  otherBusy: number;
  /** CPU ms of each named process in the window. */
  processes: Record<string, number>;
}

/**
 * Start a window; `end(extra)` closes it. `extra` adds CPU ms of processes that exited
 * inside the window (a load generator reports its own usage).
 */
export function cpuWindow(pids: Record<string, number>): { end(extra?: Record<string, number>): CpuWindow } {
  const t0 = performance.now();
  const s0 = systemCpu();
  const p0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuMs(pid)]));
  return {
    end(extra = {}) {
      const wallMs = performance.now() - t0;
      const s1 = systemCpu();
      const processes: Record<string, number> = {};
      for (const [k, pid] of Object.entries(pids)) processes[k] = processCpuMs(pid) - (p0[k] ?? 0);
      Object.assign(processes, extra);
      const ours = Object.values(processes).filter(Number.isFinite).reduce((a, b) => a + b, 0);
      const capacity = wallMs * cpus().length;
      const busy = s1.busyMs - s0.busyMs;
      return {
        wallMs,
        machineBusy: clamp01(busy / capacity),
        otherBusy: clamp01((busy - ours) / capacity),
        processes,
      };
    },
  };
}

function clamp01(v: number): number {
  return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : Number.NaN;
}

/**
 * Wait (at most `maxMs`) until the machine is quiet: less than `threshold` of all cores
 * busy over a 2-second sample. Returns the last sample's busy share.
 */
export async function waitForQuiet(opts: { threshold: number; maxMs: number; log?: (s: string) => void }): Promise<number> {
  const deadline = Date.now() + opts.maxMs;
  let warned = false;
  for (;;) {
    const s0 = systemCpu();
    await new Promise((r) => setTimeout(r, 2000));
    const s1 = systemCpu();
    const busy = (s1.busyMs - s0.busyMs) / Math.max(1, s1.totalMs - s0.totalMs);
    if (!(busy >= opts.threshold) || Date.now() >= deadline) return busy;
    if (!warned) {
      opts.log?.(`machine busy (${Math.round(busy * 100)}% of the CPUs used by other processes); waiting up to ${Math.round(opts.maxMs / 1000)} s for it to calm down`);
      warned = true;
    }
  }
}
