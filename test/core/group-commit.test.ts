import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/util/group-commit.js";

describe("GroupCommit", () => {
  it("sends the first batch at the end of its task, what is queued meanwhile in the next one, and as much as `take` takes at a time", async () => {
    const order: string[] = [];
    const batches: number[][] = [];
    let release: (() => void) | undefined;
    const gc = new GroupCommit<number>(
      async (batch) => {
        batches.push(batch);
        order.push("sent");
        if (batches.length === 1) await new Promise<void>((r) => (release = r));
      },
      (queue) => queue.splice(0, 3),
    );
    // The rest of this turn: I/O callbacks queued before the writes.
    setImmediate(() => order.push("turn's end"));
    gc.add(1);
    gc.add(2);
    await Promise.resolve();
    await Promise.resolve();
    expect(order).toEqual(["sent"]);
    expect(gc.busy).toBe(true);
    // Queued while the first batch is in flight: the next batches, three at a time.
    for (const n of [3, 4, 5, 6, 7]) gc.add(n);
    release!();
    await gc.idle();
    expect(batches).toEqual([[1, 2], [3, 4, 5], [6, 7]]);
    expect(gc.busy).toBe(false);
  });
});
