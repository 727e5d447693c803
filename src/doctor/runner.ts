import { scrub } from "../notify/dispatcher.js";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";
import type { CheckResult, DoctorCheck, DoctorReport, DoctorRow } from "./types.js";

/** Raised into a check's signal, and thrown, when its time is up. */
export class CheckTimeoutError extends Error {
  override name = "TimeoutError";
}

/**
 * Run independent checks concurrently, each bounded by its own deadline, and return their
 * rows in the order the checks were given. A check that throws or runs out of time is one
 * failed row; every text is scrubbed of the given secrets before it leaves.
 */
export async function runChecks(checks: DoctorCheck[], opts: { secrets?: readonly Secret[] } = {}): Promise<DoctorReport> {
  const perCheck = await Promise.all(checks.map((c) => runOne(c)));
  const secrets = opts.secrets ?? [];
  const rows = perCheck.flat().map((r) => ({ ...r, target: scrub(oneLine(r.target), secrets), detail: scrub(oneLine(r.detail), secrets) }));
  return report(rows);
}

export function report(rows: DoctorRow[]): DoctorReport {
  const counts: Record<CheckResult, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const r of rows) counts[r.result]++;
  return { rows, ok: counts.fail === 0, counts };
}

/**
 * `fn` with a signal that aborts after `ms` (or with `parent`). Rejects at the deadline even
 * when `fn` ignores its signal, so a library that cannot be cancelled cannot hang the caller;
 * the signal is aborted once `fn` is done too, which releases whatever it left open.
 */
export async function raceDeadline<T>(fn: (signal: AbortSignal) => Promise<T>, ms: number, parent?: AbortSignal): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onParent: (() => void) | undefined;
  const deadline = new Promise<never>((_, reject) => {
    const stop = (err: Error): void => {
      controller.abort(err);
      reject(err);
    };
    timer = setTimeout(() => stop(new CheckTimeoutError(`no answer within ${seconds(ms)} s`)), ms);
    if (parent) {
      onParent = () => stop(parent.reason instanceof Error ? parent.reason : new Error("aborted"));
      if (parent.aborted) onParent();
      else parent.addEventListener("abort", onParent, { once: true });
    }
  });
  try {
    return await Promise.race([fn(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    if (onParent) parent?.removeEventListener("abort", onParent);
    if (!controller.signal.aborted) controller.abort(new Error("done"));
  }
}

async function runOne(c: DoctorCheck): Promise<DoctorRow[]> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  try {
    const rows = await raceDeadline((signal) => c.run(signal), c.timeoutMs);
    const ms = elapsed();
    return rows.map((r) => ({ ...r, ms }));
  } catch (err) {
    return [{ check: c.check, target: c.target, result: "fail", detail: errorMessage(err), ms: elapsed() }];
  }
}

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

function oneLine(s: string): string {
  return s.replace(/\s*\r?\n\s*/g, " ").trim();
}
