import Mustache from "mustache";
import { z } from "zod";
import { secret, url } from "../util/zod.js";

/**
 * The `notifications:` section — the configuration reference for who is told what, and how.
 *
 * ```yaml
 * notifications:
 *   from: "lifeboat <lifeboat@cloud.example>"
 *   operators: [ops@cloud.example]
 *   smtp: { host: smtp.example, security: starttls, username: lifeboat, password_file: /run/secrets/smtp }
 *   tenants: { enabled: true, keystone: { roles: [member] }, metadata_key: "lifeboat:notify" }
 *   webhooks:
 *     - { name: chat, url: "https://chat.example/hooks/abc", auth: { credentials_file: /run/secrets/chat } }
 *   dashboard_url: https://grafana.example/d/lifeboat
 * ```
 *
 * Message kinds: `operator-summary` (one per recovery, to operators), `tenant` (one per
 * affected project and recipient), `blocked` (a recovery waits for approval), `fence-failed`
 * (a page: nothing was evacuated, the host's state is unknown), `storm` (the storm guard
 * tripped), `unknown-hosts` (alerts named hosts lifeboat cannot act on; one aggregated,
 * rate-limited notice). Tenant mails go to email only; the other kinds go to operators' email and to
 * the webhooks whose `kinds` include them.
 *
 * Delivery: messages are journaled (state `pending`) and sent by a background worker on the
 * leader, with retries; no recovery stage waits for a mail server or a webhook. Delivery is
 * at-least-once: a crash after the relay took a message but before its answer arrived sends
 * it again, with the same Message-ID.
 *
 * Dry run: a dry-run recovery's messages are recorded as `would-send` and nothing is sent,
 * unless `notify_in_dry_run: true` — then operators and webhooks get them with a
 * "[DRY RUN] " subject prefix. Tenants are never mailed about a dry run (they would read
 * it as a real incident); their messages are always recorded as `would-send`.
 */

export const MESSAGE_KINDS = ["operator-summary", "tenant", "blocked", "fence-failed", "storm", "unknown-hosts"] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
/** Kinds meant for operators: the ones email operators and webhooks can receive. */
export const OPERATOR_KINDS = ["operator-summary", "blocked", "fence-failed", "storm", "unknown-hosts"] as const satisfies readonly MessageKind[];
export type OperatorKind = (typeof OPERATOR_KINDS)[number];

const DEFAULT_PORTS = { starttls: 587, tls: 465, none: 25 } as const;

/** A template in the mustache language: checked when the config is loaded. */
const template = (what: string) =>
  z.string().superRefine((t, ctx) => {
    try {
      Mustache.parse(t);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `${what} is not a valid mustache template: ${err instanceof Error ? err.message : String(err)}` });
    }
  });

export const smtpSchema = z
  .strictObject({
    host: z.string().min(1).describe("SMTP server host name or address."),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe("SMTP port; default 587 for `starttls`, 465 for `tls`, 25 for `none`."),
    security: z
      .enum(["starttls", "tls", "none"])
      .default("starttls")
      .describe(
        "starttls: plain connection upgraded with STARTTLS, refused if the server does not offer it; tls: TLS from the first byte (SMTPS); none: no encryption at all (labs only — credentials travel in clear).",
      ),
    username: z.string().min(1).optional().describe("SMTP AUTH user (PLAIN or LOGIN, as the server offers). Give with `password`."),
    password: secret().optional().describe("SMTP AUTH password (or `password_file: PATH`). Never logged or recorded."),
    ca_file: z.string().optional().describe("PEM file of the CA(s) that signed the SMTP server's certificate, trusted next to Node's bundled public roots."),
    verify_tls: z.boolean().default(true).describe("Verify the server's certificate and name. `false` only for labs."),
    timeout_seconds: z.number().positive().default(30).describe("Connection, greeting and socket inactivity timeout of one SMTP try (nodemailer's connectionTimeout, greetingTimeout and socketTimeout); a try is abandoned after three times this."),
  })
  .refine((s) => (s.username === undefined) === (s.password === undefined), "give username and password together, or neither");
export type SmtpConfig = z.output<typeof smtpSchema>;

/** The configured port, or the usual one for the security mode. */
export function smtpPort(smtp: SmtpConfig): number {
  return smtp.port ?? DEFAULT_PORTS[smtp.security];
}

export const tenantsSchema = z.strictObject({
  enabled: z.boolean().default(false).describe("Mail the affected projects' people: one message per project and recipient per incident."),
  keystone: z
    .strictObject({
      enabled: z.boolean().default(true).describe("Look up project members in Keystone (needs a role that may list role assignments, e.g. admin or reader on the system)."),
      roles: z
        .array(z.string().min(1))
        .min(1)
        .default(["member", "_member_"])
        .describe(
          "Users holding any of these roles on the project (effective: through groups and implied roles) are told. Default `member` (the role that creates and runs servers; Keystone's default `admin` implies it, so project admins are included) and the legacy `_member_`. `reader` is left out on purpose: read-only accounts are auditors and monitoring, not owners.",
        ),
    })
    .prefault({})
    .describe("Recipients from Keystone: `GET /v3/role_assignments?scope.project.id=…&effective&include_names=true`, then each user's optional `email`."),
  creator: z.boolean().default(true).describe("Also tell each server's creator (Nova `user_id`, looked up in Keystone for an `email`)."),
  metadata_key: z
    .string()
    .min(1)
    .nullable()
    .default("lifeboat:notify")
    .describe("Server metadata key holding comma-separated addresses to tell about that server's project (read from Nova); null disables."),
  static: z
    .record(z.string().min(1), z.array(z.email()))
    .default({})
    .describe("Fixed recipients per project id: { <project_id>: [addresses] }."),
  max_recipients_per_project: z
    .number()
    .int()
    .positive()
    .default(50)
    .describe("At most this many addresses per project (static first, then metadata, creator, Keystone); the rest are logged and skipped."),
});
export type TenantsConfig = z.output<typeof tenantsSchema>;

const templateOverrideSchema = z.strictObject({
  subject: template("subject").optional().describe("Subject line (rendered without escaping; line breaks are removed)."),
  text: template("text").optional().describe("Plain-text body (rendered without escaping)."),
  html: template("html")
    .optional()
    .describe("HTML body. `{{value}}` is HTML-escaped; never use `{{{value}}}` for anything from the cloud. An empty string sends text only."),
});

export const retrySchema = z.strictObject({
  attempts: z
    .number()
    .int()
    .min(1)
    .max(50)
    .default(10)
    .describe("Tries per message and recipient, the first included, by the background delivery worker. Permanent errors (SMTP 5xx, HTTP 4xx) are not retried."),
  initial_backoff_seconds: z.number().nonnegative().default(2).describe("Wait before the second try."),
  max_backoff_seconds: z.number().nonnegative().default(300).describe("Longest wait between two tries."),
  factor: z.number().min(1).default(2).describe("Each wait is this many times the previous one."),
  message_timeout_seconds: z
    .number()
    .positive()
    .default(3600)
    .describe("A message not delivered this long after it was queued is recorded failed with its last error. Delivery runs in the background: a recovery never waits for it."),
});
export type RetryConfig = z.output<typeof retrySchema>;

/**
 * The template, rendered with empty values (and `null` for every `json.<field>`), is JSON:
 * catches most quoting mistakes at load time.
 */
function rendersJson(t: string): boolean {
  const json = new Proxy({}, { has: () => true, get: () => "null" });
  try {
    JSON.parse(Mustache.render(t, { json }, {}, { escape: (v: unknown) => JSON.stringify(String(v)).slice(1, -1) }));
    return true;
  } catch {
    return false;
  }
}

const webhookNameSchema = z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-' only");

export const webhookSchema = z.strictObject({
  name: webhookNameSchema.describe("Identifies the target in records, logs and metrics (`webhook:<name>`)."),
  url: url().describe("Where the JSON is POSTed (Slack/Mattermost incoming webhook, Teams workflow, any HTTP receiver)."),
  auth: z
    .strictObject({
      header: z.string().min(1).default("Authorization").describe("Header that carries the credentials."),
      credentials: secret().describe('The whole header value, e.g. "Bearer abc…" (or `credentials_file: PATH`). Never logged or recorded.'),
    })
    .optional()
    .describe("An authentication header sent with every POST."),
  headers: z.record(z.string().min(1), z.string()).default({}).describe("Other, non-secret headers."),
  template: template("webhook template")
    .refine((t) => rendersJson(t), "does not render to JSON (values go inside quotes: {\"text\": \"{{subject}}\"})")
    .optional()
    .describe(
      'A mustache template of the JSON body; values are JSON-string-escaped, so write them inside quotes: `{"text": "{{subject}}"}`; `{{{json.<field>}}}` places a whole value as JSON (`"hosts": {{{json.hosts}}}`). Without it the body is `{"text": "<subject>\\n\\n<text>", "lifeboat": {kind, …}}`, which Slack, Mattermost and Rocket.Chat show as is.',
    ),
  kinds: z
    .array(z.enum(OPERATOR_KINDS))
    .min(1)
    .default([...OPERATOR_KINDS])
    .describe("Message kinds sent to this target (tenant mails never go to webhooks)."),
  timeout_seconds: z.number().positive().default(10).describe("Timeout of one POST."),
  ca_file: z.string().optional().describe("PEM CA file for an https URL with a private CA."),
  verify_tls: z.boolean().default(true).describe("Verify the receiver's certificate. `false` only for labs."),
});
export type WebhookConfig = z.output<typeof webhookSchema>;

export const notificationsSchema = z
  .strictObject({
    from: z.string().min(3).optional().describe('Sender of every mail, e.g. "lifeboat <lifeboat@cloud.example>". Required when anything is mailed.'),
    reply_to: z.string().min(3).optional().describe("Reply-To of every mail (e.g. the operators' ticket address)."),
    operators: z.array(z.email()).default([]).describe("Operator email addresses: one summary per recovery, and the blocked/fence-failed/storm/unknown-hosts messages."),
    smtp: smtpSchema.optional().describe("The mail server; without it nothing is mailed (webhooks still work)."),
    tenants: tenantsSchema.prefault({}).describe("Mails to the people of each affected project."),
    templates: z
      .partialRecord(z.enum(MESSAGE_KINDS), templateOverrideSchema)
      .default({})
      .describe("Per-kind overrides of subject, text and html (mustache). The defaults are files to copy from, `src/notify/templates/<kind>.subject.mustache`, `.text.mustache` and `.html.mustache` (`dist/notify/templates/` once installed); the values they can use are the views in `src/notify/templates.ts`."),
    retry: retrySchema.prefault({}).describe("Retries of one message to one recipient."),
    concurrency: z.number().int().min(1).max(64).default(4).describe("Messages the background delivery worker sends at once."),
    webhooks: z
      .array(webhookSchema)
      .default([])
      .refine((ws) => new Set(ws.map((w) => w.name)).size === ws.length, "webhook names must be unique")
      .describe("JSON POST targets (chat tools, paging systems)."),
    blocked_delay_seconds: z
      .number()
      .nonnegative()
      .default(180)
      .describe(
        "A recovery blocked only by evidence that may clear by itself (Nova still hears a heartbeat, a confirmation not yet true, an API that did not answer) is told to operators (`blocked` messages, mail and webhooks) only once it has lasted this long, counted from the journaled block; a block that needs a person (approval, pause, silence, storm, capacity, cooldown, maintenance, a BMC that does not answer) is told at once. 0: every block at once.",
      ),
    notify_in_dry_run: z
      .boolean()
      .default(false)
      .describe('Send operators\' and webhooks\' messages of dry-run recoveries, subject prefixed "[DRY RUN] " (tenants are never told of a dry run).'),
    dashboard_url: url().optional().describe("Link to the dashboard, put in every operator message."),
    api_url: url().optional().describe("lifeboat's own API base URL, e.g. https://lifeboat.example:9095; enables the recovery link."),
    recovery_url: template("recovery_url")
      .default("{{api_url}}/api/v1/recoveries/{{id}}")
      .describe("Link to one recovery (values: api_url, id, host); used when api_url is set."),
    approve_command: template("approve_command")
      .default("lifeboat approve {{id}}")
      .describe("The command operators run to approve a blocked recovery (values: id, host), quoted in `blocked` messages."),
    confirm_off_command: template("confirm_off_command")
      .default("lifeboat recover {{host}} --confirm-off")
      .describe("The command operators run once they know a host whose fence failed is powered off (values: id, host), quoted in `fence-failed` pages."),
  })
  .superRefine((n, ctx) => {
    const mails = n.operators.length > 0 || n.tenants.enabled;
    if (mails && !n.smtp) ctx.addIssue({ code: "custom", path: ["smtp"], message: "required when operators or tenants are to be mailed" });
    if (mails && !n.from) ctx.addIssue({ code: "custom", path: ["from"], message: "required when operators or tenants are to be mailed" });
  });
export type NotificationsConfig = z.output<typeof notificationsSchema>;
export type NotificationsConfigInput = z.input<typeof notificationsSchema>;
