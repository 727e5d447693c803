import { close, fdatasync, fdatasyncSync, openSync } from "node:fs";

type SyncFn = (fd: number, done: (err: Error | null) => void) => void;

/**
 * Syncs a SQLite WAL file on libuv's thread pool, one sync at a time. Commits are numbered
 * (`committed()`); a sync covers every commit counted before it started, so a commit made
 * while one runs waits for the next, and a burst of commits shares two syncs at most.
 *
 * The file is opened once, after SQLite created it, and stays the WAL while the store's
 * connection is open: SQLite deletes the WAL only when the last connection closes, and
 * reuses or truncates it in place otherwise. Opening syncs it once, so whatever an earlier
 * process left in it counts as on disk (`synced` starts at 0, covering nothing of ours).
 */
export class WalSync {
  readonly #fd: number;
  #committed = 0;
  #synced = 0;
  #waiters: { gen: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(path: string, private readonly sync: SyncFn = fdatasync) {
    this.#fd = openSync(path, "r");
    fdatasyncSync(this.#fd);
  }

  /** Count a commit just made; its number. */
  committed(): number {
    return ++this.#committed;
  }

  /** The number the next commit will get. */
  get next(): number {
    return this.#committed + 1;
  }

  /** Every commit up to this number is on disk. */
  get synced(): number {
    return this.#synced;
  }

  /** Settles once every commit up to `gen` is on disk; fails if the sync meant to cover it failed. */
  through(gen: number): Promise<void> {
    if (gen <= this.#synced) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error("the journal is closed"));
    const p = new Promise<void>((resolve, reject) => this.#waiters.push({ gen, resolve, reject }));
    if (!this.#running) this.start();
    return p;
  }

  private start(): void {
    const cover = this.#committed;
    this.#running = new Promise<void>((finished) => {
      this.sync(this.#fd, (err) => {
        this.#running = null;
        const due = this.#waiters.filter((w) => w.gen <= cover);
        this.#waiters = this.#waiters.filter((w) => w.gen > cover);
        if (err) for (const w of due) w.reject(err);
        else {
          this.#synced = Math.max(this.#synced, cover);
          for (const w of due) w.resolve();
        }
        if (this.#waiters.length) this.start();
        finished();
      });
    });
  }

  /** Wait for the syncs asked for, then close the file. */
  async close(): Promise<void> {
    while (this.#running) await this.#running;
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve) => close(this.#fd, () => resolve()));
  }
}
