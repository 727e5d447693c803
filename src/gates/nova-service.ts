import { FRESH_READ, SHARED_READ, type CloudPort, type ServiceRead } from "../domain/ports/cloud.js";
import { isLifeboatReason } from "../domain/markers.js";
import { sleep } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";
import type { Gate, GateVerdict } from "../domain/ports/gate.js";

/**
 * Nova's own view: the host's nova-compute must be `down`, with a heartbeat older than
 * `stale_seconds`, on `checks` consecutive reads. A service disabled by a human (a reason
 * not written by lifeboat) means maintenance: do not act.
 *
 * A validation that can lead to the fence asks Nova anew for each check (a shared answer
 * must never count as a second look). A quiet re-check of a blocked recovery only decides
 * whether to validate again: it reads the listing every re-check shares, judging the
 * heartbeat's age at the moment that listing was read.
 */
export function novaServiceGate(
  evacuation: CloudPort,
  opts: { staleSeconds: number; checks: number; intervalSeconds: number; now: () => number },
): Gate {
  return {
    name: "nova-service",
    kind: "evidence",
    async evaluate({ recovery, signal, quiet }) {
      let last: GateVerdict = { result: "undecided", reason: "not checked", recheck: true };
      const checks = quiet ? 1 : opts.checks;
      const read = quiet ? SHARED_READ : FRESH_READ;
      for (let i = 0; i < checks; i++) {
        if (i > 0) await sleep(opts.intervalSeconds * 1000, signal);
        last = await checkOnce(evacuation, recovery.host, read, opts, signal);
        if (last.result !== "pass") return last;
      }
      return checks > 1 ? { ...last, reason: `${last.reason} (${checks} checks)` } : last;
    },
  };
}

async function checkOnce(
  evacuation: CloudPort,
  host: string,
  read: ServiceRead,
  opts: { staleSeconds: number; now: () => number },
  signal: AbortSignal,
): Promise<GateVerdict> {
  let svc;
  try {
    svc = await evacuation.getComputeService(host, signal, read);
  } catch (err) {
    if (signal.aborted) throw err;
    return { result: "undecided", reason: `cannot ask Nova: ${errorMessage(err)}`, recheck: true };
  }
  if (!svc) return { result: "block", reason: `Nova has no nova-compute service on host "${host}" (does the alert's host label match Nova's host name?)`, recheck: true };
  if (svc.status === "disabled" && !isLifeboatReason(svc.disabledReason)) {
    return {
      result: "block",
      reason: `nova-compute on ${host} was disabled by a human (${JSON.stringify(svc.disabledReason ?? "")}): maintenance, not acting`,
      recheck: false,
      overridable: true,
    };
  }
  if (svc.state === "up") return { result: "block", reason: `Nova says nova-compute on ${host} is up (last heartbeat ${svc.updatedAt ?? "?"})`, recheck: true };
  if (svc.forcedDown) return { result: "pass", reason: "Nova has the service forced down" };
  const readAt = svc.readAt ? Date.parse(svc.readAt) : Number.NaN;
  const seenAt = Number.isFinite(readAt) ? Math.min(readAt, opts.now()) : opts.now();
  const age = svc.updatedAt ? (seenAt - Date.parse(svc.updatedAt)) / 1000 : Number.POSITIVE_INFINITY;
  if (age < opts.staleSeconds) {
    return { result: "block", reason: `Nova says down but the last heartbeat is only ${Math.round(age)}s old (< ${opts.staleSeconds}s)`, recheck: true };
  }
  return { result: "pass", reason: `Nova says down; last heartbeat ${svc.updatedAt ?? "never"} (${Number.isFinite(age) ? Math.round(age) : "∞"}s ago)` };
}
