import pLimit from "p-limit";
import { errorMessage } from "../util/errors.js";
import type { Fencing } from "./service.js";
import type { PowerState } from "../domain/ports/fencing.js";

/**
 * `lifeboat fence status [HOST…]`: every device of every (or the named) host asked for its
 * power state, a bounded number of hosts at a time, printed as an aligned plain-text table.
 */

export interface FenceStatusRow {
  host: string;
  device: string;
  driver: string;
  /** The device's answer, or "error" when it did not answer. */
  state: PowerState | "error";
  detail: string;
}

/** Hosts asked at once (each host's devices are asked in parallel). */
export const STATUS_CONCURRENCY = 8;

export async function fenceStatusRows(
  fencing: Pick<Fencing, "hosts" | "hasHost" | "status">,
  hosts?: string[],
  opts: { concurrency?: number; signal?: AbortSignal } = {},
): Promise<FenceStatusRow[]> {
  const names = hosts && hosts.length > 0 ? [...new Set(hosts)] : fencing.hosts();
  const limit = pLimit(opts.concurrency ?? STATUS_CONCURRENCY);
  const perHost = await Promise.all(
    names.map((host) =>
      limit(async (): Promise<FenceStatusRow[]> => {
        if (!fencing.hasHost(host)) return [{ host, device: "-", driver: "-", state: "error", detail: `no fencing configured for ${host}` }];
        let answers;
        try {
          answers = await fencing.status(host, opts.signal);
        } catch (err) {
          // One host's failure (e.g. a caller's deadline) is its row, not the whole table's.
          if (opts.signal?.aborted) throw err;
          return [{ host, device: "-", driver: "-", state: "error", detail: errorMessage(err) }];
        }
        return answers.map((a) =>
          a.status
            ? { host, device: a.device, driver: a.driver, state: a.status.state, detail: a.status.raw }
            : { host, device: a.device, driver: a.driver, state: "error", detail: a.error ?? "no answer" },
        );
      }),
    ),
  );
  return perHost.flat();
}

/** True when some device did not answer (the CLI exits non-zero). */
export function anyStatusFailed(rows: FenceStatusRow[]): boolean {
  return rows.some((r) => r.state === "error");
}

const COLUMNS: [keyof FenceStatusRow, string][] = [
  ["host", "HOST"],
  ["device", "DEVICE"],
  ["driver", "DRIVER"],
  ["state", "STATE"],
  ["detail", "DETAIL"],
];

export function formatStatusTable(rows: FenceStatusRow[]): string {
  if (rows.length === 0) return "no hosts with fencing configured\n";
  const cells = [COLUMNS.map(([, title]) => title), ...rows.map((r) => COLUMNS.map(([key]) => r[key].replace(/\s*\r?\n\s*/g, " ")))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  return cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n") + "\n";
}
