import { z } from "zod";

/**
 * Alertmanager's webhook payload, version "4" (notify/webhook/webhook.go `Message`).
 * Every documented field is checked; unknown fields are accepted and ignored, because
 * Alertmanager adds fields over time (notification_reason in 0.32, routeLabels in 0.34).
 */

/** Label and annotation maps; a key that could reach an object prototype is refused outright. */
const labelMap = z
  .unknown()
  .superRefine((v, ctx) => {
    if (v !== null && typeof v === "object" && Object.hasOwn(v, "__proto__")) ctx.addIssue({ code: "custom", message: 'forbidden name "__proto__"' });
  })
  .pipe(z.record(z.string().max(1024), z.string().max(16_384)));

/** RFC 3339 with any fraction precision (Alertmanager may send nanoseconds). */
const rfc3339 = z.iso.datetime({ offset: true });

export const webhookAlertSchema = z.looseObject({
  status: z.enum(["firing", "resolved"]),
  labels: labelMap.refine((l) => typeof l.alertname === "string" && l.alertname.length > 0, "must contain alertname"),
  annotations: labelMap,
  startsAt: rfc3339,
  /** Firing alerts carry the Go zero time 0001-01-01T00:00:00Z. */
  endsAt: rfc3339,
  generatorURL: z.string().max(8192),
  fingerprint: z.string().regex(/^[0-9a-f]{1,64}$/, "expected a hex fingerprint"),
});

export const webhookPayloadSchema = z.looseObject({
  version: z.literal("4", { error: 'expected "4" (Alertmanager webhook payload version)' }),
  groupKey: z.string().max(16_384),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  status: z.enum(["firing", "resolved"]),
  receiver: z.string().max(1024),
  groupLabels: labelMap,
  commonLabels: labelMap,
  commonAnnotations: labelMap,
  externalURL: z.string().max(8192),
  alerts: z.array(webhookAlertSchema).min(1, "must contain at least one alert").max(10_000),
});

export type WebhookAlert = z.output<typeof webhookAlertSchema>;
export type WebhookPayload = z.output<typeof webhookPayloadSchema>;

/** Alerts validated (or keyed) between two turns of the event loop: a few ms of work. */
export const ALERTS_PER_SLICE = 100;
/** payloadProblems names at most this many. */
const MAX_PROBLEMS = 20;

/** The payload with its alerts left unchecked (they are checked slice by slice). */
const webhookEnvelopeSchema = webhookPayloadSchema.extend({ alerts: z.array(z.unknown()).min(1, "must contain at least one alert").max(10_000) });

export type PayloadParse = { success: true; data: WebhookPayload } | { success: false; error: z.ZodError };

/**
 * `webhookPayloadSchema.safeParse(body)`, the same answer and the same problems, but the
 * alerts are checked `ALERTS_PER_SLICE` at a time with the event loop free in between: a
 * delivery of thousands of alerts must not stall health checks and other deliveries.
 */
export async function parseWebhookPayload(body: unknown): Promise<PayloadParse> {
  const envelope = webhookEnvelopeSchema.safeParse(body);
  const issues: z.core.$ZodIssue[] = envelope.success ? [] : [...envelope.error.issues];
  const raw = body !== null && typeof body === "object" && Array.isArray((body as { alerts?: unknown }).alerts) ? ((body as { alerts: unknown[] }).alerts) : [];
  const alerts: WebhookAlert[] = [];
  if (raw.length <= 10_000) {
    for (let i = 0; i < raw.length && issues.length < MAX_PROBLEMS; i++) {
      if (i > 0 && i % ALERTS_PER_SLICE === 0) await nextTurn();
      const r = webhookAlertSchema.safeParse(raw[i]);
      if (r.success) alerts.push(r.data);
      else issues.push(...r.error.issues.map((issue) => ({ ...issue, path: ["alerts", i, ...issue.path] })));
    }
  }
  if (issues.length || !envelope.success) return { success: false, error: new z.ZodError(issues) };
  return { success: true, data: { ...envelope.data, alerts } };
}

/** Let the event loop run what waits (I/O callbacks included) before going on. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

export interface PayloadProblem {
  path: string;
  message: string;
}

/** Problems named by path (`alerts.0.startsAt: required`), at most 20. */
export function payloadProblems(error: z.ZodError, body: unknown): PayloadProblem[] {
  return error.issues.slice(0, 20).map((i) => ({
    path: i.path.length ? i.path.map(String).join(".") : "(body)",
    message: i.path.length && valueAt(body, i.path) === undefined ? "required" : i.message.replace(/^Invalid (input|option): /, ""),
  }));
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = body;
  for (const k of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}
