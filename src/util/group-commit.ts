/**
 * Writes queued by many callers, sent in batches, one batch in flight at a time: the first
 * goes out at the end of the task that queued it, with whatever that task queued too, and
 * what is queued while a batch is in flight goes in the next one. Waiting for the end of the
 * event loop's turn instead would hold every write behind all the turn's I/O callbacks
 * (hundreds of Nova answers while evacuations run), a webhook's journaling and an
 * evacuation's attempt record (written before its evacuate) with them; a burst still costs
 * a few batches, not one per write.
 *
 * `take` removes the next batch from the front of the queue (all of it by default); `write`
 * sends it and settles every entry of it, and never throws.
 */
export class GroupCommit<T> {
  #queue: T[] = [];
  #flushing: Promise<void> | null = null;

  constructor(
    private readonly write: (batch: T[]) => Promise<void>,
    private readonly take: (queue: T[]) => T[] = (queue) => queue.splice(0),
  ) {}

  add(entry: T): void {
    this.#queue.push(entry);
    this.#flushing ??= this.flush();
  }

  /** Resolves once nothing is queued or in flight. */
  async idle(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  get busy(): boolean {
    return this.#flushing !== null;
  }

  private async flush(): Promise<void> {
    await new Promise<void>((r) => queueMicrotask(r));
    try {
      while (this.#queue.length) await this.write(this.take(this.#queue));
    } finally {
      this.#flushing = null;
    }
  }
}
