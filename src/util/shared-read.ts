import { untilAborted } from "./abort.js";
import type { Clock } from "./clock.js";

/**
 * One answer shared by every reader that accepts one so old: the last request sent within
 * `maxAgeMs` — answered or still in flight — serves them all; otherwise a new one is sent,
 * and later readers share that one. A failed request is shared the same way, so a burst of
 * readers while the service is down or slow costs one request per interval, not one each. A
 * reader's signal ends its own wait, never the shared request (its transport bounds it).
 */
export class SharedRead<T> {
  #last: { sentAt: number; result: Promise<T> } | null = null;

  constructor(
    private readonly fetch: (sentAt: number) => Promise<T>,
    private readonly clock: Clock,
  ) {}

  read(maxAgeMs: number, signal?: AbortSignal): Promise<T> {
    const now = this.clock.now();
    let last = this.#last;
    if (!last || now - last.sentAt > maxAgeMs) {
      const result = this.fetch(now);
      // Readers may all have gone (aborted): the rejection is still theirs to see, not unhandled.
      result.catch(() => undefined);
      last = { sentAt: now, result };
      this.#last = last;
    }
    return untilAborted(last.result, signal);
  }

  /** Forget the last answer: lifeboat itself just changed what it shows. */
  invalidate(): void {
    this.#last = null;
  }
}
