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
  #last: { sentAt: number; result: Promise<T>; settled: boolean } | null = null;

  constructor(
    private readonly fetch: (sentAt: number) => Promise<T>,
    private readonly clock: Clock,
  ) {}

  read(maxAgeMs: number, signal?: AbortSignal): Promise<T> {
    const now = this.clock.now();
    const last = this.#last;
    if (last && now - last.sentAt <= maxAgeMs) return untilAborted(last.result, signal);
    return untilAborted(this.send(now), signal);
  }

  /** The request still in flight, if one is; else a new one: never an answer already given. */
  readInFlight(signal?: AbortSignal): Promise<T> {
    const last = this.#last;
    if (last && !last.settled) return untilAborted(last.result, signal);
    return untilAborted(this.send(this.clock.now()), signal);
  }

  private send(now: number): Promise<T> {
    const entry: { sentAt: number; result: Promise<T>; settled: boolean } = { sentAt: now, result: this.fetch(now), settled: false };
    // Readers may all have gone (aborted): the rejection is still theirs to see, not unhandled.
    entry.result.then(
      () => (entry.settled = true),
      () => (entry.settled = true),
    );
    this.#last = entry;
    return entry.result;
  }

  /** Forget the last answer: lifeboat itself just changed what it shows. */
  invalidate(): void {
    this.#last = null;
  }
}
