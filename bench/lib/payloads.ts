import { readFileSync } from "node:fs";

/**
 * Webhook bodies shaped exactly like the delivery captured from a real Alertmanager
 * (bench/fixtures/webhook-firing.json, a copy of shared/fixtures/alertmanager): one
 * ComputeNodeDown alert per delivery, every field present.
 *
 * - `duplicates`: the captured delivery itself, every time (Alertmanager's repeat_interval
 *   re-sends and the second instance of an HA pair): one journal row, its delivery count grows.
 * - `distinct`: every delivery is a new alert state: the host cycles through `hosts` (labels,
 *   instance, annotations and the fingerprint follow it, the fingerprint computed the way
 *   Alertmanager does) and startsAt moves on, so each one is a new journal row.
 */
export type Mix = "distinct" | "duplicates";

interface FixtureAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

interface FixturePayload {
  alerts: FixtureAlert[];
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  [key: string]: unknown;
}

const FIXTURE = JSON.parse(readFileSync(new URL("../fixtures/webhook-firing.json", import.meta.url), "utf8")) as FixturePayload;
const BASE_START = Date.parse(FIXTURE.alerts[0]!.startsAt);

export function fixtureBody(): string {
  return JSON.stringify(FIXTURE);
}

/** The n-th delivery of a mix, as the JSON text sent on the wire. */
export function payloadMaker(mix: Mix, hosts: readonly string[]): (n: number) => string {
  if (mix === "duplicates") {
    const body = fixtureBody();
    return () => body;
  }
  if (hosts.length === 0) throw new Error("distinct payloads need at least one host");
  const original = FIXTURE.alerts[0]!;
  const oldHost = original.labels.host ?? "";
  // Per host: labels, annotations and fingerprint (computed once; the hash is the costly part).
  const perHost = hosts.map((host, i) => {
    const instance = `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:9100`;
    const labels = { ...original.labels, host, instance };
    const annotations = Object.fromEntries(
      Object.entries(original.annotations).map(([k, v]) => [k, v.split(oldHost).join(host).replace(/\(\S+:\d+\)/, `(${instance})`)]),
    );
    return { labels, annotations, fingerprint: alertmanagerFingerprint(labels) };
  });
  return (n) => {
    const h = perHost[n % perHost.length]!;
    const alert: FixtureAlert = {
      ...original,
      labels: h.labels,
      annotations: h.annotations,
      // A new alert state per delivery (the alert re-fired): a new journal row, not a repeat.
      startsAt: new Date(BASE_START + n * 1000).toISOString(),
      fingerprint: h.fingerprint,
    };
    return JSON.stringify({ ...FIXTURE, alerts: [alert], commonLabels: h.labels, commonAnnotations: h.annotations });
  };
}

/** Alertmanager's fingerprint (prometheus/common model.LabelSet.Fingerprint): FNV-1a 64 over sorted name\xffvalue\xff. */
export function alertmanagerFingerprint(labels: Record<string, string>): string {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  for (const name of Object.keys(labels).sort()) {
    for (const part of [name, labels[name]!]) {
      for (const byte of Buffer.from(part, "utf8")) h = ((h ^ BigInt(byte)) * prime) & 0xffffffffffffffffn;
      h = ((h ^ 0xffn) * prime) & 0xffffffffffffffffn;
    }
  }
  return h.toString(16).padStart(16, "0");
}

/**
 * One delivery carrying a firing ComputeNodeDown alert for each host, as a bad relabel in
 * Prometheus makes Alertmanager send: the fixture's labels with the host (and instance)
 * changed, a short annotation, each alert's own fingerprint.
 */
export function manyHostsBody(hosts: readonly string[], startsAt: string): string {
  const original = FIXTURE.alerts[0]!;
  const alerts = hosts.map((host, i): FixtureAlert => {
    const labels = { ...original.labels, host, instance: `10.${Math.floor(i / 62500) % 256}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}:9100` };
    return {
      status: "firing",
      labels,
      annotations: { summary: `Compute node ${host} is down` },
      startsAt,
      endsAt: original.endsAt,
      generatorURL: "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
      fingerprint: alertmanagerFingerprint(labels),
    };
  });
  return JSON.stringify({ ...FIXTURE, alerts, commonLabels: { alertname: "ComputeNodeDown" }, commonAnnotations: {} });
}
