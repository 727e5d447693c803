/** What both demos print with: colours at a terminal, one line at a time, Alertmanager's payload. */

export const tty = process.stdout.isTTY;
const c = (code: string) => (s: string) => (tty ? `\u001b[${code}m${s}\u001b[0m` : s);
export const bold = c("1");
export const dim = c("2");
export const green = c("32");
export const red = c("31");
export const yellow = c("33");
export const cyan = c("36");

export function say(s = ""): void {
  process.stdout.write(`${s}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The payload Alertmanager 0.25 sends for ComputeNodeDown (shape of the captured fixture); one fingerprint per alert. */
export function alertPayload(host: string, fingerprint = "7ac2c4f6b0b2e1d3"): Record<string, unknown> {
  const labels = { alertname: "ComputeNodeDown", host, instance: `${host}:9100`, job: "node", severity: "critical" };
  const annotations = { summary: `Compute node ${host} is down`, description: `${host} has been unreachable and nova-compute has been down for more than 1 minute.` };
  return {
    receiver: "lifeboat",
    status: "firing",
    alerts: [
      {
        status: "firing",
        labels,
        annotations,
        startsAt: new Date(Date.now() - 60_000).toISOString(),
        endsAt: "0001-01-01T00:00:00Z",
        generatorURL: "http://prometheus:9090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0",
        fingerprint,
      },
    ],
    groupLabels: { alertname: "ComputeNodeDown", host },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: "http://alertmanager:9093",
    version: "4",
    groupKey: `{}:{alertname="ComputeNodeDown", host="${host}"}`,
    truncatedAlerts: 0,
  };
}
