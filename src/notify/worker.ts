import type { Logger } from "../logging.js";
import type { Metrics } from "../metrics.js";
import type { NotificationRecord, OutboxEntry } from "../domain/model.js";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";
import type { RetryConfig } from "./config.js";
import { scrub, type OutboxSource } from "./dispatcher.js";
import { isPermanent } from "../domain/errors.js";
import type { NotificationChannel, OutboundMessage } from "./types.js";

/**
 * The delivery worker: sends the journaled `pending` notifications in the background, so no
 * stage of a recovery ever waits for a mail server or a webhook. It runs on the leader only
 * (started and stopped with the coordinator) and picks up whatever is pending when it
 * starts: after a crash or a restart, or on a new leader, nothing queued is lost.
 *
 * Each try is journaled before it starts (attempts + 1, next try after the backoff), then the
 * outcome: `sent`, or `failed` with the reason (a permanent refusal, the last of
 * `retry.attempts`, or `retry.message_timeout_seconds` after it was queued), or still
 * `pending` with the error and the time of the next try. A crash during a try leaves it
 * pending: it is tried again after the restart, with the same Message-ID (at-least-once).
 *
 * Planning entries (finding tenants' recipients in Keystone and Nova) are worked off the
 * same way: `expand` plans and queues their messages.
 */

export interface DeliveryWorkerDeps {
  sources: readonly OutboxSource[];
  channels: ReadonlyMap<string, NotificationChannel>;
  retry: RetryConfig;
  /** Entries worked on at once. */
  concurrency: number;
  metrics: Metrics;
  logger: Logger;
  /** Scrubbed from every recorded or logged error. */
  secrets: readonly Secret[];
  /** Plan and queue the messages of a planning entry; `note` is recorded on it. */
  /**
   * Plan and queue a planning entry's messages. `lastTry`: no try follows this one, so what
   * could be found is planned and the rest named; before it, a lookup that may pass later
   * makes it throw (what was queued is deduplicated on the next try).
   */
  expand(entry: OutboxEntry, signal: AbortSignal, lastTry: boolean): Promise<{ note: string; problems: string[] }>;
  now?: () => number;
  /** Longest wait between two looks at the queue. */
  pollMs?: number;
}

/** Bound of one try when the channel names none. */
const DEFAULT_ATTEMPT_MS = 60_000;
/** Bound of one planning pass (its lookups have their own, shorter timeouts). */
const PLAN_TIMEOUT_MS = 120_000;
/** Entries read per look at the queue. */
const BATCH = 500;

interface Task {
  source: OutboxSource;
  entry: OutboxEntry;
}

export class DeliveryWorker {
  readonly #deps: DeliveryWorkerDeps;
  readonly #log: Logger;
  readonly #inFlight = new Map<string, Promise<void>>();
  #controller: AbortController | null = null;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #kicked = false;

  constructor(deps: DeliveryWorkerDeps) {
    this.#deps = deps;
    this.#log = deps.logger.child({ component: "delivery" });
  }

  start(): void {
    if (this.#controller) return;
    const controller = new AbortController();
    this.#controller = controller;
    this.#loop = this.loop(controller.signal);
    this.#log.info("delivery worker started");
  }

  /** Stop: tries in flight are abandoned (they stay pending and are tried again on the next start). */
  async stop(): Promise<void> {
    const controller = this.#controller;
    if (!controller) return;
    this.#controller = null;
    controller.abort(new Error("delivery worker stopped"));
    this.kick();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight.values()]);
    this.#loop = null;
    this.#log.info("delivery worker stopped");
  }

  /** Something was queued: look now rather than at the next poll. */
  kick(): void {
    this.#kicked = true;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /**
   * One look at the queue: start every due entry (within the concurrency) and wait for them.
   * For callers that run no loop (tests, one-shot tools).
   */
  async runOnce(signal: AbortSignal = new AbortController().signal): Promise<void> {
    await this.pass(signal);
    await Promise.allSettled([...this.#inFlight.values()]);
  }

  private async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let waitMs = this.#deps.pollMs ?? 10_000;
      try {
        waitMs = Math.min(waitMs, await this.pass(signal));
      } catch (err) {
        this.#log.error({ err: errorMessage(err) }, "delivery pass failed; trying again later");
      }
      await this.pause(waitMs, signal);
    }
  }

  private pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (this.#kicked || signal.aborted) {
        this.#kicked = false;
        resolve();
        return;
      }
      let timer: NodeJS.Timeout | undefined = undefined;
      const finish = (): void => {
        clearTimeout(timer);
        if (this.#wake === finish) this.#wake = null;
        this.#kicked = false;
        resolve();
      };
      timer = setTimeout(finish, Math.max(10, ms));
      this.#wake = finish;
    });
  }

  /** Start what is due; returns how long until the next entry is. */
  private async pass(signal: AbortSignal): Promise<number> {
    const now = this.now();
    const tasks: Task[] = [];
    for (const source of this.#deps.sources) {
      try {
        for (const entry of await source.pending(BATCH)) tasks.push({ source, entry });
      } catch (err) {
        this.#log.error({ source: source.name, err: errorMessage(err) }, "cannot read pending notifications");
      }
    }
    this.#deps.metrics.notificationsPending.set(tasks.length);
    let next = Number.POSITIVE_INFINITY;
    tasks.sort((a, b) => dueAt(a.entry.record, now) - dueAt(b.entry.record, now));
    for (const task of tasks) {
      const id = `${task.source.name}\n${task.entry.record.recoveryId}\n${task.entry.record.dedupKey}`;
      if (this.#inFlight.has(id)) continue;
      const due = dueAt(task.entry.record, now);
      if (due > now) {
        next = Math.min(next, due - now);
        continue;
      }
      // A finishing task kicks the loop, which then starts the next one.
      if (this.#inFlight.size >= this.#deps.concurrency) break;
      const run = this.work(task, signal)
        .catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, "delivery task failed"))
        .finally(() => {
          this.#inFlight.delete(id);
          this.kick();
        });
      this.#inFlight.set(id, run);
    }
    return next;
  }

  private work(task: Task, signal: AbortSignal): Promise<void> {
    return task.entry.payload.type === "plan" ? this.plan(task, signal) : this.deliver(task, signal);
  }

  private async deliver({ source, entry }: Task, signal: AbortSignal): Promise<void> {
    const { record, payload } = entry;
    if (payload.type !== "message") return;
    const d = this.#deps;
    const log = this.#log.child({ recovery: record.recoveryId || undefined, notification: { kind: record.kind, channel: record.channel, recipient: record.recipient, dedupKey: record.dedupKey } });
    const channel = d.channels.get(record.channel);
    if (!channel) {
      await this.end(source, { ...record, state: "failed", error: `no channel ${record.channel} is configured` }, log);
      return;
    }
    const attempt = record.attempts + 1;
    const started = this.now();
    const retryAt = started + this.backoffMs(attempt);
    if (record.attempts >= d.retry.attempts) {
      // Its tries ran out in earlier lives of lifeboat (each crash in the middle of one counts).
      await this.end(source, { ...record, state: "failed", error: `gave up after ${record.attempts} tries (retry.attempts): ${record.error ?? "no answer recorded"}` }, log);
      return;
    }
    // Journal the try before it starts: a crash in the middle leaves it pending, tried again after the backoff.
    if (!(await this.put(source, { ...record, attempts: attempt, nextAttemptAt: iso(retryAt) }, log))) return;

    const attemptMs = Math.ceil(channel.attemptTimeoutMs ?? DEFAULT_ATTEMPT_MS);
    const deadline = AbortSignal.timeout(attemptMs);
    const message: OutboundMessage = {
      kind: record.kind,
      recipient: record.recipient,
      subject: payload.subject,
      text: payload.text,
      ...(payload.html !== undefined ? { html: payload.html } : {}),
      data: payload.data,
      ...(record.messageId !== undefined ? { messageId: record.messageId } : {}),
    };
    try {
      await channel.send(message, AbortSignal.any([signal, deadline]));
    } catch (err) {
      if (signal.aborted) {
        // Stopped (shutdown, lost leadership): not a try that failed; the next start makes it again at once.
        await this.put(source, { ...record, error: "interrupted: lifeboat stopped during the try", nextAttemptAt: iso(this.now()) }, log);
        return;
      }
      let error = scrub(errorMessage(err), d.secrets);
      // A try cut short by its own deadline says nothing about the next one.
      const timedOut = deadline.aborted;
      if (timedOut) error = `no answer within ${attemptMs / 1000}s: ${error}`;
      const permanent = !timedOut && isPermanent(err);
      const giveUpAt = (Date.parse(record.queuedAt ?? "") || started) + d.retry.message_timeout_seconds * 1000;
      if (permanent) {
        await this.end(source, { ...record, attempts: attempt, state: "failed", error }, log);
      } else if (attempt >= d.retry.attempts) {
        await this.end(source, { ...record, attempts: attempt, state: "failed", error: `gave up after ${attempt} tries (retry.attempts): ${error}` }, log);
      } else if (retryAt > giveUpAt) {
        await this.end(source, { ...record, attempts: attempt, state: "failed", error: `gave up: not delivered within ${d.retry.message_timeout_seconds}s (retry.message_timeout_seconds): ${error}` }, log);
      } else {
        log.warn({ attempt, error, nextAttemptAt: iso(retryAt) }, "notification try failed; will try again");
        await this.put(source, { ...record, attempts: attempt, error, nextAttemptAt: iso(retryAt) }, log);
      }
      return;
    }
    const { nextAttemptAt: _next, error: _error, ...rest } = record;
    await this.end(source, { ...rest, attempts: attempt, state: "sent", sentAt: iso(this.now()) }, log);
  }

  private async plan({ source, entry }: Task, signal: AbortSignal): Promise<void> {
    const record = entry.record;
    const log = this.#log.child({ recovery: record.recoveryId, planning: record.kind });
    const attempt = record.attempts + 1;
    const retryAt = this.now() + this.backoffMs(attempt);
    if (!(await this.put(source, { ...record, attempts: attempt, nextAttemptAt: iso(retryAt) }, log))) return;
    try {
      const r = await this.#deps.expand(entry, AbortSignal.any([signal, AbortSignal.timeout(PLAN_TIMEOUT_MS)]), attempt >= this.#deps.retry.attempts);
      const { nextAttemptAt: _next, error: _error, ...rest } = record;
      const problems = r.problems.map((p) => scrub(p, this.#deps.secrets));
      await this.put(source, { ...rest, attempts: attempt, state: "done", subject: r.note, ...(problems.length ? { error: problems.join("; ") } : {}) }, log);
      log.info({ note: r.note, problems: problems.length }, "notifications planned");
    } catch (err) {
      if (signal.aborted) return;
      const error = scrub(errorMessage(err), this.#deps.secrets);
      if (attempt >= this.#deps.retry.attempts) {
        await this.put(source, { ...record, attempts: attempt, state: "failed", error: `gave up after ${attempt} tries: ${error}` }, log);
        log.error({ error }, "cannot plan notifications; gave up");
      } else {
        await this.put(source, { ...record, attempts: attempt, error, nextAttemptAt: iso(retryAt) }, log);
        log.warn({ attempt, error }, "cannot plan notifications yet; will try again");
      }
    }
  }

  /** A message's last record: sent or failed, counted and logged. */
  private async end(source: OutboxSource, r: NotificationRecord, log: Logger): Promise<void> {
    const { nextAttemptAt: _next, ...final } = r;
    await this.put(source, final, log);
    this.#deps.metrics.notifications.inc({ channel: r.channel, result: r.state === "sent" ? "sent" : "failed" });
    if (r.state === "sent") log.info({ attempts: r.attempts }, "notification sent");
    else log.error({ attempts: r.attempts, error: r.error }, "notification failed");
  }

  private async put(source: OutboxSource, r: NotificationRecord, log: Logger): Promise<boolean> {
    try {
      await source.put(r);
      return true;
    } catch (err) {
      log.error({ state: r.state, err: errorMessage(err) }, "cannot record notification");
      return false;
    }
  }

  private backoffMs(attempt: number): number {
    const r = this.#deps.retry;
    return Math.min(r.max_backoff_seconds, r.initial_backoff_seconds * r.factor ** Math.max(0, attempt - 1)) * 1000;
  }

  private now(): number {
    return this.#deps.now ? this.#deps.now() : Date.now();
  }
}

function dueAt(r: NotificationRecord, now: number): number {
  const t = Date.parse(r.nextAttemptAt ?? "");
  return Number.isFinite(t) ? t : now;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
