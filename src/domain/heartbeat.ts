import type { ComputeServiceInfo } from "./ports/cloud.js";

/**
 * Is nova-compute on a host still alive, as Nova's records show it? The evidence is the one
 * Nova's own `up`/`down` uses — the age of the service's last heartbeat (`updated_at`) — but
 * judged against lifeboat's `stale_seconds` instead of Nova's `service_down_time`, so that a
 * dead host is known for dead sooner; Nova's own `down` and a forced-down service count too.
 *
 * The age is measured on Nova's clock, never on lifeboat's: from the `Date` of the very
 * answer that carried `updated_at` (ComputeServiceInfo.novaTime). Both stamps are then the
 * control plane's own (nova-api or the proxy in front of it writes the Date; nova-conductor
 * writes updated_at), the clocks Nova's own verdict already compares, so lifeboat's clock
 * may be any amount off without changing a verdict. One answer is enough: it is a snapshot
 * of Nova's view at one instant of Nova's time.
 *
 * The age is a lower bound, never over-estimated: the Date has whole seconds (truncated,
 * so Nova's time was at least that), and an `updated_at` with no sub-second part may have
 * lost up to a second (the database column has whole seconds, truncated or rounded), so it
 * is read as up to a second later. `updated_at` itself is never older than the last
 * heartbeat: every heartbeat saves the service record, and so does every change to it (a
 * disable, a force-down), which only makes the heartbeat look younger. Without a Date (some
 * proxies drop it), or when the two stamps contradict each other (a heartbeat later than the
 * answer that carries it), lifeboat cannot tell the age and goes by Nova's own verdict.
 */

export type HeartbeatJudgement =
  /** nova-compute is dead for lifeboat: forced down, Nova's own `down`, or a heartbeat older than stale_seconds. */
  | { dead: true; by: "forced-down" | "nova-down" | "stale"; ageSeconds: number | null; reason: string }
  /** Alive, or not known to be dead (no age to judge and Nova still says up). */
  | { dead: false; by: "fresh" | "no-age"; ageSeconds: number | null; reason: string };

/** An `updated_at` later than Nova's answer by more than this means their clocks disagree. */
const CLOCKS_DISAGREE_MS = 2000;

/**
 * How old the last heartbeat was when Nova answered, seconds (a lower bound, ≥ 0), or why
 * that cannot be told.
 */
export function heartbeatAge(svc: Pick<ComputeServiceInfo, "updatedAt" | "novaTime">): { seconds: number } | { unknown: string } {
  if (!svc.updatedAt) return { unknown: "Nova has no heartbeat of it on record" };
  const heartbeat = Date.parse(svc.updatedAt);
  if (!Number.isFinite(heartbeat)) return { unknown: `its heartbeat time ${JSON.stringify(svc.updatedAt)} is not a time` };
  if (!svc.novaTime) return { unknown: "Nova's answer carried no Date header to measure the heartbeat's age against" };
  const novaNow = Date.parse(svc.novaTime);
  if (!Number.isFinite(novaNow)) return { unknown: `Nova's answer has an unreadable Date (${svc.novaTime})` };
  if (heartbeat - novaNow > CLOCKS_DISAGREE_MS) {
    return {
      unknown: `its heartbeat (${svc.updatedAt}) is later than the Date of Nova's answer (${svc.novaTime}): the clocks of nova-api (or a proxy in front of it) and nova-conductor disagree`,
    };
  }
  // Whole seconds in the database: the heartbeat may have been up to a second later than recorded.
  const latest = heartbeat + (heartbeat % 1000 === 0 ? 1000 : 1);
  return { seconds: Math.max(0, novaNow - latest) / 1000 };
}

export function judgeHeartbeat(
  svc: Pick<ComputeServiceInfo, "host" | "state" | "forcedDown" | "updatedAt" | "novaTime">,
  staleSeconds: number,
): HeartbeatJudgement {
  const age = heartbeatAge(svc);
  const ageSeconds = "seconds" in age ? age.seconds : null;
  const seen = `last heartbeat ${svc.updatedAt ?? "never"}`;
  if (svc.forcedDown) return { dead: true, by: "forced-down", ageSeconds, reason: `Nova has nova-compute on ${svc.host} forced down (${seen})` };
  if ("seconds" in age && age.seconds >= staleSeconds) {
    return {
      dead: true,
      by: "stale",
      ageSeconds,
      reason: `nova-compute on ${svc.host}: ${seen}, at least ${round(age.seconds)}s before Nova's answer (≥ stale_seconds ${staleSeconds}); Nova says ${svc.state}`,
    };
  }
  if (svc.state === "down") return { dead: true, by: "nova-down", ageSeconds, reason: `Nova says nova-compute on ${svc.host} is down (${seen})` };
  if ("seconds" in age) {
    return {
      dead: false,
      by: "fresh",
      ageSeconds,
      reason: `Nova still hears nova-compute on ${svc.host}: ${seen}, ${round(age.seconds)}s before Nova's answer (stale from ${staleSeconds}s on)`,
    };
  }
  return { dead: false, by: "no-age", ageSeconds, reason: `Nova says nova-compute on ${svc.host} is up (${seen}) and ${age.unknown}: waiting for Nova's own verdict` };
}

function round(seconds: number): number {
  return Math.floor(seconds * 10) / 10;
}
