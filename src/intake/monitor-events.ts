import { createHash } from "node:crypto";
import { eventKey, type NewHostEvent } from "../domain/model.js";

/** What the native monitor (nova/monitor.ts) found about one host on one poll. */
export interface MonitorEvent {
  host: string;
  /** firing: the host is failed (repeated every poll while it is); resolved: it no longer is. */
  status: "firing" | "resolved";
  /** Last heartbeat Nova knows (firing) or null. */
  lastHeartbeat: string | null;
  zone: string | null;
  /** When the monitor first saw it failed. */
  since: string;
  at: string;
  source: "nova-monitor";
}

/** The alertname the native monitor's events carry in the journal and the API. */
export const MONITOR_ALERTNAME = "NovaComputeServiceDown";

/**
 * The native monitor's findings as journal events, so they take exactly the alerts' path:
 * same deduplication, same grace period, same gates. The "fingerprint" is stable per host;
 * the incident starts when the monitor first saw the host failed.
 */
export function monitorEventsToHostEvents(events: MonitorEvent[], receivedAt: string): NewHostEvent[] {
  return events.map((m) => {
    const base = {
      receivedAt,
      source: "monitor" as const,
      host: m.host,
      alertname: MONITOR_ALERTNAME,
      status: m.status,
      fingerprint: createHash("sha256").update(`nova-monitor/${m.host}`).digest("hex").slice(0, 16),
      startsAt: m.since,
      endsAt: m.status === "resolved" ? m.at : null,
      labels: { alertname: MONITOR_ALERTNAME, host: m.host, ...(m.zone ? { zone: m.zone } : {}) },
      annotations: { summary: `nova-compute on ${m.host} is down (last heartbeat ${m.lastHeartbeat ?? "never"})` },
      generatorURL: "",
      groupKey: "nova-monitor",
      receiver: "nova-monitor",
    };
    return { ...base, key: eventKey(base), note: null };
  });
}
