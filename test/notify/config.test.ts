import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { resolveSecretFiles, type ConfigProblem } from "../../src/config/interpolate.js";
import { notificationsSchema, smtpPort } from "../../src/notify/config.js";
import { Secret } from "../../src/util/secret.js";

const issues = (input: unknown) =>
  (notificationsSchema.safeParse(input).error?.issues ?? []).map((i) => `${i.path.join(".")}: ${i.message}`);

describe("notifications config", () => {
  it("has working defaults: nothing mailed, tenants off, member roles, bounded retries", () => {
    const c = notificationsSchema.parse({});
    expect(c).toMatchObject({
      operators: [],
      tenants: { enabled: false, keystone: { enabled: true, roles: ["member", "_member_"] }, creator: true, metadata_key: "lifeboat:notify", static: {}, max_recipients_per_project: 50 },
      retry: { attempts: 10, initial_backoff_seconds: 2, max_backoff_seconds: 300, factor: 2, message_timeout_seconds: 3600 },
      webhooks: [],
      notify_in_dry_run: false,
      approve_command: "lifeboat approve {{id}}",
      confirm_off_command: "lifeboat recover {{host}} --confirm-off",
    });
    expect(c.smtp).toBeUndefined();
  });

  it("picks the usual port for each SMTP security mode", () => {
    const port = (security: string, p?: number) => smtpPort(notificationsSchema.parse({ smtp: { host: "mx", security, ...(p ? { port: p } : {}) } }).smtp!);
    expect([port("starttls"), port("tls"), port("none"), port("tls", 2465)]).toEqual([587, 465, 25, 2465]);
  });

  it("requires a mail server and a sender once anyone is to be mailed", () => {
    expect(issues({ operators: ["ops@cloud.example"] })).toEqual(["smtp: required when operators or tenants are to be mailed", "from: required when operators or tenants are to be mailed"]);
    expect(issues({ tenants: { enabled: true }, from: "l@cloud.example" })).toEqual(["smtp: required when operators or tenants are to be mailed"]);
    expect(issues({ webhooks: [{ name: "chat", url: "https://chat.example/h" }] })).toEqual([]);
  });

  it("rejects half credentials, bad addresses, broken templates, duplicate webhook names and unknown keys", () => {
    expect(issues({ smtp: { host: "mx", username: "u" } })).toContain("smtp: give username and password together, or neither");
    expect(issues({ operators: ["not an address"], from: "l@x.example", smtp: { host: "mx" } })).toEqual(["operators.0: Invalid email address"]);
    expect(issues({ templates: { blocked: { text: "{{#approvable}}" } } })[0]).toMatch(/^templates.blocked.text: text is not a valid mustache template/);
    expect(issues({ templates: { nonsense: { text: "x" } } })).toEqual(['templates: Unrecognized key: "nonsense"']);
    expect(issues({ webhooks: [{ name: "a", url: "https://x.example" }, { name: "a", url: "https://y.example" }] })).toEqual(["webhooks: webhook names must be unique"]);
    expect(issues({ webhooks: [{ name: "a", url: "https://x.example", template: '{"text": {{subject}}}' }] })[0]).toMatch(/^webhooks.0.template: does not render to JSON/);
    expect(issues({ webhooks: [{ name: "a", url: "https://x.example", template: '{"text": "{{subject}}", "hosts": {{{json.hosts}}}}' }] })).toEqual([]);
    expect(issues({ webhooks: [{ name: "a", url: "https://x.example", kinds: ["tenant"] }] })[0]).toMatch(/^webhooks.0.kinds.0/);
    expect(issues({ smtp: { host: "mx", tls: true } })[0]).toMatch(/^smtp: Unrecognized key/);
  });

  it("reads the SMTP password and the webhook credentials from files, as Secrets", () => {
    const raw: unknown = parse(`
from: lifeboat@cloud.example
operators: [ops@cloud.example]
smtp: { host: mx.cloud.example, username: lifeboat, password_file: /run/secrets/smtp }
webhooks:
  - name: chat
    url: https://chat.example/hooks/1
    auth: { header: X-Api-Key, credentials_file: /run/secrets/chat }
`);
    const problems: ConfigProblem[] = [];
    const files: Record<string, string> = { "/run/secrets/smtp": "smtp-secret\n", "/run/secrets/chat": "chat-secret\n" };
    const resolved = resolveSecretFiles(raw, problems, (p) => files[p] ?? "");
    expect(problems).toEqual([]);
    const c = notificationsSchema.parse(resolved);
    expect(c.smtp!.password).toBeInstanceOf(Secret);
    expect(c.smtp!.password!.reveal()).toBe("smtp-secret");
    expect(c.webhooks[0]!.auth!.credentials.reveal()).toBe("chat-secret");
    expect(c.webhooks[0]!.auth!.header).toBe("X-Api-Key");
    expect(JSON.stringify(c)).not.toMatch(/smtp-secret|chat-secret/);
  });
});
