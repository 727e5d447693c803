import { afterEach, describe, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { rackScenario, racksOf } from "../../packages/sandbox/src/rack-scenario.js";
import { adminToken, nova } from "./support/cloud.js";

/**
 * The rack scenario: a site of hosts in racks and zones, a whole rack failing at once through
 * the control API, and what Nova saw of the evacuations (in flight, evacuate calls per server).
 */

let site: Sandbox | undefined;
afterEach(async () => {
  await site?.close();
  site = undefined;
});

async function control(s: Sandbox, method: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.controlUrl!}${path}`, { method });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface Evacuations {
  in_flight: number;
  max_in_flight: number;
  max_at: string | null;
  posts: number;
  accepted: number;
  servers: { id: string; name: string; posts: number; accepted: number }[];
}

describe("rack scenario", () => {
  it("lays hosts out in racks and racks in zones, in order, and loads the named rack", () => {
    const sc = rackScenario({ hosts: 12, zones: 2, racks: 4, serversPerHost: 1, loadedRack: "rack-02", rackServersPerHost: 3 });
    expect(sc.hosts.map((h) => `${h.name}/${h.rack}/${h.zone}`)).toEqual([
      "compute-001/rack-01/az-1",
      "compute-002/rack-01/az-1",
      "compute-003/rack-01/az-1",
      "compute-004/rack-02/az-1",
      "compute-005/rack-02/az-1",
      "compute-006/rack-02/az-1",
      "compute-007/rack-03/az-2",
      "compute-008/rack-03/az-2",
      "compute-009/rack-03/az-2",
      "compute-010/rack-04/az-2",
      "compute-011/rack-04/az-2",
      "compute-012/rack-04/az-2",
    ]);
    const perHost = (h: string): number => sc.servers.filter((s) => s.host === h).length;
    expect(["compute-004", "compute-005", "compute-006"].map(perHost)).toEqual([3, 3, 3]);
    expect(sc.hosts.filter((h) => h.rack !== "rack-02").map((h) => perHost(h.name))).toEqual(Array(9).fill(1));
    expect(racksOf(sc).get("rack-03")).toEqual(["compute-007", "compute-008", "compute-009"]);
    expect(() => rackScenario({ hosts: 12, racks: 4, loadedRack: "rack-09" })).toThrow(/no rack rack-09/);
    expect(() => rackScenario({ hosts: 4, zones: 2, racks: 1 })).toThrow(/racks must be a whole number between zones \(2\) and hosts \(4\)/);
  });

  it("POST /racks/<rack>/fail powers off exactly the rack's hosts and stops exactly their heartbeats", async () => {
    const s = (site = await startSandbox({
      controlPort: 0,
      powerDelayMs: 0,
      cloud: { scenario: rackScenario({ hosts: 12, zones: 2, racks: 4, serversPerHost: 1 }), serviceDownTimeSeconds: 6, reportIntervalSeconds: 1 },
    }));
    expect((await control(s, "GET", "/racks")).body.racks).toMatchObject({ "rack-02": ["compute-004", "compute-005", "compute-006"] });
    expect(await control(s, "POST", "/racks/rack-09/fail")).toEqual({ status: 404, body: { error: "no rack rack-09" } });
    expect((await control(s, "POST", "/racks/rack-02/explode")).status).toBe(404);

    const failed = await control(s, "POST", "/racks/rack-02/fail");
    expect(failed).toEqual({ status: 200, body: { rack: "rack-02", action: "fail", hosts: ["compute-004", "compute-005", "compute-006"] } });
    const rack = new Set(["compute-004", "compute-005", "compute-006"]);
    for (const h of s.hosts) expect([h, s.redfish.system(h).powerState]).toEqual([h, rack.has(h) ? "Off" : "On"]);

    // Time passes beyond service_down_time: Nova sees the rack's hosts down and only those.
    s.cloud.clock.advance(10_000);
    const token = await adminToken(s.cloud);
    const listed = (await nova(s.cloud, token, "/os-services?binary=nova-compute")).body as { services: { host: string; state: string; zone: string }[] };
    expect(listed.services.filter((x) => x.state === "down").map((x) => x.host)).toEqual([...rack]);
    expect(listed.services.find((x) => x.host === "compute-004")?.zone).toBe("az-1");
    const view = (await control(s, "GET", "/state")).body as { hosts: { host: string; rack: string; zone: string; power: string; service: string }[] };
    expect(view.hosts.filter((h) => h.service === "down").map((h) => `${h.host} ${h.rack} ${h.zone} ${h.power}`)).toEqual([
      "compute-004 rack-02 az-1 Off",
      "compute-005 rack-02 az-1 Off",
      "compute-006 rack-02 az-1 Off",
    ]);
  });

  it("counts the evacuations in flight now and at most since a reset, and the evacuate calls per server", async () => {
    const s = (site = await startSandbox({
      controlPort: 0,
      powerDelayMs: 0,
      cloud: {
        scenario: rackScenario({ hosts: 12, zones: 2, racks: 4, serversPerHost: 1, loadedRack: "rack-02", rackServersPerHost: 3 }),
        serviceDownTimeSeconds: 6,
        reportIntervalSeconds: 1,
        evacuationDurationMs: 10_000,
      },
    }));
    s.failRack("rack-02");
    s.cloud.clock.advance(10_000);
    const token = await adminToken(s.cloud);
    const vms = s.cloud.state.serversOn("compute-004").concat(s.cloud.state.serversOn("compute-005"));
    const [a, b, c, d, e, f] = vms;
    const evacuate = async (id: string): Promise<number> => (await nova(s.cloud, token, `/servers/${id}/action`, { method: "POST", body: { evacuate: {} } })).status;
    const read = async (): Promise<Evacuations> => (await control(s, "GET", "/evacuations")).body as unknown as Evacuations;

    expect(await read()).toMatchObject({ in_flight: 0, max_in_flight: 0, max_at: null, posts: 0, accepted: 0, servers: [] });
    for (const v of [a!, b!, c!]) expect(await evacuate(v.id)).toBe(200);
    expect(await read()).toMatchObject({ in_flight: 3, max_in_flight: 3 });
    s.cloud.clock.advance(6_000);
    for (const v of [d!, e!]) expect(await evacuate(v.id)).toBe(200);
    const five = await read();
    expect(five).toMatchObject({ in_flight: 5, max_in_flight: 5 });
    // a, b, c end (10 s after their acceptance); d and e run on.
    s.cloud.clock.advance(5_000);
    expect(await read()).toMatchObject({ in_flight: 2, max_in_flight: 5 });
    expect(await evacuate(f!.id)).toBe(200);
    // A refused evacuate (its host is up) is a call, not an evacuation.
    const upServer = s.cloud.state.serversOn("compute-001")[0]!;
    expect(await evacuate(upServer.id)).toBe(400);
    const before = await read();
    expect(before).toMatchObject({ in_flight: 3, max_in_flight: 5, max_at: five.max_at, posts: 7, accepted: 6 });
    expect(before.servers.find((x) => x.id === upServer.id)).toMatchObject({ posts: 1, accepted: 0 });
    expect(before.servers.filter((x) => x.id !== upServer.id).map((x) => [x.posts, x.accepted])).toEqual(Array(6).fill([1, 1]));

    // A new window: the maximum starts from what is in flight, the counts from nothing.
    const reset = (await control(s, "POST", "/evacuations/reset")).body as unknown as Evacuations;
    expect(reset).toMatchObject({ in_flight: 3, max_in_flight: 3, posts: 0, accepted: 0, servers: [] });
    // A second evacuate of a running one: Nova accepts it too (the server ends broken); both count.
    expect(await evacuate(d!.id)).toBe(200);
    const after = await read();
    expect(after).toMatchObject({ in_flight: 4, max_in_flight: 4, posts: 1, accepted: 1 });
    expect(after.servers).toEqual([{ id: d!.id, name: d!.name, posts: 1, accepted: 1 }]);
  });
});
