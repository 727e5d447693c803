import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { HostView } from "../../src/engine/host-view.js";
import { ADMIN_TOKEN } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { failAndAlert, finished, novaSeesDown, servicePuts, serversOn, siteScenario, TERMINAL } from "../kit/site.js";

const CLI = resolve(import.meta.dirname, "../../dist/cli.js");
const run = promisify(execFile);

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** `lifeboat release HOST` against the running instance; resolves with the exit code and output. */
async function cliRelease(url: string, host: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [CLI, "release", host, "--url", url, "--token", ADMIN_TOKEN], { timeout: 60_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

describe("release of a repaired host", () => {
  it("refused while its recovery is open; after it: power on, nova-compute back, done → completed, un-force, up, enable — in that order — and the hold is lifted", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3", "compute-4"], serversOn("compute-1", 3)), evacuationDurationMs: 1500 },
      config: { gates: { storm: { max_percent: 100 } } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    await failAndAlert(s, "compute-1");

    // While the recovery runs, release is refused and nothing is sent to Nova or the BMC.
    const open = await waitFor(async () => (await s.app.store.findOpenRecovery("compute-1")) ?? undefined, 10_000, "the open recovery");
    const refused = await api(s.app.url, "POST", "/api/v1/hosts/compute-1/release");
    expect(refused.status).toBe(409);
    expect((refused.body as { error: string }).error).toContain(`compute-1 has an open recovery ${open.id}`);

    const d = await finished(s, "compute-1");
    expect(d.state, d.reason).toBe("completed");
    expect(s.sandbox.redfish.system("compute-1").resets).toEqual(["ForceOff"]);
    const held = (await api(s.app.url, "GET", "/api/v1/hosts/compute-1")).body as HostView;
    expect(held.hold).toMatchObject({ fenced: true, recoveryId: d.id });
    expect(held.release).toBeNull();
    // Nova holds `done` evacuation records from compute-1 until its nova-compute restarts.
    cloud.settle();
    expect(cloud.state.migrations.filter((m) => m.sourceCompute === "compute-1").map((m) => m.status)).toEqual(["done", "done", "done"]);

    // Held: a new alert for it does not start a recovery.
    const again = await postAlert(s.app.url, alertPayload({ host: "compute-1", startsAt: "2026-11-25T13:00:00.000Z" }));
    expect(again.status).toBe(202);
    await s.app.coordinator.drain();
    expect(await s.app.store.listRecoveries({ host: "compute-1" })).toHaveLength(1);

    // The host is repaired; the operator releases it.
    let powerOnAt: number | undefined;
    const sys = s.sandbox.redfish.system("compute-1");
    const wired = sys.beforeReset;
    sys.beforeReset = (type) => {
      if (type === "On") powerOnAt ??= cloud.requests.length;
      wired?.(type);
    };
    const mark = cloud.requests.length;
    const cli = await cliRelease(s.app.url, "compute-1");
    expect(cli.code, cli.out).toBe(0);
    expect(cli.out).toContain("compute-1 is back in service");

    const view = (await api(s.app.url, "GET", "/api/v1/hosts/compute-1")).body as HostView;
    expect(view.release).toMatchObject({ state: "completed", done: true });
    expect(view.hold).toMatchObject({ fenced: false, recoveryId: view.release?.recoveryId });
    // A recovery of its own, with its stages in its timeline.
    const rel = (await api(s.app.url, "GET", `/api/v1/recoveries/${view.release!.recoveryId}`)).body as { kind: string; timeline: { to: string }[] };
    expect(rel.kind).toBe("release");
    expect(rel.timeline.map((t) => t.to)).toEqual(["pending", "powering-on", "awaiting-compute", "unforcing", "awaiting-up", "enabling", "completed"]);
    expect(view.release?.steps.map((st) => [st.step, st.ok])).toEqual([
      ["precheck", true],
      ["power-on", true],
      ["compute-started", true],
      ["migrations-completed", true],
      ["unforce", true],
      ["up", true],
      ["enable", true],
    ]);
    expect(view.hold?.fenced).toBe(false);
    expect(sys.resets).toEqual(["ForceOff", "On"]);

    // Request log: power-on, then the un-force (accepted: no `done` record left), a look that
    // finds it up, then the enable.
    const puts = servicePuts(cloud).filter((q) => q.seq > mark);
    expect(puts.map((q) => [q.body, q.status])).toEqual([
      [{ forced_down: false }, 200],
      [{ status: "enabled" }, 200],
    ]);
    expect(powerOnAt).toBeDefined();
    expect(puts[0]!.seq).toBeGreaterThan(powerOnAt!);
    const migrationLook = cloud.requests.filter((q) => q.seq > mark && q.method === "GET" && q.path === "/v2.1/os-migrations" && q.query.source_compute === "compute-1");
    expect(migrationLook.length).toBeGreaterThan(0);
    expect(migrationLook.every((q) => q.seq < puts[0]!.seq)).toBe(true);
    expect(cloud.requests.some((q) => q.seq > puts[0]!.seq && q.seq < puts[1]!.seq && q.method === "GET" && q.path === "/v2.1/os-services")).toBe(true);
    cloud.settle();
    expect(cloud.state.migrations.filter((m) => m.sourceCompute === "compute-1").every((m) => m.status === "completed")).toBe(true);
    expect(cloud.state.mustHost("compute-1")).toMatchObject({ forcedDown: false, disabled: false, disabledReason: null });
    expect(cloud.state.serviceIsUp(cloud.state.mustHost("compute-1"))).toBe(true);

    // A later failure of the released host starts a new recovery, which fences it again.
    await failAndAlertAgain(s, "compute-1", "2026-11-25T14:00:00.000Z");
    const second = await waitFor(async () => {
      const list = (await s.app.store.listRecoveries({ host: "compute-1" })).filter((r) => r.kind !== "release");
      return list.length === 2 && TERMINAL.includes(list[0]!.state) ? list[0] : undefined;
    }, 30_000, "a second recovery of compute-1 to end");
    expect(second.id).not.toBe(d.id);
    expect(second.state, second.reason).toBe("completed");
    expect(sys.resets).toEqual(["ForceOff", "On", "ForceOff"]);
  }, 90_000);

  it("Nova refuses the un-force for good (a 400): sent once, not retried; the release fails naming Nova's answer, the host stays held and forced down", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn("compute-1", 1)), evacuationDurationMs: 200 },
      config: { gates: { storm: { max_percent: 100 } } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    await failAndAlert(s, "compute-1");
    expect((await finished(s, "compute-1")).state).toBe("completed");

    const refusal = cloud.faults.fail(400, { match: { method: "PUT", path: "/v2.1/os-services/", action: "forced_down" } });
    const mark = cloud.requests.length;
    const cli = await cliRelease(s.app.url, "compute-1");
    expect(cli.code, cli.out).toBe(1);
    const view = (await api(s.app.url, "GET", "/api/v1/hosts/compute-1")).body as HostView;
    expect(view.release).toMatchObject({ state: "failed" });
    const rel = (await api(s.app.url, "GET", `/api/v1/recoveries/${view.release!.recoveryId}`)).body as { reason: string };
    expect(rel.reason).toContain("Nova refused to un-force compute-1 (400)");
    // A refusal is not retried (recovery.step_retries is for what may pass).
    expect(refusal.hits()).toBe(1);
    expect(servicePuts(cloud).filter((q) => q.seq > mark)).toHaveLength(1);
    expect(view.hold).toMatchObject({ fenced: true });
    expect(cloud.state.mustHost("compute-1")).toMatchObject({ forcedDown: true });
  }, 90_000);
});

async function failAndAlertAgain(s: Stack, host: string, startsAt: string): Promise<void> {
  s.sandbox.failHost(host);
  await novaSeesDown(s.sandbox.cloud, host);
  expect((await postAlert(s.app.url, alertPayload({ host, startsAt }))).status).toBe(202);
}
