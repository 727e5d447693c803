/**
 * Turns of the event loop, one waiter per turn: a burst of work started together (fifty
 * evacuations granted at once) goes out one piece per turn, so that I/O arriving meanwhile
 * (a webhook delivery) is read between two pieces instead of after all of them.
 */
const waiting: (() => void)[] = [];
let scheduled = false;

function next(): void {
  waiting.shift()?.();
  if (waiting.length > 0) setImmediate(next);
  else scheduled = false;
}

/** Resolves on a later turn of the event loop, after the callers that asked before. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!scheduled) {
      scheduled = true;
      setImmediate(next);
    }
  });
}
