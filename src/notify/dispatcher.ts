import { createHash } from "node:crypto";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import { PLANNER_CHANNEL, type NotificationPayload, type NotificationRecord, type OutboxEntry } from "../domain/model.js";
import type { Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";
import type { OutboundMessage } from "./types.js";

/**
 * Planned messages into the journal: deduplication on the record's key, then one record per
 * message in state `pending` that carries what to send, its Message-ID and when to try it.
 * Nothing is delivered here — the delivery worker (worker.ts) does that in the background —
 * so queuing costs a few journal writes, whatever the mail server or the webhooks do.
 * Nothing here throws: a failure ends up in the result's problems and a log line.
 */

/** A failed delivery, as a channel reports it: `permanent` failures (domain/errors.ts) are not retried. */
export class DeliveryError extends Error {
  override name = "DeliveryError";
  constructor(
    message: string,
    readonly permanent: boolean,
    /** SMTP reply code or HTTP status, when there was one. */
    readonly code?: number,
  ) {
    super(message);
  }
}

/** Replace every secret's value in `text` (a last net under the channels' own care). */
export function scrub(text: string, secrets: readonly Secret[]): string {
  let out = text;
  for (const s of secrets) {
    const v = s.reveal();
    if (v.length >= 4) out = out.split(v).join("[redacted]");
  }
  return out;
}

export interface PlannedMessage {
  /** Name of the channel that delivers it: "email", "webhook:<name>"; "planner" for a planning entry. */
  channel: string;
  /** Stable per incident, kind, channel and recipient: a message planned again under the same key is not queued twice. */
  dedupKey: string;
  projectId?: string;
  /** "would-send": only recorded (dry runs). */
  mode: "send" | "would-send";
  message: OutboundMessage;
  /** A planning entry: its messages are planned by the delivery worker (their recipients need lookups). */
  plan?: "recovery-finished";
}

/** Where records go and where earlier deliveries are looked up. */
export interface RecordSink {
  readonly recoveryId: string;
  byKey(dedupKey: string): Promise<NotificationRecord[]>;
  put(record: NotificationRecord, payload?: NotificationPayload): Promise<void>;
}

/** Where the delivery worker finds pending entries, and records what became of them. */
export interface OutboxSource {
  readonly name: string;
  pending(limit: number): Promise<OutboxEntry[]>;
  put(record: NotificationRecord, payload?: NotificationPayload): Promise<void>;
}

/** Records of one recovery, in the store's notification table. */
export function storeSink(store: Store, recoveryId: string): RecordSink {
  return {
    recoveryId,
    byKey: (k) => store.notificationsByKey(k),
    put: (r, payload) => store.putNotification(r, payload),
  };
}

/** The pending records of every recovery. */
export function storeOutbox(store: Store): OutboxSource {
  return {
    name: "journal",
    pending: (limit) => store.pendingNotifications(limit),
    put: (r, payload) => store.putNotification(r, payload),
  };
}

type KeptRecord = NotificationRecord & { payload?: NotificationPayload };

/**
 * Records of messages tied to no recovery (a storm trip with no recovery id), kept as a
 * bounded list in one setting; the notification table's rows must name a recovery. Pending
 * ones keep their payload there, so the delivery worker sends them like any other. One
 * instance per setting: its writers are serialised (read-modify-write).
 */
export function settingsSink(store: Store, key: string, keep = 200): RecordSink & OutboxSource {
  let chain: Promise<unknown> = Promise.resolve();
  const read = async (): Promise<KeptRecord[]> => (await store.getSetting<KeptRecord[]>(key)) ?? [];
  const bare = ({ payload: _payload, ...r }: KeptRecord): NotificationRecord => r;
  return {
    name: `setting ${key}`,
    recoveryId: "",
    byKey: async (k) => (await read()).filter((r) => r.dedupKey === k).map(bare),
    pending: async (limit) =>
      (await read())
        .filter((r): r is KeptRecord & { payload: NotificationPayload } => r.state === "pending" && r.payload !== undefined)
        .map((r) => ({ record: bare(r), payload: r.payload }))
        .sort((a, b) => (a.record.nextAttemptAt ?? "").localeCompare(b.record.nextAttemptAt ?? ""))
        .slice(0, limit),
    put: (record, payload) => {
      const next = chain.then(async () => {
        const list = await read();
        const earlier = list.find((r) => r.dedupKey === record.dedupKey);
        const kept = record.state === "pending" ? (payload ?? earlier?.payload) : undefined;
        const rest = list.filter((r) => r !== earlier);
        rest.push(kept ? { ...record, payload: kept } : record);
        // Over the bound, the oldest finished records go first; pending ones stay deliverable.
        const drop = new Set(rest.filter((r) => r.state !== "pending").slice(0, Math.max(0, rest.length - keep)));
        await store.putSetting(key, rest.filter((r) => !drop.has(r)));
      });
      chain = next.catch(() => undefined);
      return next;
    },
  };
}

/**
 * The Message-ID of one message: derived from what identifies it (recovery, dedup key, which
 * names the recipient), so every try and every resend after a crash carries the same one and
 * mail clients can tell a resend from a new message. Delivery is at-least-once.
 */
export function messageIdFor(recoveryId: string, dedupKey: string, domain: string): string {
  const digest = createHash("sha256").update(`${recoveryId}\n${dedupKey}`).digest("hex").slice(0, 32);
  return `<lifeboat.${digest}@${domain}>`;
}

/** The domain of a From address ("lifeboat <lifeboat@cloud.example>" → "cloud.example"). */
export function mailDomain(from: string | undefined): string {
  const m = from ? /@([A-Za-z0-9.-]+)>?\s*$/.exec(from.trim()) : null;
  return m?.[1]?.toLowerCase() ?? "lifeboat.invalid";
}

export interface EnqueueDeps {
  /** Channels that exist: "email", "webhook:<name>". */
  channels: ReadonlySet<string>;
  metrics: Metrics;
  logger: Logger;
  /** Right-hand side of the Message-IDs. */
  messageDomain: string;
  now?: () => string;
}

export interface EnqueueResult {
  records: NotificationRecord[];
  /** Journaled as pending: the delivery worker sends them. */
  queued: number;
  /** Journaled as failed at once (no such channel). */
  failed: number;
  /** Already queued or sent under the same key: nothing new. */
  deduplicated: number;
  wouldSend: number;
  /** Trouble with the journal, in plain words. */
  problems: string[];
}

/**
 * Journal each planned message once: a key already used in this sink (any state), or sent or
 * pending under another recovery (tenants are told once per incident), is skipped. Pending
 * records are durable when this resolves.
 */
export async function enqueue(planned: readonly PlannedMessage[], sink: RecordSink, deps: EnqueueDeps): Promise<EnqueueResult> {
  const now = deps.now ?? (() => new Date().toISOString());
  const result: EnqueueResult = { records: [], queued: 0, failed: 0, deduplicated: 0, wouldSend: 0, problems: [] };
  for (const p of planned) {
    const m = p.message;
    const log = deps.logger.child({ notification: { kind: m.kind, channel: p.channel, recipient: m.recipient, dedupKey: p.dedupKey } });
    try {
      // A pending record without a Message-ID was left by an earlier lifeboat, which kept no payload: queue it again.
      const earlier = (await sink.byKey(p.dedupKey)).filter((r) => !(r.state === "pending" && r.messageId === undefined && r.channel !== PLANNER_CHANNEL));
      if (earlier.some((r) => r.recoveryId === sink.recoveryId || r.state === "sent" || r.state === "pending")) {
        result.deduplicated++;
        log.debug("notification already queued or sent for this incident; skipped");
        continue;
      }
    } catch (err) {
      // Better a duplicate than a silent miss: queue it anyway.
      result.problems.push(`cannot look up earlier deliveries of ${p.dedupKey}: ${errorMessage(err)}`);
    }
    const at = now();
    const base: NotificationRecord = {
      recoveryId: sink.recoveryId,
      dedupKey: p.dedupKey,
      channel: p.channel,
      kind: m.kind,
      recipient: m.recipient,
      subject: m.subject,
      state: "pending",
      attempts: 0,
      queuedAt: at,
      ...(p.projectId !== undefined ? { projectId: p.projectId } : {}),
    };
    let record: NotificationRecord;
    let payload: NotificationPayload | undefined;
    if (p.mode === "would-send") {
      record = { ...base, state: "would-send" };
    } else if (p.channel !== PLANNER_CHANNEL && !deps.channels.has(p.channel)) {
      record = { ...base, state: "failed", error: `no channel ${p.channel} is configured` };
    } else {
      record = { ...base, nextAttemptAt: at, ...(p.plan ? {} : { messageId: messageIdFor(sink.recoveryId, p.dedupKey, deps.messageDomain) }) };
      payload = p.plan
        ? { type: "plan", plan: p.plan }
        : { type: "message", subject: m.subject, text: m.text, ...(m.html !== undefined ? { html: m.html } : {}), data: m.data };
    }
    try {
      await sink.put(record, payload);
    } catch (err) {
      result.problems.push(`cannot record notification ${p.dedupKey}: ${errorMessage(err)}`);
      log.error({ err: errorMessage(err) }, "cannot journal notification; it will not be sent");
      continue;
    }
    result.records.push(record);
    if (record.state === "would-send") {
      result.wouldSend++;
      log.info("dry run: notification recorded, not sent");
    } else if (record.state === "failed") {
      result.failed++;
      deps.metrics.notifications.inc({ channel: p.channel, result: "failed" });
      log.error({ error: record.error }, "notification failed");
    } else {
      result.queued++;
      log.debug("notification queued");
    }
  }
  return result;
}
