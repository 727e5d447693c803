import { z } from "zod";
import { secret, url } from "../util/zod.js";

/**
 * Safety gates between `validating` and `fencing`. Evidence gates (confirmations) must all
 * agree the host is dead; policy gates decide whether acting now is wise. A check that
 * cannot decide blocks; it never passes.
 */

const novaServiceConfirmation = z.strictObject({
  driver: z.literal("nova-service"),
  stale_seconds: z
    .number()
    .positive()
    .default(30)
    .describe(
      "nova-compute is dead once its last heartbeat (updated_at) is at least this old, measured on Nova's clock (the Date of the same answer), whatever Nova's `state` says; Nova's own `down` or forced_down count too. About 3 × Nova's report_interval (10 s), at most its service_down_time (60 s).",
    ),
  checks: z.number().int().min(1).default(1).describe("How many answers of Nova must agree the service is dead, `interval_seconds` apart (each a new request)."),
  interval_seconds: z.number().nonnegative().default(5).describe("Between two checks."),
});

const bmcConfirmation = z.strictObject({
  driver: z.literal("bmc"),
});

const alertsConfirmation = z.strictObject({
  driver: z.literal("alerts"),
  alertnames: z.array(z.string().min(1)).min(1).describe("Alertnames that must all be firing for the host (asked of Alertmanager's API)."),
});

const prometheusConfirmation = z.strictObject({
  driver: z.literal("prometheus"),
  query: z
    .string()
    .min(1)
    .describe('PromQL that must return a non-empty result for the host; {{host}} is replaced, e.g. up{job="node", host="{{host}}"} == 0.'),
  blind_check: z.boolean().default(true).describe("Also block everything when the monitoring itself looks blind (see blind_up_ratio)."),
  blind_up_ratio: z
    .number()
    .min(0)
    .max(1)
    .default(0.5)
    .describe("If more than this share of all `up` series are 0, Prometheus is blind: block."),
  blind_selector: z.string().default("up").describe("Series whose zero share measures blindness."),
});

export const confirmationSchema = z.discriminatedUnion("driver", [novaServiceConfirmation, bmcConfirmation, alertsConfirmation, prometheusConfirmation]);
export type ConfirmationConfig = z.output<typeof confirmationSchema>;

export const gatesSchema = z.strictObject({
  confirmations: z
    .array(confirmationSchema)
    .default([{ driver: "nova-service", stale_seconds: 30, checks: 1, interval_seconds: 5 }, { driver: "bmc" }])
    .describe("Checks that must all agree the host is dead before fencing: nova-service, bmc, alerts, prometheus."),
  silences: z
    .strictObject({
      enabled: z.boolean().default(true).describe("Ask Alertmanager for silences before fencing (needs alertmanager.url)."),
      pause_matcher: z
        .string()
        .regex(/^[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"$/, 'expected name="value"')
        .default('lifeboat="paused"')
        .describe("An active silence with exactly this matcher pauses all automation."),
      on_error: z.enum(["block", "proceed"]).default("block").describe("What to do when Alertmanager cannot be asked."),
    })
    .prefault({}),
  storm: z
    .strictObject({
      max_recoveries: z
        .number()
        .int()
        .min(1)
        .default(3)
        .describe("More hosts failing than this in the window (every failure seen, whatever else blocks its recovery) trips the guard: the failures past it are held."),
      max_percent: z.number().min(0).max(100).default(50).describe("More than this share of enabled nova-compute services failing in the window trips the guard."),
      max_per_zone: z.number().int().min(1).optional().describe("More than this many failing in one availability zone in the window trips the guard."),
      window_seconds: z.number().positive().default(600).describe("Sliding window: a failure counts from when lifeboat saw it for this long (and while its recovery acts on the host)."),
      cooldown_seconds: z
        .number()
        .nonnegative()
        .default(600)
        .describe("Once tripped, held recoveries wait for an approval, or until no host has failed for this long (from the storm's last failure)."),
    })
    .prefault({}),
  capacity: z
    .strictObject({
      mode: z.enum(["block", "warn", "off"]).default("block").describe("Is there room elsewhere for the failed host's instances? block, warn or skip the check."),
      scope: z.enum(["zone", "all"]).default("zone").describe("Count only hosts of the failed host's availability zone, or all."),
      headroom_percent: z.number().min(0).max(100).default(0).describe("Keep this share of each resource free on the remaining hosts."),
      resources: z
        .array(z.enum(["vcpus", "ram", "disk"]))
        .min(1)
        .default(["vcpus", "ram"])
        .describe("Resources compared; add disk only where instances use local disk (not boot-from-volume or shared storage)."),
    })
    .prefault({}),
  cooldown_seconds: z.number().nonnegative().default(3600).describe("After a recovery of a host, a new one for the same host waits for approval this long."),
  require_approval: z
    .union([z.boolean(), z.array(z.string())])
    .default(false)
    .describe("true: every recovery waits for approval; a list: only these hosts."),
  exclude_hosts: z.array(z.string()).default([]).describe("Hosts never recovered automatically (maintenance)."),
});
export type GatesConfig = z.output<typeof gatesSchema>;

export const alertmanagerSchema = z.strictObject({
  url: url().optional().describe("Alertmanager base URL (API v2 is used for silences and firing alerts)."),
  bearer_token: secret().optional().describe("Sent as `Authorization: Bearer` (e.g. behind an authenticating proxy)."),
  timeout_seconds: z.number().positive().default(5).describe("Bound of one API call."),
});
export const prometheusSchema = z.strictObject({
  url: url().optional().describe("Prometheus base URL (HTTP API) for prometheus confirmations."),
  bearer_token: secret().optional().describe("Sent as `Authorization: Bearer` (e.g. behind an authenticating proxy)."),
  timeout_seconds: z.number().positive().default(5).describe("Bound of one API call."),
});
