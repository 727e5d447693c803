import { sleep } from "../util/abort.js";
import { systemClock, type Clock } from "../util/clock.js";
import { parseHttpDate } from "../util/http-date.js";

/**
 * The pace of every request to one service, shared by everything in the process that calls
 * it (for Nova: the gates, evacuations, the monitor, the notifier's metadata lookups).
 *
 * - A rate: at most `requestsPerSecond` on average, with bursts up to one second's worth
 *   (GCRA, i.e. a token bucket without a timer). Waiters go out in the order they asked.
 * - A pause: an answer 429 or 503 carrying `Retry-After` stops every request to the service
 *   until then (bounded by `maxRetryAfterMs`); afterwards they go out at the rate again, not
 *   all at once. A request already waiting for its turn waits for the pause too.
 *
 * Waiting respects the caller's abort signal and nothing else: a step waiting on a pause
 * keeps waiting (its own deadlines still run) until the pause ends or it is aborted.
 */
export interface PacerOptions {
  requestsPerSecond: number;
  /** Longest pause a `Retry-After` can impose, ms. */
  maxRetryAfterMs: number;
  clock?: Clock;
}

export class RequestPacer {
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly clock: Clock;
  /** GCRA's theoretical arrival time of the next request. */
  private tat = Number.NEGATIVE_INFINITY;
  private pausedUntilMs = Number.NEGATIVE_INFINITY;

  constructor(opts: PacerOptions) {
    if (!(opts.requestsPerSecond > 0)) throw new RangeError("requestsPerSecond must be positive");
    this.intervalMs = 1000 / opts.requestsPerSecond;
    // A burst of one second's worth (at least one request) goes out at once.
    this.toleranceMs = Math.max(0, Math.ceil(opts.requestsPerSecond) - 1) * this.intervalMs;
    this.maxRetryAfterMs = Math.max(0, opts.maxRetryAfterMs);
    this.clock = opts.clock ?? systemClock;
  }

  /** Until when a `Retry-After` holds requests back (clock ms); in the past when none does. */
  get pausedUntil(): number {
    return this.pausedUntilMs;
  }

  /** Wait for this request's turn. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      const at = this.reserve(now);
      if (at > now) await sleep(at - now, signal);
      else signal?.throwIfAborted();
      // A pause that began while this request waited holds it too: queue again behind it.
      if (this.pausedUntilMs <= this.clock.now()) return;
    }
  }

  /**
   * Learn from an answer: 429 or 503 with a `Retry-After` pauses every request until then
   * (bounded). Returns the pause in ms, or undefined when the answer asks for none.
   */
  noteAnswer(status: number, retryAfter: string | undefined): number | undefined {
    if ((status !== 429 && status !== 503) || retryAfter === undefined) return undefined;
    const now = this.clock.now();
    const asked = parseRetryAfter(retryAfter, now);
    if (asked === undefined) return undefined;
    const ms = Math.min(asked, this.maxRetryAfterMs);
    this.pausedUntilMs = Math.max(this.pausedUntilMs, now + ms);
    // No burst when the pause ends: the bucket starts empty then.
    this.tat = Math.max(this.tat, this.pausedUntilMs + this.toleranceMs);
    return ms;
  }

  /** The instant this request may go out, counted in the rate from then on. */
  private reserve(now: number): number {
    const start = Math.max(this.tat, now, this.pausedUntilMs);
    const at = Math.max(now, this.pausedUntilMs, start - this.toleranceMs);
    this.tat = start + this.intervalMs;
    return at;
  }
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) as a delay in ms from `nowMs`: delay-seconds or an
 * HTTP-date (a date already past is no delay). Undefined when it is neither.
 */
export function parseRetryAfter(value: string, nowMs: number): number | undefined {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = parseHttpDate(v);
  return at === null ? undefined : Math.max(0, at - nowMs);
}
