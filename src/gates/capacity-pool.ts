import type { AlertmanagerClient } from "../alertmanager/client.js";
import { judgeHeartbeat } from "../domain/heartbeat.js";
import type { HostState, Recovery } from "../domain/model.js";
import type { ComputeServiceInfo, HostCapacity } from "../domain/ports/cloud.js";
import { errorMessage } from "../util/errors.js";

/**
 * Which hosts may receive evacuated instances, for the capacity gate. Nova counts a host as
 * room while its nova-compute is enabled and `up`; a host that is failing too may still be
 * `up` there for a while (Nova's service_down_time), and room on it is no room. So every host
 * lifeboat has a reason to doubt is left out: one with an open recovery, one lifeboat holds
 * (fenced, awaiting release), one with a firing trigger alert, one whose heartbeat is stale
 * on Nova's clock (judged as the nova-service gate judges it).
 */

export type LeftOutWhy = "open recovery" | "held" | "firing alert" | "stale heartbeat";

/** In the order a host with several reasons is named by. */
const WHY_ORDER: readonly LeftOutWhy[] = ["open recovery", "held", "firing alert", "stale heartbeat"];

export interface LeftOut {
  host: string;
  why: LeftOutWhy;
  /** The open recovery, the alert, the heartbeat's age: what the reason rests on. */
  detail: string;
}

/** Alertmanager's firing trigger alerts: which hosts they name. */
export interface FiringAlerts {
  client: Pick<AlertmanagerClient, "alerts" | "baseUrl">;
  alertnames: readonly string[];
  hostLabel: string;
}

/** Hosts with a firing trigger alert (silenced or inhibited ones too: the host is failing all the same). */
export async function firingHosts(am: FiringAlerts, signal: AbortSignal): Promise<Map<string, string>> {
  const lists = await Promise.all(am.alertnames.map((name) => am.client.alerts({ alertname: name }, signal)));
  const out = new Map<string, string>();
  for (const a of lists.flat()) {
    const host = a.labels[am.hostLabel];
    if (host && !out.has(host)) out.set(host, `${a.labels.alertname ?? "alert"} firing since ${a.startsAt}`);
  }
  return out;
}

export interface PoolFacts {
  open: readonly Recovery[];
  holds: readonly HostState[];
  /** Hosts named by a firing trigger alert; null when Alertmanager is not configured or could not be asked. */
  firing: Map<string, string> | null;
  services: readonly ComputeServiceInfo[];
  staleSeconds: number;
}

/** The candidates minus every host with a reason to doubt it; each left-out host named once, by its first reason. */
export function choosePool(candidates: readonly HostCapacity[], facts: PoolFacts): { pool: HostCapacity[]; leftOut: LeftOut[] } {
  const reasons = new Map<string, LeftOut[]>();
  const add = (host: string, why: LeftOutWhy, detail: string): void => {
    reasons.set(host, [...(reasons.get(host) ?? []), { host, why, detail }]);
  };
  for (const r of facts.open) add(r.host, "open recovery", `recovery ${r.id} (${r.state})`);
  for (const h of facts.holds) if (h.fenced) add(h.host, "held", `held by ${h.by} since ${h.at} (recovery ${h.recoveryId})`);
  for (const [host, what] of facts.firing ?? []) add(host, "firing alert", what);
  const service = new Map(facts.services.map((s) => [s.host, s]));
  for (const c of candidates) {
    const svc = service.get(c.host);
    if (!svc) continue;
    const judged = judgeHeartbeat(svc, facts.staleSeconds);
    if (judged.dead) add(c.host, "stale heartbeat", judged.reason);
  }
  const pool: HostCapacity[] = [];
  const leftOut: LeftOut[] = [];
  for (const c of candidates) {
    const mine = reasons.get(c.host);
    if (!mine) {
      pool.push(c);
      continue;
    }
    leftOut.push(mine.sort((a, b) => WHY_ORDER.indexOf(a.why) - WHY_ORDER.indexOf(b.why))[0]!);
  }
  return { pool, leftOut };
}

/** "left out 3 host(s): 2 with an open recovery (compute-3, compute-4), 1 held (compute-7)". */
export function describeLeftOut(leftOut: readonly LeftOut[]): string {
  if (leftOut.length === 0) return "";
  const groups = WHY_ORDER.map((why) => ({ why, hosts: leftOut.filter((l) => l.why === why).map((l) => l.host) })).filter((g) => g.hosts.length > 0);
  const words: Record<LeftOutWhy, string> = {
    "open recovery": "with an open recovery",
    held: "held",
    "firing alert": "with a firing alert",
    "stale heartbeat": "with a stale heartbeat",
  };
  return `left out ${leftOut.length} host(s): ${groups.map((g) => `${g.hosts.length} ${words[g.why]} (${names(g.hosts)})`).join(", ")}`;
}

function names(list: readonly string[], max = 5): string {
  return list.length > max ? `${list.slice(0, max).join(", ")}, …` : list.join(", ");
}

export function alertsUnread(am: FiringAlerts, err: unknown): string {
  return `firing alerts not read (Alertmanager at ${am.client.baseUrl}: ${errorMessage(err)})`;
}
