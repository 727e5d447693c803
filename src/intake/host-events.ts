import type { NewHostEvent } from "../domain/model.js";
import { eventKey } from "../domain/model.js";
import { ALERTS_PER_SLICE, GO_ZERO_TIME, nextTurn, type WebhookPayload } from "./alertmanager-payload.js";

export interface HostMapping {
  /** Label naming the host (default `host`). */
  label: string;
  /** Optional regex; its first capture group (or whole match) is the host. */
  pattern?: RegExp;
}

/** What a host name may look like: it ends up in API queries and fencing lookups. */
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** The host an alert is about, or why there is none. */
export function hostOf(labels: Record<string, string>, mapping: HostMapping): { host: string } | { host: null; note: string } {
  const value = labels[mapping.label];
  if (value === undefined || value === "") return { host: null, note: `alert has no "${mapping.label}" label` };
  let host = value;
  if (mapping.pattern) {
    const m = mapping.pattern.exec(value);
    if (!m) return { host: null, note: `label ${mapping.label}="${value}" does not match the host pattern` };
    host = m[1] ?? m[0];
  }
  if (!HOST_NAME.test(host)) return { host: null, note: `label ${mapping.label}="${value}" is not a host name` };
  return { host };
}

/**
 * hostEventsFromPayload, `ALERTS_PER_SLICE` alerts at a time with the event loop free in
 * between (each event's key is a hash of its labels: thousands of them take a while).
 */
export async function hostEventsInSlices(payload: WebhookPayload, mapping: HostMapping, receivedAt: string): Promise<NewHostEvent[]> {
  const out: NewHostEvent[] = [];
  for (let i = 0; i < payload.alerts.length; i += ALERTS_PER_SLICE) {
    if (i > 0) await nextTurn();
    out.push(...hostEventsFromPayload({ ...payload, alerts: payload.alerts.slice(i, i + ALERTS_PER_SLICE) }, mapping, receivedAt));
  }
  return out;
}

/** One journal event per alert of the delivery (all of them: non-trigger alerts are recorded too). */
export function hostEventsFromPayload(payload: WebhookPayload, mapping: HostMapping, receivedAt: string): NewHostEvent[] {
  return payload.alerts.map((a) => {
    const h = hostOf(a.labels, mapping);
    const base = {
      receivedAt,
      source: "alertmanager" as const,
      host: h.host,
      alertname: a.labels.alertname ?? "",
      status: a.status,
      fingerprint: a.fingerprint,
      startsAt: a.startsAt,
      endsAt: a.endsAt === GO_ZERO_TIME || a.status === "firing" ? null : a.endsAt,
      labels: a.labels,
      annotations: a.annotations,
      generatorURL: a.generatorURL,
      groupKey: payload.groupKey,
      receiver: payload.receiver,
    };
    return { ...base, key: eventKey(base), note: h.host === null ? h.note : null };
  });
}
