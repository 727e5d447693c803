import { copyFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { buildDrivers } from "../../src/app/drivers.js";
import { Lifeboat } from "../../src/app/lifecycle.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { defaultScenario, type ScenarioServer } from "../../packages/sandbox/src/cloud.js";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { MIGRATIONS } from "../../src/store/sqlite-migrations.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { evacuatePostsPerServer } from "../ha/side-effects.js";
import { memoryLogger } from "../kit/lifeboat.js";
import { removeDir, tempDir, parseConfigData, lifeboatConfigData } from "../kit/config.js";
import { waitFor } from "../kit/http.js";

/**
 * The journal lifeboat 0.1.0 wrote (test/fixtures/journal/, described in its README), opened
 * by today's code: every migration applies, older records read into today's types, and the
 * recoveries it left open resume.
 */
const FIXTURE = resolve(import.meta.dirname, "../fixtures/journal/lifeboat-0.1.0.sqlite");
const ID = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const R = { c1: "r-01m91k8ta8-1j8cyr", c2: "r-01m91k92rj-r0pbg1", c3: "r-01m91k94qy-78778d", c4: "r-01m91k998a-8szyff" };

const dirs: string[] = [];
let sandbox: Sandbox | undefined;
let app: Lifeboat | undefined;
afterEach(async () => {
  await app?.stop().catch(() => undefined);
  app = undefined;
  await sandbox?.close();
  sandbox = undefined;
  dirs.splice(0).forEach(removeDir);
});

function copyOfFixture(): string {
  const dir = tempDir();
  dirs.push(dir);
  const path = join(dir, "lifeboat.db");
  copyFileSync(FIXTURE, path);
  return path;
}

describe("a journal written by lifeboat 0.1.0", () => {
  it("opens under today's schema: kinds, typed block and fence, host holds as records, the open evacuations as calls that may have been sent", async () => {
    const path = copyOfFixture();
    const before = new Database(path, { readonly: true });
    const version = Number(before.pragma("user_version", { simple: true }));
    const counts = (db: Database.Database): Record<string, number> =>
      Object.fromEntries(["events", "recoveries", "transitions", "decisions", "steps", "instances", "notifications"].map((t) => [t, Number((db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n)]));
    const countsBefore = counts(before);
    before.close();
    expect(version).toBeLessThan(MIGRATIONS.length);

    const store = new SqliteStore(path);
    await store.init();
    try {
      const list = await store.listRecoveries({});
      expect(Object.fromEntries(list.map((r) => [r.host, [r.kind, r.state]]))).toEqual({
        "compute-1": ["alert", "completed"],
        "compute-2": ["alert", "blocked"],
        "compute-3": ["alert", "evacuating"],
        "compute-4": ["alert", "pending"],
      });
      const c1 = (await store.getRecovery(R.c1))!;
      expect(c1.fence).toMatchObject({ ok: true, device: "bmc-compute-1" });
      const c2 = (await store.getRecovery(R.c2))!;
      expect(c2.block).toMatchObject({ gates: ["approval"], recheck: false, approvable: true });
      expect(c2.block?.episode).toEqual(expect.any(String));

      expect(await store.getHostState("compute-3")).toMatchObject({ host: "compute-3", fenced: true, recoveryId: R.c3, by: "bmc-compute-3", version: 1 });
      expect(await store.getHostState("compute-1")).toMatchObject({ fenced: false, version: 1 });
      expect(await store.getSetting("host/compute-3")).toBeNull();
      expect(await store.getSetting("pause")).toMatchObject({ paused: false, reason: "resumed" });

      const open = (await store.instances(R.c3)).filter((i) => i.state === "evacuating");
      expect(open.map((i) => i.instanceId).sort()).toEqual([ID(303), ID(304)]);
      for (const i of open) expect(i.evacuateCall).toEqual({ attempt: 1, sentAt: i.startedAt, migrationsBefore: [] });
      expect((await store.instances(R.c1)).every((i) => i.evacuateCall === undefined)).toBe(true);
    } finally {
      await store.close();
    }
    const after = new Database(path, { readonly: true });
    expect(Number(after.pragma("user_version", { simple: true }))).toBe(MIGRATIONS.length);
    expect(counts(after)).toEqual(countsBefore);
    after.close();
  });

  it("resumes: the evacuation it left half done finishes with one evacuate per server left; the blocked recovery still waits for its approval, the pending one is judged by its gates", async () => {
    const path = copyOfFixture();
    // The site as 0.1.0 left it: compute-3 fenced, forced down and disabled by recovery c3;
    // two of its servers already on compute-1, two still on compute-3, locked by lifeboat.
    const base = defaultScenario({ hosts: 1, serversPerHost: 0 });
    const lock = `lifeboat: evacuating from compute-3 (recovery ${R.c3})`;
    const servers: ScenarioServer[] = [
      { id: ID(301), name: "c3-vm-1", host: "compute-1", project: "acme", flavor: "m1.small" },
      { id: ID(302), name: "c3-vm-2", host: "compute-1", project: "globex", flavor: "m1.small" },
      { id: ID(303), name: "c3-vm-3", host: "compute-3", project: "globex", flavor: "m1.small", locked: true, lockedReason: lock },
      { id: ID(304), name: "c3-vm-4", host: "compute-3", project: "acme", flavor: "m1.small", locked: true, lockedReason: lock },
    ];
    sandbox = await startSandbox({
      powerDelayMs: 100,
      cloud: {
        serviceDownTimeSeconds: 1,
        reportIntervalSeconds: 0.25,
        evacuationDurationMs: 300,
        scenario: {
          ...base,
          hosts: ["compute-1", "compute-2", "compute-3", "compute-4", "compute-5"].map((name, i) => ({
            name,
            zone: "nova",
            hostIp: `192.168.0.${i + 1}`,
            ...(name === "compute-3" ? { alive: false, forcedDown: true, disabled: true, disabledReason: `lifeboat: recovery ${R.c3} fenced 2026-12-04T22:37:29.600Z` } : {}),
          })),
          servers,
        },
      },
    });
    const config = parseConfigData(lifeboatConfigData({ store: { path } }, { site: sandbox, dir: tempDir() }));
    const { logger } = memoryLogger("info");
    const site = sandbox;
    app = new Lifeboat({ config, logger, drivers: (ctx) => buildDrivers(config, ctx) });
    await app.start({ listen: false });
    const store = app.store;

    const d: RecoveryDetail = await waitFor(
      async () => {
        const r = await recoveryDetail(store, R.c3);
        return r && ["completed", "partial", "failed"].includes(r.state) ? r : undefined;
      },
      60_000,
      "compute-3's recovery to end",
    );
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances.map((i) => [i.instanceId, i.state]).sort()).toEqual([ID(301), ID(302), ID(303), ID(304)].map((id) => [id, "evacuated"]));
    const cloud = site.cloud;
    cloud.settle();
    const posts = evacuatePostsPerServer(cloud.requests);
    expect(Object.fromEntries(posts)).toEqual({ [ID(303)]: 1, [ID(304)]: 1 });
    for (const id of [ID(303), ID(304)]) {
      const s = cloud.state.servers.get(id)!;
      expect({ host: s.host === "compute-3" ? "compute-3" : "elsewhere", locked: s.locked, broken: s.broken }).toEqual({ host: "elsewhere", locked: false, broken: false });
    }
    // compute-2 still waits for an approval. compute-4's one-hour grace period ended long after
    // the fixture was written: its gates ran, and its host is alive on this site, so it is
    // blocked (never fenced).
    expect((await store.getRecovery(R.c2))?.state).toBe("blocked");
    const c4 = await waitFor(async () => {
      const r = await store.getRecovery(R.c4);
      return r && r.state !== "pending" && r.state !== "validating" ? r : undefined;
    }, 30_000, "compute-4's gates to run");
    expect(c4.state, c4.reason).toBe("blocked");
    expect(c4.reason).toMatch(/nova-service/);
    for (const h of ["compute-2", "compute-3", "compute-4"]) expect(site.redfish.system(h).resets).toEqual([]);
  }, 90_000);
});
