import { describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import type { ServedLifeboat } from "../kit/served.js";
import { ADMIN_TOKEN, fastSite } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { acceptedEvacuations, evacuatePosts, maxInFlight, novaSeesDown, serversOn, siteScenario, TERMINAL } from "../kit/site.js";
import { serveOnSite, useCleanup } from "../kit/lifeboat.js";

/**
 * A real `lifeboat serve` killed with SIGKILL in the middle of an evacuation storm (three
 * hosts, the site's budget full), then started again on the same journal: the evacuations
 * that were running in Nova when it died count against the budget before the new process
 * starts any other, so Nova never has more than `evacuation.site_concurrency` at once, and
 * no server is evacuated twice.
 */

const FAILED = ["compute-1", "compute-2", "compute-3"];
const HEALTHY = ["compute-4", "compute-5", "compute-6"];
const SITE = 2;
const EVACUATION_MS = 5000;

let sandbox: Sandbox | undefined;
const cleanup = useCleanup();

async function recoveryOf(url: string, host: string): Promise<RecoveryDetail | undefined> {
  const list = await api(url, "GET", `/api/v1/recoveries?host=${host}`);
  const r = (list.body as { recoveries: { id: string }[] }).recoveries[0];
  return r ? ((await api(url, "GET", `/api/v1/recoveries/${r.id}`, undefined, ADMIN_TOKEN)).body as RecoveryDetail) : undefined;
}

describe("lifeboat killed in the middle of an evacuation storm", () => {
  it("the restarted lifeboat counts the evacuations still running in Nova first: never more than site_concurrency in flight across the restart, every server evacuated once", async () => {
    sandbox = await startSandbox(
      fastSite({
        cloud: {
          scenario: siteScenario([...FAILED, ...HEALTHY], FAILED.flatMap((h, i) => serversOn(h, 4, `vm${i + 1}`))),
          evacuationDurationMs: EVACUATION_MS,
        },
      }),
    );
    cleanup.add(sandbox);
    const site = sandbox;
    const cloud = site.cloud;
    const ids = FAILED.flatMap((h) => cloud.state.serversOn(h).map((v) => v.id));
    expect(ids).toHaveLength(12);
    const storeDir = cleanup.dir();
    const serve = async (): Promise<ServedLifeboat> =>
      cleanup.add(await serveOnSite(site, storeDir, { evacuation: { concurrency: 8, site_concurrency: SITE }, gates: { storm: { max_recoveries: 10, max_percent: 100 } } }));

    const one = await serve();
    for (const h of FAILED) site.failHost(h);
    for (const h of FAILED) await novaSeesDown(cloud, h);
    for (const h of FAILED) expect((await postAlert(one.url, alertPayload({ host: h }))).status).toBe(202);

    // Killed once the budget has been handed on at least once and is full again.
    await waitFor(() => evacuatePosts(cloud).length >= 3, 60_000, "the third evacuate POST");
    process.kill(one.pid, "SIGKILL");
    await one.stop();
    const beforeKill = evacuatePosts(cloud).length;
    cloud.settle();
    const runningAtKill = cloud.state.migrations.filter((m) => m.status !== "done" && m.status !== "error" && m.status !== "completed");
    expect(runningAtKill.length, "evacuations running in Nova when lifeboat died").toBeGreaterThanOrEqual(1);

    const two = await serve();
    const restartedAt = cloud.clock.now();
    const ends = await waitFor(
      async () => {
        const all = await Promise.all(FAILED.map((h) => recoveryOf(two.url, h)));
        return all.every((r) => r && TERMINAL.includes(r.state)) ? (all as RecoveryDetail[]) : undefined;
      },
      150_000,
      "the three recoveries to end after the restart",
    );
    for (const d of ends) {
      expect(d.state, d.reason).toBe("completed");
      expect(d.instances.every((i) => i.state === "evacuated")).toBe(true);
    }
    cloud.settle();
    for (const id of ids) {
      expect(evacuatePosts(cloud, id), `evacuate POSTs of ${id}`).toHaveLength(1);
      expect(acceptedEvacuations(cloud, id)).toBe(1);
      expect(cloud.state.servers.get(id)!.broken).toBe(false);
      expect(HEALTHY).toContain(cloud.state.servers.get(id)!.host);
    }
    // The restarted lifeboat started new evacuations while those of the first still ran in Nova.
    const migrations = cloud.state.migrations.filter((m) => FAILED.includes(m.sourceCompute ?? ""));
    expect(migrations).toHaveLength(12);
    expect(evacuatePosts(cloud).length).toBeGreaterThan(beforeKill);
    expect(runningAtKill.some((m) => m.plan.endAtMs > restartedAt)).toBe(true);
    // Sampled from Nova's side across both processes: acceptance to `done`.
    expect(maxInFlight(migrations)).toBeLessThanOrEqual(SITE);
    expect(two.output()).toContain("evacuations in flight per the journal counted against the evacuation budget");
  }, 240_000);
});
