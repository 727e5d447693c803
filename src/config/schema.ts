import { z } from "zod";
import { evacuationSchema } from "../nova/config.js";
import { consoleSchema } from "../http/console/config.js";
import { fencingSchema } from "../fencing/config.js";
import { notificationsSchema } from "../notify/config.js";
import { openstackSchema } from "../openstack/config.js";
import { storeSchema } from "../store/config.js";
import { alertmanagerSchema, gatesSchema, prometheusSchema } from "../gates/config.js";
import { Secret } from "../util/secret.js";
import { listenAddress, MIN_TOKEN_LENGTH, token } from "../util/zod.js";

/**
 * The configuration schema. It is also the configuration reference: every field carries
 * its description and default, and docs/config-reference.md is generated from it.
 */

const webhookAuthSchema = z.union([
  z.literal("none").describe("No authentication (only behind a trusted proxy). Must be said explicitly."),
  z
    .strictObject({
      bearer_token: token()
        .optional()
        .describe(`Expected \`Authorization: Bearer <token>\` (Alertmanager http_config.authorization). At least ${MIN_TOKEN_LENGTH} characters.`),
      basic: z
        .strictObject({
          username: z.string().min(1).describe("Expected user name."),
          password: token().describe(`Expected password. At least ${MIN_TOKEN_LENGTH} characters.`),
        })
        .optional()
        .describe("Expected HTTP basic credentials (Alertmanager http_config.basic_auth)."),
    })
    .refine((a) => a.bearer_token !== undefined || a.basic !== undefined, "give bearer_token and/or basic, or write `auth: none`"),
]);

const serverSchema = z
  .strictObject({
    listen: listenAddress().default("127.0.0.1:9095").describe("Address of the webhook, API and metrics listener (port 0: any free port)."),
    body_limit_bytes: z.number().int().positive().default(1_048_576).describe("Largest accepted request body."),
    auth: webhookAuthSchema.describe("Webhook authentication, as Alertmanager's http_config sends it."),
    admin_token: token().describe(
      `Bearer token for the control API (pause, approve, cancel, recover, fence). At least ${MIN_TOKEN_LENGTH} characters, and not the webhook's credential.`,
    ),
  })
  .superRefine((s, ctx) => {
    // Alertmanager holds the webhook's credential: equal to the admin token, it would open the control API, fence included.
    // Runs even when a field failed (its value is then not a Secret): compare only what parsed.
    const value = (v: unknown): string | undefined => (v instanceof Secret ? v.reveal() : undefined);
    const admin = value(s.admin_token);
    if (typeof s.auth !== "object" || s.auth === null || admin === undefined) return;
    const same = (what: string): void =>
      ctx.addIssue({ code: "custom", path: ["admin_token"], message: `must differ from ${what}: Alertmanager's credential would open the control API, fence included` });
    if (value(s.auth.bearer_token) === admin) same("server.auth.bearer_token");
    if (value(s.auth.basic?.password) === admin) same("server.auth.basic.password");
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
  unknown_hosts: z
    .strictObject({
      notify_interval_seconds: z
        .number()
        .positive()
        .default(900)
        .describe("At most one operator notice per interval, naming every such host seen since the last one."),
      max_listed: z.number().int().positive().max(1000).default(50).describe("Hosts named in one notice; the rest are counted."),
    })
    .prefault({})
    .describe(
      "Alerts for hosts lifeboat cannot act on (no fencing device in `fencing.hosts` and no nova-compute service in Nova) are journaled as ignored, never recovered; operators get one aggregated notice (message kind `unknown-hosts`) instead of a mail per host.",
    ),
});

const recoverySchema = z.strictObject({
  grace_seconds: z.number().nonnegative().default(30).describe("Wait after the first firing alert before validating; a resolved alert in this time aborts."),
  dry_run: z.boolean().default(false).describe("Run every decision, record what would be done, change nothing."),
  recheck_interval_seconds: z
    .number()
    .positive()
    .default(15)
    .describe("How often a blocked recovery asks every gate again (confirmations and policies), for blocks that can clear on their own."),
  evidence_recheck_interval_seconds: z
    .number()
    .positive()
    .default(3)
    .describe(
      "How often a recovery blocked only by confirmations not yet true (Nova still hears a heartbeat, an alert or query not true yet) asks just those again; once they pass, every gate is asked. Reads of Nova's services share one listing a few seconds old.",
    ),
  step_retries: z.number().int().nonnegative().default(3).describe("Retries (with exponential backoff) of a failed cloud call inside a stage."),
});

const monitorSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(false)
    .describe(
      "Poll Nova's os-services and start recoveries for enabled, not forced-down nova-compute services whose heartbeat is stale or that Nova says are down (for clouds without Prometheus; freezer-dr's monitor).",
    ),
  interval_seconds: z.number().positive().default(30).describe("Poll interval."),
  stale_seconds: z
    .number()
    .positive()
    .default(30)
    .describe("A heartbeat (updated_at) at least this old, on Nova's clock (the Date of the same answer), means the host failed; as the nova-service confirmation's stale_seconds."),
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
