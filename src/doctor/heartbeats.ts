import type { Config } from "../config/schema.js";
import { heartbeatAge, judgeHeartbeat } from "../domain/heartbeat.js";
import type { ComputeServiceInfo } from "../domain/ports/cloud.js";
import { toComputeServiceInfo } from "../nova/compute-services.js";
import type { NovaService } from "../openstack/nova.js";
import type { DoctorRow } from "./types.js";

/**
 * The heartbeats of the nova-compute services as the nova-service gate (and the native
 * monitor) will judge them: measured on Nova's clock, the Date of Nova's answer. Warns when
 * that cannot be done — no Date, or heartbeats later than the Date (lifeboat then waits for
 * Nova's own `down`) — when even the freshest heartbeat Nova hears looks stale (the clock
 * writing the Date runs ahead of nova-conductor's, or stale_seconds is too short for
 * report_interval: lifeboat would take live hosts for dead), and names the hosts whose
 * heartbeat is stale now.
 */
export function heartbeatRow(services: NovaService[], novaTime: string | null, config: Config): DoctorRow {
  const judged = staleSecondsOf(config);
  const target = judged?.key ?? "heartbeats";
  if (!judged) return { check: "heartbeats", target, result: "skip", detail: "no nova-service confirmation and the native monitor is off: lifeboat judges no heartbeat" };
  const stale = judged.seconds;
  if (!novaTime) {
    return {
      check: "heartbeats",
      target,
      result: "warn",
      detail: "Nova's answer carried no Date header (a proxy in front of nova-api drops it?): lifeboat cannot tell a heartbeat's age and waits for Nova's own `down` (service_down_time after the last heartbeat)",
    };
  }
  // The services a recovery could be about and Nova still hears: enabled, not forced down, up.
  const live = services.filter((s) => s.status === "enabled" && s.forced_down !== true && s.state === "up").map((s) => toComputeServiceInfo(s, novaTime));
  const ages = new Map<ComputeServiceInfo, number>();
  const contradicted: string[] = [];
  for (const s of live) {
    const age = heartbeatAge(s);
    if ("seconds" in age) ages.set(s, age.seconds);
    else if (s.updatedAt) contradicted.push(s.host);
  }
  const problems: string[] = [];
  if (contradicted.length) {
    problems.push(
      `the heartbeats of ${list(contradicted)} are later than the Date of Nova's answer (${novaTime}): the clocks of nova-api (or a proxy in front of it) and nova-conductor disagree; lifeboat goes by Nova's own verdict for them`,
    );
  }
  const measured = [...ages.values()];
  const freshest = measured.length ? Math.min(...measured) : null;
  if (freshest !== null && freshest >= stale) {
    problems.push(
      `even the freshest heartbeat Nova hears is ${seconds(freshest)} old on Nova's clock (stale from ${stale} s on): the clock writing Nova's Date runs ahead of nova-conductor's, or report_interval is too long for ${stale} s, or all these hosts have just died — lifeboat would take them for dead`,
    );
  } else {
    const staleNow = live.filter((s) => judgeHeartbeat(s, stale).by === "stale").map((s) => `${s.host} (${seconds(ages.get(s) ?? Number.NaN)})`);
    if (staleNow.length) problems.push(`stale now (Nova still says up): ${list(staleNow)}`);
  }
  const summary =
    freshest === null
      ? `no heartbeat to measure (${live.length} enabled service(s) Nova says up)`
      : `on Nova's clock (the Date of its answer): ${measured.length} heartbeat(s) Nova hears, the freshest ${seconds(freshest)} old, the oldest ${seconds(Math.max(...measured))}; dead from ${stale} s on`;
  return { check: "heartbeats", target, result: problems.length ? "warn" : "ok", detail: problems.length ? `${problems.join("; ")} (${summary})` : summary };
}

/** The stale_seconds a verdict would use: the nova-service confirmation's, else the native monitor's. */
function staleSecondsOf(config: Config): { key: string; seconds: number } | null {
  const i = config.gates.confirmations.findIndex((c) => c.driver === "nova-service");
  const c = config.gates.confirmations[i];
  if (c?.driver === "nova-service") return { key: `gates.confirmations[${i}].stale_seconds`, seconds: c.stale_seconds };
  if (config.monitor.enabled) return { key: "monitor.stale_seconds", seconds: config.monitor.stale_seconds };
  return null;
}

function seconds(v: number): string {
  return Number.isFinite(v) ? `${Math.floor(v)} s` : "?";
}

function list(items: string[]): string {
  return items.length > 8 ? `${items.slice(0, 8).join(", ")} and ${items.length - 8} more` : items.join(", ");
}
