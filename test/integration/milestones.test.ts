import { afterEach, describe, expect, it } from "vitest";
import { recoveryDetail } from "../../src/domain/journal.js";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { waitFor } from "../kit/http.js";
import { failAndAlert, finished, metricValue, novaSeesDown, serversOn, siteScenario, TERMINAL } from "../kit/site.js";

/**
 * lifeboat_recovery_milestone_seconds is observed in one place, from the recoveries'
 * transitions (instance_active: as each instance is journaled evacuated): once per
 * milestone of a real recovery, never for a dry run (nothing was done) nor for a release.
 */

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const MILESTONES = ["validated", "fenced", "isolated", "instance_active", "done"] as const;

async function milestoneCounts(s: Stack): Promise<Record<string, number>> {
  const text = await s.app.metrics.registry.metrics();
  return Object.fromEntries(MILESTONES.map((m) => [m, metricValue(text, "lifeboat_recovery_milestone_seconds_count", { milestone: m })]));
}

async function ended(s: Stack, id: string): Promise<RecoveryDetail> {
  await waitFor(async () => TERMINAL.includes((await s.app.store.getRecovery(id))!.state), 60_000, `recovery ${id} to end`);
  return (await recoveryDetail(s.app.store, id))!;
}

describe("recovery milestones", () => {
  it("a real recovery observes each milestone once (instance_active once per instance); a release and a dry run observe none", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3", "compute-4"], [...serversOn("compute-1", 3), ...serversOn("compute-2", 2, "db")]), evacuationDurationMs: 300 },
      config: { gates: { storm: { max_percent: 100 } } },
    });
    const s = stack;
    expect(await milestoneCounts(s)).toEqual({ validated: 0, fenced: 0, isolated: 0, instance_active: 0, done: 0 });

    await failAndAlert(s, "compute-1");
    const real = await finished(s, "compute-1");
    expect(real.state, real.reason).toBe("completed");
    const afterReal = { validated: 1, fenced: 1, isolated: 1, instance_active: 3, done: 1 };
    // A read shows the end once it is committed; its milestone counts once it is on disk.
    await waitFor(async () => ((await milestoneCounts(s)).done ?? 0) > 0, 10_000, "the done milestone");
    expect(await milestoneCounts(s)).toEqual(afterReal);

    // The repaired host is released: a recovery of kind release, with none of the milestones.
    const release = await s.app.commands.release("compute-1", "tester");
    const rel = await ended(s, release.recoveryId);
    expect(rel.state, rel.reason).toBe("completed");
    expect(rel.timeline.map((t) => t.to)).toContain("enabling");
    expect(await milestoneCounts(s)).toEqual(afterReal);

    // A dry run goes through the same stages and sends nothing: no milestone either.
    s.sandbox.failHost("compute-2");
    await novaSeesDown(s.sandbox.cloud, "compute-2");
    const mark = s.sandbox.cloud.requests.length;
    const dry = await s.app.commands.recover("compute-2", { dryRun: true, confirmOff: false, actor: "tester" });
    const d = await ended(s, dry.id);
    expect(d.state, d.reason).toBe("completed");
    expect(d.timeline.map((t) => t.to)).toEqual(["pending", "validating", "fencing", "isolating", "evacuating", "notifying", "completed"]);
    expect(d.instances.map((i) => i.state)).toEqual(["would-evacuate", "would-evacuate"]);
    expect(await milestoneCounts(s)).toEqual(afterReal);
    // Nothing reached the BMC or Nova but reads.
    expect(s.sandbox.redfish.system("compute-2").resets).toEqual([]);
    const isWrite = (q: (typeof s.sandbox.cloud.requests)[number]): boolean => q.method !== "GET" && !(q.service === "identity" && q.path.endsWith("/auth/tokens"));
    expect(s.sandbox.cloud.requests.slice(0, mark).filter(isWrite).length).toBeGreaterThan(0);
    expect(s.sandbox.cloud.requests.slice(mark).filter(isWrite).map((q) => `${q.method} ${q.path}`)).toEqual([]);
  }, 120_000);
});
