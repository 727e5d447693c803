import { describe, expect, it } from "vitest";
import { recoveryDetail } from "../../src/domain/journal.js";
import { usePairPerTest } from "../kit/pair.js";
import { evacuatePostsPerServer, issuedByBoth, sideEffects } from "./side-effects.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";

/**
 * A planned handover (rolling upgrade: SIGTERM to the leader in the middle of an
 * evacuation). The stopping leader cancels what it does, revokes its lease and exits; the
 * other instance takes over without waiting for the lease TTL and finishes, and the
 * journal shows no trace of a failure: the cancelled evacuations were not failures.
 */
const TTL_MS = 3_000;
/** The follower campaigns every second; 1 s more for the stop itself and a busy machine. */
const HANDOVER_BOUND_MS = 2_000;
const HOST = "compute-1";

const ha = usePairPerTest();

describe("planned handover of an active-passive pair", () => {
  it("SIGTERM to the leader during evacuation: the other leads within a campaign interval and finishes; nothing is recorded as failed or repeated", async () => {
    const pair = await ha.start({
      sandbox: { cloud: { serviceDownTimeSeconds: 2, reportIntervalSeconds: 0.5, evacuationDurationMs: 4_000, generate: { hosts: 4, serversPerHost: 6 } }, powerDelayMs: 300 },
      config: {
        gates: { confirmations: [{ driver: "nova-service", stale_seconds: 1, checks: 1, interval_seconds: 0 }, { driver: "bmc" }] },
        evacuation: { concurrency: 2, poll_interval_seconds: 0.25 },
      },
      ttlSeconds: TTL_MS / 1000,
    });
    const p = pair;
    const a = await p.leader();
    const b = p.other(a);
    const servers = p.sandbox.view().servers.filter((s) => s.host === HOST).map((s) => s.id);

    p.sandbox.failHost(HOST);
    const cloud = p.sandbox.cloud;
    await waitFor(() => {
      cloud.settle();
      return cloud.clock.now() - cloud.state.hosts.get(HOST)!.updatedAtMs > cloud.state.opts.serviceDownTimeMs + 1_000;
    }, 15_000, `${HOST} down in Nova`);
    for (const i of [a, b]) expect((await postAlert(i.url, alertPayload({ host: HOST }))).status).toBe(202);
    await waitFor(() => sideEffects(p.requests).filter((e) => e.kind === "server:evacuate" && e.instance === a.id).length >= 2, 30_000, "two evacuations by the leader");

    const termAt = Date.now();
    a.kill("SIGTERM");
    await a.exited;
    const took = await waitFor(() => b.leadership().find((l) => l.leader && l.at >= termAt), 10_000, `${b.id} takes over`);
    console.log(`SIGTERM to the leader → ${b.id} leads after ${took.at - termAt} ms (the lease was revoked, no TTL wait)`);
    expect(took.at - termAt).toBeLessThanOrEqual(HANDOVER_BOUND_MS);

    const [r] = await p.store.listRecoveries({ host: HOST, limit: 1 });
    await waitFor(async () => (await p.store.getRecovery(r!.id))?.state === "completed", 60_000, "the recovery to complete");
    const d = (await recoveryDetail(p.store, r!.id))!;
    // The cancelled evacuations were taken over, not failed and re-sent.
    expect(d.instances.map((i) => ({ state: i.state, attempts: i.attempts, error: i.error }))).toEqual(servers.map(() => ({ state: "evacuated", attempts: 1, error: undefined })));
    const posts = evacuatePostsPerServer(p.sandbox.cloud.requests);
    expect([...posts.keys()].sort()).toEqual([...servers].sort());
    expect([...posts.values()].every((n) => n === 1)).toBe(true);
    expect(issuedByBoth(sideEffects(p.requests))).toEqual([]);
    expect(p.sandbox.redfish.system(HOST).resets).toEqual(["ForceOff"]);
  }, 90_000);
});
