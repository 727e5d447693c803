import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import type { ServedLifeboat } from "../kit/served.js";
import { OPEN_EVACUATION_STATUSES } from "../../packages/sandbox/src/cloud-state.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import { ADMIN_TOKEN, fastSite } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { type Stack, startStack, serveOnSite, useCleanup } from "../kit/lifeboat.js";
import { acceptedEvacuations, evacuatePosts, failAndAlert, finished, novaSeesDown, serversOn, siteScenario, TERMINAL } from "../kit/site.js";

const HOSTS = ["compute-1", "compute-2", "compute-3"];

let stack: Stack | undefined;
let sandbox: Sandbox | undefined;
const cleanup = useCleanup();
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** Evacuations Nova is running right now. */
function running(cloud: SandboxCloud): number {
  cloud.settle();
  return cloud.state.migrations.filter((m) => OPEN_EVACUATION_STATUSES.has(m.status)).length;
}

/** Every server evacuated exactly once, none broken, none left locked, none left on the failed host. */
function expectEachEvacuatedOnce(cloud: SandboxCloud, ids: string[]): void {
  cloud.settle();
  for (const id of ids) {
    expect(evacuatePosts(cloud, id), `evacuate POSTs of ${cloud.state.servers.get(id)!.name}`).toHaveLength(1);
    expect(acceptedEvacuations(cloud, id)).toBe(1);
    expect(cloud.state.servers.get(id)).toMatchObject({ broken: false, locked: false, taskState: null });
    expect(cloud.state.servers.get(id)!.host).not.toBe("compute-1");
  }
}

describe("lifeboat stops in the middle of evacuating", () => {
  it("in-process stop while evacuations run, a new lifeboat on the same store: completes, no second evacuate POST", async () => {
    // vm-01 finishes while lifeboat is down, vm-02 and vm-03 are still rebuilding when it comes back.
    const servers = serversOn("compute-1", 9).map((v) => ({ ...v, evacuation: { durationMs: v.name === "vm-01" ? 1200 : ["vm-02", "vm-03"].includes(v.name) ? 4000 : 1000 } }));
    stack = await startStack({ pace: "fast", cloud: { scenario: siteScenario(HOSTS, servers) }, config: { evacuation: { concurrency: 3 } } });
    const s = stack;
    const cloud = s.sandbox.cloud;
    const ids = cloud.state.serversOn("compute-1").map((v) => v.id);
    await failAndAlert(s, "compute-1");
    await waitFor(() => evacuatePosts(cloud).filter((q) => q.status === 200).length >= 3, 20_000, "three evacuations accepted");
    const first = (await s.app.store.listRecoveries({ host: "compute-1", limit: 1 }))[0]!;
    expect(first.state).toBe("evacuating");

    await s.app.stop();
    expect(running(cloud)).toBeGreaterThan(0);
    const postsWhileStopped = evacuatePosts(cloud).length;
    expect(postsWhileStopped).toBeLessThan(9);
    // The journal says what was under way: no more instances evacuating than slots, the rest pending.
    const journal = new SqliteStore(s.config.store.driver === "sqlite" ? s.config.store.path : "");
    await journal.init();
    const states = (await journal.instances(first.id)).map((i) => i.state);
    await journal.close();
    expect(states).toHaveLength(9);
    expect(states.filter((x) => x === "evacuating").length).toBeLessThanOrEqual(3);
    expect(states.filter((x) => x === "pending").length).toBeGreaterThanOrEqual(6 - states.filter((x) => x === "evacuated").length);
    // Down for a while: Nova goes on and finishes vm-01 while nobody watches.
    const vm01 = cloud.state.serverByName("vm-01")!;
    await waitFor(() => {
      cloud.settle();
      return vm01.host !== "compute-1" && vm01.taskState === null;
    }, 10_000, "vm-01 to arrive while lifeboat is down");
    expect(vm01.locked).toBe(true); // lifeboat's lock of the interrupted attempt
    expect(evacuatePosts(cloud)).toHaveLength(postsWhileStopped);

    await s.restart();
    const d = await finished(s, "compute-1");
    expect(d.id).toBe(first.id);
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances.every((i) => i.state === "evacuated")).toBe(true);
    expectEachEvacuatedOnce(cloud, ids);
    expect(s.logs.some((l) => l.includes("resuming recovery"))).toBe(true);
  }, 60_000);

  it("the serve process killed with SIGKILL mid-evacuation and started again: completes, no instance evacuated twice", async () => {
    sandbox = await startSandbox(fastSite({ cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 9)), evacuationDurationMs: 1500 } }));
    cleanup.add(sandbox);
    const site = sandbox;
    const cloud = site.cloud;
    const ids = cloud.state.serversOn("compute-1").map((v) => v.id);
    const storeDir = cleanup.dir();
    const serve = async (): Promise<ServedLifeboat> => cleanup.add(await serveOnSite(site, storeDir, { evacuation: { concurrency: 3 } }));
    const recoveryOf = async (url: string): Promise<RecoveryDetail | undefined> => {
      const list = await api(url, "GET", "/api/v1/recoveries?host=compute-1");
      const r = (list.body as { recoveries: { id: string }[] }).recoveries[0];
      return r ? ((await api(url, "GET", `/api/v1/recoveries/${r.id}`, undefined, ADMIN_TOKEN)).body as RecoveryDetail) : undefined;
    };

    const one = await serve();
    site.failHost("compute-1");
    await novaSeesDown(cloud, "compute-1");
    expect((await postAlert(one.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    await waitFor(() => evacuatePosts(cloud).filter((q) => q.status === 200).length >= 3, 30_000, "three evacuations accepted");
    process.kill(one.pid, "SIGKILL");
    expect(running(cloud)).toBeGreaterThan(0); // killed while Nova was rebuilding
    await one.stop();
    const journal = new SqliteStore(join(storeDir, "lifeboat.db"));
    await journal.init();
    const before = (await journal.listRecoveries({ host: "compute-1" }))[0];
    await journal.close();
    expect(before?.state).toBe("evacuating");
    const postsAtKill = evacuatePosts(cloud).length;
    expect(postsAtKill).toBeLessThan(9);

    const two = await serve();
    const d = await waitFor(async () => {
      const r = await recoveryOf(two.url);
      return r && TERMINAL.includes(r.state) ? r : undefined;
    }, 30_000, "the recovery to end after the restart");
    expect(d.id).toBe(before!.id);
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances).toHaveLength(9);
    expect(d.instances.every((i) => i.state === "evacuated")).toBe(true);
    expectEachEvacuatedOnce(cloud, ids);
    expect(two.output()).toContain("resuming recovery");
  }, 90_000);
});
