import { afterEach, describe, expect, it } from "vitest";
import { startSandboxCloud, type SandboxCloud, type SandboxCloudOptions } from "../../packages/sandbox/src/cloud.js";
import type { SandboxScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import { adminToken, nova, waitUntil } from "./support/cloud.js";

/**
 * The simulated Nova's `changes-since` (API guide "Efficient polling"; nova db api:
 * `updated_at >= changes-since`), and the 429/503 answers with `Retry-After` its fault
 * mechanism injects.
 */

const clouds: SandboxCloud[] = [];
async function start(opts: SandboxCloudOptions = {}): Promise<SandboxCloud> {
  const c = await startSandboxCloud(opts);
  clouds.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

function scenario(names: string[]): SandboxScenario {
  return {
    projects: [{ name: "admin" }, { name: "acme" }],
    users: [{ name: "admin", password: "pw", roles: [{ project: "admin", role: "admin" }] }],
    flavors: [{ name: "f1", vcpus: 1, ram: 512, disk: 10 }],
    hosts: [{ name: "c1" }, { name: "c2" }, { name: "c3" }],
    servers: names.map((name) => ({ name, host: "c1", project: "acme", flavor: "f1" })),
  };
}

interface ListedServer {
  name: string;
  status: string;
  "OS-EXT-STS:vm_state": string;
}
interface ListedMigration {
  id: number;
  status: string;
  updated_at: string | null;
}

/** `changes-since` as lifeboat writes it: ISO 8601 with a zone. */
function iso(ms: number): string {
  return new Date(ms).toISOString();
}

describe("changes-since on /servers/detail", () => {
  it("lists the servers updated at or after it, deleted ones included with status DELETED; without it, no deleted server", async () => {
    const cloud = await start({ scenario: scenario(["idle", "locked", "gone"]) });
    const token = await adminToken(cloud);
    cloud.clock.advance(60_000);
    const since = Math.floor(cloud.clock.now() / 1000) * 1000;
    const locked = cloud.state.serverByName("locked")!;
    expect((await nova(cloud, token, `/servers/${locked.id}/action`, { method: "POST", body: { lock: null } })).status).toBe(202);
    cloud.state.servers.delete(cloud.state.serverByName("gone")!.id);

    const list = async (query: string): Promise<ListedServer[]> => {
      const r = await nova(cloud, token, `/servers/detail?all_tenants=1${query}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body as { servers: ListedServer[] }).servers.sort((a, b) => a.name.localeCompare(b.name));
    };
    const changed = await list(`&changes-since=${encodeURIComponent(iso(since))}`);
    expect(changed.map((s) => [s.name, s.status])).toEqual([
      ["gone", "DELETED"],
      ["locked", "ACTIVE"],
    ]);
    expect(changed[0]!["OS-EXT-STS:vm_state"]).toBe("deleted");
    // With other filters; a time before every update lists every server, the deleted one too.
    expect((await list(`&host=c1&changes-since=${encodeURIComponent(iso(since - 3_600_000))}`)).map((s) => s.name)).toEqual(["gone", "idle", "locked"]);
    // A time after every update: nothing.
    expect(await list(`&changes-since=${encodeURIComponent(iso(since + 5_000))}`)).toEqual([]);
    // No changes-since: the deleted server is not listed, nor found.
    expect((await list("")).map((s) => s.name)).toEqual(["idle", "locked"]);
  });

  it("compares whole seconds as the database does; a zone-less time is UTC; anything else is a 400 naming the value", async () => {
    const cloud = await start({ scenario: scenario(["vm"]) });
    const token = await adminToken(cloud);
    cloud.clock.advance(60_000);
    const vm = cloud.state.serverByName("vm")!;
    vm.updatedMs = Math.floor(cloud.clock.now() / 1000) * 1000 + 700;
    const second = Math.floor(vm.updatedMs / 1000) * 1000;
    const names = async (since: string): Promise<string[]> => {
      const r = await nova(cloud, token, `/servers/detail?all_tenants=1&changes-since=${encodeURIComponent(since)}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body as { servers: ListedServer[] }).servers.map((s) => s.name);
    };
    expect(await names(iso(second))).toEqual(["vm"]);
    expect(await names(iso(second + 500))).toEqual([]);
    expect(await names(iso(second).replace(/\.\d{3}Z$/, ""))).toEqual(["vm"]);
    expect(await names(iso(second + 3_600_000).replace(/\.\d{3}Z$/, "+01:00"))).toEqual(["vm"]);
    const bad = await nova(cloud, token, "/servers/detail?all_tenants=1&changes-since=yesterday");
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ badRequest: { code: 400, message: "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'" } });
  });
});

describe("changes-since on /os-migrations", () => {
  async function evacuating(): Promise<{ cloud: SandboxCloud; token: string; list: (query: string, mv: string) => Promise<ListedMigration[]> }> {
    const cloud = await start({ scenario: scenario(["vm"]), evacuationDurationMs: 4_000 });
    const token = await adminToken(cloud);
    cloud.killHost("c1");
    await nova(cloud, token, `/os-services/${cloud.state.hosts.get("c1")!.serviceUuid}`, { method: "PUT", body: { forced_down: true } });
    const vm = cloud.state.serverByName("vm")!;
    expect((await nova(cloud, token, `/servers/${vm.id}/action`, { method: "POST", body: { evacuate: {} } })).status).toBe(200);
    const list = async (query: string, mv: string): Promise<ListedMigration[]> => {
      const r = await nova(cloud, token, `/os-migrations?source_compute=c1&migration_type=evacuation${query}`, { mv });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body as { migrations: ListedMigration[] }).migrations;
    };
    return { cloud, token, list };
  }

  it("from 2.59 it filters on updated_at: a record never updated since its creation (updated_at null) is not listed", async () => {
    const { cloud, list } = await evacuating();
    const since = `&changes-since=${encodeURIComponent(iso(cloud.clock.now() - 60_000))}`;
    const [fresh] = await list("", "2.59");
    expect(fresh).toMatchObject({ status: "accepted", updated_at: null });
    expect(await list(since, "2.59")).toEqual([]);
    cloud.clock.advance(1_500); // past the claim on the destination: pre-migrating, updated
    cloud.settle();
    expect((await list(since, "2.59")).map((m) => m.status)).toEqual(["pre-migrating"]);
    expect(await list(`&changes-since=${encodeURIComponent(iso(cloud.clock.now() + 5_000))}`, "2.59")).toEqual([]);
  });

  it("below 2.59 Nova drops it unread: the whole filtered listing comes back", async () => {
    const { cloud, list } = await evacuating();
    expect((await list(`&changes-since=${encodeURIComponent(iso(cloud.clock.now() + 3_600_000))}`, "2.53")).map((m) => m.status)).toEqual(["accepted"]);
    // Not even validated there.
    expect(await list("&changes-since=whenever", "2.58")).toHaveLength(1);
  });

  it("from 2.59 it is a single date-time: two values or a bad one are a 400", async () => {
    const { cloud, token } = await evacuating();
    const t = encodeURIComponent(iso(cloud.clock.now()));
    const two = await nova(cloud, token, `/os-migrations?changes-since=${t}&changes-since=${t}`, { mv: "2.59" });
    expect(two.status).toBe(400);
    expect(JSON.stringify(two.body)).toContain("is too long");
    const bad = await nova(cloud, token, "/os-migrations?changes-since=soon", { mv: "2.59" });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ badRequest: { code: 400, message: "Invalid input for query parameters changes-since. Value: soon. 'soon' is not a 'date-time'" } });
  });
});

describe("Retry-After faults", () => {
  it("answers 429 (or 503) with Retry-After in seconds or as an HTTP-date, for N calls, then normally", async () => {
    const cloud = await start({ scenario: scenario(["vm"]) });
    const token = await adminToken(cloud);
    const f = cloud.faults.slowDown(7, { times: 1, match: { service: "compute", path: "/v2.1/servers" } });
    const limited = await nova(cloud, token, "/servers/detail?all_tenants=1");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
    expect(limited.body).toMatchObject({ overLimit: { code: 429 } });
    expect((await nova(cloud, token, "/servers/detail?all_tenants=1")).status).toBe(200);
    expect(f.hits()).toBe(1);

    const when = new Date(cloud.clock.now() + 30_000).toUTCString();
    cloud.faults.slowDown(when, { status: 503, times: 1, match: { service: "compute" } });
    const unavailable = await nova(cloud, token, "/os-services");
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get("retry-after")).toBe(when);
    expect(unavailable.body).toMatchObject({ serviceUnavailable: { code: 503 } });
    await waitUntil("normal answers again", async () => (await nova(cloud, token, "/os-services")).status === 200);
    // Without retryAfter a status fault sends no Retry-After, as before.
    cloud.faults.fail(503, { times: 1, match: { service: "compute" } });
    expect((await nova(cloud, token, "/os-services")).headers.get("retry-after")).toBeNull();
  });
});
