import { FRESH_READ, SHARED_READ, type CloudPort, type ServiceRead } from "../domain/ports/cloud.js";
import { judgeHeartbeat } from "../domain/heartbeat.js";
import { isLifeboatReason } from "../domain/markers.js";
import { sleep } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";
import type { Gate, GateVerdict } from "../domain/ports/gate.js";

/**
 * Is the host's nova-compute dead? It passes when its last heartbeat is at least
 * `stale_seconds` old on Nova's clock (the Date of the same answer: lifeboat's own clock
 * plays no part), or when Nova itself says `down` or has it forced down; it blocks while
 * the heartbeat is younger, whatever Nova's `state`. See domain/heartbeat.ts. A service
 * disabled by a human (a reason not written by lifeboat) means maintenance: do not act.
 *
 * One check is enough by default: the age is measured on Nova's clock in one consistent
 * answer, and a heartbeat already `stale_seconds` old has been missing for two or more
 * report intervals — a second look seconds later adds those seconds to the wait and nothing
 * to the evidence. `checks` > 1 still asks again, `interval_seconds` apart.
 *
 * A validation that can lead to the fence asks Nova anew for each check (a shared answer
 * must never count as a second look). A quiet re-check of a blocked recovery only decides
 * whether to validate again: it reads the listing every re-check shares, judged at the time
 * Nova gave that answer.
 */
export function novaServiceGate(evacuation: CloudPort, opts: { staleSeconds: number; checks: number; intervalSeconds: number }): Gate {
  return {
    name: "nova-service",
    kind: "evidence",
    async evaluate({ recovery, signal, quiet }) {
      let last: GateVerdict = { result: "undecided", reason: "not checked", recheck: true };
      const checks = quiet ? 1 : opts.checks;
      const read = quiet ? SHARED_READ : FRESH_READ;
      for (let i = 0; i < checks; i++) {
        if (i > 0) await sleep(opts.intervalSeconds * 1000, signal);
        last = await checkOnce(evacuation, recovery.host, read, opts.staleSeconds, signal);
        if (last.result !== "pass") return last;
      }
      return checks > 1 ? { ...last, reason: `${last.reason} (${checks} checks)` } : last;
    },
  };
}

async function checkOnce(evacuation: CloudPort, host: string, read: ServiceRead, staleSeconds: number, signal: AbortSignal): Promise<GateVerdict> {
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
  const judged = judgeHeartbeat(svc, staleSeconds);
  const details: Record<string, unknown> = { state: svc.state, forcedDown: svc.forcedDown, updatedAt: svc.updatedAt, novaTime: svc.novaTime ?? null, heartbeatAgeSeconds: judged.ageSeconds };
  if (judged.dead) return { result: "pass", reason: judged.reason, details };
  return { result: "block", reason: judged.reason, recheck: true, details };
}
