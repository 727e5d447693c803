import { SHARED_READ, type CloudPort } from "../domain/ports/cloud.js";
import type { Logger } from "../logging.js";
import type { Store } from "../domain/journal.js";
import { errorMessage } from "../util/errors.js";

/** Settings key of the waiting event ids (shared by the instances of an HA pair). */
export const UNCONFIRMED_EVENTS_SETTING = "events.unconfirmed";
/** Beyond this many, an unconfirmed event waits for Alertmanager's re-send instead. */
const MAX_WAITING = 10_000;

/**
 * Events routing ignored only because Nova could not be asked whether it knows their host
 * (which has no fencing device). Their ids are kept in a setting, and once Nova answers a
 * listing again they go back in the queue and are routed anew: a real failure seen while
 * Nova was briefly unreachable is not lost, nor left waiting for Alertmanager's next re-send
 * (hours with its default repeat_interval), which would route it again too.
 */
export class UnconfirmedEvents {
  #ids: Set<number> | null = null;
  /** add() and retry() change the set and its setting one at a time. */
  #lock: Promise<unknown> = Promise.resolve();
  #retrying = false;

  constructor(private readonly deps: { store: Store; evacuation: CloudPort; logger: Logger }) {}

  add(ids: readonly number[]): Promise<void> {
    return this.locked(async () => {
      const set = await this.load();
      let dropped = 0;
      for (const id of ids) {
        if (set.size < MAX_WAITING) set.add(id);
        else dropped += 1;
      }
      if (dropped) this.deps.logger.warn({ dropped }, "too many events wait for Nova to answer: the others wait for Alertmanager's re-send");
      await this.deps.store.putSetting(UNCONFIRMED_EVENTS_SETTING, [...set]);
    });
  }

  /** If events wait and Nova answers a listing, put them back in the queue; true when some were. */
  async retry(signal?: AbortSignal): Promise<boolean> {
    if (this.#retrying) return false;
    this.#retrying = true;
    try {
      const waiting = await this.locked(() => this.load());
      if (waiting.size === 0) return false;
      try {
        await this.deps.evacuation.listComputeServices(signal, SHARED_READ);
      } catch {
        return false; // still unreachable: the next tick tries again
      }
      return await this.locked(async () => {
        const set = await this.load();
        const ids = [...set];
        for (const id of ids) await this.deps.store.markEvent(id, "unprocessed", null, null);
        set.clear();
        await this.deps.store.putSetting(UNCONFIRMED_EVENTS_SETTING, []);
        this.deps.logger.info({ events: ids.length }, "Nova answers again: routing the events it could not confirm");
        return ids.length > 0;
      });
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err) }, "could not put unconfirmed events back in the queue; will retry");
      return false;
    } finally {
      this.#retrying = false;
    }
  }

  private async load(): Promise<Set<number>> {
    this.#ids ??= new Set((await this.deps.store.getSetting<number[]>(UNCONFIRMED_EVENTS_SETTING)) ?? []);
    return this.#ids;
  }

  private locked<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(work);
    this.#lock = run.catch(() => undefined);
    return run;
  }
}
