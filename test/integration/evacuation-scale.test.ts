import { afterEach, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { acceptedEvacuations, evacuatePosts, failAndAlert, finished, maxInFlight, serversOn, siteScenario } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe("a host with 50 instances", () => {
  it("evacuates all 50 with at most `evacuation.concurrency` in flight, one evacuate POST each", async () => {
    const concurrency = 8;
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn("compute-1", 50)), evacuationDurationMs: 400 },
      config: { evacuation: { concurrency } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const ids = cloud.state.serversOn("compute-1").map((v) => v.id);
    expect(ids).toHaveLength(50);

    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1", 60_000);
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances).toHaveLength(50);
    expect(d.instances.every((i) => i.state === "evacuated" && i.attempts === 1)).toBe(true);

    cloud.settle();
    for (const id of ids) {
      expect(evacuatePosts(cloud, id), `evacuate POSTs of ${id}`).toHaveLength(1);
      expect(acceptedEvacuations(cloud, id)).toBe(1);
      const v = cloud.state.servers.get(id)!;
      expect(v.broken).toBe(false);
      expect(["compute-2", "compute-3"]).toContain(v.host);
      expect(d.instances.find((i) => i.instanceId === id)!.targetHost).toBe(v.host);
    }
    // Measured from Nova's side: acceptance (the POST) to `done`.
    const migrations = cloud.state.migrations.filter((m) => m.sourceCompute === "compute-1");
    expect(migrations).toHaveLength(50);
    const peak = maxInFlight(migrations);
    expect(peak).toBeLessThanOrEqual(concurrency);
    expect(peak).toBeGreaterThan(1); // they did run side by side
  }, 90_000);
});
