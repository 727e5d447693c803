import { afterEach, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { acceptedEvacuations, evacuatePosts, finished, maxInFlight, novaSeesDown, serverIdOf, serversOn, siteScenario } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const FAILED = ["compute-1", "compute-2", "compute-3"];
const HEALTHY = ["compute-4", "compute-5", "compute-6"];

describe("three hosts fail at once in one lifeboat", () => {
  it("at most evacuation.site_concurrency evacuations run in Nova across the three recoveries, and the last one's high-priority instance starts before the first one's low-priority ones", async () => {
    const site = 2;
    // The first host's first two evacuations take long enough for the other two recoveries to queue behind them.
    const servers = [
      ...serversOn("compute-1", 2, "c1-first", { evacuation: { durationMs: 8000 } }),
      ...serversOn("compute-1", 2, "c1-low"),
      ...serversOn("compute-2", 2, "c2-low"),
      ...serversOn("compute-3", 2, "c3-low"),
      ...serversOn("compute-3", 1, "c3-vip", { metadata: { "lifeboat:priority": "10" } }),
    ];
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario([...FAILED, ...HEALTHY], servers), evacuationDurationMs: 1000 },
      config: {
        evacuation: { concurrency: 8, site_concurrency: site },
        gates: { storm: { max_recoveries: 10, max_percent: 100 } },
      },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const idOf = new Map(servers.map((v) => [v.name, cloud.state.serversOn(v.host).find((x) => x.name === v.name)!.id]));
    const nameOf = new Map([...idOf].map(([name, id]) => [id, name]));
    const waiting = async (): Promise<number> => (await s.app.metrics.evacuationsWaiting.get()).values[0]?.value ?? 0;

    for (const h of FAILED) s.sandbox.failHost(h);
    for (const h of FAILED) await novaSeesDown(cloud, h);

    // compute-1's recovery is opened first and fills the site's budget with its two slow ones.
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    await waitFor(async () => evacuatePosts(cloud).length >= 2 && (await waiting()) === 2, 20_000, "compute-1's first two evacuations, its other two waiting");
    // Then compute-2's and compute-3's (the last opened), while those two still run in Nova.
    for (const h of ["compute-2", "compute-3"]) expect((await postAlert(s.app.url, alertPayload({ host: h }))).status).toBe(202);
    await waitFor(
      async () => {
        if (evacuatePosts(cloud).length > 2) throw new Error(`an evacuation started before every recovery queued: ${evacuatePosts(cloud).map((q) => nameOf.get(serverIdOf(q))).join(", ")}`);
        return (await waiting()) === 7;
      },
      20_000,
      "every other instance of the three recoveries to wait for the budget",
    );

    const ds = await Promise.all(FAILED.map((h) => finished(s, h, 90_000)));
    for (const d of ds) {
      expect(d.state, d.reason).toBe("completed");
      expect(d.instances.every((i) => i.state === "evacuated" && i.attempts === 1)).toBe(true);
    }

    cloud.settle();
    const order = evacuatePosts(cloud).map((q) => nameOf.get(serverIdOf(q)));
    expect(order).toHaveLength(servers.length);
    // Priority first across recoveries, then the older recovery. Evacuations end two at a
    // time (all of them alike), so their slots are granted two at a time: first to the vip of
    // the last-opened recovery and to the first recovery's first low-priority one, not to the
    // first recovery's two low-priority ones. Two granted in the same moment race to Nova (a
    // host with no look of its servers yet needs one first), so each pair is compared as a set.
    expect(order.slice(0, 2).sort()).toEqual(["c1-first-01", "c1-first-02"]);
    expect(order.slice(2, 4).sort()).toEqual(["c1-low-01", "c3-vip-01"]);
    expect(order.slice(4, 6).sort()).toEqual(["c1-low-02", "c2-low-01"]);
    expect(order.slice(6, 8).sort()).toEqual(["c2-low-02", "c3-low-01"]);
    expect(order[8]).toBe("c3-low-02");

    // Measured from Nova's side: acceptance (the POST) to `done`, across the three hosts.
    for (const id of idOf.values()) {
      expect(evacuatePosts(cloud, id)).toHaveLength(1);
      expect(acceptedEvacuations(cloud, id)).toBe(1);
      expect(HEALTHY).toContain(cloud.state.servers.get(id)!.host);
    }
    const migrations = cloud.state.migrations.filter((m) => FAILED.includes(m.sourceCompute ?? ""));
    expect(migrations).toHaveLength(servers.length);
    expect(maxInFlight(migrations)).toBe(site);
    expect((await s.app.metrics.evacuationsInFlight.get()).values[0]?.value).toBe(0);
    expect(await waiting()).toBe(0);
  }, 150_000);
});
