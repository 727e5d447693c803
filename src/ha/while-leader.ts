import { silentLogger, type Logger } from "../logging.js";
import { errorMessage } from "../util/errors.js";
import type { LeaderTerm } from "./leader.js";

/** Work that runs only while this instance leads (the coordinator). */
export interface LeaderWork {
  /** Stop all work; resolves once nothing runs any more. */
  stop(): Promise<void>;
}

/** What runWhileLeader needs from the election (LeaderElection provides it). */
export interface LeadershipEvents {
  onChange(cb: (leader: boolean, term: LeaderTerm | null) => void): () => void;
  term(): LeaderTerm | null;
}

/**
 * Start `start(term)` each time this instance becomes leader and stop it as soon as that
 * term ends. Starts and stops are serialised, so two generations of work never overlap.
 * The work should also pass `term.signal` to whatever it does and check claims before side
 * effects: the signal aborts the moment the term ends, even before `stop()` is called.
 */
export function runWhileLeader(
  leadership: LeadershipEvents,
  start: (term: LeaderTerm) => Promise<LeaderWork> | LeaderWork,
  logger: Logger = silentLogger(),
): { stop(): Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  let current: LeaderWork | null = null;
  let disposed = false;

  const stopCurrent = async (): Promise<void> => {
    const work = current;
    current = null;
    if (!work) return;
    try {
      await work.stop();
    } catch (err) {
      logger.error({ err: errorMessage(err) }, "stopping leader work failed");
    }
  };

  const begin = async (term: LeaderTerm): Promise<void> => {
    await stopCurrent();
    if (disposed || term.signal.aborted) return;
    try {
      const work = await start(term);
      if (disposed || term.signal.aborted) {
        // The term ended while starting: do not leave it running.
        await work.stop();
        return;
      }
      current = work;
    } catch (err) {
      logger.error({ err: errorMessage(err) }, "starting leader work failed");
    }
  };

  const enqueue = (fn: () => Promise<void>): void => {
    chain = chain.then(fn, fn);
  };

  const off = leadership.onChange((leader, term) => {
    if (leader && term) {
      enqueue(() => begin(term));
      // Stop as soon as the term ends, whatever the order of notifications.
      term.signal.addEventListener("abort", () => enqueue(stopCurrent), { once: true });
    } else {
      enqueue(stopCurrent);
    }
  });
  const already = leadership.term();
  if (already) {
    enqueue(() => begin(already));
    already.signal.addEventListener("abort", () => enqueue(stopCurrent), { once: true });
  }

  return {
    stop: async () => {
      disposed = true;
      off();
      enqueue(stopCurrent);
      await chain;
    },
  };
}
