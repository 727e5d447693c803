import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logging.js";
import { Metrics } from "../../src/metrics.js";
import { retrySchema, smtpSchema } from "../../src/notify/config.js";
import { dispatch, settingsSink, storeSink, type DispatchDeps, type PlannedMessage, type RecordSink } from "../../src/notify/dispatcher.js";
import { createEmailChannel, type EmailChannel } from "../../src/notify/email.js";
import type { NotificationRecord, RecoveryDetail } from "../../src/recovery/model.js";
import { startSmtpCatcher, type SmtpCatcher } from "../../src/sandbox/smtp.js";
import type { SqliteStore } from "../../src/store/sqlite.js";
import { scenario, testStore } from "./support/recovery.js";

let store: SqliteStore;
let detail: RecoveryDetail;
let catcher: SmtpCatcher;
let channel: EmailChannel;
let metrics: Metrics;

beforeEach(async () => {
  const t = await testStore();
  store = t.store;
  detail = await scenario(store, t.clock);
  catcher = await startSmtpCatcher({ starttls: false });
  channel = createEmailChannel({ smtp: smtpSchema.parse({ host: catcher.host, port: catcher.port, security: "none", timeout_seconds: 5 }), from: "lifeboat@cloud.example" });
  metrics = new Metrics({ version: "test", defaultMetrics: false });
});
afterEach(async () => {
  channel.close();
  await catcher.close();
  await store.close();
});

function deps(over: Partial<DispatchDeps> = {}): DispatchDeps {
  return {
    channels: new Map([["email", channel]]),
    retry: retrySchema.parse({ attempts: 3, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2, message_timeout_seconds: 20 }),
    concurrency: 2,
    metrics,
    logger: silentLogger(),
    secrets: [],
    ...over,
  };
}

function planned(recipient = "ops@cloud.example", over: Partial<PlannedMessage> = {}): PlannedMessage {
  return {
    channel: "email",
    dedupKey: `operator-summary|${detail.host}|${detail.incidentKey}|email|${recipient}`,
    mode: "send",
    message: { kind: "operator-summary", recipient, subject: "[lifeboat] compute-1: recovery completed", text: "done\n", data: {} },
    ...over,
  };
}

/** The store's sink, with every write kept in order. */
function spied(sink: RecordSink): RecordSink & { writes: NotificationRecord[] } {
  const writes: NotificationRecord[] = [];
  return { recoveryId: sink.recoveryId, byKey: (k) => sink.byKey(k), put: async (r) => (writes.push({ ...r }), sink.put(r)), writes };
}

async function counter(channelName: string, result: string): Promise<number> {
  const m = await metrics.notifications.get();
  return m.values.find((v) => v.labels.channel === channelName && v.labels.result === result)?.value ?? 0;
}

describe("dispatcher", () => {
  it("retries a 451 answer with backoff and records every attempt: sent on the third", async () => {
    catcher.failNext(2, 451);
    const sink = spied(storeSink(store, detail.id));
    const r = await dispatch([planned()], sink, deps());
    expect(r).toMatchObject({ sent: 1, failed: 0, deduplicated: 0 });
    expect(await catcher.waitFor(1)).toHaveLength(1);
    expect(catcher.rejected).toBe(2);
    expect(sink.writes.map((w) => [w.state, w.attempts])).toEqual([
      ["pending", 0],
      ["pending", 1],
      ["pending", 2],
      ["sent", 3],
    ]);
    expect(sink.writes[1]!.error).toMatch(/451/);
    const [stored] = await store.notifications(detail.id);
    expect(stored).toMatchObject({ state: "sent", attempts: 3, channel: "email", kind: "operator-summary", recipient: "ops@cloud.example" });
    expect(stored!.sentAt).toBeDefined();
    expect(await counter("email", "sent")).toBe(1);
  });

  it("gives up after the configured attempts on a server that keeps refusing, and resolves", async () => {
    catcher.failNext(100, 451);
    const r = await dispatch([planned()], storeSink(store, detail.id), deps());
    expect(r).toMatchObject({ sent: 0, failed: 1 });
    expect(catcher.rejected).toBe(3);
    const [stored] = await store.notifications(detail.id);
    expect(stored).toMatchObject({ state: "failed", attempts: 3 });
    expect(stored!.error).toMatch(/451/);
    expect(await counter("email", "failed")).toBe(1);
  });

  it("does not retry a permanent refusal (5xx)", async () => {
    catcher.failNext(100, 550);
    await dispatch([planned()], storeSink(store, detail.id), deps());
    expect(catcher.rejected).toBe(1);
    expect((await store.notifications(detail.id))[0]).toMatchObject({ state: "failed", attempts: 1, error: expect.stringMatching(/550/) as unknown });
  });

  it("bounds the total time of one message (message_timeout_seconds) on a server that never answers", async () => {
    const sockets: Socket[] = [];
    const mute: Server = createServer((s) => sockets.push(s)); // accepts, never greets
    await new Promise<void>((resolve) => mute.listen(0, "127.0.0.1", resolve));
    const stuck = createEmailChannel({
      smtp: smtpSchema.parse({ host: "127.0.0.1", port: (mute.address() as AddressInfo).port, security: "none", timeout_seconds: 60 }),
      from: "lifeboat@cloud.example",
    });
    const started = Date.now();
    const r = await dispatch([planned()], storeSink(store, detail.id), deps({ channels: new Map([["email", stuck]]), retry: retrySchema.parse({ attempts: 5, message_timeout_seconds: 1 }) }));
    const took = Date.now() - started;
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => mute.close(resolve));
    stuck.close();
    expect(r.failed).toBe(1);
    expect(took).toBeLessThan(10_000); // the SMTP timeouts alone would take 60 s
    expect((await store.notifications(detail.id))[0]!.error).toMatch(/gave up after 1s/);
  });

  it("skips what was already sent under the same key, and re-sends what failed or was left pending", async () => {
    const sent = planned("a@cloud.example");
    const failed = planned("b@cloud.example");
    const pending = planned("c@cloud.example");
    const base = { recoveryId: detail.id, channel: "email", kind: "operator-summary", subject: "s", attempts: 1 };
    await store.putNotification({ ...base, dedupKey: sent.dedupKey, recipient: "a@cloud.example", state: "sent" });
    await store.putNotification({ ...base, dedupKey: failed.dedupKey, recipient: "b@cloud.example", state: "failed", error: "x" });
    await store.putNotification({ ...base, dedupKey: pending.dedupKey, recipient: "c@cloud.example", state: "pending" });
    const r = await dispatch([sent, failed, pending], storeSink(store, detail.id), deps());
    expect(r).toMatchObject({ sent: 2, deduplicated: 1 });
    await catcher.waitFor(2);
    expect(catcher.messages.map((m) => m.to[0]).sort()).toEqual(["b@cloud.example", "c@cloud.example"]);
    expect((await store.notifications(detail.id)).map((n) => n.state)).toEqual(["sent", "sent", "sent"]);
  });

  it("only records would-send messages", async () => {
    const r = await dispatch([planned("a@cloud.example", { mode: "would-send" })], storeSink(store, detail.id), deps());
    expect(r).toMatchObject({ sent: 0, wouldSend: 1 });
    expect((await store.notifications(detail.id))[0]).toMatchObject({ state: "would-send", attempts: 0 });
    expect(catcher.messages).toHaveLength(0);
  });

  it("still delivers, and resolves, when the store cannot record", async () => {
    const broken: RecordSink = { recoveryId: detail.id, byKey: () => Promise.reject(new Error("disk I/O error")), put: () => Promise.reject(new Error("disk I/O error")) };
    const r = await dispatch([planned()], broken, deps());
    expect(r.sent).toBe(1);
    expect(r.problems.length).toBeGreaterThan(1);
    expect(r.problems[0]).toMatch(/disk I\/O error/);
    expect(await catcher.waitFor(1)).toHaveLength(1);
  });

  it("records a message for a channel that does not exist as failed", async () => {
    const r = await dispatch([planned("chat", { channel: "webhook:chat" })], storeSink(store, detail.id), deps());
    expect(r.failed).toBe(1);
    expect((await store.notifications(detail.id))[0]).toMatchObject({ state: "failed", error: "no channel webhook:chat is configured" });
  });

  it("keeps records of messages tied to no recovery in a setting", async () => {
    const sink = settingsSink(store, "notifications.storm");
    const msgs = ["a", "b", "c"].map((x) => planned(`${x}@cloud.example`, { dedupKey: `storm|t|email|${x}` }));
    await dispatch(msgs, sink, deps());
    const kept = await store.getSetting<NotificationRecord[]>("notifications.storm");
    expect(kept!.map((k) => [k.dedupKey, k.state]).sort()).toEqual([
      ["storm|t|email|a", "sent"],
      ["storm|t|email|b", "sent"],
      ["storm|t|email|c", "sent"],
    ]);
    const again = await dispatch(msgs, sink, deps());
    expect(again.deduplicated).toBe(3);
  });
});
