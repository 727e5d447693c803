import { afterEach, describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { acceptedEvacuations, evacuatePosts, failAndAlert, finished, serversOn, siteScenario } from "../kit/site.js";

/**
 * Evacuations lifeboat can only watch — a call that may have reached Nova without an answer
 * (in-process, or left by a stop) and an evacuation still running past its timeout — are
 * never sent again while Nova may still act on them, and never hold the other instances back.
 * Once an unanswered call's window has passed, Nova's records decide: an evacuation it started
 * is followed, none means the call did nothing and the instance is evacuated anew.
 */

const HOSTS = ["compute-1", "compute-2", "compute-3"];

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const action = (id: string): { method: string; path: string } => ({ method: "POST", path: `/v2.1/servers/${id}/action` });

/** When Nova received the server's one evacuate POST. */
function postedAt(s: Stack, id: string): number {
  const posts = evacuatePosts(s.sandbox.cloud, id);
  expect(posts).toHaveLength(1);
  return Date.parse(posts[0]!.at);
}

/** The others were evacuated while `watched` was still being watched, not after it. */
function othersWentAhead(s: Stack, d: RecoveryDetail, watched: string, others: string[]): void {
  const end = Date.parse(d.instances.find((i) => i.instanceId === watched)!.finishedAt!);
  for (const id of others) {
    const rec = d.instances.find((i) => i.instanceId === id)!;
    expect(rec).toMatchObject({ state: "evacuated", attempts: 1 });
    expect(postedAt(s, id), `${rec.name} sent while ${watched} was watched`).toBeLessThan(end);
    expect(Date.parse(rec.finishedAt!)).toBeLessThan(end);
    expect(s.sandbox.cloud.state.servers.get(id)).toMatchObject({ broken: false, locked: false, taskState: null });
  }
}

describe("evacuate calls with no answer", () => {
  it("a call left unanswered by a stop is only watched after the restart until its window has passed; Nova's records then show it did nothing, and it is evacuated anew: one evacuation accepted", async () => {
    // No locks: the hang must meet the evacuate, the only action sent to the server.
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 3)) },
      config: { evacuation: { concurrency: 1, lock_instances: false, instance_timeout_seconds: 20, no_answer_window_seconds: 4 } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const [lost, b, c] = ["vm-01", "vm-02", "vm-03"].map((n) => cloud.state.serverByName(n)!.id) as [string, string, string];
    // Nova never gets to vm-01's call (a request lost on its way in).
    cloud.faults.hang({ times: 1, match: action(lost) });
    await failAndAlert(s, "compute-1");
    await waitFor(() => evacuatePosts(cloud, lost).length === 1, 20_000, "vm-01's evacuate POST");
    await s.app.stop();

    // The journal knows the call was sent and holds no answer.
    const journal = new SqliteStore(s.config.store.driver === "sqlite" ? s.config.store.path : "");
    await journal.init();
    const open = (await journal.listRecoveries({ host: "compute-1" }))[0]!;
    const journaled = (await journal.instances(open.id)).find((i) => i.instanceId === lost)!;
    await journal.close();
    expect(journaled).toMatchObject({ state: "evacuating", attempts: 1, evacuateCall: { attempt: 1, migrationsBefore: [] } });
    expect(journaled.evacuateCall!.settled).toBeUndefined();
    expect(Date.parse(journaled.evacuateCall!.sentAt)).toBeLessThanOrEqual(Date.parse(evacuatePosts(cloud, lost)[0]!.at));

    await s.restart();
    const d = await finished(s, "compute-1", 40_000);
    expect(d.id).toBe(open.id);
    expect(d.state, d.reason).toBe("completed");
    const rec = d.instances.find((i) => i.instanceId === lost)!;
    expect(rec).toMatchObject({ state: "evacuated", attempts: 2 });
    cloud.settle();
    // The first POST never reached Nova (it hung on its way in); the second came only after the
    // first call's window had passed, and it is the one evacuation Nova ran.
    const posts = evacuatePosts(cloud, lost);
    expect(posts).toHaveLength(2);
    expect(Date.parse(posts[1]!.at) - Date.parse(journaled.evacuateCall!.sentAt)).toBeGreaterThanOrEqual(4_000);
    expect(acceptedEvacuations(cloud, lost)).toBe(1);
    expect(cloud.state.servers.get(lost)).toMatchObject({ broken: false, locked: false, taskState: null });
    expect(cloud.state.servers.get(lost)!.host).not.toBe("compute-1");
    othersWentAhead(s, d, lost, [b, c]);
    expect(s.logs.some((l) => l.includes("was in flight when lifeboat stopped"))).toBe(true);
    expect(s.logs.some((l) => l.includes("it did nothing"))).toBe(true);
  }, 90_000);

  it("a call Nova accepts late, after a stop: the restarted lifeboat finds Nova's evacuation and follows it, sending nothing", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 2)) },
      config: { evacuation: { concurrency: 2, instance_timeout_seconds: 20 } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const [late, other] = ["vm-01", "vm-02"].map((n) => cloud.state.serverByName(n)!.id) as [string, string];
    // Nova takes 3 s to act on vm-01's lock and on its evacuate; lifeboat stops meanwhile.
    cloud.faults.latency(3000, { times: 2, match: action(late) });
    await failAndAlert(s, "compute-1");
    await waitFor(() => evacuatePosts(cloud, late).length === 1, 20_000, "vm-01's evacuate POST");
    await s.app.stop();
    expect(acceptedEvacuations(cloud, late)).toBe(0);
    await s.restart();
    const d = await finished(s, "compute-1", 40_000);
    expect(d.state, d.reason).toBe("completed");
    cloud.settle();
    for (const id of [late, other]) {
      expect(evacuatePosts(cloud, id)).toHaveLength(1);
      expect(acceptedEvacuations(cloud, id)).toBe(1);
      expect(cloud.state.servers.get(id)).toMatchObject({ broken: false, locked: false, taskState: null });
    }
    const rec = d.instances.find((i) => i.instanceId === late)!;
    expect(rec).toMatchObject({ state: "evacuated", attempts: 1, evacuateCall: { settled: { by: "nova-records" } } });
    expect(d.instances.find((i) => i.instanceId === other)!.evacuateCall!.settled!.by).toBe("answer");
  }, 90_000);

  it("in-process: a call that got no answer is watched without its slot; the other instances are evacuated meanwhile; after its window it is evacuated anew", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 3)) },
      config: { openstack: { timeout_seconds: 1 }, evacuation: { concurrency: 1, lock_instances: false, instance_timeout_seconds: 20, no_answer_window_seconds: 4 } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const [lost, b, c] = ["vm-01", "vm-02", "vm-03"].map((n) => cloud.state.serverByName(n)!.id) as [string, string, string];
    cloud.faults.hang({ times: 1, match: action(lost) });
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1", 40_000);
    othersWentAhead(s, d, lost, [b, c]);
    expect(d.state, d.reason).toBe("completed");
    const rec = d.instances.find((i) => i.instanceId === lost)!;
    expect(rec).toMatchObject({ state: "evacuated", attempts: 2 });
    const posts = evacuatePosts(cloud, lost);
    expect(posts).toHaveLength(2);
    expect(Date.parse(posts[1]!.at) - Date.parse(posts[0]!.at)).toBeGreaterThanOrEqual(4_000);
    expect(acceptedEvacuations(cloud, lost)).toBe(1);
  }, 60_000);
});

describe("an evacuation stuck in Nova", () => {
  it("past its timeout it hands its slot on: the others are evacuated while it is still tracked; it is never sent again", async () => {
    const servers = [
      { name: "stuck", host: "compute-1", project: "acme", flavor: "m1.small", metadata: { "lifeboat:priority": "10" }, evacuation: { durationMs: 60_000 } },
      ...serversOn("compute-1", 2),
    ];
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, servers) },
      config: { evacuation: { concurrency: 1, instance_timeout_seconds: 4, retries: 1 } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const [stuck, b, c] = ["stuck", "vm-01", "vm-02"].map((n) => cloud.state.serverByName(n)!.id) as [string, string, string];
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1", 40_000);
    expect(d.state).toBe("partial");
    const rec = d.instances.find((i) => i.instanceId === stuck)!;
    expect(rec).toMatchObject({ state: "failed", attempts: 2 });
    expect(rec.error).toMatch(/not finished after/);
    expect(evacuatePosts(cloud, stuck)).toHaveLength(1);
    // Still running in Nova: it keeps lifeboat's lock.
    expect(cloud.state.servers.get(stuck)!.locked).toBe(true);
    othersWentAhead(s, d, stuck, [b, c]);
  }, 60_000);
});
