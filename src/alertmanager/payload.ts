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
