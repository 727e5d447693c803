import { afterEach, describe, expect, it } from "vitest";
import type { ScenarioServer } from "../../packages/sandbox/src/cloud-scenario.js";
import type { SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import { waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { acceptedEvacuations, evacuatePosts, failAndAlert, finished, serversOn, siteScenario } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const HOSTS = ["compute-1", "compute-2", "compute-3"];
const UUID_PATH = /^\/v2\.1\/servers\/[0-9a-f-]{36}$/;

function isTokenIssue(q: SimRequest): boolean {
  return q.service === "identity" && q.method === "POST" && q.path === "/v3/auth/tokens";
}

describe("Keystone token lost in the middle of a recovery", () => {
  it("a token revoked while evacuations run: Nova answers 401, lifeboat authenticates again and completes", async () => {
    stack = await startStack({ pace: "fast", cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 6)), evacuationDurationMs: 800 }, config: { evacuation: { concurrency: 3 } } });
    const s = stack;
    const cloud = s.sandbox.cloud;
    await failAndAlert(s, "compute-1");
    // Revoke every token once the first evacuations were accepted.
    await waitFor(() => evacuatePosts(cloud).length >= 1, 20_000, "the first evacuate POST");
    const revokedAt = cloud.requests.length;
    cloud.state.revokeAllTokens();

    const d = await finished(s, "compute-1");
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances.every((i) => i.state === "evacuated")).toBe(true);

    const after = cloud.requests.slice(revokedAt);
    const first401 = after.findIndex((q) => q.status === 401 && q.service === "compute");
    expect(first401).toBeGreaterThanOrEqual(0);
    expect(after[first401]!.fault).toBeUndefined(); // a real revocation, not an injected answer
    const reauth = after.findIndex((q, i) => i > first401 && isTokenIssue(q) && q.status === 201);
    expect(reauth).toBeGreaterThan(first401);
    // The refused call is sent again with the new token and answered.
    const refused = after[first401]!;
    expect(after.slice(reauth).some((q) => q.method === refused.method && q.path === refused.path && q.status! < 400)).toBe(true);
    expect(s.logs.some((l) => l.includes("token refused (401): re-authenticating once"))).toBe(true);
    for (const v of cloud.state.migrations) expect(acceptedEvacuations(cloud, v.instanceUuid)).toBe(1);
    expect(evacuatePosts(cloud).filter((q) => q.status === 200)).toHaveLength(6);
  }, 60_000);

  it("a token that expires early by Keystone's clock (clocks disagree): 401, one re-authentication, the recovery completes", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 4)), evacuationDurationMs: 600, tokenLifetimeSeconds: 120 },
      config: { evacuation: { concurrency: 2 } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    await failAndAlert(s, "compute-1");
    await waitFor(() => evacuatePosts(cloud).length >= 1, 20_000, "the first evacuate POST");
    const tokensBefore = cloud.requests.filter(isTokenIssue).length;
    const mark = cloud.requests.length;
    // Keystone's clock runs 121 s ahead of lifeboat's: the token lifeboat holds is expired for Nova.
    cloud.clock.advance(121_000);

    const d = await finished(s, "compute-1");
    expect(d.state, d.reason).toBe("completed");
    const after = cloud.requests.slice(mark);
    const first401 = after.findIndex((q) => q.status === 401);
    expect(first401).toBeGreaterThanOrEqual(0);
    expect(after.findIndex((q) => isTokenIssue(q) && q.status === 201)).toBeGreaterThan(first401);
    expect(cloud.requests.filter(isTokenIssue).length).toBeGreaterThan(tokensBefore);
    expect(evacuatePosts(cloud).filter((q) => q.status === 200)).toHaveLength(4);
  }, 60_000);
});

/**
 * Six servers on compute-1; f-02…f-04 are locked by their owners, so lifeboat sends them no
 * lock action and the only action POST each gets is the evacuate (the faults below are
 * matched by path, and lock and evacuate share one).
 */
function faultScenarioServers(): ScenarioServer[] {
  return serversOn("compute-1", 6, "f").map((v) => {
    if (!["f-02", "f-03", "f-04"].includes(v.name)) return v;
    // f-03 rebuilds slowly: a second evacuate would land while its first one still runs.
    return { ...v, locked: true, lockedReason: "owner's lock", ...(v.name === "f-03" ? { evacuation: { durationMs: 1000 } } : {}) };
  });
}

describe("Nova answering 500s and timing out", () => {
  it("GETs are retried by their callers; an evacuate refused with 500 is re-sent only after a look; one that got no answer is not re-sent while Nova could still act on it", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, faultScenarioServers()) },
      config: { openstack: { timeout_seconds: 1, retries: 2 }, evacuation: { instance_timeout_seconds: 5, no_answer_window_seconds: 3 } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const byName = (n: string): string => cloud.state.serverByName(n)!.id;
    const [refused, late, lost] = [byName("f-02"), byName("f-03"), byName("f-04")];
    const action = (id: string): { method: string; path: string } => ({ method: "POST", path: `/v2.1/servers/${id}/action` });

    // For a while, reads fail: 500s and 503s on server and migration GETs, one GET that times out.
    const getServer = cloud.faults.fail(500, { times: 2, match: { method: "GET", path: UUID_PATH } });
    const getMigrations = cloud.faults.fail(503, { times: 2, match: { method: "GET", path: "/v2.1/os-migrations" } });
    const slowGet = cloud.faults.latency(1500, { times: 1, match: { method: "GET", path: "/v2.1/servers/detail" } });
    // The evacuate of f-02 gets a 500 (Nova did nothing), f-03's is accepted only after lifeboat
    // gave up waiting for the answer, f-04's never reaches Nova (no answer either).
    cloud.faults.fail(500, { times: 1, match: action(refused) });
    cloud.faults.latency(1500, { times: 1, match: action(late) });
    cloud.faults.hang({ times: 1, match: action(lost) });

    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1");
    expect([getServer.hits(), getMigrations.hits(), slowGet.hits()]).toEqual([2, 2, 1]);
    // Every GET that met a 5xx was sent again and answered — by its caller (a look of the
    // host's next poll cycle, the owed unlock's step), not by the transport; the
    // one that timed out too.
    const same = (a: SimRequest, b: SimRequest): boolean => a.method === b.method && a.path === b.path && JSON.stringify(a.query) === JSON.stringify(b.query);
    const faulted = cloud.requests.filter((q) => q.method === "GET" && q.fault === "status");
    expect(faulted).toHaveLength(4);
    for (const q of faulted) expect(cloud.requests.find((x) => x.seq > q.seq && same(x, q) && !x.fault)?.status, `${q.path} again`).toBe(200);
    const lists = cloud.requests.filter((q) => q.method === "GET" && q.path === "/v2.1/servers/detail");
    expect(lists.length).toBeGreaterThanOrEqual(2);
    expect(lists.at(-1)!.status).toBe(200);

    expect(d.state, d.reason).toBe("completed");
    const rec = (id: string) => d.instances.find((i) => i.instanceId === id)!;
    // f-04: its call never reached Nova. Nothing was sent while Nova could still have acted on
    // it (its window); then Nova's records showed it did nothing and it was evacuated anew.
    expect(rec(lost)).toMatchObject({ state: "evacuated", attempts: 2 });
    cloud.settle();
    const lostPosts = evacuatePosts(cloud, lost);
    expect(lostPosts).toHaveLength(2);
    expect(Date.parse(lostPosts[1]!.at) - Date.parse(lostPosts[0]!.at)).toBeGreaterThanOrEqual(3_000);
    expect(acceptedEvacuations(cloud, lost)).toBe(1);
    expect(cloud.state.servers.get(lost)!.broken).toBe(false);

    // f-02: the 500 was followed by a look at the server before the one evacuate Nova accepted
    // (the host's shared look: a listing of the servers' changes, answered).
    const posts = evacuatePosts(cloud, refused);
    expect(posts.map((q) => q.status)).toEqual([500, 200]);
    expect(cloud.requests.some((q) => q.seq > posts[0]!.seq && q.seq < posts[1]!.seq && q.method === "GET" && q.path === "/v2.1/servers/detail" && q.status === 200)).toBe(true);
    expect(rec(refused)).toMatchObject({ state: "evacuated", attempts: 2 });
    expect(acceptedEvacuations(cloud, refused)).toBe(1);

    // f-03: Nova accepted the one POST late; lifeboat found it and followed it, sending nothing more.
    expect(evacuatePosts(cloud, late)).toHaveLength(1);
    expect(acceptedEvacuations(cloud, late)).toBe(1);
    expect(cloud.state.servers.get(late)!.broken).toBe(false);
    expect(rec(late)).toMatchObject({ state: "evacuated", attempts: 1 });

    for (const id of [byName("f-01"), byName("f-05"), byName("f-06")]) {
      expect(evacuatePosts(cloud, id)).toHaveLength(1);
      expect(rec(id)).toMatchObject({ state: "evacuated", attempts: 1 });
    }
  }, 60_000);
});
