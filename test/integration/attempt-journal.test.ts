import { afterEach, describe, expect, it } from "vitest";
import type { InstanceResult } from "../../src/domain/model.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { startStack, type Stack } from "../kit/lifeboat.js";
import { failAndAlert, finished, serversOn, siteScenario } from "../kit/site.js";

/**
 * An evacuation attempt is journaled with its evacuate call, before the call is sent, and
 * its outcome once known: two writes per evacuated instance after the list. A journal that
 * refuses the call's write stops the call: Nova receives no evacuate for that attempt, and
 * the re-issue evacuates once.
 */
const HOSTS = ["compute-1", "compute-2", "compute-3"];

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** A journal whose disk refuses the first write of an evacuate call of `name` (before it is sent); it counts the writes of each instance. */
class RefusingStore extends SqliteStore {
  refused = 0;
  readonly writes = new Map<string, string[]>();
  constructor(
    path: string,
    private readonly name: string,
  ) {
    super(path);
  }
  private note(r: InstanceResult): void {
    this.writes.set(r.name, [...(this.writes.get(r.name) ?? []), `${r.state}${r.evacuateCall ? (r.evacuateCall.settled ? " settled" : " call") : ""}`]);
  }
  override putInstances(list: readonly InstanceResult[]): Promise<void> {
    for (const r of list) this.note(r);
    return super.putInstances(list);
  }
  override putInstance(r: InstanceResult): Promise<void> {
    this.note(r);
    if (this.refused === 0 && r.name === this.name && r.evacuateCall !== undefined && r.evacuateCall.settled === undefined) {
      this.refused++;
      return Promise.reject(new Error("disk I/O error"));
    }
    return super.putInstance(r);
  }
}

describe("the attempt's journal write and the evacuate call", () => {
  it("the journal refuses an evacuate call: it is not sent; the re-issue evacuates the server once; an instance costs the journal two writes after the list", async () => {
    let store: RefusingStore | undefined;
    stack = await startStack({
      pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 3)) },
      store: (config) => (store = new RefusingStore(config.store.driver === "sqlite" ? config.store.path : ":memory:", "vm-02")),
    });
    await failAndAlert(stack, "compute-1");
    const d = await finished(stack, "compute-1");
    expect(store!.refused).toBe(1);
    expect(d.state).toBe("completed");
    const vm2 = stack.sandbox.cloud.state.serverByName("vm-02")!;
    expect(vm2.host).not.toBe("compute-1");
    const posts = stack.sandbox.cloud.requests.filter((q) => q.method === "POST" && q.path === `/v2.1/servers/${vm2.id}/action`);
    const actions = posts.map((q) => Object.keys(q.body as object)[0]);
    // The refused attempt may have locked (the lock waits for nothing); it sent no evacuate.
    expect(actions.filter((a) => a === "evacuate")).toHaveLength(1);
    expect(actions.at(-1)).toBe("unlock");
    const rec = d.instances.find((i) => i.name === "vm-02")!;
    expect(rec).toMatchObject({ state: "evacuated", attempts: 2 });
    // The list, the call before it is sent, the outcome (the answer carried by it).
    expect(store!.writes.get("vm-01")).toEqual(["pending", "evacuating call", "evacuated settled"]);
    expect(store!.writes.get("vm-02")).toEqual(["pending", "evacuating call", "pending", "evacuating call", "evacuated settled"]);
  });
});
