import { ADMIN_TOKEN, WEBHOOK_TOKEN } from "./config.js";

/** Talking to a lifeboat under test over HTTP: Alertmanager's webhook, the control API, waiting for a state. */

/** An Alertmanager v4 payload for one alert, shaped like the captured fixture. */
export function alertPayload(opts: {
  host: string;
  status?: "firing" | "resolved";
  alertname?: string;
  startsAt?: string;
  fingerprint?: string;
  extraLabels?: Record<string, string>;
}): Record<string, unknown> {
  const status = opts.status ?? "firing";
  const alertname = opts.alertname ?? "ComputeNodeDown";
  const startsAt = opts.startsAt ?? "2026-11-25T12:10:55.045Z";
  const labels = { alertname, host: opts.host, instance: `${opts.host}:9100`, job: "node", severity: "critical", ...opts.extraLabels };
  return {
    receiver: "lifeboat",
    status,
    alerts: [
      {
        status,
        labels,
        annotations: { summary: `Compute node ${opts.host} is down` },
        startsAt,
        endsAt: status === "firing" ? "0001-01-01T00:00:00Z" : "2026-11-25T12:30:00Z",
        generatorURL: "http://127.0.0.1:9090/graph?g0.expr=up",
        fingerprint: opts.fingerprint ?? fingerprintOf(opts.host + alertname),
      },
    ],
    groupLabels: { alertname },
    commonLabels: labels,
    commonAnnotations: { summary: `Compute node ${opts.host} is down` },
    externalURL: "http://127.0.0.1:9093",
    version: "4",
    groupKey: `{}:{alertname="${alertname}"}`,
    truncatedAlerts: 0,
  };
}

function fingerprintOf(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const c of Buffer.from(s)) h = ((h ^ BigInt(c)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, "0");
}

export async function postAlert(
  url: string,
  payload: unknown,
  opts: { token?: string | null; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
  const token = opts.token === undefined ? WEBHOOK_TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/api/v1/alerts`, { method: "POST", headers, body: opts.body ?? JSON.stringify(payload) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}

export async function api(url: string, method: string, path: string, body?: unknown, token: string = ADMIN_TOKEN): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "x-lifeboat-actor": "tester" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
}

/** Poll until `fn` returns a truthy value (or fail after `timeoutMs`). */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
