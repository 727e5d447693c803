import { afterEach, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { metricValue, serversOn, siteScenario } from "../kit/site.js";

/**
 * lifeboat_recoveries_in_progress is read from the journal when it is scraped: it counts
 * what another instance (or an operator's command on it) did to the journal, not only what
 * this instance's runners moved.
 */

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function inProgress(s: Stack, state: string): Promise<number> {
  return metricValue(await s.app.metrics.registry.metrics(), "lifeboat_recoveries_in_progress", { state });
}

describe("the in-progress gauge", () => {
  it("shows a recovery journaled and ended elsewhere at the next scrape, with no transition made here", async () => {
    stack = await startStack({ pace: "fast", cloud: { scenario: siteScenario(["compute-1", "compute-2"], serversOn("compute-1", 1)) } });
    const s = stack;
    expect(await inProgress(s, "pending")).toBe(0);

    // As another instance journals it: pending in a long grace, so nothing here moves it.
    const now = new Date().toISOString();
    const r = await s.app.store.createRecovery({
      host: "compute-1",
      kind: "manual",
      incidentKey: `compute-1@test:${now}`,
      trigger: "manual",
      dryRun: false,
      confirmedOff: false,
      detectedAt: now,
      graceUntil: new Date(Date.now() + 3_600_000).toISOString(),
      reason: "journaled by another instance",
      actor: "other-instance",
    });
    expect(await inProgress(s, "pending")).toBe(1);

    // Ended by the other instance: this one made no transition, the scrape still shows it gone.
    await s.app.store.transition(r.id, "pending", "aborted", "cancelled on the other instance", { outcome: "aborted" }, "other-instance");
    expect(await inProgress(s, "pending")).toBe(0);
  });
});
