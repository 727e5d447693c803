import { performance } from "node:perf_hooks";

/**
 * Turns of the event loop for a burst of work started together (fifty evacuations granted
 * at once): the waiters go on in the order they asked, as many per turn as fit in a slice
 * of SLICE_MS, so that I/O arriving meanwhile (a webhook delivery) is read between two
 * slices instead of after the whole burst, and a burst on a busy loop is not stretched to
 * one waiter per turn (fifty turns of a loaded loop came to half a second).
 */
export const SLICE_MS = 2;

const waiting: (() => void)[] = [];
let scheduled = false;

async function drain(): Promise<void> {
  const start = performance.now();
  while (waiting.length > 0) {
    waiting.shift()!();
    // The waiter goes on up to its first wait before the next one is let go, so the slice
    // measures the burst's own work.
    await Promise.resolve();
    if (waiting.length > 0 && performance.now() - start >= SLICE_MS) {
      setImmediate(() => void drain());
      return;
    }
  }
  scheduled = false;
}

/** Resolves on a later turn of the event loop, after the callers that asked before. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!scheduled) {
      scheduled = true;
      setImmediate(() => void drain());
    }
  });
}
