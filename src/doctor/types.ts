/**
 * `lifeboat doctor`: one row per thing a recovery will need, in one table
 * (CHECK, TARGET, RESULT, DETAIL). A failed row means a recovery would fail or be blocked
 * there; a warning means it would work, with a caveat worth reading.
 */

export type CheckResult = "ok" | "warn" | "fail" | "skip";

export interface DoctorRow {
  /** What is checked: config, keystone, nova, placement, fencing, alertmanager, … */
  check: string;
  /** Where: a config path, a URL, a host and its device. Never credentials. */
  target: string;
  result: CheckResult;
  detail: string;
  /** Time the check took (the whole group's for rows produced together). */
  ms?: number;
}

/**
 * One independent check. The runner gives it a signal that aborts at `timeoutMs` and, should
 * the check ignore the signal, stops waiting for it then: a dead peer never makes doctor hang.
 */
export interface DoctorCheck {
  check: string;
  target: string;
  timeoutMs: number;
  run(signal: AbortSignal): Promise<Omit<DoctorRow, "ms">[]>;
}

export interface DoctorReport {
  rows: DoctorRow[];
  ok: boolean;
  counts: Record<CheckResult, number>;
}
