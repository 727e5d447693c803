import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logging.js";
import { NovaClient, NovaVersionError, NOVA_MICROVERSIONS } from "../../src/openstack/nova.js";
import type { OpenStackApiError } from "../../src/openstack/types.js";
import type { KeystoneSession } from "../../src/openstack/keystone.js";
import { startSandboxCloud, type SandboxCloud, type SandboxCloudOptions } from "../../packages/sandbox/src/cloud.js";
import { sessionFor } from "./support/session.js";

const logger = createLogger({ level: "silent" });
const clouds: SandboxCloud[] = [];
const sessions: KeystoneSession[] = [];
async function clientOn(opts: SandboxCloudOptions = {}): Promise<{ cloud: SandboxCloud; nova: NovaClient }> {
  const cloud = await startSandboxCloud(opts);
  clouds.push(cloud);
  const session = sessionFor(cloud);
  sessions.push(session);
  return { cloud, nova: new NovaClient(session, { logger }) };
}
afterEach(async () => {
  sessions.splice(0).forEach((s) => s.close());
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

describe("microversion negotiation", () => {
  it.each([
    ["2.93", "2.73"],
    ["2.100", "2.73"],
    ["2.72", "2.59"],
    ["2.60", "2.59"],
    ["2.53", "2.53"],
  ])("a cloud up to %s gets %s", async (max, chosen) => {
    const { cloud, nova } = await clientOn({ maxMicroversion: max });
    const info = await nova.negotiate();
    expect(info).toEqual({ microversion: chosen, min: "2.1", max });
    expect(nova.describe()).toBe(`Nova microversion ${chosen} (cloud supports 2.1–${max})`);
    await nova.listServices({ binary: "nova-compute" });
    expect(cloud.requests.at(-1)!.microversion).toBe(`compute ${chosen}`);
    // Discovery reads the v2.1 document once.
    await nova.negotiate();
    expect(cloud.requests.filter((r) => r.path === "/v2.1/")).toHaveLength(1);
  });

  it("never picks latest nor 2.95+, and every candidate is at least 2.53", () => {
    expect(NOVA_MICROVERSIONS.every((v) => Number(v.split(".")[1]) >= 53 && Number(v.split(".")[1]) < 95)).toBe(true);
    expect(() => new NovaClient({ request: () => Promise.reject(new Error("unused")) }, { logger, microversions: ["2.52"] })).toThrow(NovaVersionError);
  });

  it("refuses a cloud below 2.53 with a clear message", async () => {
    const { nova } = await clientOn({ maxMicroversion: "2.52" });
    await expect(nova.negotiate()).rejects.toThrow(/supports microversions 2\.1–2\.52; lifeboat needs at least 2\.53 .*refuses to run below it/);
    await expect(nova.listServices()).rejects.toBeInstanceOf(NovaVersionError);
  });
});

describe("calls", () => {
  it("a GET that meets a 500 is not retried by the client (its caller's policy is), a reset one is; an evacuate is never", async () => {
    const { cloud, nova } = await clientOn();
    await nova.negotiate();
    cloud.faults.fail(500, { times: 1, match: { path: "/v2.1/os-services" } });
    expect(((await nova.listServices({ binary: "nova-compute" }).catch((e: unknown) => e)) as OpenStackApiError).status).toBe(500);
    cloud.faults.reset({ times: 1, match: { path: "/v2.1/os-services" } });
    expect((await nova.listServices({ binary: "nova-compute" })).length).toBe(4);
    expect(cloud.requests.filter((r) => r.path === "/v2.1/os-services").map((r) => r.status ?? r.fault)).toEqual([500, "reset", 200]);

    const vm = [...cloud.state.servers.values()][0]!;
    cloud.faults.fail(500, { times: 1, match: { method: "POST" } });
    const err = await nova.evacuate(vm.id).catch((e: unknown) => e);
    expect((err as OpenStackApiError).status).toBe(500);
    expect(cloud.requests.filter((r) => r.method === "POST" && r.service === "compute")).toHaveLength(1);
  });

  it("follows servers_links to the last page and sorts migrations newest first at any microversion", async () => {
    const { cloud, nova } = await clientOn({ maxMicroversion: "2.58", maxLimit: 3, evacuationDurationMs: 20, generate: { serversPerHost: 7 } });
    await nova.negotiate();
    expect(nova.microversion).toBe("2.53");
    const all = await nova.listServers({ all_tenants: 1, host: "compute-1" });
    expect(all).toHaveLength(7);
    expect(new Set(all.map((s) => s.id)).size).toBe(7);
    expect(cloud.requests.filter((r) => r.path === "/v2.1/servers/detail").length).toBe(3);

    const vm = cloud.state.serverByName(all[0]!.name)!;
    vm.evacuation.failTimes = 1;
    cloud.killHost("compute-1");
    await nova.updateService(cloud.state.hosts.get("compute-1")!.serviceUuid, { forced_down: true });
    await nova.evacuate(vm.id);
    await new Promise((r) => setTimeout(r, 60));
    await nova.evacuate(vm.id);
    const migs = await nova.listMigrations({ instance_uuid: vm.id, migration_type: "evacuation" });
    expect(migs).toHaveLength(2);
    expect(migs[0]!.id).toBeGreaterThan(migs[1]!.id);
    expect(migs[1]!.status).toBe("error");
  });
});
