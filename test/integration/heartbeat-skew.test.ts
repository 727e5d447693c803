import { afterEach, describe, expect, it } from "vitest";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { evacuatePosts, finished, serversOn, siteScenario } from "../kit/site.js";

/**
 * The whole chain — webhook, gates, fence, isolation, evacuation — against a Nova whose
 * clock is a minute off lifeboat's (this machine's). Nova hears nova-compute every second and
 * says `down` only a minute after the last heartbeat; lifeboat's nova-service gate judges the
 * heartbeat at 5 s on Nova's clock. A dead host is recovered while Nova still says up; a
 * live host's alert is held; whichever way the clocks are off.
 */

const HOSTS = ["compute-1", "compute-2", "compute-3", "compute-4"];
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe.each([
  ["a minute ahead of", -60],
  ["a minute behind", 60],
])("lifeboat's clock %s Nova's", (_, novaAheadSeconds) => {
  it("the dead host is fenced and evacuated before Nova says down; the live host's alert is held, never fenced", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 2)), clockOffsetSeconds: novaAheadSeconds, serviceDownTimeSeconds: 60, reportIntervalSeconds: 1 },
      config: {
        gates: { confirmations: [{ driver: "nova-service", stale_seconds: 5, checks: 1, interval_seconds: 0 }, { driver: "bmc" }], storm: { max_percent: 100 } },
      },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    s.sandbox.failHost("compute-1");
    cloud.clock.advance(10_000); // Nova's time: compute-1's last heartbeat is 10 s old; the others heartbeat on
    cloud.settle();
    expect(cloud.state.serviceIsUp(cloud.state.mustHost("compute-1"))).toBe(true);

    for (const host of ["compute-2", "compute-1"]) expect((await postAlert(s.app.url, alertPayload({ host }))).status).toBe(202);
    const d = await finished(s, "compute-1");
    expect(d.state, d.reason).toBe("completed");
    const nova = d.decisions.find((x) => x.gate === "nova-service" && x.result === "pass");
    expect(nova?.reason).toMatch(/nova-compute on compute-1: last heartbeat \S+, at least \d+(\.\d)?s before Nova's answer \(≥ stale_seconds 5\); Nova says up/);
    expect(nova?.details).toMatchObject({ state: "up", forcedDown: false });
    expect(s.sandbox.redfish.system("compute-1").resets).toEqual(["ForceOff"]);
    expect(evacuatePosts(cloud)).toHaveLength(2);

    const held = await waitFor(
      async () => {
        const r = (await s.app.store.listRecoveries({ host: "compute-2", limit: 1 }))[0];
        return r?.state === "blocked" ? r : undefined;
      },
      15_000,
      "compute-2's recovery to be held",
    );
    expect(held.reason).toMatch(/nova-service: Nova still hears nova-compute on compute-2: last heartbeat \S+, [0-2](\.\d)?s before Nova's answer/);
    expect(s.sandbox.redfish.system("compute-2").resets).toEqual([]);
  }, 60_000);
});
