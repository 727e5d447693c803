import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLogger, type Logger } from "../../src/logging.js";
import { Metrics } from "../../src/metrics.js";
import { notificationsSchema, type NotificationsConfigInput } from "../../src/notify/config.js";
import { createNotifier, STORM_SETTING, type Notifier } from "../../src/notify/service.js";
import type { NotificationRecord, RecoveryDetail } from "../../src/domain/model.js";
import type { NotifierPort } from "../../src/domain/ports/notifier.js";
import { startSmtpCatcher, type SmtpCatcher } from "../../packages/sandbox/src/smtp.js";
import type { SqliteStore } from "../../src/store/sqlite.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import type { OpenStackRequest } from "../../src/openstack/types.js";
import { startReceiver, type Receiver } from "./support/receiver.js";
import { P1, P2, XSS_NAME, scenario, testStore } from "./support/recovery.js";
import { selfSignedCert, type TestCert } from "./support/tls.js";
import { startTenantCloud, type TenantCloud, type Tenants } from "./support/tenants.js";

const SMTP_PASSWORD = "smtp-Pa55word-do-not-leak";
const WEBHOOK_TOKEN = "Bearer chat-token-do-not-leak";

const tenants: Tenants = {
  projects: [
    { id: P1, name: "tenant-one" },
    { id: P2, name: "tenant-two" },
  ],
  users: [
    { name: "alice", email: "alice@tenant-one.example", roles: [{ project: "tenant-one", role: "member" }] },
    { name: "bob", email: "bob@tenant-one.example", roles: [{ project: "tenant-one", role: "admin" }] },
    { name: "erin", roles: [{ project: "tenant-one", role: "member" }] },
    { name: "gina", email: "gina@tenant-two.example", roles: [{ project: "tenant-two", role: "member" }] },
  ],
  servers: [{ id: "11111111-aaaa-4000-8000-000000000003", project: P1, user: "alice", metadata: { "lifeboat:notify": "oncall@tenant-one.example" } }],
};

/** Keystone refusing to list tenant-one's role assignments with `status`, until removed. */
const failTenantOne = (status: number) =>
  cloud.sandbox.faults.fail(status, { match: { service: "identity", path: "/v3/role_assignments", query: { "scope.project.id": P1 } } });

let cert: TestCert;
let smtp: SmtpCatcher;
let cloud: TenantCloud;
let rx: Receiver;
let store: SqliteStore;
let clock: { t: number };
let metrics: Metrics;
let logLines: string[];
let logger: Logger;
const notifiers: Notifier[] = [];

beforeAll(() => {
  cert = selfSignedCert();
});

beforeEach(async () => {
  smtp = await startSmtpCatcher({ username: "lifeboat", password: SMTP_PASSWORD, key: cert.keyPem, cert: cert.certPem });
  cloud = await startTenantCloud(tenants);
  rx = await startReceiver();
  ({ store, clock } = await testStore());
  metrics = new Metrics({ version: "test", defaultMetrics: false });
  logLines = [];
  logger = createLogger({ level: "trace", destination: { write: (s: string) => void logLines.push(s) } });
});

afterEach(async () => {
  for (const n of notifiers.splice(0)) n.close();
  await smtp.close();
  await cloud.close();
  await rx.close();
  await store.close();
});

function config(over: NotificationsConfigInput = {}) {
  return notificationsSchema.parse({
    from: "lifeboat <lifeboat@cloud.example>",
    operators: ["ops@cloud.example"],
    smtp: { host: smtp.host, port: smtp.port, security: "starttls", username: "lifeboat", password: SMTP_PASSWORD, ca_file: cert.certFile, timeout_seconds: 5 },
    tenants: { enabled: true },
    webhooks: [{ name: "chat", url: `${rx.url}/hooks/ops`, auth: { credentials: WEBHOOK_TOKEN } }],
    retry: { attempts: 3, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2, message_timeout_seconds: 20 },
    api_url: "https://lifeboat.example:9095",
    ...over,
  });
}

function notifier(over: NotificationsConfigInput = {}, withSession = true): Notifier {
  const n = createNotifier(config(over), { store, logger, metrics, ...(withSession ? { session: cloud.session } : {}) });
  notifiers.push(n);
  return n;
}

/** Let the notifier's delivery worker send everything it has (tries back off by tens of ms here). */
async function settle(n: Notifier, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await n.delivery.runOnce();
    const kept = (await store.getSetting<NotificationRecord[]>(STORM_SETTING)) ?? [];
    if ((await store.pendingNotifications(10)).length === 0 && !kept.some((r) => r.state === "pending")) return;
    if (Date.now() > deadline) throw new Error("notifications still pending");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function sentCount(channel: string, result: string): Promise<number> {
  return (await metrics.notifications.get()).values.find((v) => v.labels.channel === channel && v.labels.result === result)?.value ?? 0;
}

const mailsTo = (addr: string) => smtp.messages.filter((m) => m.to.includes(addr));

describe("notifier facade", () => {
  it("fits the pipeline's notifier port", () => {
    const port: NotifierPort = notifier();
    expect(typeof port.recoveryFinished).toBe("function");
  });

  it("tells operators, each affected project's people and the chat webhook once per incident", async () => {
    const d = await scenario(store, clock);
    const n = notifier();
    const first = await n.recoveryFinished(d);
    // Who the tenants are is looked up in the background: only the planning entry is queued.
    expect(first).toMatchObject({ queued: 1, sent: 0, failed: 0, skipped: 0, problems: [] });
    expect(cloud.sandbox.requests).toHaveLength(0);
    expect((await store.notifications(d.id)).map((r) => [r.channel, r.state])).toEqual([["planner", "pending"]]);
    await settle(n);
    await smtp.waitFor(5);
    expect(smtp.messages.every((m) => m.to.length === 1 && m.secure && m.user === "lifeboat")).toBe(true);
    expect(smtp.messages.map((m) => m.to[0]).sort()).toEqual([
      "alice@tenant-one.example",
      "bob@tenant-one.example",
      "gina@tenant-two.example",
      "oncall@tenant-one.example",
      "ops@cloud.example",
    ]);

    const summary = mailsTo("ops@cloud.example")[0]!;
    expect(summary.subject).toBe("[lifeboat] compute-1: recovery PARTIAL (some instances failed) (2/5 instances evacuated)");
    expect(summary.text).toContain("db-1 (11111111-aaaa-4000-8000-000000000004, project " + P1 + "): FAILED: No valid host was found.");
    expect(summary.text).toContain(`project ${P1} (tenant-one): oncall@tenant-one.example, alice@tenant-one.example, bob@tenant-one.example`);
    expect(summary.html).not.toContain(XSS_NAME);
    expect(summary.html).toContain("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;");

    const alice = mailsTo("alice@tenant-one.example")[0]!;
    expect(alice.subject).toBe(`Host compute-1 failed at ${d.detectedAt}: 2 of 3 instance(s) of project tenant-one (${P1}) restarted elsewhere (ref ${d.id})`);
    expect(alice.text).toContain("web-1 (11111111-aaaa-4000-8000-000000000001): restarted on host compute-3");
    expect(alice.text).not.toContain("batch-1");
    const gina = mailsTo("gina@tenant-two.example")[0]!;
    expect(gina.text).toContain("batch-1");
    expect(gina.text + (gina.html ?? "")).not.toMatch(/web-1|db-1|script/);

    expect(rx.received).toHaveLength(1);
    expect(rx.received[0]!.headers.authorization).toBe(WEBHOOK_TOKEN);
    expect((rx.received[0]!.body as { text: string }).text).toContain("compute-1: recovery PARTIAL");

    const [plan, ...records] = await store.notifications(d.id);
    expect(plan).toMatchObject({ channel: "planner", state: "done", subject: "planned 6 message(s), 4 tenant recipient(s)" });
    expect(records).toHaveLength(6);
    expect(records.every((r) => r.state === "sent" && r.attempts === 1)).toBe(true);
    expect(new Set(records.map((r) => r.messageId)).size).toBe(6);
    expect(records.filter((r) => r.kind === "tenant").map((r) => [r.projectId, r.recipient]).sort()).toEqual([
      [P2, "gina@tenant-two.example"],
      [P1, "alice@tenant-one.example"],
      [P1, "bob@tenant-one.example"],
      [P1, "oncall@tenant-one.example"],
    ].sort());
    expect(await sentCount("email", "sent")).toBe(5);
    expect(await sentCount("webhook:chat", "sent")).toBe(1);

    // Called again for the same incident — here by a new notifier, as after a crash and restart.
    const again = notifier();
    expect(await again.recoveryFinished((await recoveryDetail(store, d.id))!)).toMatchObject({ queued: 0, failed: 0, deduplicated: 1, skipped: 1 });
    await settle(again);
    expect(smtp.messages).toHaveLength(5);
    expect(rx.received).toHaveLength(1);
  });

  it("resolves without waiting for Keystone: the lookups and the mails happen once it answers", async () => {
    const d = await scenario(store, clock);
    let answer!: () => void;
    const keystoneBack = new Promise<void>((resolve) => (answer = resolve));
    const hung = { request: <T>(req: OpenStackRequest) => keystoneBack.then(() => cloud.session.request<T>(req)) };
    const n = createNotifier(config(), { store, logger, metrics, session: hung, pollMs: 20 });
    notifiers.push(n);
    n.delivery.start();
    expect(await n.recoveryFinished(d)).toMatchObject({ queued: 1 });
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages).toHaveLength(0);
    expect((await store.notifications(d.id)).map((r) => r.state)).toEqual(["pending"]);
    answer();
    await smtp.waitFor(5);
    await n.delivery.stop();
  });

  it("plans again when Keystone answers 503: the people found are told at once, the others once Keystone answers, nobody twice", async () => {
    const outage = failTenantOne(503);
    const d = await scenario(store, clock);
    const n = notifier();
    await n.recoveryFinished(d);
    // The first try: tenant-two's people are found and told; tenant-one's lookup failed.
    await n.delivery.runOnce();
    const plan = (): Promise<NotificationRecord | undefined> => store.notifications(d.id).then((rs) => rs.find((r) => r.channel === "planner"));
    expect(await plan()).toMatchObject({ state: "pending", attempts: 1 });
    expect((await plan())!.error).toContain(`Keystone role assignments of project ${P1}`);
    // Keystone answers again: the next try finds tenant-one's people.
    outage.remove();
    await settle(n);
    expect(await plan()).toMatchObject({ state: "done", attempts: 2 });
    await smtp.waitFor(5);
    const to = smtp.messages.map((m) => m.to[0]).sort();
    expect(to).toEqual(["alice@tenant-one.example", "bob@tenant-one.example", "gina@tenant-two.example", "oncall@tenant-one.example", "ops@cloud.example"]);
    expect(new Set(to).size).toBe(to.length);
  });

  it("plans what it found on the last try, naming the lookup that kept failing", async () => {
    failTenantOne(503);
    const d = await scenario(store, clock);
    const n = notifier({ retry: { attempts: 2, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2, message_timeout_seconds: 20 } });
    await n.recoveryFinished(d);
    await settle(n);
    const plan = (await store.notifications(d.id)).find((r) => r.channel === "planner")!;
    expect(plan).toMatchObject({ state: "done", attempts: 2 });
    expect(plan.error).toContain(`Keystone role assignments of project ${P1}`);
    expect(mailsTo("gina@tenant-two.example")).toHaveLength(1);
    expect(mailsTo("bob@tenant-one.example")).toHaveLength(0);
  });

  it("still tells operators when Keystone cannot be asked, and says so", async () => {
    const d = await scenario(store, clock);
    const n = notifier({ tenants: { enabled: true, static: { [P2]: ["desk@tenant-two.example"] } } }, false);
    await n.recoveryFinished(d);
    await settle(n);
    expect((await store.notifications(d.id))[0]!.error).toContain(`project ${P1}: no OpenStack session: only static recipients were used`);
    await smtp.waitFor(2);
    expect(smtp.messages.map((m) => m.to[0]).sort()).toEqual(["desk@tenant-two.example", "ops@cloud.example"]);
    expect(mailsTo("ops@cloud.example")[0]!.text).toContain(`project ${P1}: nobody found; no OpenStack session`);
  });

  it("records a failure, and resolves, when the SMTP server refuses the credentials", async () => {
    const d = await scenario(store, clock);
    const n = notifier({
      smtp: { host: smtp.host, port: smtp.port, security: "starttls", username: "lifeboat", password: "wrong-password", ca_file: cert.certFile, timeout_seconds: 5 },
      webhooks: [],
    });
    await n.recoveryFinished(d);
    await settle(n);
    const records = (await store.notifications(d.id)).filter((x) => x.channel !== "planner");
    expect(records).toHaveLength(5);
    expect(records.every((x) => x.state === "failed" && x.attempts === 1 && /535/.test(x.error ?? ""))).toBe(true);
    expect(smtp.messages).toHaveLength(0);
    expect(await sentCount("email", "failed")).toBe(5);
  });

  it("retries a server that answers 451 twice, then accepts: sent with 3 attempts", async () => {
    const d = await scenario(store, clock, { fenceFails: true });
    smtp.failNext(2, 451);
    const n = notifier({ webhooks: [] });
    expect(await n.fenceFailed(d)).toMatchObject({ queued: 1, failed: 0 });
    await settle(n);
    expect((await store.notifications(d.id))[0]).toMatchObject({ kind: "fence-failed", state: "sent", attempts: 3 });
    expect((await smtp.waitFor(1))[0]!.subject).toBe("[lifeboat] PAGE compute-1: fencing failed, nothing evacuated, host state unknown");
  });

  it("gives up on a server that always refuses after the configured attempts, and still resolves", async () => {
    const d = await scenario(store, clock, { fenceFails: true });
    smtp.failNext(1000, 451);
    const n = notifier({ webhooks: [] });
    await n.fenceFailed(d);
    await settle(n);
    expect((await store.notifications(d.id))[0]).toMatchObject({ state: "failed", attempts: 3, error: expect.stringMatching(/451/) as unknown });
    expect(smtp.rejected).toBe(3);
  });

  it("records a dry run as would-send and sends nothing; with notify_in_dry_run operators get [DRY RUN] mail, tenants never", async () => {
    const d = await scenario(store, clock, { dryRun: true });
    const quiet = notifier();
    await quiet.recoveryFinished(d);
    await settle(quiet);
    const recorded = (await store.notifications(d.id)).filter((r) => r.channel !== "planner");
    expect(recorded.length).toBeGreaterThan(2);
    expect(recorded.every((r) => r.state === "would-send")).toBe(true);
    expect(smtp.messages).toHaveLength(0);
    expect(rx.received).toHaveLength(0);

    const other = await scenario(store, clock, { dryRun: true, host: "compute-2" });
    const loud = notifier({ notify_in_dry_run: true });
    await loud.recoveryFinished(other);
    await settle(loud);
    expect((await store.notifications(other.id)).filter((r) => r.state === "sent")).toHaveLength(2); // operator + webhook
    await smtp.waitFor(1);
    expect(smtp.messages.map((m) => m.to[0])).toEqual(["ops@cloud.example"]);
    expect(smtp.messages[0]!.subject).toMatch(/^\[DRY RUN\] /);
    const tenants = (await store.notifications(other.id)).filter((r) => r.kind === "tenant");
    expect(tenants.length).toBeGreaterThan(0);
    expect(tenants.every((r) => r.state === "would-send")).toBe(true);
  });

  it("tells operators about a blocked recovery once per blocked episode", async () => {
    const d = await scenario(store, clock, { blocked: true });
    const n = notifier();
    expect(await n.recoveryBlocked(d, d.reason)).toMatchObject({ queued: 2 });
    expect(await n.recoveryBlocked(d, d.reason)).toMatchObject({ queued: 0, deduplicated: 2 });
    await settle(n);
    const m = (await smtp.waitFor(1))[0]!;
    expect(m.text).toContain(`lifeboat approve ${d.id}`);
  });

  it("records storm messages under the recovery that tripped the guard, or in a setting without one", async () => {
    const d = await scenario(store, clock, { blocked: true });
    const n = notifier();
    const info = { hosts: ["compute-1", "compute-2", "compute-3"], reason: "3 hosts failed within 600 s (limit 2)", at: "2026-03-01T10:10:00.000Z" };
    expect(await n.stormTripped({ ...info, recoveryId: d.id })).toMatchObject({ queued: 2 });
    expect((await store.notifications(d.id)).map((r) => r.kind)).toEqual(["storm", "storm"]);

    const other = { ...info, at: "2026-03-01T11:00:00.000Z" };
    expect(await n.stormTripped(other)).toMatchObject({ queued: 2 });
    expect(await n.stormTripped(other)).toMatchObject({ queued: 0, deduplicated: 2 });
    // An unknown recovery id falls back to the setting rather than breaking the foreign key.
    expect(await n.stormTripped({ ...info, at: "2026-03-01T12:00:00.000Z", recoveryId: "r-missing" })).toMatchObject({ queued: 2, problems: [] });
    await settle(n);
    const kept = await store.getSetting<NotificationRecord[]>(STORM_SETTING);
    expect(kept!.map((r) => r.state)).toEqual(["sent", "sent", "sent", "sent"]);
    expect(smtp.messages.filter((m) => m.subject.includes("storm guard tripped"))).toHaveLength(3);
  });

  it("never lets the SMTP password or the webhook credentials reach a log line or a record", async () => {
    const d = await scenario(store, clock);
    rx.answers.push({ status: 401, body: `token ${WEBHOOK_TOKEN} is not valid here` });
    const good = notifier({ retry: { attempts: 1 } });
    await good.recoveryFinished(d);
    await good.fenceFailed(d);
    await settle(good);
    const bad = notifier({
      smtp: { host: smtp.host, port: smtp.port, security: "starttls", username: "lifeboat", password: `${SMTP_PASSWORD}-x`, ca_file: cert.certFile, timeout_seconds: 5 },
    });
    await bad.stormTripped({ hosts: ["compute-1"], reason: "test", at: "2026-03-01T10:10:00.000Z" });
    await bad.recoveryBlocked(d, "paused");
    await settle(bad);

    expect(logLines.length).toBeGreaterThan(10);
    const logs = logLines.join("");
    expect(logs).toContain("notification sent");
    expect(logs).toContain("[redacted]"); // the echoed token, scrubbed
    const stored = JSON.stringify([await store.notifications(d.id), await store.getSetting(STORM_SETTING)]);
    expect(stored).toContain("failed");
    for (const secret of [SMTP_PASSWORD, "chat-token-do-not-leak", Buffer.from(`\u0000lifeboat\u0000${SMTP_PASSWORD}`).toString("base64")]) {
      expect(logs).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
  });

  it("resolves with the problem instead of throwing when the store is gone", async () => {
    const d: RecoveryDetail = await scenario(store, clock);
    const n = notifier({ webhooks: [] });
    await store.close();
    const r = await n.recoveryFinished(d);
    expect(r.queued).toBe(0);
    expect(r.problems.some((p) => /store is closed/.test(p))).toBe(true);
    ({ store } = await testStore()); // for afterEach
  });
});
