import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../../src/config/schema.js";
import type { GateDecision, Recovery, RecoveryDetail } from "../../src/domain/model.js";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import type { ServedLifeboat } from "../kit/served.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat, serveOnSite, useCleanup } from "../kit/lifeboat.js";
import { lifeboatConfig, fastSite } from "../kit/config.js";
import { World } from "../kit/world.js";
import { novaSeesDown, serversOn, siteScenario } from "../kit/site.js";

/**
 * The storm guard end to end on the in-memory world: hosts fail seconds apart or at once,
 * with `max_recoveries: 1`. lifeboat and its journal read a clock the test moves forward,
 * so "30 s later" or "after the cooldown" take no real time; everything else (re-checks,
 * runners, the HTTP API) runs for real.
 */

const HOSTS = ["compute-1", "compute-2", "compute-3", "compute-4", "compute-5"];
const STORM = { max_recoveries: 1, max_percent: 100, window_seconds: 60, cooldown_seconds: 600 };


let running: TestLifeboat[] = [];
let sandbox: Sandbox | undefined;
const cleanup = useCleanup();
afterEach(async () => {
  await Promise.all(running.map((x) => x.app.stop().catch(() => undefined)));
  running = [];
});

/** Real time plus what the test moved it forward by. */
function movableClock(): { now(): number; advance(ms: number): void } {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms) => void (offset += ms) };
}

async function boot(config: Config, world: World, clock: { now(): number }): Promise<TestLifeboat> {
  // One clock for the whole site: Nova's heartbeats age as the test moves time forward.
  world.now = () => clock.now();
  const t = makeLifeboat(config, world, { clock });
  running.push(t);
  await t.app.start({ listen: "127.0.0.1:0" });
  return t;
}

async function stop(t: TestLifeboat): Promise<void> {
  await t.app.stop();
  running = running.filter((x) => x !== t);
}

async function alert(t: TestLifeboat, clock: { now(): number }, ...hosts: string[]): Promise<void> {
  const startsAt = new Date(clock.now()).toISOString();
  const one = alertPayload({ host: hosts[0]!, startsAt });
  const payload = { ...one, alerts: hosts.flatMap((h) => alertPayload({ host: h, startsAt }).alerts as unknown[]) };
  expect((await postAlert(t.app.url, payload)).status).toBe(202);
}

async function recoveryOf(t: TestLifeboat, host: string): Promise<Recovery | undefined> {
  return (await t.app.store.listRecoveries({ host, limit: 1 }))[0];
}

async function detailOf(t: TestLifeboat, host: string): Promise<RecoveryDetail> {
  const r = await recoveryOf(t, host);
  return (await api(t.app.url, "GET", `/api/v1/recoveries/${r?.id ?? "none"}`)).body as RecoveryDetail;
}

function inState(t: TestLifeboat, host: string, state: Recovery["state"], what = `${host} ${state}`): Promise<Recovery> {
  return waitFor(async () => {
    const r = await recoveryOf(t, host);
    return r?.state === state ? r : undefined;
  }, 15_000, what);
}

/** Each gate's latest decision. */
function current(decisions: GateDecision[]): Record<string, GateDecision["result"]> {
  return Object.fromEntries(decisions.map((d) => [d.gate, d.result]));
}

async function gauge(t: TestLifeboat): Promise<string | undefined> {
  const text = await (await fetch(`${t.app.url}/metrics`)).text();
  return /^lifeboat_storm_guard_tripped (\S+)$/m.exec(text)?.[1];
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("storm guard: failures 0, 8 and 30 s apart", () => {
  it("trips on the second host although Nova still hears it, holds the others past the window, releases one on approval and the last after the cooldown", async () => {
    const world = World.standard(HOSTS, 2);
    const clock = movableClock();
    const t = await boot(lifeboatConfig({ gates: { storm: STORM } }), world, clock);

    // t0: compute-1 dies, the only failure: it is recovered.
    world.kill("compute-1");
    await alert(t, clock, "compute-1");
    await inState(t, "compute-1", "completed");

    // t0+8s: compute-2 dies; Nova still hears a heartbeat 8 s old. The storm guard counts it all the same.
    clock.advance(8_000);
    world.kill("compute-2", 0);
    await alert(t, clock, "compute-2");
    const first = await inState(t, "compute-2", "blocked");
    expect(first.reason).toMatch(/^nova-service: Nova still hears nova-compute on compute-2: .*; storm: storm guard: 2 recoveries in 60s > max_recoveries 1/);
    expect(current((await detailOf(t, "compute-2")).decisions)).toMatchObject({ "nova-service": "block", storm: "block" });
    await waitFor(() => t.notifier.storms.length > 0, 5_000, "the storm mail");
    expect(t.notifier.storms).toEqual([expect.objectContaining({ hosts: ["compute-2"] })]);
    expect(await gauge(t)).toBe("1");
    await waitFor(() => t.notifier.blocked.some((b) => b.detail.host === "compute-2"), 5_000, "compute-2's blocked mail");
    expect(t.notifier.blocked.filter((b) => b.detail.host === "compute-2").map((b) => b.detail.block)).toEqual([expect.objectContaining({ approvable: false })]);

    // Its heartbeat goes stale: only the storm guard holds it now, and its reason, decisions and mail say so.
    world.kill("compute-2", 120);
    const now = await waitFor(async () => {
      const r = await recoveryOf(t, "compute-2");
      return r?.state === "blocked" && r.reason.startsWith("storm: ") ? r : undefined;
    }, 10_000, "compute-2 shown as blocked by the storm guard");
    expect(now.reason).toMatch(/^storm: storm guard: 2 recoveries in 60s > max_recoveries 1/);
    const d2 = await detailOf(t, "compute-2");
    expect(current(d2.decisions)).toMatchObject({ "nova-service": "pass", storm: "block" });
    expect(d2.timeline.map((x) => `${x.from ?? ""}>${x.to}`)).toContain("blocked>blocked");
    const mails = await waitFor(() => {
      const m = t.notifier.blocked.filter((b) => b.detail.host === "compute-2");
      return m.length === 2 ? m : undefined;
    }, 5_000, "a second blocked mail: an approval now helps");
    expect(mails[1]!.reason).toMatch(/^storm: /);
    expect(mails[1]!.detail.block).toMatchObject({ approvable: true, gates: ["storm"], previous: ["nova-service", "storm"] });

    // t0+30s: compute-3 dies and joins the storm. Still one storm mail.
    clock.advance(22_000);
    world.kill("compute-3");
    await alert(t, clock, "compute-3");
    const r3 = await inState(t, "compute-3", "blocked");
    expect(r3.reason).toMatch(/^storm: storm guard/);

    // t0+80s: compute-1's failure left the 60 s window. The storm still holds both.
    clock.advance(50_000);
    await pause(600); // a dozen re-checks
    for (const h of ["compute-2", "compute-3"]) {
      expect((await recoveryOf(t, h))?.state).toBe("blocked");
      expect(world.host(h).power).toBe("on");
    }
    expect(world.calls.filter((c) => c.startsWith("off "))).toEqual(["off compute-1"]);
    const status = (await api(t.app.url, "GET", "/api/v1/status")).body as { storm: { tripped: boolean; held: string[]; hosts: string[] } };
    expect(status.storm).toMatchObject({ tripped: true, hosts: ["compute-2", "compute-3"] });
    expect([...status.storm.held].sort()).toEqual(["compute-2", "compute-3"]);

    // An approval releases one.
    expect((await api(t.app.url, "POST", `/api/v1/recoveries/${now.id}/approve`)).status).toBe(200);
    await inState(t, "compute-2", "completed");
    await pause(300);
    expect((await recoveryOf(t, "compute-3"))?.state).toBe("blocked");
    expect(world.calls.filter((c) => c.startsWith("off "))).toEqual(["off compute-1", "off compute-2"]);

    // A minute before the cooldown has passed since the last failure (compute-3's): still held.
    clock.advance(30_000 + 600_000 - 80_000 - 60_000);
    await pause(300);
    expect((await recoveryOf(t, "compute-3"))?.state).toBe("blocked");
    expect(await gauge(t)).toBe("1");
    // Once it has, the storm is over: compute-3 goes ahead by itself.
    clock.advance(61_000);
    await inState(t, "compute-3", "completed");
    expect(await gauge(t)).toBe("0");
    expect(t.notifier.storms).toHaveLength(1);
    expect(((await api(t.app.url, "GET", "/api/v1/status")).body as { storm: { tripped: boolean } }).storm.tripped).toBe(false);
  }, 60_000);
});

describe("storm guard: simultaneous failures", () => {
  it("three hosts at once: exactly one goes ahead, two are held and never fenced, one storm mail, still held after the window", async () => {
    for (let round = 0; round < 4; round++) {
      const world = World.standard(HOSTS, 2);
      const clock = movableClock();
      const t = await boot(lifeboatConfig({ gates: { storm: STORM } }), world, clock);
      // They die together; Nova notices compute-2 a little later than the others.
      world.kill("compute-1");
      world.kill("compute-2", 0);
      world.kill("compute-3");
      await alert(t, clock, "compute-1", "compute-2", "compute-3");
      await inState(t, "compute-2", "blocked", `round ${round}: compute-2 blocked first (Nova still hears it)`);
      clock.advance(40_000); // compute-2's heartbeat is stale from now on
      const settled = await waitFor(async () => {
        const rs = await t.app.store.listRecoveries({});
        const done = rs.filter((r) => r.state === "completed");
        const held = rs.filter((r) => r.state === "blocked" && /^storm: storm guard/.test(r.reason));
        return rs.length === 3 && done.length === 1 && held.length === 2 ? { done, held } : undefined;
      }, 15_000, `round ${round}: one recovered, two held by the storm guard`);
      expect(world.calls.filter((c) => c.startsWith("off "))).toEqual([`off ${settled.done[0]!.host}`]);
      await waitFor(() => t.notifier.storms.length > 0, 5_000, "the storm mail");
      expect(t.notifier.storms).toHaveLength(1);
      // It names the hosts held when the guard tripped (one that fails a moment later joins silently).
      expect(t.notifier.storms[0]!.hosts.length).toBeGreaterThan(0);
      expect(settled.held.map((r) => r.host)).toEqual(expect.arrayContaining(t.notifier.storms[0]!.hosts));

      // The recovered host's failure leaves the window: the two stay held.
      clock.advance(70_000);
      await pause(400);
      for (const r of settled.held) {
        expect((await t.app.store.getRecovery(r.id))?.state).toBe("blocked");
        expect(world.host(r.host).power).toBe("on");
      }
      expect(world.calls.filter((c) => c.startsWith("off "))).toHaveLength(1);
      expect(t.notifier.storms).toHaveLength(1);
      await stop(t);
    }
  }, 120_000);
});

describe("storm guard: across a restart", () => {
  it("the storm outlives lifeboat, and its mail goes out once even when lifeboat dies while sending it", async () => {
    const world = World.standard(HOSTS, 2);
    const clock = movableClock();
    const config = lifeboatConfig({ gates: { storm: STORM } });
    const t1 = await boot(config, world, clock);
    world.kill("compute-1");
    await alert(t1, clock, "compute-1");
    await inState(t1, "compute-1", "completed");

    // compute-2 trips the guard; lifeboat dies while the storm mail is being sent.
    const sending = world.holdAt("storm-mail");
    clock.advance(8_000);
    world.kill("compute-2");
    await alert(t1, clock, "compute-2");
    await sending;
    await stop(t1);
    expect(t1.notifier.storms).toHaveLength(0);

    const t2 = await boot(config, world, clock);
    expect(await gauge(t2)).toBe("1"); // from the journal, before any recovery was judged again
    await inState(t2, "compute-2", "blocked");
    await waitFor(() => t2.notifier.storms.length === 1, 5_000, "the storm mail, sent by the restarted lifeboat");
    await stop(t2);

    // Another restart, and another host fails into the storm: no second mail, nothing fenced.
    const t3 = await boot(config, world, clock);
    clock.advance(10_000);
    world.kill("compute-3");
    await alert(t3, clock, "compute-3");
    const r3 = await inState(t3, "compute-3", "blocked");
    expect(r3.reason).toMatch(/^storm: storm guard/);
    await pause(400);
    expect((await recoveryOf(t3, "compute-2"))?.state).toBe("blocked");
    expect(t3.notifier.storms).toHaveLength(0);
    expect(world.calls.filter((c) => c.startsWith("off "))).toEqual(["off compute-1"]);
    const status = (await api(t3.app.url, "GET", "/api/v1/status")).body as { storm: { tripped: boolean; hosts: string[] } };
    expect(status.storm).toMatchObject({ tripped: true, hosts: ["compute-2", "compute-3"] });
  }, 60_000);
});

describe("storm guard: a real serve process killed with SIGKILL", () => {
  it("after the kill the storm still holds its hosts, none is fenced, and no second storm mail goes out", async () => {
    sandbox = await startSandbox(fastSite({ cloud: { scenario: siteScenario(HOSTS, HOSTS.slice(0, 4).flatMap((h) => serversOn(h, 2, `vm-${h}`))) } }));
    cleanup.add(sandbox);
    const site = sandbox;
    const storeDir = cleanup.dir();
    const serve = async (): Promise<ServedLifeboat> => cleanup.add(await serveOnSite(site, storeDir, { gates: { storm: { ...STORM, window_seconds: 600 } } }));
    const recoveryState = async (url: string, host: string): Promise<Recovery | undefined> =>
      ((await api(url, "GET", `/api/v1/recoveries?host=${host}`)).body as { recoveries: Recovery[] }).recoveries[0];
    const fail = async (url: string, host: string): Promise<void> => {
      site.failHost(host);
      await novaSeesDown(site.cloud, host);
      expect((await postAlert(url, alertPayload({ host }))).status).toBe(202);
    };
    // Counted by Message-ID: a message the relay took just before the kill, not yet journaled as
    // sent, is delivered again by the restarted process (at least once), under the same Message-ID.
    const stormMails = (): number => new Set(site.smtp.messages.filter((m) => /storm guard tripped/.test(m.subject)).map((m) => m.headers["message-id"])).size;

    const one = await serve();
    await fail(one.url, "compute-1");
    await waitFor(async () => (await recoveryState(one.url, "compute-1"))?.state === "completed", 30_000, "compute-1 recovered");
    await fail(one.url, "compute-2");
    await fail(one.url, "compute-3");
    for (const h of ["compute-2", "compute-3"]) {
      const r = await waitFor(async () => {
        const x = await recoveryState(one.url, h);
        return x?.state === "blocked" ? x : undefined;
      }, 20_000, `${h} held`);
      expect(r.reason).toMatch(/storm: storm guard/);
    }
    await waitFor(() => stormMails() === 1, 10_000, "the storm mail");
    process.kill(one.pid, "SIGKILL");
    await one.stop();

    const two = await serve();
    expect(/^lifeboat_storm_guard_tripped 1$/m.test(await (await fetch(`${two.url}/metrics`)).text())).toBe(true);
    await pause(2_000); // about ten re-checks of each held recovery
    for (const h of ["compute-2", "compute-3"]) {
      expect((await recoveryState(two.url, h))?.state).toBe("blocked");
      expect(site.redfish.system(h).resets).toEqual([]);
    }
    const status = (await api(two.url, "GET", "/api/v1/status")).body as { storm: { tripped: boolean; held: string[] } };
    expect(status.storm.tripped).toBe(true);
    expect([...status.storm.held].sort()).toEqual(["compute-2", "compute-3"]);
    // A host failing now joins the storm: held, no second mail.
    await fail(two.url, "compute-4");
    await waitFor(async () => (await recoveryState(two.url, "compute-4"))?.state === "blocked", 20_000, "compute-4 held");
    await pause(1_000);
    expect(stormMails()).toBe(1);
    expect(site.redfish.system("compute-4").resets).toEqual([]);
  }, 120_000);
});
