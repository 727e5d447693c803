/**
 * Where the next `changes-since` listing of one kind of record (servers, migrations) starts.
 *
 * A record's `updated_at` is stamped by the clock of the service that wrote it, and a
 * transaction may commit a moment after its stamp, so a listing reaches back before the
 * previous listing's mark. How far is a trade: the whole margin on every poll cycle makes
 * each listing carry every record changed in the last CHANGES_SINCE_MARGIN_MS (during a
 * storm, every server evacuated in the last ten seconds, a megabyte on each cycle, read by
 * lifeboat and built by nova-api). So two marks are kept:
 *
 * - the cycle's: each cycle lists the changes since it, less a short margin for the usual
 *   lag of a commit and skew of NTP-kept clocks (the mark itself already reaches back: a
 *   Date has whole seconds, and the newest stamp of a listing is older than its read). Every
 *   record a cycle lists is read again by lifeboat and built by nova-api on each cycle
 *   after it within that reach, so it is kept short;
 * - the catch-up's: every CATCH_UP_EVERY_MS a cycle lists the changes since the previous
 *   catch-up's mark less the whole margin. The catch-ups' coverage joins up, so a record
 *   stamped up to the whole margin late is still seen, by the next catch-up at the latest:
 *   a record may come twice or a few seconds late, never be missed.
 *
 * Both marks only move forward by a listing and back by a host's complete listing laid in
 * (`lower`): the changes laid over it must reach back to it.
 */
export class ChangeMarks {
  #cycle: number | undefined;
  #catchUp: number | undefined;
  #lastCatchUpAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly margins: { shortMs: number; fullMs: number; catchUpEveryMs: number },
  ) {}

  /** The cycle's mark (tests and logs). */
  get cycle(): number | undefined {
    return this.#cycle;
  }

  /** Where this cycle's listing starts, and whether it is a catch-up; undefined: no base yet. */
  next(now: number): { since: number; catchUp: boolean } | undefined {
    if (this.#cycle === undefined) return undefined;
    const base = this.#catchUp ?? this.#cycle;
    if (now - this.#lastCatchUpAt >= this.margins.catchUpEveryMs) return { since: Math.min(base, this.#cycle) - this.margins.fullMs, catchUp: true };
    return { since: this.#cycle - this.margins.shortMs, catchUp: false };
  }

  /** A listing answered: its mark (nextMark's) becomes the cycle's, and the catch-up's when it was one. */
  advance(mark: number, catchUp: boolean, at: number): void {
    this.#cycle = mark;
    if (catchUp) {
      this.#catchUp = mark;
      this.#lastCatchUpAt = at;
    }
  }

  /** A complete listing laid in: both marks go back to it at the latest. */
  lower(mark: number): void {
    this.#cycle = this.#cycle === undefined ? mark : Math.min(this.#cycle, mark);
    // The catch-up's base starts at the first listing: one more catch-up reaches back over it.
    this.#catchUp = this.#catchUp === undefined ? mark : Math.min(this.#catchUp, mark);
  }

  /** Forget everything (the view was dropped). */
  clear(): void {
    this.#cycle = undefined;
    this.#catchUp = undefined;
    this.#lastCatchUpAt = Number.NEGATIVE_INFINITY;
  }
}
