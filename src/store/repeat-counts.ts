import type { NewHostEvent } from "../domain/model.js";

/**
 * Re-sends of alerts whose events routing has decided for good, counted in memory and
 * journaled together a little later (the etcd store's appends). Such a re-send changes
 * nothing but the event's delivery count and last-received time, so its webhook answer
 * does not wait for a transaction; a crash loses at most the counts of the last interval,
 * never an alert or its routing. Counts that could not be written are kept and tried again.
 */
export class RepeatCounts {
  readonly #waiting = new Map<string, { count: number; last: NewHostEvent }>();
  /** Counts of the write under way, by key. */
  #writingCounts = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | null = null;
  #closed = false;

  constructor(
    private readonly intervalMs: number,
    /** Journal these deliveries as repeats of their events (several of one key: that many). */
    private readonly write: (deliveries: NewHostEvent[]) => Promise<unknown>,
  ) {}

  /** Deliveries of `key` counted here and not journaled yet (the write under way included). */
  waiting(key: string): number {
    return (this.#waiting.get(key)?.count ?? 0) + (this.#writingCounts.get(key) ?? 0);
  }

  add(key: string, deliveries: readonly NewHostEvent[]): void {
    const w = this.#waiting.get(key);
    const last = deliveries[deliveries.length - 1]!;
    if (w) {
      w.count += deliveries.length;
      w.last = last;
    } else this.#waiting.set(key, { count: deliveries.length, last });
    this.schedule();
  }

  /** Journal what waits now and stop (the store closes): resolves once written or failed. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#writing) await this.#writing;
    await this.writeWaiting();
  }

  private schedule(): void {
    if (this.#closed) return;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      if (!this.#writing) void this.writeWaiting();
    }, this.intervalMs).unref();
  }

  private writeWaiting(): Promise<void> {
    const taken = [...this.#waiting.entries()];
    this.#waiting.clear();
    if (taken.length === 0) return Promise.resolve();
    // The last delivery of a key stands for all of them: its time is the last-received time.
    const deliveries = taken.flatMap(([, w]) => Array<NewHostEvent>(w.count).fill(w.last));
    this.#writingCounts = new Map(taken.map(([key, w]) => [key, w.count]));
    const writing = this.write(deliveries).then(
      () => undefined,
      () => {
        // Not written: counted again, with what arrived meanwhile, at the next interval.
        for (const [key, w] of taken) {
          const now = this.#waiting.get(key);
          this.#waiting.set(key, { count: w.count + (now?.count ?? 0), last: now?.last ?? w.last });
        }
      },
    );
    this.#writing = writing.finally(() => {
      this.#writing = null;
      this.#writingCounts = new Map();
      if (this.#waiting.size) this.schedule();
    });
    return this.#writing;
  }
}
