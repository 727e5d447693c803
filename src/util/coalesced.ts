/**
 * Calls of `request()` share runs of `run`, each caller getting the outcome of a run that
 * started after it called: callers of one moment share the next run (it starts a microtask
 * later, or once the run under way has ended), never the one already under way.
 */
export class Coalesced<T = void> {
  #running: Promise<T> | null = null;
  #next: Promise<T> | null = null;

  constructor(private readonly run: () => Promise<T>) {}

  request(): Promise<T> {
    if (this.#next) return this.#next;
    const next = (this.#running ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        if (this.#next === next) this.#next = null;
        return this.start();
      });
    this.#next = next;
    return next;
  }

  /** No run under way and none asked for. */
  get idle(): boolean {
    return this.#running === null && this.#next === null;
  }

  private start(): Promise<T> {
    const p = this.run();
    this.#running = p;
    const done = (): void => {
      if (this.#running === p) this.#running = null;
    };
    p.then(done, done);
    return p;
  }
}

/**
 * A `Coalesced` per key, kept while it has a run under way or asked for; the run given by the
 * first caller of a key serves the callers that come while it is kept (give the same read for
 * the same key).
 */
export class CoalescedByKey<K, T> {
  readonly #entries = new Map<K, Coalesced<T>>();

  request(key: K, run: () => Promise<T>): Promise<T> {
    let c = this.#entries.get(key);
    if (!c) {
      c = new Coalesced(run);
      this.#entries.set(key, c);
    }
    const entry = c;
    const p = entry.request();
    const forget = (): void => {
      if (entry.idle && this.#entries.get(key) === entry) this.#entries.delete(key);
    };
    p.then(forget, forget);
    return p;
  }

  /** Keys with a run under way or asked for. */
  get size(): number {
    return this.#entries.size;
  }
}
