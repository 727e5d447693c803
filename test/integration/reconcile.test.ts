import { afterEach, describe, expect, it } from "vitest";
import type { HostState as HostHold } from "../../src/domain/model.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { evacuatePosts, servicePuts, serversOn, siteScenario } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const OLD_REASON = "lifeboat: recovery r-01earlier0-abcdef fenced 2026-11-25T10:00:00.000Z";

describe("start-up reconciliation with Nova", () => {
  it("a host lifeboat isolated in Nova, unknown to a fresh store, is held: a new alert for it neither fences nor evacuates", async () => {
    const scenario = siteScenario(["compute-1", "compute-2", "compute-3"], [...serversOn("compute-1", 1, "left"), ...serversOn("compute-2", 2, "busy")]);
    // compute-1: fenced and isolated by an earlier lifeboat (its store lost); compute-3: a human's maintenance.
    scenario.hosts[0] = { ...scenario.hosts[0]!, alive: false, forcedDown: true, disabled: true, disabledReason: OLD_REASON };
    scenario.hosts[2] = { ...scenario.hosts[2]!, disabled: true, disabledReason: "kernel upgrade (jdoe)" };
    stack = await startStack({ pace: "fast", cloud: { scenario } });
    const s = stack;
    const cloud = s.sandbox.cloud;
    expect(await s.app.store.listRecoveries({})).toHaveLength(0);

    const hold = (await api(s.app.url, "GET", "/api/v1/hosts/compute-1")).body as { hold: HostHold | null; openRecovery: string | null };
    expect(hold.hold).toMatchObject({ fenced: true, recoveryId: "r-01earlier0-abcdef", by: "start-up reconciliation" });
    expect(hold.openRecovery).toBeNull();
    expect(((await api(s.app.url, "GET", "/api/v1/hosts/compute-3")).body as { hold: HostHold | null }).hold).toBeNull();
    expect(s.logs.some((l) => l.includes("held down until `lifeboat release`") && l.includes("compute-1"))).toBe(true);

    const mark = cloud.requests.length;
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const event = await waitFor(async () => (await s.app.store.listEvents({ host: "compute-1" })).find((e) => e.disposition !== "unprocessed"), 10_000, "the alert to be routed");
    expect(event.disposition).toBe("ignored");
    expect(event.note).toContain("held down by recovery r-01earlier0-abcdef");
    expect(event.note).toContain('lifeboat release compute-1');

    // Give a (wrong) recovery time to act: nothing happens.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await s.app.store.listRecoveries({})).toHaveLength(0);
    expect(s.sandbox.redfish.system("compute-1").resets).toEqual([]);
    expect(servicePuts(cloud).filter((q) => q.seq > mark)).toHaveLength(0);
    expect(evacuatePosts(cloud)).toHaveLength(0);
    cloud.settle();
    expect(cloud.state.serverByName("left-01")!.host).toBe("compute-1");
    expect(cloud.state.mustHost("compute-1")).toMatchObject({ forcedDown: true, disabledReason: OLD_REASON });
  }, 60_000);
});
