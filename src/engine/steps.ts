import pRetry from "p-retry";
import type { Logger } from "../logging.js";
import type { Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";
import { isTransient, ONE_TRY, type RetryPolicy } from "./retry-policy.js";

/**
 * Journaled side effects (the Temporal "activity" idea): a step is recorded `started`
 * before it runs and `succeeded` (with its result) or `failed` after. A step that already
 * succeeded is never run again — its recorded result is returned — so a recovery resumed
 * after a crash repeats nothing it finished. A step found `started` was interrupted: it
 * runs again, which is why every step function must itself be idempotent (check the
 * world before acting).
 */
export interface StepOptions<T = unknown> {
  /** How the step retries a transient failure (retry-policy.ts); one try when absent. */
  retry?: RetryPolicy;
  signal?: AbortSignal;
  /**
   * The step only reads the world (a listing): nothing of it can be half done, so no
   * `started` record goes before it. Interrupted, it simply runs again.
   */
  readOnly?: boolean;
  /**
   * Journal writes that go with the step's result: issued together with its `succeeded`
   * record, so the store commits them at once where it can (the SQLite store's commit of a
   * turn), and awaited with it. Not run for a result recorded before.
   */
  journalWith?: (result: T) => Promise<unknown>;
}

export class StepRunner {
  constructor(
    private readonly store: Store,
    private readonly recoveryId: string,
    private readonly logger: Logger,
    private readonly now: () => string = () => new Date().toISOString(),
  ) {}

  async run<T>(key: string, fn: (attempt: number) => Promise<T>, opts: StepOptions<T> = {}): Promise<T> {
    const existing = await this.store.getStep(this.recoveryId, key);
    if (existing?.state === "succeeded") {
      this.logger.debug({ step: key }, "step already done; using its recorded result");
      return existing.result as T;
    }
    const startedAt = this.now();
    const policy = opts.retry ?? ONE_TRY;
    let attempts = existing?.attempts ?? 0;
    if (existing?.state === "started") this.logger.info({ step: key }, "resuming an interrupted step");
    try {
      const result = await pRetry(
        async (attempt) => {
          attempts += 1;
          if (!opts.readOnly) await this.store.putStep({ recoveryId: this.recoveryId, key, state: "started", attempts, startedAt });
          return fn(attempt);
        },
        {
          retries: policy.retries,
          minTimeout: policy.firstDelayMs,
          maxTimeout: Math.max(policy.firstDelayMs, policy.maxDelayMs),
          factor: 2,
          randomize: true,
          ...(opts.signal ? { signal: opts.signal } : {}),
          shouldRetry: ({ error }) => !opts.signal?.aborted && isTransient(error),
          onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
            this.logger.warn({ step: key, attempt: attemptNumber, retriesLeft, err: error.message }, "step attempt failed");
          },
        },
      );
      const done = this.store.putStep({ recoveryId: this.recoveryId, key, state: "succeeded", attempts, startedAt, finishedAt: this.now(), result: result ?? null });
      await Promise.all([done, opts.journalWith?.(result)]);
      return result;
    } catch (err) {
      if (!opts.signal?.aborted) {
        await this.store.putStep({ recoveryId: this.recoveryId, key, state: "failed", attempts, startedAt, finishedAt: this.now(), error: errorMessage(err) });
      }
      throw err;
    }
  }

  /** Record a step that performs nothing (skipped, or something a stage saw): its result, as given. */
  async record(key: string, result: unknown): Promise<void> {
    const now = this.now();
    await this.store.putStep({ recoveryId: this.recoveryId, key, state: "succeeded", attempts: 0, startedAt: now, finishedAt: now, result });
  }
}
