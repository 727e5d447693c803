import { silentLogger, type Logger } from "../../../src/logging.js";
import { Metrics } from "../../../src/metrics.js";
import { retrySchema, type RetryConfig } from "../../../src/notify/config.js";
import { enqueue, storeOutbox, type EnqueueResult, type OutboxSource, type PlannedMessage, type RecordSink } from "../../../src/notify/dispatcher.js";
import type { NotificationChannel } from "../../../src/notify/types.js";
import { DeliveryWorker } from "../../../src/notify/worker.js";
import type { Store } from "../../../src/domain/journal.js";
import type { Secret } from "../../../src/util/secret.js";

/** The journal side (enqueue) and the delivery side (worker) of notifications, wired to one store. */
export interface Delivery {
  worker: DeliveryWorker;
  metrics: Metrics;
  queue(planned: PlannedMessage[], sink: RecordSink): Promise<EnqueueResult>;
  /** Run the worker until nothing is pending in its sources (tries back off by tens of ms here). */
  drain(timeoutMs?: number): Promise<void>;
  /** `lifeboat_notifications_total` for a channel and result. */
  count(channel: string, result: string): Promise<number>;
}

export const FAST_RETRY = { attempts: 3, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2, message_timeout_seconds: 20 };

export function delivery(
  store: Store,
  channels: NotificationChannel[],
  opts: { retry?: Partial<RetryConfig>; sources?: OutboxSource[]; logger?: Logger; secrets?: Secret[]; concurrency?: number } = {},
): Delivery {
  const metrics = new Metrics({ version: "test", defaultMetrics: false });
  const sources = opts.sources ?? [storeOutbox(store)];
  const worker = new DeliveryWorker({
    sources,
    channels: new Map(channels.map((c) => [c.name, c])),
    retry: retrySchema.parse({ ...FAST_RETRY, ...opts.retry }),
    concurrency: opts.concurrency ?? 2,
    metrics,
    logger: opts.logger ?? silentLogger(),
    secrets: opts.secrets ?? [],
    expand: () => Promise.reject(new Error("no planning in this test")),
    pollMs: 20,
  });
  return {
    worker,
    metrics,
    queue: (planned, sink) => enqueue(planned, sink, { channels: new Set(channels.map((c) => c.name)), metrics, logger: opts.logger ?? silentLogger(), messageDomain: "cloud.example" }),
    async drain(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await worker.runOnce();
        const pending = (await Promise.all(sources.map((s) => s.pending(1000)))).flat();
        if (pending.length === 0) return;
        if (Date.now() > deadline) throw new Error(`still ${pending.length} pending after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async count(channel, result) {
      return (await metrics.notifications.get()).values.find((v) => v.labels.channel === channel && v.labels.result === result)?.value ?? 0;
    },
  };
}
