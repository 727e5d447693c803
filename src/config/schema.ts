import { z } from "zod";
import { evacuationSchema } from "../evacuation/config.js";
import { consoleSchema } from "../http/console/config.js";
import { fencingSchema } from "../fencing/config.js";
import { notificationsSchema } from "../notify/config.js";
import { openstackSchema } from "../openstack/config.js";
import { storeSchema } from "../store/config.js";
import { alertmanagerSchema, gatesSchema, prometheusSchema } from "../validation/config.js";
import { listenAddress, secret } from "./zod-helpers.js";

/**
 * The configuration schema. It is also the configuration reference: every field carries
 * its description and default, and docs/config-reference.md is generated from it.
 */

const webhookAuthSchema = z.union([
  z.literal("none").describe("No authentication (only behind a trusted proxy). Must be said explicitly."),
  z
    .strictObject({
      bearer_token: secret().optional().describe("Expected `Authorization: Bearer <token>` (Alertmanager http_config.authorization)."),
      basic: z
        .strictObject({ username: z.string().min(1).describe("Expected user name."), password: secret().describe("Expected password.") })
        .optional()
        .describe("Expected HTTP basic credentials (Alertmanager http_config.basic_auth)."),
    })
    .refine((a) => a.bearer_token !== undefined || a.basic !== undefined, "give bearer_token and/or basic, or write `auth: none`"),
]);

const serverSchema = z.strictObject({
  listen: listenAddress().default("127.0.0.1:9095").describe("Address of the webhook, API and metrics listener."),
  body_limit_bytes: z.number().int().positive().default(1_048_576).describe("Largest accepted request body."),
  auth: webhookAuthSchema.describe("Webhook authentication, as Alertmanager's http_config sends it."),
  admin_token: secret().describe("Bearer token for the control API (pause, approve, cancel, recover); distinct from the webhook's."),
});

const alertsSchema = z.strictObject({
  host_label: z.string().min(1).default("host").describe("Alert label that names the failed host."),
  host_pattern: z
    .string()
    .optional()
    .refine((p) => {
      if (p === undefined) return true;
      try {
        return new RegExp(p).source.length > 0;
      } catch {
        return false;
      }
    }, "not a valid regular expression")
    .describe('Regex applied to the label value; its first capture group is the host (e.g. "^([^:]+)(:\\\\d+)?$" turns compute-1:9100 into compute-1).'),
  trigger_alertnames: z.array(z.string().min(1)).min(1).default(["ComputeNodeDown"]).describe("Alertnames that start recoveries; others are recorded and ignored."),
});

const recoverySchema = z.strictObject({
  grace_seconds: z.number().nonnegative().default(30).describe("Wait after the first firing alert before validating; a resolved alert in this time aborts."),
  dry_run: z.boolean().default(false).describe("Run every decision, record what would be done, change nothing."),
  recheck_interval_seconds: z.number().positive().default(15).describe("How often blocked recoveries re-check gates that can clear on their own."),
  step_retries: z.number().int().nonnegative().default(3).describe("Retries (with exponential backoff) of a failed cloud call inside a stage."),
});

const monitorSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(false)
    .describe("Poll Nova's os-services and start recoveries for nova-compute services that are down and enabled (for clouds without Prometheus; freezer-dr's monitor)."),
  interval_seconds: z.number().positive().default(30).describe("Poll interval."),
});

const loggingSchema = z.strictObject({
  level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info").describe("Lowest level written (JSON lines on stdout)."),
});

const configObjectSchema = z.strictObject({
  server: serverSchema,
  store: storeSchema.prefault({}),
  alerts: alertsSchema.prefault({}),
  recovery: recoverySchema.prefault({}),
  gates: gatesSchema.prefault({}),
  fencing: fencingSchema.prefault({}),
  openstack: openstackSchema.prefault({}),
  evacuation: evacuationSchema.prefault({}),
  notifications: notificationsSchema.prefault({}),
  alertmanager: alertmanagerSchema.prefault({}),
  prometheus: prometheusSchema.prefault({}),
  monitor: monitorSchema.prefault({}),
  console: consoleSchema.prefault({}),
  logging: loggingSchema.prefault({}),
});

/** Checks across sections: a confirmation needs the API it asks. */
export const configSchema = configObjectSchema.superRefine((c, ctx) => {
  c.gates.confirmations.forEach((conf, i) => {
    if (conf.driver === "alerts" && !c.alertmanager.url) ctx.addIssue({ code: "custom", path: ["gates", "confirmations", i, "driver"], message: "the alerts confirmation needs alertmanager.url" });
    if (conf.driver === "prometheus" && !c.prometheus.url) ctx.addIssue({ code: "custom", path: ["gates", "confirmations", i, "driver"], message: "the prometheus confirmation needs prometheus.url" });
  });
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
