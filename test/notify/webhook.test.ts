import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Metrics } from "../../src/metrics.js";
import { webhookSchema } from "../../src/notify/config.js";
import { DeliveryError, storeSink, type PlannedMessage } from "../../src/notify/dispatcher.js";
import type { OutboundMessage } from "../../src/notify/types.js";
import { createWebhookChannel } from "../../src/notify/webhook.js";
import type { RecoveryDetail } from "../../src/domain/model.js";
import type { SqliteStore } from "../../src/store/sqlite.js";
import { scenario, testStore } from "./support/recovery.js";
import { startReceiver, type Receiver } from "./support/receiver.js";
import { delivery } from "./support/delivery.js";

const TOKEN = "Bearer xoxb-webhook-secret-42";
let rx: Receiver;
let store: SqliteStore;
let detail: RecoveryDetail;
let metrics: Metrics;

beforeEach(async () => {
  rx = await startReceiver();
  const t = await testStore();
  store = t.store;
  detail = await scenario(store, t.clock, { fenceFails: true });
  metrics = new Metrics({ version: "test", defaultMetrics: false });
});
afterEach(async () => {
  await rx.close();
  await store.close();
});

const message: OutboundMessage = {
  kind: "fence-failed",
  recipient: "chat",
  subject: "[lifeboat] PAGE compute-1: fencing failed",
  text: 'Fencing of "compute-1" failed.\nNothing was evacuated.\n',
  data: { host: "compute-1", id: "r-1", hosts: ["compute-1", "compute-2"] },
};

function channel(over: Record<string, unknown> = {}) {
  return createWebhookChannel(webhookSchema.parse({ name: "chat", url: `${rx.url}/hooks/ops`, auth: { credentials: TOKEN }, timeout_seconds: 5, ...over }));
}

/** Queue one message for the webhook and let the delivery worker send it (with retries). */
async function deliver(over: Record<string, unknown> = {}, attempts = 3) {
  const c = channel(over);
  const p: PlannedMessage = { channel: c.name, dedupKey: `fence-failed|k|${c.name}`, mode: "send", message };
  const d = delivery(store, [c], { retry: { attempts, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.1 }, secrets: c.secrets });
  await d.queue([p], storeSink(store, detail.id));
  await d.drain();
  metrics = d.metrics;
  return (await store.notifications(detail.id))[0]!;
}

describe("webhook channel", () => {
  it("POSTs Slack/Mattermost-style JSON with the auth header and the extra headers", async () => {
    await channel({ headers: { "X-Team": "ops" } }).send(message);
    expect(rx.received).toHaveLength(1);
    const r = rx.received[0]!;
    expect(r.path).toBe("/hooks/ops");
    expect(r.headers.authorization).toBe(TOKEN);
    expect(r.headers["x-team"]).toBe("ops");
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    expect(r.body).toEqual({
      text: '[lifeboat] PAGE compute-1: fencing failed\n\nFencing of "compute-1" failed.\nNothing was evacuated.\n',
      lifeboat: { host: "compute-1", id: "r-1", hosts: ["compute-1", "compute-2"], kind: "fence-failed", subject: "[lifeboat] PAGE compute-1: fencing failed" },
    });
  });

  it("renders a configured body template with JSON-escaped values, and a custom auth header", async () => {
    const template = '{"channel": "#ops", "text": "{{subject}} on {{host}}", "hosts": {{{json.hosts}}}, "note": "{{quote}}"}';
    await channel({ template, auth: { header: "X-Api-Key", credentials: "k-123456" } }).send({ ...message, data: { ...message.data, hosts: ["a", 'b"c'], quote: 'say "hi"\n' } });
    const r = rx.received[0]!;
    expect(r.headers["x-api-key"]).toBe("k-123456");
    expect(r.headers.authorization).toBeUndefined();
    expect(r.body).toEqual({ channel: "#ops", text: "[lifeboat] PAGE compute-1: fencing failed on compute-1", hosts: ["a", 'b"c'], note: 'say "hi"\n' });
  });

  it("retries a 500 and records the message sent on the second attempt", async () => {
    rx.answers.push({ status: 500, body: "internal error" });
    const r = await deliver();
    expect(r.state).toBe("sent");
    expect(rx.received).toHaveLength(2);
    // The same message on both tries, so a receiver can recognise the second.
    expect(rx.received[1]!.headers["x-lifeboat-message-id"]).toBe(r.messageId);
    expect(rx.received[0]!.headers["x-lifeboat-message-id"]).toBe(r.messageId);
    expect((await store.notifications(detail.id))[0]).toMatchObject({ channel: "webhook:chat", kind: "fence-failed", recipient: "chat", state: "sent", attempts: 2 });
    const m = await metrics.notifications.get();
    expect(m.values.find((v) => v.labels.channel === "webhook:chat" && v.labels.result === "sent")?.value).toBe(1);
  });

  it("retries 429, but not a 4xx that will not change", async () => {
    rx.answers.push({ status: 429, body: "slow down" }, { status: 404, body: "no_service" });
    const r = await deliver();
    expect(r.state).toBe("failed");
    expect(rx.received).toHaveLength(2);
    expect((await store.notifications(detail.id))[0]).toMatchObject({ state: "failed", attempts: 2, error: "POST chat: HTTP 404: no_service" });
  });

  it("never records the auth header, even when the receiver echoes it", async () => {
    rx.answers.push({ status: 401, body: `invalid credentials: ${TOKEN}` });
    await deliver();
    const [n] = await store.notifications(detail.id);
    expect(n!.state).toBe("failed");
    expect(n!.error).toContain("[redacted]");
    expect(JSON.stringify(await store.notifications(detail.id))).not.toContain("xoxb-webhook-secret-42");
  });

  it("does not follow redirects (the auth header must not travel)", async () => {
    rx.answers.push({ status: 302, location: "/elsewhere" });
    const err = await channel()
      .send(message)
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect(err).toMatchObject({ permanent: true, code: 302 });
    expect(rx.received.map((r) => r.path)).toEqual(["/hooks/ops"]);
  });

  it("honours the timeout of one POST", async () => {
    rx.answers.push({ status: 200, delayMs: 8000 });
    const started = Date.now();
    const err = await channel({ timeout_seconds: 0.3 })
      .send(message)
      .then(() => null, (e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toMatchObject({ permanent: false });
    expect((err as Error).message).toMatch(/timeout/i);
  });

  it("counts a refused connection as worth a retry", async () => {
    const url = rx.url;
    await rx.close();
    const c = createWebhookChannel(webhookSchema.parse({ name: "gone", url }));
    const err = await c.send(message).then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ permanent: false });
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    rx = await startReceiver();
  });
});
