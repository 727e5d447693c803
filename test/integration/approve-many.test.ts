import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { Recovery } from "../../src/domain/model.js";
import { ADMIN_TOKEN, lifeboatConfig } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { World } from "../kit/world.js";

/**
 * A storm an operator acts on with one command: three hosts fail at once past the storm
 * guard's bound; `POST /api/v1/approve` with a selector (blocked by the storm guard, in one
 * zone) approves exactly the recoveries it matches, each recorded with its approver; the
 * CLI approves several ids at once and says which it could not.
 */
const HOSTS = ["compute-1", "compute-2", "compute-3", "compute-4", "compute-5"];
const STORM = { max_recoveries: 1, max_percent: 100, window_seconds: 600, cooldown_seconds: 3600 };
const CLI = resolve(import.meta.dirname, "../../dist/cli.js");
const run = promisify(execFile);

let t: TestLifeboat | undefined;
afterEach(async () => {
  await t?.app.stop().catch(() => undefined);
  t = undefined;
});

interface Report {
  approved: { id: string; host: string; state: string }[];
  skipped: { id: string; host?: string; reason: string }[];
}

async function recoveryOf(app: TestLifeboat, host: string): Promise<Recovery | undefined> {
  return (await app.app.store.listRecoveries({ host, limit: 1 }))[0];
}

function inState(app: TestLifeboat, host: string, state: Recovery["state"]): Promise<Recovery> {
  return waitFor(async () => {
    const r = await recoveryOf(app, host);
    return r?.state === state ? r : undefined;
  }, 20_000, `${host} ${state}`);
}

async function cli(url: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args, "--url", url, "--token", ADMIN_TOKEN], { timeout: 30_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

describe("approving a storm", () => {
  it("one request approves every recovery the storm guard holds in a zone; the CLI approves several ids and names what it could not", async () => {
    const world = World.standard(HOSTS, 2);
    world.hosts.get("compute-4")!.service.zone = "az-2";
    t = makeLifeboat(lifeboatConfig({ gates: { storm: STORM } }), world);
    const app = t;
    await app.app.start({ listen: "127.0.0.1:0" });
    const url = app.app.url;

    world.kill("compute-1");
    expect((await postAlert(url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    await inState(app, "compute-1", "completed");

    // Three hosts at once: the storm guard holds them all.
    for (const h of ["compute-2", "compute-3", "compute-4"]) world.kill(h);
    for (const h of ["compute-2", "compute-3", "compute-4"]) expect((await postAlert(url, alertPayload({ host: h }))).status).toBe(202);
    const held = new Map<string, Recovery>();
    for (const h of ["compute-2", "compute-3", "compute-4"]) {
      const r = await inState(app, h, "blocked");
      expect(r.block?.gates).toContain("storm");
      held.set(h, r);
    }

    // Refused without a selection, naming the field; nothing approved.
    const none = await api(url, "POST", "/api/v1/approve", {});
    expect(none.status).toBe(400);
    expect(JSON.stringify(none.body)).toMatch(/ids/);
    expect((await api(url, "POST", "/api/v1/approve", { ids: [] })).status).toBe(400);
    expect((await api(url, "POST", "/api/v1/approve", { blocked_by: "Storm Guard!" })).status).toBe(400);

    // Every storm-held recovery of zone "nova": compute-2 and compute-3, not compute-4 (az-2).
    const res = await api(url, "POST", "/api/v1/approve", { blocked_by: "storm", zone: "nova" });
    expect(res.status).toBe(200);
    const report = res.body as Report;
    expect(report.approved.map((a) => a.host).sort()).toEqual(["compute-2", "compute-3"]);
    expect(report.skipped).toEqual([]);
    for (const h of ["compute-2", "compute-3"]) {
      const done = await inState(app, h, "completed");
      expect(done).toMatchObject({ approved: true, approvedBy: "tester" });
    }
    const still = await recoveryOf(app, "compute-4");
    expect(still).toMatchObject({ state: "blocked", approved: false });
    expect(world.hosts.get("compute-4")!.power).toBe("on");

    // The CLI: several ids at once, one of them unknown and one already finished.
    const out = await cli(url, "approve", held.get("compute-4")!.id, "r-nope", held.get("compute-2")!.id);
    expect(out.code, out.out).toBe(1);
    expect(out.out).toContain(`✓ ${held.get("compute-4")!.id}  compute-4`);
    expect(out.out).toContain("✗ r-nope: no recovery r-nope");
    expect(out.out).toContain(`✗ ${held.get("compute-2")!.id}  compute-2: already ended (completed)`);
    await inState(app, "compute-4", "completed");
    expect(await recoveryOf(app, "compute-4")).toMatchObject({ approvedBy: expect.stringMatching(/\S/) as unknown });

    // Nothing left to approve: a selector that matches nothing says so, with exit code 1.
    const empty = await cli(url, "approve", "--blocked-by", "storm");
    expect(empty.code).toBe(1);
    expect(empty.out).toContain("0 recovery(ies) approved");
  }, 60_000);
});
