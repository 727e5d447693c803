import { describe, expect, it } from "vitest";
import { usePairPerTest } from "../kit/pair.js";
import { sideEffects } from "../ha/side-effects.js";
import { ConsoleClient } from "./client.js";
import { ADMIN_TOKEN, fastSite } from "../kit/config.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { novaSeesDown } from "../kit/site.js";

/**
 * The console of an HA follower follows the control API's rules: it names the leader, an
 * approval or a release given there is journaled and carried out by the leader.
 */
const ha = usePairPerTest();

describe("the console on the follower of an HA pair", () => {
  it("names the leader; an approval and a release given there are carried out by the leader", async () => {
    const pair = await ha.start({
      sandbox: fastSite(),
      config: { gates: { require_approval: true, confirmations: [{ driver: "nova-service", stale_seconds: 1, checks: 1, interval_seconds: 0 }, { driver: "bmc" }] } },
    });
    const leader = await pair.leader();
    const follower = pair.other(leader);
    const c = new ConsoleClient(follower.url);
    expect((await c.login(ADMIN_TOKEN, "bob")).status).toBe(303);
    const home = await c.get("/console");
    expect(home.text).toContain(`<strong>${leader.id}</strong> leads; this instance, ${follower.id}, follows`);

    pair.sandbox.failHost("compute-1");
    await novaSeesDown(pair.sandbox.cloud, "compute-1");
    expect((await postAlert(follower.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const r = await waitFor(async () => {
      const x = (await pair.store.listRecoveries({ host: "compute-1", limit: 1 }))[0];
      return x?.state === "blocked" ? x : undefined;
    }, 30_000, "the recovery to wait for approval");

    const csrf = await c.csrf();
    expect((await c.post("/console/actions/approve", { _csrf: csrf, id: r.id, back: "/console" })).status).toBe(303);
    expect((await c.get("/console")).text).toContain(`recovery of compute-1 approved by bob@console; this instance follows: ${leader.id} carries it out`);
    await waitFor(async () => (await pair.store.getRecovery(r.id))?.state === "completed", 60_000, "the leader to finish the approved recovery");
    expect(new Set(sideEffects(pair.requests).map((e) => e.instance))).toEqual(new Set([leader.id]));

    expect((await c.post("/console/actions/release", { _csrf: csrf, host: "compute-1", back: "/console" })).status).toBe(303);
    expect((await c.get("/console")).text).toContain(`release of compute-1 started; this instance follows: ${leader.id} carries it out`);
    const release = await waitFor(async () => {
      const x = (await pair.store.listRecoveries({ host: "compute-1", limit: 5 })).find((y) => y.kind === "release");
      return x && ["completed", "failed", "aborted"].includes(x.state) ? x : undefined;
    }, 60_000, "the leader to finish the release");
    expect(release.state, release.reason).toBe("completed");
    expect(new Set(sideEffects(pair.requests).map((e) => e.instance))).toEqual(new Set([leader.id]));
  }, 120_000);
});
