import { table } from "../util/table.js";
import type { CheckResult, DoctorReport } from "./types.js";

const WORD: Record<CheckResult, string> = { ok: "ok", warn: "WARN", fail: "FAIL", skip: "skip" };

/** The report as one aligned table (CHECK, TARGET, RESULT, DETAIL) and a closing count. */
export function formatDoctorReport(r: DoctorReport): string {
  const body = table(
    ["CHECK", "TARGET", "RESULT", "DETAIL"],
    r.rows.map((row) => [row.check, row.target, WORD[row.result], row.detail]),
  );
  const c = r.counts;
  const summary = `${r.rows.length} check(s): ${c.ok} ok, ${c.warn} warning(s), ${c.fail} failed${c.skip ? `, ${c.skip} skipped` : ""}`;
  return `${body}\n\n${summary}${r.ok ? "" : " — a recovery would not get through: fix the FAIL rows"}\n`;
}
