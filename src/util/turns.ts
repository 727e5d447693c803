/**
 * Turns of the event loop for a burst of work started together (fifty evacuations granted
 * at once) or set going together (the answers of OpenStack and etcd: hundreds arrive at once
 * in a storm, and each resumes a recovery): it goes out a few pieces per turn, so that I/O
 * arriving meanwhile (a webhook delivery) is read between them instead of after all of them.
 * Without it a delivery waited 30–70 ms in a storm for the loop to read it, and then took
 * mostly 1–5 ms to journal and answer.
 *
 * How many per turn follows the length of the last turn: on an idle loop a turn is short and
 * one piece per turn costs the burst nothing; on a loop busy with other work a turn takes
 * tens of ms, and one piece per turn would stretch fifty pieces over a second or more while
 * adding a piece's fraction of a ms to a turn that long delays nothing. So a turn releases
 * one piece per TURN_MS_PER_PIECE of the last turn's length, at least one, at most
 * MAX_PIECES_PER_TURN.
 */
const TURN_MS_PER_PIECE = 5;
const MAX_PIECES_PER_TURN = 8;

const waiting: (() => void)[] = [];
let scheduled = false;
let lastTurnAt = 0;

function next(): void {
  const now = performance.now();
  const turnMs = lastTurnAt ? now - lastTurnAt : 0;
  const pieces = Math.min(MAX_PIECES_PER_TURN, Math.max(1, Math.floor(turnMs / TURN_MS_PER_PIECE)));
  for (let i = 0; i < pieces && waiting.length > 0; i++) waiting.shift()!();
  if (waiting.length > 0) {
    lastTurnAt = now;
    setImmediate(next);
  } else {
    scheduled = false;
    lastTurnAt = 0;
  }
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
