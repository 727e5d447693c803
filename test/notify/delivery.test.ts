import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { smtpSchema } from "../../src/notify/config.js";
import { settingsSink, storeOutbox, storeSink, type OutboxSource, type PlannedMessage, type RecordSink } from "../../src/notify/dispatcher.js";
import { createEmailChannel, type EmailChannel } from "../../src/notify/email.js";
import type { NotificationRecord, RecoveryDetail } from "../../src/domain/model.js";
import { startSmtpCatcher, type SmtpCatcher } from "../../packages/sandbox/src/smtp.js";
import type { SqliteStore } from "../../src/store/sqlite.js";
import { delivery } from "./support/delivery.js";
import { scenario, testStore } from "./support/recovery.js";

/**
 * Notifications are journaled first (enqueue: pending records that carry what to send), then
 * sent by the delivery worker in the background: retries with backoff, every try journaled,
 * an end recorded with its reason, resumed from the journal by a new worker.
 */

let store: SqliteStore;
let detail: RecoveryDetail;
let catcher: SmtpCatcher;
let channel: EmailChannel;
const closers: (() => unknown)[] = [];

beforeEach(async () => {
  const t = await testStore();
  store = t.store;
  detail = await scenario(store, t.clock);
  catcher = await startSmtpCatcher({ starttls: false });
  channel = email(catcher.port);
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  channel.close();
  await catcher.close();
  await store.close();
});

function email(port: number, timeoutSeconds = 5): EmailChannel {
  return createEmailChannel({ smtp: smtpSchema.parse({ host: "127.0.0.1", port, security: "none", timeout_seconds: timeoutSeconds }), from: "lifeboat <lifeboat@cloud.example>" });
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

/** The store's outbox, with every write the worker makes kept in order. */
function spied(source: OutboxSource): OutboxSource & { writes: NotificationRecord[] } {
  const writes: NotificationRecord[] = [];
  return { name: source.name, pending: (n) => source.pending(n), put: async (r, p) => (writes.push({ ...r }), source.put(r, p)), writes };
}

/** A TCP server that accepts connections and never says a word (a hung mail server). */
async function muteServer(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => sockets.length,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("queuing", () => {
  it("journals a pending record carrying the message, its Message-ID and its first try time; nothing is sent", async () => {
    const d = delivery(store, [channel]);
    const r = await d.queue([planned()], storeSink(store, detail.id));
    expect(r).toMatchObject({ queued: 1, failed: 0, deduplicated: 0 });
    const [rec] = await store.notifications(detail.id);
    expect(rec).toMatchObject({ state: "pending", attempts: 0, channel: "email", recipient: "ops@cloud.example" });
    expect(rec!.messageId).toMatch(/^<lifeboat\.[0-9a-f]{32}@cloud\.example>$/);
    expect(rec!.nextAttemptAt).toBe(rec!.queuedAt);
    const [entry] = await store.pendingNotifications(10);
    expect(entry!.payload).toEqual({ type: "message", subject: "[lifeboat] compute-1: recovery completed", text: "done\n", data: {} });
    expect(catcher.messages).toHaveLength(0);
  });

  it("queues each key once: already queued, failed or sent in this recovery, or queued or sent under another, is skipped", async () => {
    const d = delivery(store, [channel]);
    const sink = storeSink(store, detail.id);
    expect((await d.queue([planned("a@cloud.example")], sink)).queued).toBe(1);
    expect(await d.queue([planned("a@cloud.example")], sink)).toMatchObject({ queued: 0, deduplicated: 1 });
    const base = { recoveryId: detail.id, channel: "email", kind: "operator-summary", subject: "s", attempts: 1 };
    await store.putNotification({ ...base, dedupKey: planned("b@cloud.example").dedupKey, recipient: "b@cloud.example", state: "failed", error: "x" });
    expect(await d.queue([planned("b@cloud.example")], sink)).toMatchObject({ queued: 0, deduplicated: 1 });
    // The same key under a second recovery of the incident (tenants are told once per incident).
    const other = await store.createRecovery({ host: "compute-9", incidentKey: "i", kind: "manual", trigger: "manual", dryRun: false, confirmedOff: false, detectedAt: detail.detectedAt, graceUntil: detail.detectedAt, reason: "x" });
    expect(await d.queue([planned("a@cloud.example")], storeSink(store, other.id))).toMatchObject({ queued: 0, deduplicated: 1 });
    await store.putNotification({ ...base, recoveryId: other.id, dedupKey: planned("c@cloud.example").dedupKey, recipient: "c@cloud.example", state: "failed" });
    expect((await d.queue([planned("c@cloud.example")], sink)).queued).toBe(1);
  });

  it("only records would-send messages, and a message for a channel that does not exist as failed", async () => {
    const d = delivery(store, [channel]);
    const r = await d.queue([planned("a@cloud.example", { mode: "would-send" }), planned("chat", { channel: "webhook:chat", dedupKey: "k|webhook:chat" })], storeSink(store, detail.id));
    expect(r).toMatchObject({ queued: 0, wouldSend: 1, failed: 1 });
    expect((await store.notifications(detail.id)).map((n) => [n.state, n.error])).toEqual([
      ["would-send", undefined],
      ["failed", "no channel webhook:chat is configured"],
    ]);
    expect(await store.pendingNotifications(10)).toEqual([]);
    expect(await d.count("webhook:chat", "failed")).toBe(1);
  });

  it("says so, and queues nothing, when the journal cannot be written", async () => {
    const broken: RecordSink = { recoveryId: detail.id, byKey: () => Promise.reject(new Error("disk I/O error")), put: () => Promise.reject(new Error("disk I/O error")) };
    const r = await delivery(store, [channel]).queue([planned()], broken);
    expect(r.queued).toBe(0);
    expect(r.problems).toEqual([expect.stringMatching(/look up earlier deliveries .*disk I\/O error/), expect.stringMatching(/cannot record notification .*disk I\/O error/)]);
  });
});

describe("delivery worker", () => {
  it("retries a 451 answer with backoff, journaling each try before it starts: sent on the third", async () => {
    catcher.failNext(2, 451);
    const outbox = spied(storeOutbox(store));
    const d = delivery(store, [channel], { sources: [outbox] });
    await d.queue([planned()], storeSink(store, detail.id));
    await d.drain();
    expect(await catcher.waitFor(1)).toHaveLength(1);
    expect(catcher.rejected).toBe(2);
    expect(outbox.writes.map((w) => [w.state, w.attempts, w.error === undefined ? "" : "error"])).toEqual([
      ["pending", 1, ""],
      ["pending", 1, "error"],
      ["pending", 2, "error"],
      ["pending", 2, "error"],
      ["pending", 3, "error"],
      ["sent", 3, ""],
    ]);
    expect(outbox.writes[1]!.error).toMatch(/451/);
    const [stored] = await store.notifications(detail.id);
    expect(stored).toMatchObject({ state: "sent", attempts: 3, channel: "email", kind: "operator-summary" });
    expect(stored!.sentAt).toBeDefined();
    expect(stored!.nextAttemptAt).toBeUndefined();
    expect(await store.pendingNotifications(10)).toEqual([]);
    expect(await d.count("email", "sent")).toBe(1);
  });

  it("sends the Message-ID journaled with the record", async () => {
    const d = delivery(store, [channel]);
    await d.queue([planned()], storeSink(store, detail.id));
    await d.drain();
    const [rec] = await store.notifications(detail.id);
    const [mail] = await catcher.waitFor(1);
    expect(mail!.headers["message-id"]).toBe(rec!.messageId);
  });

  it("gives up after retry.attempts on a server that keeps refusing, with the reason", async () => {
    catcher.failNext(100, 451);
    const d = delivery(store, [channel]);
    await d.queue([planned()], storeSink(store, detail.id));
    await d.drain();
    expect(catcher.rejected).toBe(3);
    const [stored] = await store.notifications(detail.id);
    expect(stored).toMatchObject({ state: "failed", attempts: 3 });
    expect(stored!.error).toMatch(/^gave up after 3 tries \(retry\.attempts\): .*451/);
    expect(await d.count("email", "failed")).toBe(1);
  });

  it("does not retry a permanent refusal (5xx)", async () => {
    catcher.failNext(100, 550);
    const d = delivery(store, [channel]);
    await d.queue([planned()], storeSink(store, detail.id));
    await d.drain();
    expect(catcher.rejected).toBe(1);
    expect((await store.notifications(detail.id))[0]).toMatchObject({ state: "failed", attempts: 1, error: expect.stringMatching(/550/) as unknown });
  });

  it("a server that accepts TCP and never greets: each try ends at nodemailer's timeout (the greeting's, or the socket's on a busy machine), then the message is failed with the reason", async () => {
    const mute = await muteServer();
    closers.push(() => mute.close());
    const stuck = email(mute.port, 0.3);
    closers.push(() => stuck.close());
    const d = delivery(store, [stuck], { retry: { attempts: 2 } });
    await d.queue([planned()], storeSink(store, detail.id));
    expect((await store.notifications(detail.id))[0]!.state).toBe("pending");
    await d.drain();
    expect(mute.connections()).toBe(2);
    const [stored] = await store.notifications(detail.id);
    expect(stored).toMatchObject({ state: "failed", attempts: 2 });
    expect(stored!.error).toMatch(/gave up after 2 tries .*(Greeting never received|Timeout)/);
  });

  it("records a message still undelivered retry.message_timeout_seconds after it was queued as failed", async () => {
    catcher.failNext(100, 451);
    const d = delivery(store, [channel], { retry: { attempts: 20, initial_backoff_seconds: 0.3, max_backoff_seconds: 0.3, message_timeout_seconds: 0.5 } });
    await d.queue([planned()], storeSink(store, detail.id));
    await d.drain();
    const [stored] = await store.notifications(detail.id);
    expect(stored!.state).toBe("failed");
    expect(stored!.attempts).toBeLessThan(20);
    expect(stored!.error).toMatch(/^gave up: not delivered within 0\.5s \(retry\.message_timeout_seconds\): .*451/);
  });

  it("resumes what another worker left pending (a stop in the middle of a try): sent again with the same Message-ID", async () => {
    catcher.holdNext(1); // the relay takes the message; its 250 never comes
    const first = delivery(store, [channel]);
    await first.queue([planned()], storeSink(store, detail.id));
    first.worker.start();
    await catcher.waitFor(1);
    await first.worker.stop();
    const [left] = await store.notifications(detail.id);
    expect(left).toMatchObject({ state: "pending", attempts: 0, error: "interrupted: lifeboat stopped during the try" });

    const second = delivery(store, [channel]);
    await second.drain();
    const mails = await catcher.waitFor(2);
    expect(mails[0]!.headers["message-id"]).toBe(left!.messageId);
    expect(mails[1]!.headers["message-id"]).toBe(left!.messageId);
    expect((await store.notifications(detail.id))[0]).toMatchObject({ state: "sent", attempts: 1 });
  });

  it("sends the pending messages kept in a setting (storm messages of no recovery)", async () => {
    const sink = settingsSink(store, "notifications.storm");
    const d = delivery(store, [channel], { sources: [storeOutbox(store), sink] });
    const msgs = ["a", "b", "c"].map((x) => planned(`${x}@cloud.example`, { dedupKey: `storm|t|email|${x}` }));
    expect((await d.queue(msgs, sink)).queued).toBe(3);
    await d.drain();
    expect((await catcher.waitFor(3)).map((m) => m.to[0]).sort()).toEqual(["a@cloud.example", "b@cloud.example", "c@cloud.example"]);
    const kept = await store.getSetting<(NotificationRecord & { payload?: unknown })[]>("notifications.storm");
    expect(kept!.map((k) => [k.dedupKey, k.state, k.payload])).toEqual([
      ["storm|t|email|a", "sent", undefined],
      ["storm|t|email|b", "sent", undefined],
      ["storm|t|email|c", "sent", undefined],
    ]);
    expect((await d.queue(msgs, sink)).deduplicated).toBe(3);
  });

  it("records a message whose channel is gone from the config as failed", async () => {
    await delivery(store, [channel]).queue([planned()], storeSink(store, detail.id));
    const without = delivery(store, []);
    await without.drain();
    expect((await store.notifications(detail.id))[0]).toMatchObject({ state: "failed", error: "no channel email is configured" });
  });
});
