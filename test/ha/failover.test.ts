import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pLimit from "p-limit";
import { describe, expect, it } from "vitest";
import type { SandboxOptions } from "../../packages/sandbox/src/environment.js";
import { CLI } from "../kit/served.js";
import { leaderGauge, status, usePairPerTest, type HaPair, type InstanceId } from "../kit/pair.js";
import { failAndAlert, finished } from "./scenario.js";
import { evacuatePostsPerServer, issuedByBoth, sideEffects } from "./side-effects.js";
import { ADMIN_TOKEN } from "../kit/config.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";

/**
 * Active-passive HA for real: two `lifeboat serve` processes on one etcd (lease TTL 3 s),
 * against the simulated site (cloud + Redfish BMCs + SMTP) in this process.
 *
 * Timing with TTL 3 s (src/ha/leader.ts): keep-alives every 1 s; a leader trusts a renewal
 * for 1.5 s (TTL/2) and steps down by itself after that; etcd drops the lease TTL after the
 * last keep-alive it received; followers campaign every 1 s.
 */
const TTL_MS = 3_000;
const STEP_DOWN_MS = TTL_MS / 2;
const CAMPAIGN_MS = 1_000;
/** etcd looks for expired leases every 500 ms (lessor run loop). */
const ETCD_EXPIRY_CHECK_MS = 500;
/**
 * Failover bound after a leader dies: its lease is gone at most TTL after the kill (its last
 * keep-alive went out before), etcd notices within 500 ms, the follower's next campaign
 * comes within 1 s; 1 s for the transactions, the log line and a busy machine (these tests
 * share two CPUs with everything else that runs).
 */
const FAILOVER_BOUND_MS = TTL_MS + ETCD_EXPIRY_CHECK_MS + CAMPAIGN_MS + 1_000;
/**
 * A leader that cannot renew stops trusting its term TTL/2 after its last renewal went out
 * (computed from the clock at every check, so nothing it does outlives that instant); the
 * timer that logs the step-down may fire late on a loaded machine.
 */
const STEP_DOWN_BOUND_MS = STEP_DOWN_MS + 1_000;

const HOST = "compute-1";
const execFileP = promisify(execFile);

/** Six servers per host, which go down in Nova 2 s after their last heartbeat. */
function site(evacuationDurationMs: number): SandboxOptions {
  return {
    cloud: { serviceDownTimeSeconds: 2, reportIntervalSeconds: 0.5, evacuationDurationMs, generate: { hosts: 4, serversPerHost: 6 } },
    powerDelayMs: 300,
  };
}
const CONFIG = {
  gates: { confirmations: [{ driver: "nova-service", stale_seconds: 1, checks: 1, interval_seconds: 0 }, { driver: "bmc" }] },
  evacuation: { concurrency: 3, poll_interval_seconds: 0.25 },
};

const ha = usePairPerTest();

function serversOn(p: HaPair, host: string): string[] {
  return p.sandbox.view().servers.filter((s) => s.host === host).map((s) => s.id);
}

describe("active-passive pair of lifeboat processes on a real etcd", () => {
  it("kill -9 of the leader during evacuation: the other takes over within the TTL and finishes; every instance evacuated once, one fence", async () => {
    const pair = await ha.start({ sandbox: site(6_000), config: CONFIG, ttlSeconds: TTL_MS / 1000 });
    const p = pair;
    const a = await p.leader();
    const b = p.other(a);
    const servers = serversOn(p, HOST);
    expect(servers.length).toBe(6);

    await failAndAlert(p, HOST, [a, b]);
    // Kill the leader once two evacuations (of 6, 6 s each, 3 at a time) are under way.
    await waitFor(() => sideEffects(p.requests).filter((e) => e.kind === "server:evacuate" && e.instance === a.id).length >= 2, 30_000, "two evacuations by the leader");
    const killedAt = Date.now();
    a.kill("SIGKILL");
    await a.exited;

    expect((await p.leader({ among: [b], timeoutMs: 20_000 })).id).toBe(b.id);
    expect(await leaderGauge(b.url)).toBe(1);
    const took = b.leadership().find((l) => l.leader && l.at >= killedAt);
    expect(took, "the follower logged its takeover").toBeDefined();
    const failoverMs = took!.at - killedAt;
    console.log(`kill -9 of the leader → ${b.id} leads after ${failoverMs} ms (bound ${FAILOVER_BOUND_MS} ms)`);
    expect(failoverMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS);
    // Not before the dead leader's lease could have run out: it was fresh (it had just
    // evacuated), so its last keep-alive went out at most STEP_DOWN_MS before the kill.
    expect(failoverMs).toBeGreaterThanOrEqual(TTL_MS - STEP_DOWN_MS - 250);

    const d = await finished(p, HOST, 60_000);
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances.map((i) => i.state).sort()).toEqual(servers.map(() => "evacuated"));
    // Every server evacuated exactly once (the cloud's own log), and it left the host.
    const posts = evacuatePostsPerServer(p.sandbox.cloud.requests);
    expect([...posts.keys()].sort()).toEqual([...servers].sort());
    expect([...posts.values()].every((n) => n === 1), JSON.stringify([...posts])).toBe(true);
    expect(p.sandbox.view().servers.filter((s) => s.host === HOST)).toEqual([]);
    // One fence, by the first leader; the survivor did the rest.
    expect(p.sandbox.redfish.system(HOST).resets).toEqual(["ForceOff"]);
    const effects = sideEffects(p.requests);
    expect(effects.filter((e) => e.kind === "reset:ForceOff").map((e) => e.instance)).toEqual([a.id]);
    const evacuations = effects.filter((e) => e.kind === "server:evacuate");
    expect(evacuations.length).toBe(servers.length);
    expect(evacuations.filter((e) => e.instance === b.id).length).toBeGreaterThan(0);
    expect(issuedByBoth(effects)).toEqual([]);
    const firstByB = Math.min(...effects.filter((e) => e.instance === b.id).map((e) => e.at));
    console.log(`first side effect by ${b.id} ${firstByB - killedAt} ms after the kill`);
    // One operator mail: the recovery was notified once.
    await waitFor(() => p.sandbox.smtp.messages.some((m) => m.to.includes("ops@cloud.example")), 10_000, "operator mail");
    expect(p.sandbox.smtp.messages.filter((m) => m.to.includes("ops@cloud.example"))).toHaveLength(1);
  }, 120_000);

  it("the leader cut off from etcd stops acting; the other takes over and finishes; no side effect is issued by both", async () => {
    const pair = await ha.start({ sandbox: site(6_000), config: CONFIG, ttlSeconds: TTL_MS / 1000 });
    const p = pair;
    const a = await p.leader();
    const b = p.other(a);
    const servers = serversOn(p, HOST);

    await failAndAlert(p, HOST, [a, b]);
    await waitFor(() => sideEffects(p.requests).filter((e) => e.kind === "server:evacuate" && e.instance === a.id).length >= 2, 30_000, "two evacuations by the leader");
    // Only the leader's path to etcd: packets stop, nothing is closed.
    const cutAt = Date.now();
    p.etcdLinks[a.id as InstanceId].cut();

    await waitFor(() => a.leadership().some((l) => !l.leader && l.at >= cutAt), 10_000, `${a.id} steps down`);
    const steppedDown = a.leadership().find((l) => !l.leader && l.at >= cutAt)!.at;
    await waitFor(() => b.leadership().some((l) => l.leader && l.at >= cutAt), 20_000, `${b.id} takes over`);
    const took = b.leadership().find((l) => l.leader && l.at >= cutAt)!.at;
    console.log(`${a.id} cut off from etcd → steps down after ${steppedDown - cutAt} ms; ${b.id} leads after ${took - cutAt} ms`);
    // The cut-off leader stops by itself once its last renewal is TTL/2 old (the renewal
    // that went out before the cut was the last to be answered).
    expect(steppedDown - cutAt).toBeLessThanOrEqual(STEP_DOWN_BOUND_MS);
    expect(took - cutAt).toBeLessThanOrEqual(FAILOVER_BOUND_MS);
    expect(took).toBeGreaterThan(steppedDown);

    const d = await finished(p, HOST, 60_000);
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances.map((i) => i.state).sort()).toEqual(servers.map(() => "evacuated"));
    const posts = evacuatePostsPerServer(p.sandbox.cloud.requests);
    expect([...posts.keys()].sort()).toEqual([...servers].sort());
    expect([...posts.values()].every((n) => n === 1), JSON.stringify([...posts])).toBe(true);
    expect(p.sandbox.redfish.system(HOST).resets).toEqual(["ForceOff"]);

    // Who did what: the old leader only before it stepped down, the new one only after it
    // took over, and never the same action on the same host or server by both.
    const effects = sideEffects(p.requests);
    const byA = effects.filter((e) => e.instance === a.id);
    const byB = effects.filter((e) => e.instance === b.id);
    expect(byA.length).toBeGreaterThan(0);
    expect(byB.filter((e) => e.kind === "server:evacuate").length).toBeGreaterThan(0);
    expect(byA.filter((e) => e.at > steppedDown), JSON.stringify(byA.filter((e) => e.at > steppedDown))).toEqual([]);
    expect(byB.filter((e) => e.at < took)).toEqual([]);
    expect(issuedByBoth(effects)).toEqual([]);
    // The cloud saw exactly what the two proxies passed on (nobody went around them).
    expect(p.sandbox.cloud.requests.filter((q) => q.method !== "GET").length).toBe(p.requests.filter((r) => r.target === "cloud" && r.method !== "GET").length);

    // Healed, the old leader follows: both name the new leader, only it reports the gauge.
    p.etcdLinks[a.id as InstanceId].heal();
    await waitFor(async () => (await status(a.url).catch(() => null))?.leader.id === b.id, 15_000, `${a.id} sees ${b.id} lead`);
    expect((await p.leader()).id).toBe(b.id);
    expect(await leaderGauge(a.url)).toBe(0);
    expect(await leaderGauge(b.url)).toBe(1);
    expect(sideEffects(p.requests).filter((e) => e.instance === a.id && e.at > steppedDown)).toEqual([]);
  }, 120_000);

  it("1,000 identical webhooks spread over both instances: one event record (1,000 deliveries, counted within seconds), one recovery; both name the leader", async () => {
    const pair = await ha.start({ sandbox: site(1_000), config: { ...CONFIG, evacuation: { concurrency: 8, poll_interval_seconds: 0.25 } }, ttlSeconds: TTL_MS / 1000 });
    const p = pair;
    const a = await p.leader();
    const b = p.other(a);

    // Both instances name the leader: control API, CLI, readiness, gauge.
    for (const i of [a, b]) {
      const s = await status(i.url);
      expect(s).toMatchObject({ instance: i.id, store: "etcd", leader: { self: i === a, id: a.id } });
      const cli = await execFileP(process.execPath, [CLI, "status", "--url", i.url, "--token", ADMIN_TOKEN]);
      expect(cli.stdout).toContain(`instance ${i.id}`);
      expect(cli.stdout).toContain(i === a ? "leader: this instance" : `leader: ${a.id}`);
      const json = JSON.parse((await execFileP(process.execPath, [CLI, "status", "--json", "--url", i.url, "--token", ADMIN_TOKEN])).stdout) as { leader: { id: string } };
      expect(json.leader.id).toBe(a.id);
      const ready = await fetch(`${i.url}/readyz`);
      const readyBody = (await ready.json()) as { checks: { leader?: { ok: boolean; detail?: string } } };
      expect(ready.status, JSON.stringify(readyBody)).toBe(200);
      expect(readyBody.checks.leader).toMatchObject({ ok: true });
      expect(readyBody.checks.leader?.detail).toContain(a.id);
    }
    expect(await leaderGauge(a.url)).toBe(1);
    expect(await leaderGauge(b.url)).toBe(0);

    // Two Alertmanagers posting to two instances, many times over.
    const host = "compute-2";
    const servers = serversOn(p, host);
    await failAndAlert(p, host, []);
    const payload = alertPayload({ host });
    const limit = pLimit(50);
    const postStart = Date.now();
    const answers = await Promise.all(Array.from({ length: 1000 }, (_, n) => limit(() => postAlert((n % 2 === 0 ? a : b).url, payload))));
    console.log(`1,000 deliveries journaled in ${Date.now() - postStart} ms`);
    expect(answers.filter((x) => x.status !== 202).map((x) => `${x.status} ${JSON.stringify(x.body)}`)).toEqual([]);

    const events = await p.store.listEvents({ host, limit: 10 });
    expect(events).toHaveLength(1);
    // Re-sends of an alert already routed are counted in the journal within 2 s, not at once.
    await waitFor(async () => (await p.store.listEvents({ host, limit: 10 }))[0]?.deliveries === 1000, 15_000, "every delivery counted");
    const d = await finished(p, host, 60_000);
    expect(d.state, d.reason).toBe("completed");
    expect(await p.store.listRecoveries({ host })).toHaveLength(1);
    expect((await p.store.listEvents({ host, limit: 10 }))[0]).toMatchObject({ deliveries: 1000, recoveryId: d.id });
    expect(p.sandbox.redfish.system(host).resets).toEqual(["ForceOff"]);
    expect([...evacuatePostsPerServer(p.sandbox.cloud.requests).values()]).toEqual(servers.map(() => 1));
    // Never both on the same thing (under this load the leader may step down and come back).
    expect(issuedByBoth(sideEffects(p.requests))).toEqual([]);
  }, 120_000);
});
