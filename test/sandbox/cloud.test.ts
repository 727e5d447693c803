import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startSandboxCloud, type SandboxCloud, type SandboxCloudOptions } from "../../packages/sandbox/src/cloud.js";
import { defaultScenario, type SandboxScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import { call } from "./support/fixtures.js";
import { adminToken, nova, waitUntil } from "./support/cloud.js";

const clouds: SandboxCloud[] = [];
async function start(opts: SandboxCloudOptions = {}): Promise<SandboxCloud> {
  const c = await startSandboxCloud(opts);
  clouds.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

function small(extra: Partial<SandboxScenario> = {}): SandboxScenario {
  return {
    projects: [{ name: "admin" }, { name: "acme" }],
    users: [
      { name: "admin", password: "pw", roles: [{ project: "admin", role: "admin" }] },
      { name: "alice", password: "alice-pw", email: "alice@acme.example", roles: [{ project: "acme", role: "member" }] },
    ],
    flavors: [{ name: "f1", vcpus: 1, ram: 512, disk: 10 }],
    hosts: [{ name: "c1" }, { name: "c2" }, { name: "c3" }],
    servers: [],
    ...extra,
  };
}

describe("default scenario", () => {
  it("has 4 hosts, a dozen servers in several projects, users with and without email", async () => {
    const cloud = await start();
    expect(cloud.state.hosts.size).toBe(4);
    expect(cloud.state.servers.size).toBe(12);
    const projects = new Set([...cloud.state.servers.values()].map((s) => s.projectId));
    expect(projects.size).toBeGreaterThanOrEqual(3);
    const users = [...cloud.state.users.values()];
    expect(users.some((u) => u.email)).toBe(true);
    expect(users.some((u) => !u.email)).toBe(true);
    expect(cloud.state.serversOn("compute-4")).toHaveLength(0);
    expect(defaultScenario({ hosts: 2, serversPerHost: 5, fillAllHosts: true }).servers).toHaveLength(10);
  });
});

describe("Keystone", () => {
  it("application credential: token without scope request; a scope is refused", async () => {
    const cloud = await start();
    const ac = cloud.applicationCredential!;
    const ok = await call(`${cloud.url}/auth/tokens`, {
      method: "POST",
      body: { auth: { identity: { methods: ["application_credential"], application_credential: { id: ac.id, secret: ac.secret } } } },
    });
    expect(ok.status).toBe(201);
    expect(ok.headers.get("x-subject-token")).toBeTruthy();
    expect(ok.body).toMatchObject({ token: { methods: ["application_credential"], project: { name: "admin" }, application_credential: { id: ac.id } } });
    const scoped = await call(`${cloud.url}/auth/tokens`, {
      method: "POST",
      body: {
        auth: {
          identity: { methods: ["application_credential"], application_credential: { id: ac.id, secret: ac.secret } },
          scope: { project: { name: "admin", domain: { name: "Default" } } },
        },
      },
    });
    expect(scoped.status).toBe(401);
    const wrong = await call(`${cloud.url}/auth/tokens`, {
      method: "POST",
      body: { auth: { identity: { methods: ["application_credential"], application_credential: { id: ac.id, secret: "nope" } } } },
    });
    expect(wrong.status).toBe(401);
  });

  it("tokens expire after their configured lifetime: Nova then answers 401", async () => {
    const cloud = await start({ tokenLifetimeSeconds: 30 });
    const token = await adminToken(cloud);
    expect((await nova(cloud, token, "/os-services")).status).toBe(200);
    cloud.clock.advance(31_000);
    const after = await nova(cloud, token, "/os-services");
    expect(after.status).toBe(401);
    expect(after.body).toEqual({ error: { code: 401, title: "Unauthorized", message: "The request you have made requires authentication." } });
  });

  it("effective role assignments expand groups (membership link) and implied roles; users carry optional email", async () => {
    const cloud = await start();
    const token = await adminToken(cloud);
    const acme = [...cloud.state.projects.values()].find((p) => p.name === "acme")!;
    const r = await call(`${cloud.url}/role_assignments?scope.project.id=${acme.id}&effective&include_names=true`, { token });
    const rows = (r.body as { role_assignments: { user?: { name: string; id: string }; role: { name: string }; links: Record<string, string> }[] }).role_assignments;
    const bob = rows.filter((x) => x.user?.name === "bob");
    expect(bob.map((x) => x.role.name).sort()).toEqual(["member", "reader"]);
    expect(bob[0]!.links.membership).toMatch(/\/v3\/groups\/.+\/users\//);
    const raw = await call(`${cloud.url}/role_assignments?scope.project.id=${acme.id}`, { token });
    const rawRows = (raw.body as { role_assignments: { group?: unknown; role: { id: string } }[] }).role_assignments;
    expect(rawRows.some((x) => x.group)).toBe(true);
    expect(rawRows).toHaveLength(2);
    const alice = rows.find((x) => x.user?.name === "alice")!.user!;
    const u = await call(`${cloud.url}/users/${alice.id}`, { token });
    expect(u.body).toMatchObject({ user: { name: "alice", email: "alice@acme.example" } });
  });

  it("the catalog lists every interface of every region; the request log tells which one was used", async () => {
    const cloud = await start({ regions: ["RegionOne", "RegionTwo"] });
    const token = await adminToken(cloud);
    const t = await call(`${cloud.url}/auth/tokens`, { token, headers: { "X-Subject-Token": token } });
    const compute = (t.body as { token: { catalog: { type: string; endpoints: { interface: string; region_id: string; url: string }[] }[] } }).token.catalog.find(
      (c) => c.type === "compute",
    )!;
    expect(compute.endpoints).toHaveLength(6);
    const internal2 = compute.endpoints.find((e) => e.interface === "internal" && e.region_id === "RegionTwo")!;
    const r = await call(`${internal2.url}/os-services`, { token, microversion: "compute 2.53" });
    expect(r.status).toBe(200);
    expect(cloud.requests.at(-1)).toMatchObject({ service: "compute", path: "/v2.1/os-services", region: "RegionTwo", interface: "internal" });
  });
});

describe("Nova services", () => {
  it("a dead host goes down after service_down_time; force-down makes it down at once", async () => {
    const cloud = await start({ scenario: small(), serviceDownTimeSeconds: 60 });
    const token = await adminToken(cloud);
    const state = async (host: string): Promise<Record<string, unknown>> =>
      ((await nova(cloud, token, `/os-services?binary=nova-compute&host=${host}`)).body as { services: Record<string, unknown>[] }).services[0]!;
    cloud.killHost("c1");
    expect(await state("c1")).toMatchObject({ state: "up" });
    cloud.clock.advance(50_000);
    expect(await state("c1")).toMatchObject({ state: "up" });
    cloud.clock.advance(15_000);
    expect(await state("c1")).toMatchObject({ state: "down", forced_down: false });
    const c2 = await state("c2");
    const forced = await nova(cloud, token, `/os-services/${String(c2.id)}`, { method: "PUT", body: { forced_down: true } });
    expect(forced.body).toMatchObject({ service: { state: "down", forced_down: true } });
    expect(cloud.state.services().filter((s) => s.binary === "nova-compute" && s.state === "down").map((s) => s.host)).toEqual(["c1", "c2"]);
  });

  it("every answer carries a Date from the cloud's own clock (whole seconds, IMF-fixdate), written as the answer is sent", async () => {
    const cloud = await start({ scenario: small(), clockOffsetSeconds: -90, reportIntervalSeconds: 1 });
    const token = await adminToken(cloud);
    cloud.faults.latency(1200, { times: 1, match: { service: "compute", path: "/v2.1/os-services" } });
    const res = await nova(cloud, token, "/os-services?binary=nova-compute&host=c1");
    const date = res.headers.get("date")!;
    expect(date).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    // The cloud's clock, 90 s behind this machine's: not node's own Date.
    expect(Math.abs(Date.parse(date) - (Date.now() - 90_000))).toBeLessThan(3_000);
    // Written after the records were read (and after the injected delay): never earlier than the heartbeat it reports.
    const updated = Date.parse(`${(res.body as { services: { updated_at: string }[] }).services[0]!.updated_at}Z`);
    expect(Date.parse(date)).toBeGreaterThanOrEqual(updated + 1000);
    // Keystone and Placement answer from the same clock; an unknown path too.
    const other = await fetch(`${cloud.baseUrl}/nowhere`);
    expect(Math.abs(Date.parse(other.headers.get("date")!) - (Date.now() - 90_000))).toBeLessThan(3_000);
  });

  it("a proxy's Date: written by a clock set apart from the cloud's, the records' stamps unchanged", async () => {
    const cloud = await start({ scenario: small(), dateClockOffsetSeconds: -60, reportIntervalSeconds: 1 });
    const token = await adminToken(cloud);
    const res = await nova(cloud, token, "/os-services?binary=nova-compute&host=c1");
    const date = Date.parse(res.headers.get("date")!);
    expect(Math.abs(date - (Date.now() - 60_000))).toBeLessThan(3_000);
    // The heartbeat is the cloud's own (this machine's time here): a minute after the Date.
    const updated = Date.parse(`${(res.body as { services: { updated_at: string }[] }).services[0]!.updated_at}Z`);
    expect(Math.abs(updated - Date.now())).toBeLessThan(3_000);
    expect(updated - date).toBeGreaterThan(55_000);
  });

  it("service times as Nova gives them: naive UTC, whole seconds read from the database, microseconds in the answer to an update", async () => {
    const cloud = await start({ scenario: small(), reportIntervalSeconds: 1 });
    const token = await adminToken(cloud);
    const listed = (await nova(cloud, token, "/os-services?binary=nova-compute&host=c2")).body as { services: { id: string; updated_at: string }[] };
    expect(listed.services[0]!.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000$/);
    // Not a whole second, so the answer's sub-second part shows (the fixtures' 13:20:48.297989).
    while (Date.now() % 1000 < 50 || Date.now() % 1000 > 950) await new Promise((r) => setTimeout(r, 20));
    const put = await nova(cloud, token, `/os-services/${listed.services[0]!.id}`, { method: "PUT", body: { forced_down: true } });
    const updated = (put.body as { service: { updated_at: string } }).service.updated_at;
    expect(updated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    expect(updated).not.toMatch(/\.000000$/);
    // An update moves updated_at too (as in Nova): the listing shows the second it happened.
    const after = (await nova(cloud, token, "/os-services?binary=nova-compute&host=c2")).body as { services: { updated_at: string }[] };
    expect(after.services[0]!.updated_at).toBe(`${updated.slice(0, 19)}.000000`);
  });

  it("sends no Date at all when told to (as behind a proxy that drops it)", async () => {
    const cloud = await start({ scenario: small(), dateHeader: false });
    const token = await adminToken(cloud);
    const res = await nova(cloud, token, "/os-services?binary=nova-compute");
    expect(res.status).toBe(200);
    expect(res.headers.get("date")).toBeNull();
  });

  it("disabling a service Nova still believes up (host dead) answers only after the RPC timeout", async () => {
    const cloud = await start({ scenario: small(), disableWhileUpDelayMs: 400 });
    const token = await adminToken(cloud);
    const c1 = cloud.state.hosts.get("c1")!;
    cloud.killHost("c1");
    const t0 = Date.now();
    const r = await nova(cloud, token, `/os-services/${c1.serviceUuid}`, { method: "PUT", body: { status: "disabled", disabled_reason: "x" } });
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
  });

  it("the ≤2.52 action URLs work at 2.11 and fail at 2.53; odd bodies get Nova's messages", async () => {
    const cloud = await start({ scenario: small() });
    const token = await adminToken(cloud);
    const old = await nova(cloud, token, "/os-services/force-down", { method: "PUT", mv: "2.11", body: { host: "c1", binary: "nova-compute", forced_down: true } });
    expect(old.body).toEqual({ service: { host: "c1", binary: "nova-compute", forced_down: true } });
    expect(cloud.state.hosts.get("c1")!.forcedDown).toBe(true);
    const noMv = await call(`${cloud.endpoints.compute}/os-services/${cloud.state.hosts.get("c1")!.serviceUuid}`, { method: "PUT", token, body: { forced_down: true } });
    expect(noMv.body).toEqual({ badRequest: { code: 400, message: "'host' is a required property" } });
    const empty = await nova(cloud, token, `/os-services/${cloud.state.hosts.get("c1")!.serviceUuid}`, { method: "PUT", body: {} });
    expect(empty.body).toMatchObject({ badRequest: { message: "No updates were requested. Fields 'status' or 'forced_down' should be specified." } });
    const sched = cloud.state.controlServices[0]!;
    const notCompute = await nova(cloud, token, `/os-services/${sched.uuid}`, { method: "PUT", body: { status: "disabled" } });
    expect(notCompute.status).toBe(400);
    const unknown = await nova(cloud, token, "/os-services/00000000-0000-0000-0000-000000000000", { method: "PUT", body: { status: "disabled" } });
    expect(unknown.body).toEqual({ itemNotFound: { code: 404, message: "Service 00000000-0000-0000-0000-000000000000 could not be found." } });
  });

  it("non-admin tokens are refused by policy", async () => {
    const cloud = await start({ scenario: small() });
    const res = await fetch(`${cloud.url}/auth/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        auth: {
          identity: { methods: ["password"], password: { user: { name: "alice", domain: { name: "Default" }, password: "alice-pw" } } },
          scope: { project: { name: "acme", domain: { name: "Default" } } },
        },
      }),
    });
    const token = res.headers.get("x-subject-token")!;
    const r = await nova(cloud, token, "/os-services");
    expect(r.body).toEqual({ forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-services:list to be performed." } });
    expect((await nova(cloud, token, "/servers/detail?all_tenants=1")).status).toBe(403);
  });
});

describe("servers and evacuation", () => {
  it("pages 50 servers by max_limit with servers_links, newest first, no duplicates", async () => {
    const servers = Array.from({ length: 50 }, (_, i) => ({ name: `vm-${i}`, host: "c1", project: "acme", flavor: "f1" }));
    const cloud = await start({ scenario: small({ servers }), maxLimit: 20 });
    const token = await adminToken(cloud);
    const seen: string[] = [];
    let url: string | undefined = `${cloud.endpoints.compute}/servers/detail?all_tenants=1&host=c1`;
    let pages = 0;
    while (url) {
      const r = await call(url, { token, microversion: "compute 2.53" });
      const b = r.body as { servers: { name: string }[]; servers_links?: { rel: string; href: string }[] };
      seen.push(...b.servers.map((s) => s.name));
      url = b.servers.length > 0 ? b.servers_links?.find((l) => l.rel === "next")?.href : undefined;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(50);
    expect(new Set(seen).size).toBe(50);
    expect(seen[0]).toBe("vm-49");
  });

  it("`locked` filters the listing from 2.73 (strict booleans, 400 otherwise) and is an unknown filter below", async () => {
    const servers = [
      { name: "free", host: "c1", project: "acme", flavor: "f1" },
      { name: "owners", host: "c1", project: "acme", flavor: "f1", locked: true, lockedReason: "owner's" },
      { name: "ours", host: "c2", project: "acme", flavor: "f1" },
    ];
    const cloud = await start({ scenario: small({ servers }) });
    const token = await adminToken(cloud);
    const ours = cloud.state.serverByName("ours")!;
    expect((await nova(cloud, token, `/servers/${ours.id}/action`, { method: "POST", body: { lock: { locked_reason: "lifeboat: evacuating from c9 (recovery r-1)" } }, mv: "2.73" })).status).toBe(202);
    const names = async (query: string, mv: string): Promise<string[]> => {
      const r = await nova(cloud, token, `/servers/detail?all_tenants=1&${query}`, { mv });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body as { servers: { name: string }[] }).servers.map((x) => x.name).sort();
    };
    expect(await names("locked=true", "2.73")).toEqual(["ours", "owners"]);
    expect(await names("locked=True", "2.73")).toEqual(["ours", "owners"]);
    expect(await names("locked=0", "2.73")).toEqual(["free"]);
    const bad = await nova(cloud, token, "/servers/detail?all_tenants=1&locked=maybe", { mv: "2.73" });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain("Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'");
    expect(await names("locked=true", "2.53")).toEqual(["free", "ours", "owners"]);
    const detail = await nova(cloud, token, "/servers/detail?all_tenants=1&locked=true", { mv: "2.73" });
    expect((detail.body as { servers: Record<string, unknown>[] }).servers.find((x) => x.name === "ours")).toMatchObject({ locked: true, locked_reason: "lifeboat: evacuating from c9 (recovery r-1)" });
  });

  it("a second evacuate of a running evacuation answers 200 and breaks the server, like Nova 26", async () => {
    const cloud = await start({ scenario: small({ servers: [{ name: "vm", host: "c1", project: "acme", flavor: "f1" }] }), evacuationDurationMs: 300 });
    const token = await adminToken(cloud);
    const vm = cloud.state.serverByName("vm")!;
    cloud.killHost("c1");
    await nova(cloud, token, `/os-services/${cloud.state.hosts.get("c1")!.serviceUuid}`, { method: "PUT", body: { forced_down: true } });
    expect((await nova(cloud, token, `/servers/${vm.id}/action`, { method: "POST", body: { evacuate: {} } })).status).toBe(200);
    const second = await nova(cloud, token, `/servers/${vm.id}/action`, { method: "POST", body: { evacuate: {} } });
    expect(second.status).toBe(200);
    await waitUntil("first migration done", () => {
      cloud.settle();
      return cloud.state.migrationsOf(vm.id).some((m) => m.status === "done");
    });
    const s = ((await nova(cloud, token, `/servers/${vm.id}`)).body as { server: Record<string, unknown> }).server;
    expect(s).toMatchObject({ status: "REBUILD", "OS-EXT-STS:vm_state": "error", "OS-EXT-STS:task_state": "rebuilding" });
    expect(cloud.state.migrationsOf(vm.id).map((m) => m.status).sort()).toEqual(["accepted", "done"]);
    cloud.startCompute("c1");
    const unforce = await nova(cloud, token, `/os-services/${cloud.state.hosts.get("c1")!.serviceUuid}`, { method: "PUT", body: { forced_down: false } });
    expect(unforce.status).toBe(400);
  });

  it("fail N times then succeed: migration error and server ERROR on its source, then a clean evacuation", async () => {
    const cloud = await start({
      scenario: small({ servers: [{ name: "vm", host: "c1", project: "acme", flavor: "f1", status: "SHUTOFF", evacuation: { failTimes: 1 } }] }),
      evacuationDurationMs: 100,
    });
    const token = await adminToken(cloud);
    const vm = cloud.state.serverByName("vm")!;
    cloud.killHost("c1");
    await nova(cloud, token, `/os-services/${cloud.state.hosts.get("c1")!.serviceUuid}`, { method: "PUT", body: { forced_down: true } });
    await nova(cloud, token, `/servers/${vm.id}/action`, { method: "POST", body: { evacuate: {} } });
    await waitUntil("first evacuation fails", () => (cloud.settle(), cloud.state.migrationsOf(vm.id)[0]!.status === "error"));
    expect(((await nova(cloud, token, `/servers/${vm.id}`)).body as { server: Record<string, unknown> }).server).toMatchObject({
      status: "ERROR",
      "OS-EXT-SRV-ATTR:host": "c1",
      "OS-EXT-STS:task_state": null,
    });
    expect((await nova(cloud, token, `/servers/${vm.id}/action`, { method: "POST", body: { evacuate: {} } })).status).toBe(200);
    await waitUntil("second evacuation done", () => (cloud.settle(), cloud.state.migrationsOf(vm.id)[1]?.status === "done"));
    // Rebuilt from ERROR, Nova starts it: ACTIVE, not SHUTOFF.
    expect(((await nova(cloud, token, `/servers/${vm.id}`)).body as { server: Record<string, unknown> }).server).toMatchObject({ status: "ACTIVE" });
  });

  it("at 2.95 (when the cloud offers it) an evacuated server ends SHUTOFF", async () => {
    const cloud = await start({ scenario: small({ servers: [{ name: "vm", host: "c1", project: "acme", flavor: "f1" }] }), evacuationDurationMs: 100, maxMicroversion: "2.96" });
    const token = await adminToken(cloud);
    const vm = cloud.state.serverByName("vm")!;
    cloud.killHost("c1");
    await nova(cloud, token, `/os-services/${cloud.state.hosts.get("c1")!.serviceUuid}`, { method: "PUT", body: { forced_down: true } });
    await nova(cloud, token, `/servers/${vm.id}/action`, { method: "POST", body: { evacuate: {} }, mv: "2.95" });
    await waitUntil("done", () => (cloud.settle(), cloud.state.migrationsOf(vm.id)[0]!.status === "done"));
    expect(cloud.state.servers.get(vm.id)!.vmState).toBe("stopped");
  });

  it("409 for a busy task or a paused server; no valid host → migration error", async () => {
    const cloud = await start({
      scenario: small({
        hosts: [{ name: "c1" }, { name: "c2", memoryMb: 1024, reservedMemoryMb: 512, ramAllocationRatio: 1 }],
        servers: [
          { name: "busy", host: "c1", project: "acme", flavor: "f1", taskState: "powering-off" },
          { name: "paused", host: "c1", project: "acme", flavor: "f1", status: "PAUSED" },
          { name: "a", host: "c1", project: "acme", flavor: "f1" },
          { name: "b", host: "c1", project: "acme", flavor: "f1" },
        ],
      }),
      evacuationDurationMs: 100,
    });
    const token = await adminToken(cloud);
    cloud.killHost("c1");
    await nova(cloud, token, `/os-services/${cloud.state.hosts.get("c1")!.serviceUuid}`, { method: "PUT", body: { forced_down: true } });
    const id = (n: string): string => cloud.state.serverByName(n)!.id;
    const busy = await nova(cloud, token, `/servers/${id("busy")}/action`, { method: "POST", body: { evacuate: {} } });
    expect(busy.body).toEqual({ conflictingRequest: { code: 409, message: `Cannot 'evacuate' instance ${id("busy")} while it is in task_state powering-off` } });
    const paused = await nova(cloud, token, `/servers/${id("paused")}/action`, { method: "POST", body: { evacuate: {} } });
    expect(paused.status).toBe(409);
    // c2 has room for one 512 MB server only.
    await nova(cloud, token, `/servers/${id("a")}/action`, { method: "POST", body: { evacuate: {} } });
    await waitUntil("a moved", () => (cloud.settle(), cloud.state.migrationsOf(id("a"))[0]!.status === "done"));
    await nova(cloud, token, `/servers/${id("b")}/action`, { method: "POST", body: { evacuate: {} } });
    await waitUntil("b failed", () => (cloud.settle(), cloud.state.migrationsOf(id("b"))[0]!.status === "error"));
    const unknownHost = await nova(cloud, token, `/servers/${id("b")}/action`, { method: "POST", body: { evacuate: { host: "nope" } } });
    expect(unknownHost.body).toEqual({ itemNotFound: { code: 404, message: "Compute host nope not found." } });
    const bad = await nova(cloud, token, `/servers/${id("b")}/action`, { method: "POST", body: { evacuate: { foo: 1 } } });
    expect(bad.body).toEqual({
      badRequest: { code: 400, message: "Invalid input for field/attribute evacuate. Value: {'foo': 1}. Additional properties are not allowed ('foo' was unexpected)" },
    });
  });

  it("nova-compute starting on the repaired host turns done into completed; then it can be un-forced and comes up", async () => {
    const cloud = await start({ scenario: small({ servers: [{ name: "vm", host: "c1", project: "acme", flavor: "f1" }] }), evacuationDurationMs: 50 });
    const token = await adminToken(cloud);
    const vm = cloud.state.serverByName("vm")!;
    const svc = cloud.state.hosts.get("c1")!.serviceUuid;
    cloud.killHost("c1");
    await nova(cloud, token, `/os-services/${svc}`, { method: "PUT", body: { forced_down: true } });
    await nova(cloud, token, `/servers/${vm.id}/action`, { method: "POST", body: { evacuate: {} } });
    await waitUntil("done", () => (cloud.settle(), cloud.state.migrationsOf(vm.id)[0]!.status === "done"));
    expect((await nova(cloud, token, `/os-services/${svc}`, { method: "PUT", body: { forced_down: false } })).status).toBe(400);
    cloud.startCompute("c1");
    expect(cloud.state.migrationsOf(vm.id)[0]!.status).toBe("completed");
    const ok = await nova(cloud, token, `/os-services/${svc}`, { method: "PUT", body: { forced_down: false } });
    expect(ok.body).toMatchObject({ service: { forced_down: false, state: "up" } });
  });
});

describe("fault injection", () => {
  it("5xx for N calls matching a path, then normal answers", async () => {
    const cloud = await start({ scenario: small() });
    const token = await adminToken(cloud);
    const f = cloud.faults.fail(500, { times: 2, match: { service: "compute", path: "/v2.1/os-services" } });
    const a = await nova(cloud, token, "/os-services");
    expect(a.status).toBe(500);
    expect(a.body).toMatchObject({ computeFault: { code: 500 } });
    expect((await nova(cloud, token, "/os-services")).status).toBe(500);
    expect((await nova(cloud, token, "/os-services")).status).toBe(200);
    expect(f.hits()).toBe(2);
    expect(cloud.requests.filter((r) => r.fault === "status")).toHaveLength(2);
  });

  it("latency, a hang, a connection reset and a 401 once", async () => {
    const cloud = await start({ scenario: small() });
    const token = await adminToken(cloud);
    cloud.faults.latency(200, { times: 1 });
    const t0 = Date.now();
    expect((await nova(cloud, token, "/os-services")).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(180);

    cloud.faults.hang({ times: 1, match: { path: "/v2.1/os-services" } });
    await expect(
      fetch(`${cloud.endpoints.compute}/os-services`, { headers: { "X-Auth-Token": token }, signal: AbortSignal.timeout(300) }),
    ).rejects.toThrow();

    cloud.faults.reset({ times: 1 });
    await expect(fetch(`${cloud.endpoints.compute}/os-services`, { headers: { "X-Auth-Token": token } })).rejects.toThrow();

    cloud.faults.unauthorized();
    expect((await nova(cloud, token, "/os-services")).status).toBe(401);
    expect((await nova(cloud, token, "/os-services")).status).toBe(200);
  });

  it("listens on 127.0.0.1 on a port chosen at run time and frees it on close", async () => {
    const cloud = await start();
    expect(cloud.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const port = cloud.port;
    await cloud.close();
    clouds.splice(clouds.indexOf(cloud), 1);
    await new Promise<void>((resolve, reject) => {
      const s = net.createServer().once("error", reject);
      s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
    });
  });
});
