import { afterEach, describe, expect, it } from "vitest";
import { Lifeboat } from "../../src/app/lifecycle.js";
import type { Config } from "../../src/config/schema.js";
import type { ComputeServiceInfo } from "../../src/domain/ports/cloud.js";
import type { HostEvent, RecoveryState } from "../../src/domain/model.js";
import { UNCONFIRMED_EVENTS_SETTING } from "../../src/engine/unconfirmed-events.js";
import { metricValue } from "../kit/site.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { memoryLogger, makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";
import { RecordingNotifier, World, WorldCloud, WorldFencing } from "../kit/world.js";

/**
 * Alerts for hosts lifeboat cannot act on (no fencing device, unknown to Nova): journaled as
 * ignored with the reason, never a recovery; operators get one aggregated notice.
 */

let running: { app: Lifeboat }[] = [];
afterEach(async () => {
  await Promise.all(running.map((t) => t.app.stop().catch(() => undefined)));
  running = [];
});

async function start<T extends { app: Lifeboat }>(t: T): Promise<T> {
  running.push(t);
  await t.app.start({ listen: "127.0.0.1:0" });
  return t;
}

/** One Alertmanager delivery carrying a firing ComputeNodeDown alert per host. */
function delivery(hosts: string[], startsAt = "2026-11-25T12:10:55.045Z"): Record<string, unknown> {
  const one = alertPayload({ host: hosts[0]!, startsAt });
  one.alerts = hosts.map((host) => (alertPayload({ host, startsAt }).alerts as unknown[])[0]);
  return one;
}

async function metrics(t: { app: Lifeboat }): Promise<string> {
  return (await fetch(`${t.app.url}/metrics`)).text();
}

async function eventsOf(t: { app: Lifeboat }, host: string): Promise<HostEvent[]> {
  return t.app.store.listEvents({ host, limit: 10 });
}

async function untilState(t: { app: Lifeboat }, host: string, states: RecoveryState[], timeoutMs = 15_000): Promise<void> {
  const r = await waitFor(async () => (await t.app.store.listRecoveries({ host, limit: 1 }))[0], timeoutMs, `a recovery of ${host}`);
  await waitFor(async () => states.includes((await t.app.store.getRecovery(r.id))!.state), timeoutMs, `${host} ${states.join("|")}`);
}

const ghosts = (n: number, prefix = "ghost"): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}`);

/** A cloud whose Nova has no nova-compute service on some of the world's hosts (they keep their fencing device). */
class CloudWithout extends WorldCloud {
  constructor(
    world: World,
    private readonly hidden: string[],
  ) {
    super(world);
  }
  override async getComputeService(host: string, signal?: AbortSignal): Promise<ComputeServiceInfo | null> {
    return this.hidden.includes(host) ? null : super.getComputeService(host, signal);
  }
  override async listComputeServices(): Promise<ComputeServiceInfo[]> {
    return (await super.listComputeServices()).filter((s) => !this.hidden.includes(s.host));
  }
}

describe("alerts for hosts lifeboat cannot act on", () => {
  it("a delivery of 2,000 such alerts and one real failure: no recovery for them, each ignored with its reason, one notice, counted; the real host recovers", async () => {
    const t = await start(makeLifeboat(lifeboatConfig({ alerts: { unknown_hosts: { max_listed: 20 } } })));
    t.world.kill("compute-1");
    const names = ghosts(2000);
    const hosts = [...names.slice(0, 1000), "compute-1", ...names.slice(1000)];
    const res = await postAlert(t.app.url, delivery(hosts));
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 2001, duplicates: 0 });
    await t.app.coordinator.drain();

    await untilState(t, "compute-1", ["completed"]);
    expect((await t.app.store.listRecoveries({ limit: 100 })).map((r) => r.host)).toEqual(["compute-1"]);
    for (const host of [names[0]!, names[1999]!]) {
      const [e] = await eventsOf(t, host);
      expect(e).toMatchObject({ disposition: "ignored", recoveryId: null });
      expect(e!.note).toBe(`host "${host}" has no fencing device (fencing.hosts) and Nova has no nova-compute service by that name: lifeboat cannot act on it`);
    }

    await waitFor(() => t.notifier.unknownHostNotices.length === 1, 5000, "the notice");
    const [notice] = t.notifier.unknownHostNotices;
    expect(notice).toMatchObject({ hostCount: 2000, alertCount: 2000 });
    expect(notice!.hosts).toHaveLength(20);
    expect(notice!.hosts.every((h) => h.likely === null && names.includes(h.host))).toBe(true);
    expect(metricValue(await metrics(t), "lifeboat_alerts_ignored_total", { reason: "unknown_host" })).toBe(2000);
    expect(metricValue(await metrics(t), "lifeboat_recoveries_started_total", { trigger: "alert" })).toBe(1);

    // More of them within the notice interval (15 minutes by default): counted, not mailed yet.
    await postAlert(t.app.url, delivery(ghosts(50, "phantom")));
    await t.app.coordinator.drain();
    await new Promise((r) => setTimeout(r, 2500)); // a periodic pass of the coordinator
    expect(t.notifier.unknownHostNotices).toHaveLength(1);
    expect(metricValue(await metrics(t), "lifeboat_alerts_ignored_total", { reason: "unknown_host" })).toBe(2050);
  }, 60_000);

  it("the next notice, an interval later, names only the hosts seen since the last one", async () => {
    const t = await start(makeLifeboat(lifeboatConfig({ alerts: { unknown_hosts: { notify_interval_seconds: 1 } } })));
    await postAlert(t.app.url, delivery(["ghost-a", "ghost-b"]));
    await waitFor(() => t.notifier.unknownHostNotices.length === 1, 5000, "the first notice");
    await postAlert(t.app.url, delivery(["ghost-c", "ghost-c", "ghost-d"], "2026-11-25T12:20:00Z"));
    await waitFor(() => t.notifier.unknownHostNotices.length === 2, 10_000, "the second notice");
    const [first, second] = t.notifier.unknownHostNotices;
    expect(first!.hosts.map((h) => h.host)).toEqual(["ghost-a", "ghost-b"]);
    expect(second!.hosts.map((h) => h.host)).toEqual(["ghost-c", "ghost-d"]);
    expect(second!.alertCount).toBe(2); // the two ghost-c alerts of one delivery are one alert state
    expect(Date.parse(second!.at) - Date.parse(first!.at)).toBeGreaterThanOrEqual(1000);
  }, 30_000);

  it("names that differ from a known host only in case, a trailing dot or a domain are ignored, naming the likely host and the keys to fix", async () => {
    const t = await start(makeLifeboat(lifeboatConfig()));
    t.world.kill("compute-2");
    const variants = ["COMPUTE-2", "compute-2.", "compute-2.example.com"];
    await postAlert(t.app.url, delivery(variants));
    await t.app.coordinator.drain();
    expect(await t.app.store.listRecoveries({})).toEqual([]);
    for (const v of variants) {
      const [e] = await eventsOf(t, v);
      expect(e!.disposition).toBe("ignored");
      expect(e!.note).toBe(
        `host "${v}" is not one lifeboat knows, but "compute-2" is (the names differ only in case, a trailing dot or a domain): make the alerts name hosts as Nova and fencing.hosts do (alerts.host_label, alerts.host_pattern)`,
      );
    }
    expect(metricValue(await metrics(t), "lifeboat_alerts_ignored_total", { reason: "host_name_mismatch" })).toBe(3);
    await waitFor(() => t.notifier.unknownHostNotices.length === 1, 5000, "the notice");
    expect(t.notifier.unknownHostNotices[0]!.hosts).toEqual(variants.map((host) => ({ host, likely: "compute-2" })));
  });

  it("a host with a fencing device that Nova does not know is recovered as before: the gates decide", async () => {
    const world = World.standard();
    world.addHost("compute-9");
    const { logger } = memoryLogger();
    const notifier = new RecordingNotifier(world);
    const config: Config = lifeboatConfig();
    const app = new Lifeboat({ config, logger, drivers: { fencing: new WorldFencing(world), evacuation: new CloudWithout(world, ["compute-9"]), notifier } });
    const t = await start({ app });
    await postAlert(app.url, alertPayload({ host: "compute-9" }));
    await untilState(t, "compute-9", ["blocked"]);
    const [r] = await app.store.listRecoveries({ host: "compute-9" });
    expect(r!.reason).toMatch(/nova-service: Nova has no nova-compute service on host "compute-9"/);
    expect((await eventsOf(t, "compute-9"))[0]!.disposition).toBe("started");
  });

  it("while Nova cannot be asked, a host with a fencing device is acted on; one without is held as ignored and routed again once Nova answers", async () => {
    // compute-3 runs nova-compute but has no fencing device.
    const t: TestLifeboat = await start(makeLifeboat(lifeboatConfig(), World.standard(), { unfenceable: ["compute-3"] }));
    t.cloud.apiDown = true;
    await postAlert(t.app.url, delivery(["compute-2", "compute-3"]));
    await t.app.coordinator.drain();
    await untilState(t, "compute-2", ["blocked"]);
    const [held] = await eventsOf(t, "compute-3");
    expect(held!.disposition).toBe("ignored");
    expect(held!.note).toMatch(/^host "compute-3" has no fencing device \(fencing\.hosts\) and Nova could not be asked whether it runs nova-compute \(.*ECONNREFUSED.*\): routed again once Nova answers$/);
    expect(await t.app.store.listRecoveries({ host: "compute-3" })).toEqual([]);
    expect(await t.app.store.getSetting(UNCONFIRMED_EVENTS_SETTING)).toEqual([held!.id]);
    expect(metricValue(await metrics(t), "lifeboat_alerts_ignored_total", { reason: "host_unconfirmed" })).toBe(1);
    expect(t.notifier.unknownHostNotices).toEqual([]);

    t.cloud.apiDown = false;
    await untilState(t, "compute-3", ["pending", "validating", "blocked", "fencing", "failed"]);
    await waitFor(async () => (await eventsOf(t, "compute-3"))[0]?.disposition === "started", 5000, "the event routed again");
    expect((await eventsOf(t, "compute-3")).map((e) => e.id)).toEqual([held!.id]);
    expect(await t.app.store.getSetting(UNCONFIRMED_EVENTS_SETTING)).toEqual([]);
  }, 30_000);

  it("still routes them again after a restart while Nova was down", async () => {
    const world = World.standard();
    const config = lifeboatConfig();
    const first = makeLifeboat(config, world, { unfenceable: ["compute-3"] });
    await start(first);
    first.cloud.apiDown = true;
    await postAlert(first.app.url, alertPayload({ host: "compute-3" }));
    await first.app.coordinator.drain();
    expect((await first.app.store.getSetting<number[]>(UNCONFIRMED_EVENTS_SETTING))?.length).toBe(1);
    await first.app.stop();
    running = [];

    const second = await start(makeLifeboat(config, world, { unfenceable: ["compute-3"] }));
    await untilState(second, "compute-3", ["pending", "validating", "blocked", "fencing", "failed"]);
  }, 30_000);
});
