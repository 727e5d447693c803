/**
 * Calls of `request()` share runs of `run`, each caller getting the outcome of a run that
 * started after it called: callers of one moment share the next run (it starts a microtask
 * later, or once the run under way has ended), never the one already under way.
 */
export class Coalesced {
  #running: Promise<void> | null = null;
  #next: Promise<void> | null = null;

  constructor(private readonly run: () => Promise<void>) {}

  request(): Promise<void> {
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

  private start(): Promise<void> {
    const p = this.run();
    this.#running = p;
    const done = (): void => {
      if (this.#running === p) this.#running = null;
    };
    p.then(done, done);
    return p;
  }
}
