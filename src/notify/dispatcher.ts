import pLimit from "p-limit";
import pRetry from "p-retry";
import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { NotificationRecord } from "../recovery/model.js";
import type { Store } from "../store/types.js";
import { withTimeout } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";
import type { RetryConfig } from "./config.js";
import type { NotificationChannel, OutboundMessage } from "./types.js";

/**
 * Delivery of planned messages: deduplication on the record's key, a record before and
 * after every send (pending → sent | failed, with attempts and the last error), retries
 * with exponential backoff, a bound on the total time per message, and metrics. Nothing
 * here throws: every failure ends up in a record, a log line and the result's counts.
 */

/** A failed delivery, as a channel reports it: `permanent` failures are not retried. */
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
  /** Name of the channel that delivers it: "email", "webhook:<name>". */
  channel: string;
  /** Stable per incident, kind, channel and recipient: a re-send with the same key is skipped once it was sent. */
  dedupKey: string;
  projectId?: string;
  /** "would-send": only recorded (dry runs). */
  mode: "send" | "would-send";
  message: OutboundMessage;
}

/** Where records go and where earlier deliveries are looked up. */
export interface RecordSink {
  readonly recoveryId: string;
  byKey(dedupKey: string): Promise<NotificationRecord[]>;
  put(record: NotificationRecord): Promise<void>;
}

/** Records of one recovery, in the store's notification table. */
export function storeSink(store: Store, recoveryId: string): RecordSink {
  return {
    recoveryId,
    byKey: (k) => store.notificationsByKey(k),
    put: (r) => store.putNotification(r),
  };
}

/**
 * Records of messages tied to no recovery (a storm trip with no recovery id), kept as a
 * bounded list in one setting; the notification table's rows must name a recovery.
 */
export function settingsSink(store: Store, key: string, keep = 200): RecordSink {
  let chain: Promise<unknown> = Promise.resolve();
  const read = async (): Promise<NotificationRecord[]> => (await store.getSetting<NotificationRecord[]>(key)) ?? [];
  return {
    recoveryId: "",
    byKey: async (k) => (await read()).filter((r) => r.dedupKey === k),
    put: (record) => {
      // Read-modify-write: serialise the writers of this sink.
      const next = chain.then(async () => {
        const list = (await read()).filter((r) => r.dedupKey !== record.dedupKey);
        list.push(record);
        await store.putSetting(key, list.slice(-keep));
      });
      chain = next.catch(() => undefined);
      return next;
    },
  };
}

export interface DispatchDeps {
  channels: ReadonlyMap<string, NotificationChannel>;
  retry: RetryConfig;
  concurrency: number;
  metrics: Metrics;
  logger: Logger;
  /** Scrubbed from every recorded or logged error. */
  secrets: readonly Secret[];
  now?: () => string;
}

export interface DispatchResult {
  records: NotificationRecord[];
  sent: number;
  failed: number;
  /** Already sent under the same key: nothing new went out. */
  deduplicated: number;
  wouldSend: number;
  /** Trouble outside a delivery (store unavailable…), in plain words. */
  problems: string[];
}

export async function dispatch(planned: readonly PlannedMessage[], sink: RecordSink, deps: DispatchDeps, signal?: AbortSignal): Promise<DispatchResult> {
  const result: DispatchResult = { records: [], sent: 0, failed: 0, deduplicated: 0, wouldSend: 0, problems: [] };
  const limit = pLimit(deps.concurrency);
  await Promise.all(planned.map((p) => limit(() => deliverOne(p, sink, deps, result, signal))));
  return result;
}

async function deliverOne(p: PlannedMessage, sink: RecordSink, deps: DispatchDeps, result: DispatchResult, signal?: AbortSignal): Promise<void> {
  const now = deps.now ?? (() => new Date().toISOString());
  const m = p.message;
  const log = deps.logger.child({ notification: { kind: m.kind, channel: p.channel, recipient: m.recipient, dedupKey: p.dedupKey } });
  const base: NotificationRecord = {
    recoveryId: sink.recoveryId,
    dedupKey: p.dedupKey,
    channel: p.channel,
    kind: m.kind,
    recipient: m.recipient,
    subject: m.subject,
    state: "pending",
    attempts: 0,
    ...(p.projectId !== undefined ? { projectId: p.projectId } : {}),
  };
  const record = async (r: NotificationRecord): Promise<void> => {
    try {
      await sink.put(r);
    } catch (err) {
      const text = `cannot record notification ${p.dedupKey} (${r.state}): ${errorMessage(err)}`;
      result.problems.push(text);
      log.error({ err: errorMessage(err) }, "cannot record notification");
    }
  };

  try {
    const earlier = await sink.byKey(p.dedupKey);
    if (earlier.some((r) => r.state === "sent")) {
      result.deduplicated++;
      log.debug("notification already sent for this incident; skipped");
      return;
    }
  } catch (err) {
    // Better a duplicate than a silent miss: deliver anyway.
    result.problems.push(`cannot look up earlier deliveries of ${p.dedupKey}: ${errorMessage(err)}`);
  }

  if (p.mode === "would-send") {
    const r: NotificationRecord = { ...base, state: "would-send" };
    await record(r);
    result.records.push(r);
    result.wouldSend++;
    log.info("dry run: notification recorded, not sent");
    return;
  }

  const channel = deps.channels.get(p.channel);
  if (!channel) {
    const r: NotificationRecord = { ...base, state: "failed", error: `no channel ${p.channel} is configured` };
    await record(r);
    result.records.push(r);
    result.failed++;
    deps.metrics.notifications.inc({ channel: p.channel, result: "failed" });
    return;
  }

  await record(base);
  const deadlineMs = deps.retry.message_timeout_seconds * 1000;
  const deadline = withTimeout(deadlineMs, signal);
  let attempts = 0;
  let lastError = "";
  try {
    await pRetry(
      async () => {
        attempts++;
        await channel.send(m, deadline);
      },
      {
        retries: deps.retry.attempts - 1,
        factor: deps.retry.factor,
        minTimeout: deps.retry.initial_backoff_seconds * 1000,
        maxTimeout: deps.retry.max_backoff_seconds * 1000,
        signal: deadline,
        unref: true,
        shouldRetry: ({ error }) => !(error instanceof DeliveryError && error.permanent),
        onFailedAttempt: async ({ error, retriesLeft }) => {
          lastError = scrub(errorMessage(error), deps.secrets);
          const permanent = error instanceof DeliveryError && error.permanent;
          if (retriesLeft > 0 && !permanent) {
            log.warn({ attempt: attempts, error: lastError }, "notification attempt failed; will retry");
            await record({ ...base, attempts, error: lastError });
          }
        },
      },
    );
    const r: NotificationRecord = { ...base, state: "sent", attempts, sentAt: now() };
    await record(r);
    result.records.push(r);
    result.sent++;
    deps.metrics.notifications.inc({ channel: p.channel, result: "sent" });
    log.info({ attempts }, "notification sent");
  } catch (err) {
    let error = lastError || scrub(errorMessage(err), deps.secrets);
    if (deadline.aborted && !(signal?.aborted ?? false)) error = `gave up after ${deps.retry.message_timeout_seconds}s (message_timeout_seconds): ${error}`;
    else if (signal?.aborted) error = `cancelled: ${error}`;
    const r: NotificationRecord = { ...base, state: "failed", attempts, error };
    await record(r);
    result.records.push(r);
    result.failed++;
    deps.metrics.notifications.inc({ channel: p.channel, result: "failed" });
    log.error({ attempts, error }, "notification failed");
  }
}
