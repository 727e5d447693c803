import type { Logger } from "../logging.js";
import type { Store } from "../domain/journal.js";
import type { Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import type { NotifierPort } from "../domain/ports/notifier.js";

/** Settings key of the last notice's time: the rate limit holds across restarts and leaders. */
export const UNKNOWN_HOSTS_NOTICE_SETTING = "notices.unknown-hosts";
/** Distinct names remembered between two notices; past it each further alert counts as a name. */
const MAX_REMEMBERED = 10_000;

interface NoticeState {
  lastAt: string;
}

/**
 * Alerts for hosts lifeboat cannot act on, told to operators as one aggregated notice at
 * most every `intervalMs`, naming the hosts seen since the last one (`maxListed` of them,
 * those that look like a known host first: they are a fixable mapping; the others counted),
 * instead of a mail per host. The names wait in memory: after a restart, Alertmanager's next
 * re-send routes those alerts again and they are seen anew. The notice goes out in the
 * background; routing never waits for it.
 */
export class UnknownHostNotices {
  readonly #seen = new Map<string, string | null>();
  #unremembered = 0;
  #alerts = 0;
  #since: string | null = null;
  #lastAt: number | null = null;
  #sending = false;

  constructor(
    private readonly deps: {
      store: Store;
      notifier: NotifierPort;
      clock: Clock;
      logger: Logger;
      intervalMs: number;
      maxListed: number;
    },
  ) {}

  /** One alert named `host`, which lifeboat cannot act on; `likely` the known host it resembles. */
  add(host: string, likely: string | null): void {
    this.#alerts += 1;
    this.#since ??= new Date(this.deps.clock.now()).toISOString();
    if (this.#seen.has(host)) return;
    if (this.#seen.size < MAX_REMEMBERED) this.#seen.set(host, likely);
    else this.#unremembered += 1;
  }

  get pending(): number {
    return this.#alerts;
  }

  /** Send the notice now if one is due and anything is waiting (never awaits the delivery). */
  async flush(): Promise<void> {
    if (this.#alerts === 0 || this.#sending) return;
    this.#sending = true;
    try {
      const now = this.deps.clock.now();
      if (this.#lastAt === null) {
        const state = await this.deps.store.getSetting<NoticeState>(UNKNOWN_HOSTS_NOTICE_SETTING);
        this.#lastAt = state ? Date.parse(state.lastAt) : Number.NEGATIVE_INFINITY;
      }
      if (now - this.#lastAt < this.deps.intervalMs) return;
      const at = new Date(now).toISOString();
      const seen = [...this.#seen].map(([host, likely]) => ({ host, likely }));
      const listed = [...seen.filter((h) => h.likely !== null), ...seen.filter((h) => h.likely === null)].slice(0, this.deps.maxListed);
      const notice = {
        hosts: listed,
        hostCount: this.#seen.size + this.#unremembered,
        alertCount: this.#alerts,
        since: this.#since ?? at,
        at,
      };
      // Recorded before it is sent: a crash in between loses one notice rather than letting a
      // restart loop mail operators again and again.
      await this.deps.store.putSetting(UNKNOWN_HOSTS_NOTICE_SETTING, { lastAt: at } satisfies NoticeState);
      this.#lastAt = now;
      this.#seen.clear();
      this.#unremembered = 0;
      this.#alerts = 0;
      this.#since = null;
      this.deps.logger.warn({ hosts: notice.hostCount, alerts: notice.alertCount, listed: notice.hosts.map((h) => h.host) }, "operators told of alerts for hosts lifeboat cannot act on");
      void this.deps.notifier.unknownHosts(notice).catch((err: unknown) => this.deps.logger.error({ err: errorMessage(err) }, "unknown-hosts notice failed"));
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err) }, "could not record the unknown-hosts notice; will retry");
    } finally {
      this.#sending = false;
    }
  }
}
