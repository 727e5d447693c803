import { afterEach, describe, expect, it } from "vitest";
import type { ScenarioServer } from "../../packages/sandbox/src/cloud-scenario.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { evacuatePosts, failAndAlert, finished, serverIdOf, siteScenario } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const HOSTS = ["compute-1", "compute-2", "compute-3"];
const on1 = (name: string, more: Partial<ScenarioServer> = {}): ScenarioServer => ({ name, host: "compute-1", project: "acme", flavor: "m1.small", ...more });

describe("which instances are evacuated, and in what order", () => {
  it("opted-in mode: HA_Enabled or an evacuable flavor only, excluded names skipped, ERROR skipped, priority order, SHUTOFF stays SHUTOFF", async () => {
    const servers = [
      on1("cache-1", { metadata: { HA_Enabled: "True" } }),
      on1("db-1", { metadata: { HA_Enabled: "true", "lifeboat:priority": "10" } }),
      on1("web-1", { flavor: "m1.ha", metadata: { "lifeboat:priority": "5" } }),
      on1("web-2", { status: "SHUTOFF", metadata: { HA_Enabled: "yes", "lifeboat:priority": "1" } }),
      on1("batch-1", { metadata: { HA_Enabled: "False" } }),
      on1("batch-2"),
      on1("scratch-1", { metadata: { HA_Enabled: "True", "lifeboat:priority": "99" } }),
      on1("broken-1", { status: "ERROR", metadata: { HA_Enabled: "True" } }),
    ];
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, servers) },
      config: {
        evacuation: {
          concurrency: 1,
          error_instances: "skip",
          selection: { mode: "opted-in", metadata_key: "HA_Enabled", traits: ["evacuable"], exclude_name_patterns: ["scratch-*"] },
        },
      },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const nameOf = (id: string): string => cloud.state.servers.get(id)!.name;
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1");
    expect(d.state, d.reason).toBe("completed");
    expect(d.timeline.find((t) => t.from === "evacuating")!.reason).toBe("4 instance(s) evacuated, 4 not selected (see instances)");

    const rec = (n: string) => d.instances.find((i) => i.name === n)!;
    for (const n of ["db-1", "web-1", "web-2", "cache-1"]) expect(rec(n).state, n).toBe("evacuated");
    for (const n of ["batch-1", "batch-2"]) {
      expect(rec(n).state).toBe("unprotected");
      expect(rec(n).note).toBe("not opted in to HA (metadata HA_Enabled=true or flavor/image evacuable=true)");
    }
    expect(rec("scratch-1")).toMatchObject({ state: "skipped", note: 'excluded by name pattern "scratch-*"' });
    expect(rec("broken-1")).toMatchObject({ state: "skipped", note: "was in ERROR before the failure (error_instances: skip)" });

    // Concurrency 1: Nova saw the evacuates one by one, highest priority first, ties by name.
    expect(evacuatePosts(cloud).map((q) => nameOf(serverIdOf(q)))).toEqual(["db-1", "web-1", "web-2", "cache-1"]);
    // Nothing was sent for the others; they are still where they were.
    cloud.settle();
    for (const n of ["batch-1", "batch-2", "scratch-1", "broken-1"]) expect(cloud.state.serverByName(n)!.host).toBe("compute-1");

    // SHUTOFF stays SHUTOFF on its new host; ACTIVE ones are ACTIVE there.
    const web2 = cloud.state.serverByName("web-2")!;
    expect(web2.host).toBe(rec("web-2").targetHost);
    expect(["compute-2", "compute-3"]).toContain(web2.host);
    expect(web2.vmState).toBe("stopped");
    expect(rec("web-2").originalStatus).toBe("SHUTOFF");
    expect(cloud.state.serverByName("db-1")!.vmState).toBe("active");
  }, 60_000);

  it("all mode with error_instances: evacuate: an ERROR instance comes back ACTIVE elsewhere; a PAUSED one cannot be evacuated and says so", async () => {
    const servers = [on1("plain-1"), on1("err-1", { status: "ERROR" }), on1("paused-1", { status: "PAUSED" })];
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, servers) },
      config: { evacuation: { error_instances: "evacuate", selection: { mode: "all" } } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1");
    expect(d.state, d.reason).toBe("completed");
    const rec = (n: string) => d.instances.find((i) => i.name === n)!;
    expect(rec("plain-1").state).toBe("evacuated");
    expect(rec("err-1")).toMatchObject({ state: "evacuated", originalStatus: "ERROR" });
    expect(rec("paused-1")).toMatchObject({ state: "skipped", note: "status PAUSED cannot be evacuated (Nova needs ACTIVE, SHUTOFF or ERROR)" });
    cloud.settle();
    expect(cloud.state.serverByName("err-1")).toMatchObject({ vmState: "active", host: rec("err-1").targetHost });
    expect(evacuatePosts(cloud, cloud.state.serverByName("paused-1")!.id)).toHaveLength(0);
  }, 60_000);
});
