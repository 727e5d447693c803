import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { acceptedEvacuations, evacuatePosts, failAndAlert, finished, metricValue, serversOn, siteScenario } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe("evacuations that fail in Nova", () => {
  it("fails twice then succeeds → evacuated at attempt 3; never succeeds → failed; recovery partial naming it; metrics count both", async () => {
    const servers = [
      ...serversOn("compute-1", 2, "ok"),
      { name: "flaky", host: "compute-1", project: "acme", flavor: "m1.small", evacuation: { failTimes: 2 } },
      { name: "doomed", host: "compute-1", project: "globex", flavor: "m1.small", evacuation: { neverSucceeds: true } },
    ];
    stack = await startStack({ pace: "fast", cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], servers) }, config: { evacuation: { retries: 2 } } });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const id = (n: string): string => cloud.state.serverByName(n)!.id;
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1");

    expect(d.state).toBe("partial");
    expect(d.reason).toMatch(/\b1 of 4 instance\(s\) not recovered: doomed \(evacuation failed in Nova/);
    expect(d.reason).not.toMatch(/flaky|ok-0/);
    const rec = (n: string) => d.instances.find((i) => i.name === n)!;
    expect(rec("flaky")).toMatchObject({ state: "evacuated", attempts: 3 });
    expect(rec("doomed")).toMatchObject({ state: "failed", attempts: 3 });
    expect(rec("ok-01")).toMatchObject({ state: "evacuated", attempts: 1 });
    expect(rec("ok-02")).toMatchObject({ state: "evacuated", attempts: 1 });

    // Each attempt is one evacuate Nova accepted, sent only after the previous one had failed there.
    cloud.settle();
    for (const [n, count] of [["flaky", 3], ["doomed", 3], ["ok-01", 1], ["ok-02", 1]] as const) {
      expect(evacuatePosts(cloud, id(n)).map((q) => q.status)).toEqual(Array(count).fill(200));
      expect(acceptedEvacuations(cloud, id(n))).toBe(count);
      expect(cloud.state.servers.get(id(n))!.broken).toBe(false);
    }
    expect(cloud.state.migrationsOf(id("flaky")).map((m) => m.status).sort()).toEqual(["done", "error", "error"]);
    expect(cloud.state.migrationsOf(id("doomed")).map((m) => m.status)).toEqual(["error", "error", "error"]);
    expect(cloud.state.servers.get(id("flaky"))!.host).toBe(rec("flaky").targetHost);
    expect(cloud.state.servers.get(id("doomed"))).toMatchObject({ host: "compute-1", vmState: "error" });

    const metrics = await (await fetch(`${s.app.url}/metrics`)).text();
    expect(metricValue(metrics, "lifeboat_instances_evacuated_total", { result: "evacuated" })).toBe(3);
    expect(metricValue(metrics, "lifeboat_instances_evacuated_total", { result: "failed" })).toBe(1);
    expect(metricValue(metrics, "lifeboat_recoveries_total", { outcome: "partial" })).toBe(1);

    // The operators hear which instance is left behind.
    const ops = await waitFor(() => s.sandbox.smtp.messages.find((m) => m.to.includes("ops@cloud.example")), 10_000, "the operators' mail");
    expect(ops.text).toContain("doomed");
  }, 60_000);
});
