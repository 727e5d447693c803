import pLimit from "p-limit";
import { afterEach, describe, expect, it } from "vitest";
import { FRESH_READ, type EvacuateCall, type EvacuateOptions, type InstanceInfo } from "../../src/domain/ports/cloud.js";
import { AbortError } from "../../src/util/abort.js";
import { ComputeServiceNotFoundError } from "../../src/nova/compute-services.js";
import { InventoryCache } from "../../src/nova/capacity.js";
import type { Inventory } from "../../src/openstack/placement.js";
import { isLifeboatReason } from "../../src/domain/markers.js";
import { startSandboxCloud, type SandboxCloud, type SandboxCloudOptions } from "../../packages/sandbox/src/cloud.js";
import type { SandboxScenario, ScenarioServer } from "../../packages/sandbox/src/cloud-scenario.js";
import { actionsOn, driverFor, isEvacuatePost, servicePuts, type DriverHandle } from "./support/driver.js";

const clouds: SandboxCloud[] = [];
const handles: DriverHandle[] = [];
async function start(opts: SandboxCloudOptions = {}): Promise<SandboxCloud> {
  const c = await startSandboxCloud(opts);
  clouds.push(c);
  return c;
}
function driver(cloud: SandboxCloud, opts: Parameters<typeof driverFor>[1] = {}): DriverHandle["driver"] {
  const h = driverFor(cloud, opts);
  handles.push(h);
  return h.driver;
}
afterEach(async () => {
  handles.splice(0).forEach((h) => h.session.close());
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

function scenario(servers: ScenarioServer[], extra: Partial<SandboxScenario> = {}): SandboxScenario {
  return {
    projects: [{ name: "admin" }, { name: "acme" }, { name: "globex" }],
    users: [
      { name: "admin", password: "admin-pw", roles: [{ project: "admin", role: "admin" }] },
      { name: "alice", password: "a", roles: [{ project: "acme", role: "member" }] },
    ],
    flavors: [
      { name: "small", vcpus: 1, ram: 512, disk: 5 },
      { name: "ha", vcpus: 2, ram: 1024, disk: 10, extraSpecs: { evacuable: "true" } },
    ],
    hosts: [{ name: "src" }, { name: "dst-1" }, { name: "dst-2" }],
    servers,
    ...extra,
  };
}

const vm = (name: string, more: Partial<ScenarioServer> = {}): ScenarioServer => ({ name, host: "src", project: "acme", flavor: "small", ...more });
const opts = (attempt = 1, timeoutMs = 10_000, more: Partial<EvacuateOptions> = {}): EvacuateOptions => ({ attempt, timeoutMs, ...more });

async function isolated(cloud: SandboxCloud, d: DriverHandle["driver"], host = "src"): Promise<void> {
  cloud.killHost(host);
  await d.isolate(host, "lifeboat: recovery r-1 fenced 2026-11-25T13:00:00Z");
}

describe("isolation", () => {
  it("forces the service down before disabling it, and a second call sends nothing", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]), disableWhileUpDelayMs: 30_000 });
    const d = driver(cloud);
    cloud.killHost("src");
    const first = await d.isolate("src", "lifeboat: recovery r-1 fenced 2026-11-25T13:00:00Z");
    expect(first.already).toBe(false);
    expect(servicePuts(cloud)).toEqual([{ forced_down: true }, { status: "disabled", disabled_reason: "lifeboat: recovery r-1 fenced 2026-11-25T13:00:00Z" }]);
    expect(first.service).toMatchObject({ host: "src", state: "down", status: "disabled", forcedDown: true });
    const second = await d.isolate("src", "lifeboat: recovery r-1 fenced 2026-11-25T13:00:00Z");
    expect(second.already).toBe(true);
    expect(servicePuts(cloud)).toHaveLength(2);
    expect(await d.getComputeService("src", undefined, FRESH_READ)).toMatchObject({ forcedDown: true, status: "disabled", disabledReason: "lifeboat: recovery r-1 fenced 2026-11-25T13:00:00Z" });
  });

  it("a human's disable is kept: only forced down; reasons without the prefix get it", async () => {
    const cloud = await start({
      scenario: scenario([], { hosts: [{ name: "src", disabledReason: "disk swap (jdoe)" }, { name: "dst-1" }, { name: "dst-2" }] }),
    });
    const d = driver(cloud);
    const r = await d.isolate("src", "recovery r-2");
    expect(servicePuts(cloud)).toEqual([{ forced_down: true }]);
    expect(r.service.disabledReason).toBe("disk swap (jdoe)");
    expect(isLifeboatReason((await d.getComputeService("src", undefined, FRESH_READ))?.disabledReason)).toBe(false);
    await d.isolate("dst-1", "recovery r-3");
    expect(servicePuts(cloud).at(-1)).toEqual({ status: "disabled", disabled_reason: "lifeboat: recovery r-3" });
    expect(isLifeboatReason("lifeboat: x")).toBe(true);
    expect(isLifeboatReason("Lifeboat broke this")).toBe(false);
    expect(isLifeboatReason(null)).toBe(false);
  });

  it("reads services with ISO times; an unknown host is an error", async () => {
    const cloud = await start({ scenario: scenario([]) });
    const d = driver(cloud);
    const s = await d.getComputeService("dst-1");
    expect(s).toMatchObject({ host: "dst-1", state: "up", status: "enabled", forcedDown: false, zone: "nova" });
    expect(s!.updatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(s!.updatedAt!) - cloud.clock.now())).toBeLessThan(20_000);
    expect(await d.getComputeService("nope")).toBeNull();
    await expect(d.isolate("nope", "x")).rejects.toBeInstanceOf(ComputeServiceNotFoundError);
    expect((await d.listComputeServices()).map((x) => x.host).sort()).toEqual(["dst-1", "dst-2", "src"]);
  });
});

describe("listing", () => {
  it("lists 50 instances across pages, with flavor extra specs and metadata", async () => {
    const servers = Array.from({ length: 50 }, (_, i) => vm(`vm-${i}`, i === 0 ? { flavor: "ha", metadata: { HA_Enabled: "True" }, project: "globex" } : {}));
    const cloud = await start({ scenario: scenario([...servers, vm("elsewhere", { host: "dst-1" })]), maxLimit: 20 });
    const d = driver(cloud);
    const list = await d.listInstances("src");
    expect(list).toHaveLength(50);
    expect(new Set(list.map((i) => i.id)).size).toBe(50);
    expect(cloud.requests.filter((r) => r.path === "/v2.1/servers/detail")).toHaveLength(3);
    const first = list.find((i) => i.name === "vm-0")!;
    expect(first).toMatchObject({
      status: "ACTIVE",
      host: "src",
      taskState: null,
      metadata: { HA_Enabled: "True" },
      flavor: { name: "ha", vcpus: 2, ramMb: 1024, diskGb: 10, extraSpecs: { evacuable: "true" } },
      imageProperties: {},
      locked: false,
    });
    expect(first.projectId).toBe([...cloud.state.projects.values()].find((p) => p.name === "globex")!.id);
    expect(first.userId).toBeTruthy();
  });
});

describe("evacuation", () => {
  it("evacuates 50 instances, each tracked to done, locked with a lifeboat reason and unlocked after", async () => {
    const servers = Array.from({ length: 50 }, (_, i) => vm(`vm-${i}`, i === 7 ? { status: "SHUTOFF" } : {}));
    const cloud = await start({ scenario: scenario(servers), maxLimit: 20, evacuationDurationMs: 150 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const list = await d.listInstances("src");
    const limit = pLimit(10);
    const results = await Promise.all(list.map((i) => limit(() => d.evacuate(i, "src", opts()))));
    expect(results.every((r) => r.result === "evacuated")).toBe(true);
    for (const [i, r] of results.entries()) {
      if (r.result !== "evacuated") continue;
      expect(["dst-1", "dst-2"]).toContain(r.targetHost);
      expect(r.status).toBe(list[i]!.status); // SHUTOFF stays SHUTOFF, ACTIVE stays ACTIVE
    }
    cloud.settle();
    expect(cloud.state.serversOn("src")).toHaveLength(0);
    expect([...cloud.state.servers.values()].every((s) => !s.locked)).toBe(true);
    expect(cloud.requests.filter((r) => isEvacuatePost(r))).toHaveLength(50);
    const locks = cloud.requests.filter((r) => r.method === "POST" && typeof r.body === "object" && r.body !== null && "lock" in r.body);
    expect(locks).toHaveLength(50);
    expect(locks[0]!.body).toEqual({ lock: { locked_reason: "lifeboat: evacuating from src" } });
    expect(cloud.state.migrations.every((m) => m.status === "done")).toBe(true);
  });

  it("the slot passes on once Nova shows the evacuation done, before the unlock; Nova's migrations are not listed to see it end elsewhere", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]), evacuationDurationMs: 150 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const from = cloud.requests.length;
    const [inst] = await d.listInstances("src");
    let actionsAtRelease: string[] | undefined;
    let held = true;
    const slot = {
      get held() {
        return held;
      },
      acquire: () => {
        held = true;
        return Promise.resolve();
      },
      release: () => {
        held = false;
        actionsAtRelease = actionsOn(cloud, inst!.id);
      },
    };
    const out = await d.evacuate(inst!, "src", opts(1, 10_000, { slot }));
    expect(out.result).toBe("evacuated");
    expect(actionsAtRelease).toEqual(["lock 202", "evacuate 200"]);
    expect(actionsOn(cloud, inst!.id)).toEqual(["lock 202", "evacuate 200", "unlock 202"]);
    // The host's instance list lists them with its servers (what its evacuations were before the call); none after it.
    const migrationListings = cloud.requests.slice(from).filter((r) => r.method === "GET" && r.path === "/v2.1/os-migrations");
    expect(migrationListings).toHaveLength(1);
  });

  it("'fails twice then succeeds' and 'never succeeds' give failed outcomes the caller can re-issue", async () => {
    const cloud = await start({
      scenario: scenario([vm("flaky", { evacuation: { failTimes: 2 } }), vm("doomed", { evacuation: { neverSucceeds: true } })]),
      evacuationDurationMs: 80,
    });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [flaky, doomed] = (await d.listInstances("src")).sort((a, b) => a.name.localeCompare(b.name)).reverse() as [InstanceInfo, InstanceInfo];
    expect(flaky.name).toBe("flaky");
    const seen: string[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await d.evacuate(flaky, "src", opts(attempt));
      seen.push(r.result === "failed" ? `failed permanent=${String(r.permanent)}` : `evacuated to ${r.targetHost}`);
      if (r.result === "failed") expect(r.message).toMatch(/evacuation failed in Nova: migration \d+ error, server ERROR on src/);
    }
    expect(seen.slice(0, 2)).toEqual(["failed permanent=false", "failed permanent=false"]);
    expect(seen[2]).toMatch(/^evacuated to dst-/);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await d.evacuate(doomed, "src", opts(attempt));
      expect(r).toMatchObject({ result: "failed", permanent: false });
    }
    expect(cloud.requests.filter((r) => isEvacuatePost(r, doomed.id))).toHaveLength(3);
    expect(cloud.state.servers.get(doomed.id)!.locked).toBe(false);
  });

  it("after a failed attempt the next one looks at the server anew before it sends: the cycle that saw the failure may show the server as it was just before", async () => {
    const cloud = await start({ scenario: scenario([vm("flaky", { evacuation: { failTimes: 1 } })]), evacuationDurationMs: 80 });
    // Views stay current for 200 ms: the cycle that saw the failure would still answer.
    const d = driver(cloud, { pollIntervalMs: 100 });
    await isolated(cloud, d);
    const [flaky] = (await d.listInstances("src")) as [InstanceInfo];
    expect(await d.evacuate(flaky, "src", opts(1))).toMatchObject({ result: "failed", permanent: false });
    const seq = cloud.requests.at(-1)!.seq;
    expect(await d.evacuate(flaky, "src", opts(2))).toMatchObject({ result: "evacuated" });
    const after = cloud.requests.filter((r) => r.seq > seq);
    const post = after.findIndex((r) => isEvacuatePost(r, flaky.id));
    expect(post).toBeGreaterThan(0);
    // A listing of the servers between the failure and the second evacuate: a look of its own.
    expect(after.slice(0, post).filter((r) => r.method === "GET" && r.path === "/v2.1/servers/detail").length).toBeGreaterThan(0);
    expect(cloud.requests.filter((r) => isEvacuatePost(r, flaky.id))).toHaveLength(2);
  });

  it("a second evacuate() while the first is in flight sends no second POST (same process, or after a restart)", async () => {
    const cloud = await start({ scenario: scenario([vm("a"), vm("b")]), evacuationDurationMs: 400 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a, b] = await d.listInstances("src");
    const p1 = d.evacuate(a!, "src", opts());
    const p2 = d.evacuate(a!, "src", opts());
    // Another lifeboat process (a restart) meets b's evacuation running: it tracks it.
    const q1 = d.evacuate(b!, "src", opts());
    await new Promise((r) => setTimeout(r, 100));
    const restarted = driver(cloud);
    const q2 = restarted.evacuate(b!, "src", opts());
    const results = await Promise.all([p1, p2, q1, q2]);
    expect(results.map((r) => r.result)).toEqual(["evacuated", "evacuated", "evacuated", "evacuated"]);
    expect(cloud.requests.filter((r) => isEvacuatePost(r, a!.id))).toHaveLength(1);
    expect(cloud.requests.filter((r) => isEvacuatePost(r, b!.id))).toHaveLength(1);
    cloud.settle();
    expect(cloud.state.servers.get(b!.id)!.broken).toBe(false);
    expect(cloud.state.servers.get(b!.id)!.locked).toBe(false);
  });

  it("an evacuate before force-down is reported as what it means, and leaves no lock", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]) });
    const d = driver(cloud);
    const [a] = await d.listInstances("src");
    const r = await d.evacuate(a!, "src", opts());
    expect(r).toMatchObject({ result: "failed", permanent: false });
    expect(r.message).toContain("isolate the host first");
    expect(r.message).toContain("Compute service of src is still in use.");
    expect(actionsOn(cloud, a!.id)).toEqual(["lock 202", "evacuate 400", "unlock 202"]);
  });

  it("a server gone is a permanent failure; one already elsewhere is evacuated without a POST", async () => {
    const cloud = await start({ scenario: scenario([vm("a"), vm("b")]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a, b] = await d.listInstances("src");
    cloud.state.servers.delete(a!.id);
    expect(await d.evacuate(a!, "src", opts())).toMatchObject({ result: "failed", permanent: true });
    expect(await d.evacuate(b!, "src", opts())).toMatchObject({ result: "evacuated" });
    const posts = cloud.requests.filter((r) => isEvacuatePost(r)).length;
    const again = await d.evacuate(b!, "src", opts(2));
    expect(again).toMatchObject({ result: "evacuated", message: expect.stringMatching(/^already on another host/) as unknown });
    expect(cloud.requests.filter((r) => isEvacuatePost(r))).toHaveLength(posts);
  });

  it("a server its owner locked stays locked, untouched", async () => {
    const cloud = await start({ scenario: scenario([vm("mine", { locked: true, lockedReason: "do not touch" })]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [s] = await d.listInstances("src");
    expect(await d.evacuate(s!, "src", opts())).toMatchObject({ result: "evacuated" });
    expect(actionsOn(cloud, s!.id)).toEqual(["evacuate 200"]);
    expect(cloud.state.servers.get(s!.id)).toMatchObject({ locked: true, lockedReason: "do not touch" });
  });

  it("a 500 on the evacuate call is not retried blindly: one POST, a transient failure", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]) });
    const d = driver(cloud, { lockInstances: false });
    await isolated(cloud, d);
    const [a] = await d.listInstances("src");
    cloud.faults.fail(500, { times: 1, match: { method: "POST", path: `/v2.1/servers/${a!.id}/action` } });
    const r = await d.evacuate(a!, "src", opts());
    expect(r).toMatchObject({ result: "failed", permanent: false });
    expect(r.message).toContain("Unexpected API Error");
    expect(actionsOn(cloud, a!.id)).toEqual(["evacuate 500"]);
    // Re-issued by the caller, it goes through.
    expect(await d.evacuate(a!, "src", opts(2))).toMatchObject({ result: "evacuated" });
  });

  it("tracking that times out keeps the lock; the re-issue tracks the same migration to its end", async () => {
    const cloud = await start({ scenario: scenario([vm("slow")]), evacuationDurationMs: 800 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [s] = await d.listInstances("src");
    const t0 = Date.now();
    const first = await d.evacuate(s!, "src", opts(1, 200));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(first).toMatchObject({ result: "failed", permanent: false });
    expect(first.message).toMatch(/not finished after/);
    expect(cloud.state.servers.get(s!.id)!.locked).toBe(true);
    const second = await driver(cloud).evacuate(s!, "src", opts(2, 10_000));
    expect(second).toMatchObject({ result: "evacuated" });
    expect(cloud.requests.filter((r) => isEvacuatePost(r))).toHaveLength(1);
    expect(cloud.state.servers.get(s!.id)!.locked).toBe(false);
  });

  it("409 from Nova: re-inspected; a busy task is a transient failure, a paused server a permanent one", async () => {
    const cloud = await start({ scenario: scenario([vm("busy", { taskState: "powering-off" }), vm("paused", { status: "PAUSED" })]) });
    const d = driver(cloud);
    await isolated(cloud, d);
    const list = await d.listInstances("src");
    const busy = list.find((i) => i.name === "busy")!;
    const paused = list.find((i) => i.name === "paused")!;
    const rb = await d.evacuate(busy, "src", opts());
    expect(rb).toMatchObject({ result: "failed", permanent: false });
    expect(rb.message).toContain("while it is in task_state powering-off");
    const rp = await d.evacuate(paused, "src", opts());
    expect(rp).toMatchObject({ result: "failed", permanent: true });
    expect(rp.message).toContain("while it is in vm_state paused");
    // Looked again after the 409 (server + migrations), and left no lock behind.
    expect(actionsOn(cloud, busy.id)).toEqual(["lock 202", "evacuate 409", "unlock 202"]);
    expect(cloud.state.servers.get(paused.id)!.locked).toBe(false);
  });

  it("Nova unreachable while looking first: each failed look is sent once and looked at again a poll later, until the attempt's deadline; then a transient failure, nothing sent", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]) });
    const d = driver(cloud);
    await isolated(cloud, d);
    // Nova's migrations cannot be listed with the instances, so the look before the evacuate is a cycle of its own ...
    cloud.faults.fail(503, { match: { method: "GET", path: "/v2.1/os-migrations" } });
    const [a] = await d.listInstances("src");
    const from = cloud.requests.length;
    // ... and every look at the servers fails (the host's listing of their changes).
    const f = cloud.faults.fail(503, { match: { method: "GET", path: "/v2.1/servers" } });
    const r = await d.evacuate(a!, "src", opts(1, 400));
    expect(r).toMatchObject({ result: "failed", permanent: false });
    expect(r.message).toMatch(/^could not reach Nova/);
    // The looks are the driver's own loop (one per poll cycle), not the session's retries:
    // every GET was a new look, answered 503 once, none re-sent by the transport.
    const looks = cloud.requests.slice(from).filter((q) => q.method === "GET" && q.path.startsWith("/v2.1/servers"));
    expect(f.hits()).toBeGreaterThanOrEqual(2);
    expect(looks.map((q) => q.status)).toEqual(Array.from({ length: f.hits() }, () => 503));
    expect(actionsOn(cloud, a!.id)).toEqual([]);
  });

  it("a look that fails once does not end the attempt: the next poll cycle looks again and the server is evacuated", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a] = await d.listInstances("src");
    const f = cloud.faults.fail(500, { times: 1, match: { method: "GET", path: "/v2.1/servers" } });
    expect(await d.evacuate(a!, "src", opts())).toMatchObject({ result: "evacuated" });
    expect(f.hits()).toBe(1);
    expect(actionsOn(cloud, a!.id)).toEqual(["lock 202", "evacuate 200", "unlock 202"]);
  });

  it("a lock Nova fails to take (500) leaves the evacuation to the re-issue, nothing sent; the re-issue locks again", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a] = await d.listInstances("src");
    cloud.faults.fail(500, { times: 1, match: { method: "POST", action: "lock" } });
    const first = await d.evacuate(a!, "src", opts(1));
    expect(first).toMatchObject({ result: "failed", permanent: false });
    expect(first.message).toMatch(/^could not lock the server, so the evacuate was not sent/);
    expect(actionsOn(cloud, a!.id)).toEqual(["lock 500"]);
    // The re-issue locks again, after a new look: a listing that reached Nova after the refused lock.
    const failedLockAt = cloud.requests.findLast((r) => r.method === "POST" && r.path === `/v2.1/servers/${a!.id}/action`)!.seq;
    expect(await d.evacuate(a!, "src", opts(2))).toMatchObject({ result: "evacuated" });
    expect(actionsOn(cloud, a!.id)).toEqual(["lock 500", "lock 202", "evacuate 200", "unlock 202"]);
    const relock = cloud.requests.find((r) => r.seq > failedLockAt && r.method === "POST")!.seq;
    expect(cloud.requests.filter((r) => r.seq > failedLockAt && r.seq < relock && r.path === "/v2.1/servers/detail")).toHaveLength(1);
  });

  it("an instance untouched since the last look locks at once from it: the first from the host's instance list (servers, then migrations), a slot handed on from the last cycle", async () => {
    const cloud = await start({ scenario: scenario([vm("a"), vm("b")]), evacuationDurationMs: 100 });
    // Polls 200 ms apart: the last cycle's view stays usable for CURRENT_VIEW_MAX_AGE_MS, however loaded the machine.
    const d = driver(cloud, { pollIntervalMs: 200 });
    await isolated(cloud, d);
    const listedFrom = cloud.requests.at(-1)!.seq;
    const [a, b] = (await d.listInstances("src")).sort((x, y) => x.name.localeCompare(y.name));
    const listed = cloud.requests.filter((r) => r.seq > listedFrom).map((r) => `${r.path} ${r.query.source_compute ?? r.query.host}`);
    expect(listed).toEqual(["/v2.1/servers/detail src", "/v2.1/os-migrations src"]);
    const aFrom = cloud.requests.at(-1)!.seq;
    expect(await d.evacuate(a!, "src", opts())).toMatchObject({ result: "evacuated" });
    expect(cloud.requests.find((r) => r.seq > aFrom)).toMatchObject({ method: "POST", path: `/v2.1/servers/${a!.id}/action`, body: { lock: expect.anything() as unknown } });
    const from = cloud.requests.at(-1)!.seq;
    expect(await d.evacuate(b!, "src", opts())).toMatchObject({ result: "evacuated" });
    const after = cloud.requests.filter((r) => r.seq > from);
    // b's lock is its first request: the cycles that followed a's evacuation showed it idle on src.
    expect(after[0]).toMatchObject({ method: "POST", path: `/v2.1/servers/${b!.id}/action`, body: { lock: expect.anything() as unknown } });
    expect(actionsOn(cloud, b!.id)).toEqual(["lock 202", "evacuate 200", "unlock 202"]);
  });

  it("a lock Nova fails to take on the last attempt: the server is evacuated unlocked", async () => {
    const cloud = await start({ scenario: scenario([vm("b")]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [b] = await d.listInstances("src");
    cloud.faults.fail(500, { times: 1, match: { method: "POST", action: "lock" } });
    expect(await d.evacuate(b!, "src", opts(3, 10_000, { finalAttempt: true }))).toMatchObject({ result: "evacuated" });
    expect(actionsOn(cloud, b!.id)).toEqual(["lock 500", "evacuate 200"]);
    expect(cloud.state.servers.get(b!.id)!.locked).toBe(false);
  });

  it("sends the target host when given", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a] = await d.listInstances("src");
    expect(await d.evacuate(a!, "src", opts(1, 10_000, { targetHost: "dst-2" }))).toMatchObject({ result: "evacuated", targetHost: "dst-2" });
    expect(cloud.requests.find((r) => isEvacuatePost(r))!.body).toEqual({ evacuate: { host: "dst-2" } });
  });

  it("start() says what it negotiated", async () => {
    const cloud = await start({ scenario: scenario([]) });
    expect(await driver(cloud).start()).toBe("Nova microversion 2.73 (cloud supports 2.1–2.93)");
  });
});

describe("capacity", () => {
  const hosts = [
    { name: "src", vcpus: 8, memoryMb: 16384, diskGb: 100, cpuAllocationRatio: 4, ramAllocationRatio: 1, reservedMemoryMb: 1024, aggregates: ["gold"] },
    { name: "dst-1", vcpus: 8, memoryMb: 16384, diskGb: 100, cpuAllocationRatio: 4, ramAllocationRatio: 1, reservedMemoryMb: 1024, aggregates: ["gold"] },
    { name: "dst-2", vcpus: 16, memoryMb: 32768, diskGb: 200, cpuAllocationRatio: 2, ramAllocationRatio: 1.5, reservedMemoryMb: 0, zone: "az2" },
  ];

  it("free vCPU, RAM and disk per enabled, up host from Placement (allocation ratio and reserved honoured)", async () => {
    const cloud = await start({ scenario: scenario([vm("a", { host: "dst-1", flavor: "ha" }), vm("b", { host: "dst-2" })], { hosts }) });
    const d = driver(cloud);
    await isolated(cloud, d);
    const cap = await d.capacity();
    expect(cap).toEqual([
      { host: "dst-1", zone: "nova", source: "placement", total: { vcpus: 32, ramMb: 15360, diskGb: 100 }, used: { vcpus: 2, ramMb: 1024, diskGb: 10 }, free: { vcpus: 30, ramMb: 14336, diskGb: 90 } },
      { host: "dst-2", zone: "az2", source: "placement", total: { vcpus: 32, ramMb: 49152, diskGb: 200 }, used: { vcpus: 1, ramMb: 512, diskGb: 5 }, free: { vcpus: 31, ramMb: 48640, diskGb: 195 } },
    ]);
    expect((await d.capacity(undefined, "az2")).map((c) => c.host)).toEqual(["dst-2"]);
  });

  it("falls back to os-hypervisors figures (at ≤ 2.87) when Placement fails", async () => {
    const cloud = await start({ scenario: scenario([vm("a", { host: "dst-1", flavor: "ha" })], { hosts }) });
    const d = driver(cloud);
    cloud.faults.fail(503, { match: { service: "placement" } });
    const cap = await d.capacity();
    expect(cap.map((c) => c.source)).toEqual(["hypervisors", "hypervisors", "hypervisors"]);
    const dst1 = cap.find((c) => c.host === "dst-1")!;
    expect(dst1.free).toEqual({ vcpus: 6, ramMb: 16384 - 1024 - 1024, diskGb: 90 });
    const hyp = cloud.requests.filter((r) => r.path === "/v2.1/os-hypervisors/detail");
    expect(hyp.at(-1)!.microversion).toBe("compute 2.73");
  });

  it("the site's (or a zone's) figures are one reading shared by the checks that ask while it is under way (a storm's capacity gates); an answer given is never reused", async () => {
    const cloud = await start({ scenario: scenario([vm("a", { host: "dst-1", flavor: "ha" }), vm("b")], { hosts }), evacuationDurationMs: 50 });
    const d = driver(cloud);
    const placement = (kind = ""): number => cloud.requests.filter((r) => r.service === "placement" && r.path.endsWith(kind)).length;
    const first = await d.capacity();
    const once = placement();
    // Each host's inventory and usages.
    expect(placement("/inventories")).toBe(3);
    expect(placement("/usages")).toBe(3);
    // Ten checks at the same moment: one reading, sent anew (the first was answered already);
    // the inventories (totals, reserved, ratios) are reused, the usages asked again.
    const together = await Promise.all(Array.from({ length: 10 }, () => d.capacity()));
    expect(together.every((c) => JSON.stringify(c) === JSON.stringify(first))).toBe(true);
    expect(placement("/inventories")).toBe(3);
    expect(placement("/usages")).toBe(6);
    // lifeboat isolates a host: the next check reads the site again (src is not a candidate any more).
    await isolated(cloud, d);
    expect((await d.capacity()).map((c) => c.host)).toEqual(["dst-1", "dst-2"]);
    expect(placement()).toBeGreaterThan(once);
    // An evacuation claims room on its destination: the next check reads the site again.
    const read = placement();
    const [b] = await d.listInstances("src");
    expect(await d.evacuate(b!, "src", opts(1, 10_000))).toMatchObject({ result: "evacuated" });
    const after = await d.capacity();
    expect(placement()).toBeGreaterThan(read);
    const used = (c: typeof after): number => c.reduce((n, h) => n + h.used.ramMb, 0);
    expect(used(after)).toBeGreaterThan(used(first.filter((h) => h.host !== "src")));
    // A zone's reading asks Placement about that zone's hosts alone, and is shared the same way.
    const before = placement("/usages");
    const zone = await Promise.all([d.capacity(undefined, "az2"), d.capacity(undefined, "az2")]);
    expect(zone.map((c) => c.map((h) => h.host))).toEqual([["dst-2"], ["dst-2"]]);
    expect(placement("/usages") - before).toBe(1);
  });
});

describe("InventoryCache", () => {
  it("reuses a provider's inventory for its TTL, reads it again after, and forgets providers not read within it", async () => {
    let now = 0;
    const cache = new InventoryCache(60_000, () => now);
    const reads: string[] = [];
    const read = (uuid: string, total: number) => () => {
      reads.push(uuid);
      return Promise.resolve({ VCPU: { total, reserved: 0, allocation_ratio: 1 } } as Record<string, Inventory>);
    };
    expect((await cache.get("rp-1", read("rp-1", 8))).VCPU!.total).toBe(8);
    now = 59_999;
    expect((await cache.get("rp-1", read("rp-1", 16))).VCPU!.total).toBe(8);
    expect(reads).toEqual(["rp-1"]);
    now = 60_000;
    expect((await cache.get("rp-1", read("rp-1", 16))).VCPU!.total).toBe(16);
    expect(reads).toEqual(["rp-1", "rp-1"]);
    await cache.get("rp-2", read("rp-2", 4));
    now = 120_000;
    cache.prune();
    await cache.get("rp-2", read("rp-2", 4));
    expect(reads).toEqual(["rp-1", "rp-1", "rp-2", "rp-2"]);
  });
});

async function waitForRequest(cloud: SandboxCloud, match: (q: SandboxCloud["requests"][number]) => boolean): Promise<void> {
  const until = Date.now() + 10_000;
  while (!cloud.requests.some(match)) {
    if (Date.now() > until) throw new Error("the request never came");
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe("evacuate calls that may have been sent", () => {
  it("a gateway timeout (504) on the evacuate is no answer: only watched until its window ends, then Nova's records decide (here: it did nothing, transient)", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]) });
    const d = driver(cloud, { lockInstances: false });
    await isolated(cloud, d);
    const [a] = await d.listInstances("src");
    cloud.faults.fail(504, { times: 1, match: { method: "POST", path: `/v2.1/servers/${a!.id}/action` } });
    const calls: EvacuateCall[] = [];
    let released = 0;
    const slot = { held: true, acquire: () => Promise.resolve(), release: () => void released++ };
    const r = await d.evacuate(a!, "src", opts(1, 10_000, { noAnswerWindowMs: 600, recordCall: (c) => (calls.push(c), Promise.resolve()), slot }));
    expect(r).toMatchObject({ result: "failed", permanent: false });
    expect(r.message).toMatch(/^evacuate call got no answer .*504.*Nova's records show no evacuation of it .*it did nothing/);
    // One POST: nothing was sent while the window ran.
    expect(actionsOn(cloud, a!.id)).toEqual(["evacuate 504"]);
    // Journaled before it was sent, settled from Nova's records after the window; the slot was handed on while watching.
    expect(calls).toEqual([
      { attempt: 1, sentAt: expect.any(String) as string, migrationsBefore: [] },
      { attempt: 1, sentAt: expect.any(String) as string, migrationsBefore: [], settled: { at: expect.any(String) as string, by: "nova-records" } },
    ]);
    expect(Date.parse(calls[1]!.settled!.at) - Date.parse(calls[0]!.sentAt)).toBeGreaterThanOrEqual(600);
    expect(released).toBeGreaterThanOrEqual(1);
  });

  it("an unanswered call whose fate Nova cannot show (Nova unreadable through the window and to the deadline) is left to an operator, never sent again", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]) });
    const d = driver(cloud, { lockInstances: false });
    await isolated(cloud, d);
    const [a] = await d.listInstances("src");
    cloud.faults.fail(504, { times: 1, match: { method: "POST", path: `/v2.1/servers/${a!.id}/action` } });
    const pending = d.evacuate(a!, "src", opts(1, 1_500, { noAnswerWindowMs: 500 }));
    // Once the call is out, every look at the server fails (well before its window ends).
    await waitForRequest(cloud, (q) => isEvacuatePost(q, a!.id));
    cloud.faults.fail(503, { match: { method: "GET", path: "/v2.1/servers" } });
    const r = await pending;
    expect(r).toMatchObject({ result: "failed", permanent: true });
    expect(r.message).toMatch(/^evacuate call got no answer .*Nova could not be read.*may have been received/);
    expect(actionsOn(cloud, a!.id)).toEqual(["evacuate 504"]);
  });

  it("a journaled call with no answer: no POST, Nova's evacuation of it followed to its end and the call settled from Nova's records", async () => {
    const cloud = await start({ scenario: scenario([vm("a"), vm("b")]), evacuationDurationMs: 300 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a, b] = await d.listInstances("src");
    // What the previous lifeboat did before it died: journaled the call, and Nova got it.
    const sentAt = new Date().toISOString();
    await driver(cloud).nova.evacuate(a!.id);
    const recorded: EvacuateCall[] = [];
    const record = (c: EvacuateCall): Promise<void> => (recorded.push(c), Promise.resolve());
    const r = await d.evacuate(a!, "src", opts(1, 10_000, { lastCall: { attempt: 1, sentAt, migrationsBefore: [] }, recordCall: record }));
    expect(r).toMatchObject({ result: "evacuated" });
    expect(cloud.requests.filter((q) => isEvacuatePost(q, a!.id))).toHaveLength(1);
    expect(recorded).toEqual([{ attempt: 1, sentAt, migrationsBefore: [], settled: { at: expect.any(String) as string, by: "nova-records" } }]);

    // A call that never reached Nova: nothing sent while its window runs (from the send, not
    // from the restart); after it, Nova's records show it did nothing: a transient failure.
    const old = new Date(Date.now() - 5_000).toISOString();
    const t0 = Date.now();
    const lost = await d.evacuate(b!, "src", opts(1, 60_000, { noAnswerWindowMs: 5_500, lastCall: { attempt: 1, sentAt: old, migrationsBefore: [] } }));
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(lost).toMatchObject({ result: "failed", permanent: false });
    expect(lost.message).toMatch(/^evacuate call was in flight when lifeboat stopped .*it did nothing/);
    expect(cloud.requests.filter((q) => isEvacuatePost(q, b!.id))).toHaveLength(0);
    // A settled call is over: the next attempt inspects and sends as usual.
    const again = await d.evacuate(b!, "src", opts(2, 10_000, { lastCall: { attempt: 1, sentAt: old, migrationsBefore: [], settled: { at: old, by: "answer" } } }));
    expect(again).toMatchObject({ result: "evacuated" });
    expect(cloud.requests.filter((q) => isEvacuatePost(q, b!.id))).toHaveLength(1);
  });
});

describe("lifeboat's locks", () => {
  const REASON = "lifeboat: evacuating from src (recovery r-1)";

  async function waitForCloud(cloud: SandboxCloud, done: () => boolean): Promise<void> {
    const until = Date.now() + 10_000;
    for (;;) {
      cloud.settle();
      if (done()) return;
      if (Date.now() > until) throw new Error("the cloud did not get there");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** `name` already evacuated to dst-1 while nobody watched, still carrying lifeboat's lock of an earlier process. */
  async function movedAndLocked(cloud: SandboxCloud, name: string, reason = REASON): Promise<void> {
    const s = cloud.state.serverByName(name)!;
    cloud.state.startEvacuation(s, { targetHost: "dst-1", stopAtEnd: false });
    await waitForCloud(cloud, () => s.host === "dst-1" && s.taskState === null);
    s.locked = true;
    s.lockedReason = reason;
  }

  async function until(check: () => boolean): Promise<void> {
    const end = Date.now() + 10_000;
    while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  }

  it("an aborted look at the lock is not an answer: evacuate() rejects with the abort, sends no unlock, and the re-run releases the lock", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a] = await d.listInstances("src");
    await movedAndLocked(cloud, "a");
    // Every look at the server is slow (the host's listing, then the lock check); the abort lands while the second one (the lock check) waits.
    const slow = cloud.faults.latency(1_500, { match: { method: "GET", path: new RegExp(`^/v2\\.1/servers/(detail|${a!.id})$`) } });
    const ctl = new AbortController();
    const run = d.evacuate(a!, "src", opts(1, 10_000, { signal: ctl.signal, lockReason: REASON }));
    await until(() => slow.hits() >= 2);
    expect(slow.hits()).toBe(2);
    ctl.abort(new AbortError("stage ended"));
    await expect(run).rejects.toThrow(/stage ended/);
    slow.remove();
    expect(actionsOn(cloud, a!.id)).toEqual([]);
    expect(cloud.state.servers.get(a!.id)).toMatchObject({ locked: true, lockedReason: REASON });

    const again = await d.evacuate(a!, "src", opts(2, 10_000, { lockReason: REASON }));
    expect(again).toMatchObject({ result: "evacuated", targetHost: "dst-1" });
    expect(again).not.toHaveProperty("lockLeft");
    expect(actionsOn(cloud, a!.id)).toEqual(["unlock 202"]);
    expect(cloud.state.servers.get(a!.id)!.locked).toBe(false);
  });

  it("an unlock Nova refuses, or a lock that cannot be looked at, is reported as left, never dropped", async () => {
    const cloud = await start({ scenario: scenario([vm("a"), vm("b")]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a, b] = (await d.listInstances("src")).sort((x, y) => x.name.localeCompare(y.name));
    await movedAndLocked(cloud, "a");
    await movedAndLocked(cloud, "b");
    const refused = cloud.faults.fail(500, { match: { method: "POST", path: `/v2.1/servers/${a!.id}/action` } });
    const ra = await d.evacuate(a!, "src", opts());
    expect(ra).toMatchObject({ result: "evacuated", lockLeft: expect.stringMatching(/^could not unlock it: /) as unknown });
    expect(refused.hits()).toBeGreaterThan(0);
    expect(cloud.state.servers.get(a!.id)!.locked).toBe(true);

    // The look before the evacuate answers (from the listings); the lock check after it, a GET of the server, finds Nova failing.
    const failing = cloud.faults.fail(503, { match: { method: "GET", path: `/v2.1/servers/${b!.id}` } });
    const rb = await d.evacuate(b!, "src", opts());
    expect(failing.hits()).toBeGreaterThan(0);
    expect(rb).toMatchObject({ result: "evacuated", lockLeft: expect.stringMatching(/^could not check whether lifeboat's lock is still on it/) as unknown });
    expect(cloud.state.servers.get(b!.id)!.locked).toBe(true);
  });

  it("an evacuation an earlier process started and locked is followed to its end and unlocked from the look that saw the end (no GET of the server); a lock seen only before the attempt is asked of Nova", async () => {
    const cloud = await start({ scenario: scenario([vm("a"), vm("b")]), evacuationDurationMs: 300 });
    const d = driver(cloud);
    await isolated(cloud, d);
    // The previous leader locked a and sent its evacuate, then died; this process never locked it.
    const s = cloud.state.serverByName("a")!;
    Object.assign(s, { locked: true, lockedReason: REASON });
    cloud.state.startEvacuation(s, { targetHost: "dst-1", stopAtEnd: false });
    const [a, b] = (await d.listInstances("src")).sort((x, y) => x.name.localeCompare(y.name));
    const gets = (id: string): number => cloud.requests.filter((r) => r.method === "GET" && r.path === `/v2.1/servers/${id}`).length;
    expect(await d.evacuate(a!, "src", opts(1, 10_000, { lockReason: REASON }))).toMatchObject({ result: "evacuated", targetHost: "dst-1" });
    expect(actionsOn(cloud, a!.id)).toEqual(["unlock 202"]);
    expect(gets(a!.id)).toBe(0);
    expect(cloud.state.servers.get(a!.id)!.locked).toBe(false);
    // b already arrived with lifeboat's lock while nobody watched: the look before the evacuate shows it, and the lock is asked of Nova before the unlock.
    await movedAndLocked(cloud, "b");
    expect(await d.evacuate(b!, "src", opts(1, 10_000, { lockReason: REASON }))).toMatchObject({ result: "evacuated" });
    expect(gets(b!.id)).toBe(1);
    expect(actionsOn(cloud, b!.id)).toEqual(["unlock 202"]);
  });

  it("after its leadership ended a process forgets the locks it took: a lock there later (the owner's) is judged by what Nova shows", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]), evacuationDurationMs: 50 });
    const d = driver(cloud);
    await isolated(cloud, d);
    const [a] = await d.listInstances("src");
    // This process locks and evacuates; its unlock is refused (its leadership ends right then).
    const refused = cloud.faults.fail(500, { match: { method: "POST", path: `/v2.1/servers/${a!.id}/action`, action: "unlock" } });
    expect(await d.evacuate(a!, "src", opts(1, 10_000, { lockReason: REASON }))).toMatchObject({ result: "evacuated", lockLeft: expect.any(String) as unknown });
    refused.remove();
    d.forgetLocks();
    // Meanwhile another instance released lifeboat's lock, and the owner locked the server.
    const s = cloud.state.servers.get(a!.id)!;
    Object.assign(s, { locked: true, lockedReason: "owner's" });
    expect(await d.evacuate(a!, "src", opts(2, 10_000, { lockReason: REASON }))).toMatchObject({ result: "evacuated" });
    expect(s).toMatchObject({ locked: true, lockedReason: "owner's" });
  });

  it("lists lifeboat's locks in one call and releases only a lock of the recovery asked for, once the server is idle", async () => {
    const cloud = await start({
      scenario: scenario([vm("ours"), vm("owners", { locked: true, lockedReason: "owner's" }), vm("other"), vm("busy", { evacuation: { durationMs: 60_000 } }), vm("free")]),
      evacuationDurationMs: 50,
    });
    const d = driver(cloud);
    await isolated(cloud, d);
    const id = (n: string): string => cloud.state.serverByName(n)!.id;
    await movedAndLocked(cloud, "ours");
    await movedAndLocked(cloud, "other", "lifeboat: evacuating from src (recovery r-2)");
    const busy = cloud.state.serverByName("busy")!;
    cloud.state.startEvacuation(busy, { targetHost: "dst-2", stopAtEnd: false });
    busy.locked = true;
    busy.lockedReason = REASON;

    const before = cloud.requests.length;
    const locks = await d.listLifeboatLocks();
    expect(cloud.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual(["GET /v2.1/servers/detail"]);
    expect(locks!.map((l) => l.name).sort()).toEqual(["busy", "other", "ours"]);
    expect(locks!.find((l) => l.name === "ours")).toEqual({ id: id("ours"), name: "ours", host: "dst-1", taskState: null, reason: REASON });
    expect(locks!.find((l) => l.name === "busy")!.taskState).toBe("rebuilding");

    expect(await d.releaseLifeboatLock(id("ours"), "r-1")).toBe("unlocked");
    expect(await d.releaseLifeboatLock(id("ours"), "r-1")).toBe("not-locked");
    expect(await d.releaseLifeboatLock(id("owners"), "r-1")).toBe("locked-by-someone-else");
    expect(await d.releaseLifeboatLock(id("other"), "r-1")).toBe("locked-for-another-recovery");
    await expect(d.releaseLifeboatLock(id("busy"), "r-1")).rejects.toThrow(/still busy in Nova \(task rebuilding\)/);
    const free = id("free");
    expect(await d.releaseLifeboatLock(free, "r-1")).toBe("not-locked");
    cloud.state.servers.delete(free);
    expect(await d.releaseLifeboatLock(free, "r-1")).toBe("gone");
    expect(cloud.state.servers.get(id("owners"))).toMatchObject({ locked: true, lockedReason: "owner's" });
    expect(cloud.state.servers.get(id("other"))!.locked).toBe(true);
    expect(cloud.state.servers.get(busy.id)!.locked).toBe(true);
  });

  it("below 2.73 lock reasons are not visible: no listing, and an owed unlock takes off whatever lock is there", async () => {
    const cloud = await start({ scenario: scenario([vm("a")]) });
    const d = driver(cloud, { microversions: ["2.53"] });
    await d.start();
    const s = cloud.state.serverByName("a")!;
    s.locked = true;
    s.lockedReason = null;
    expect(await d.listLifeboatLocks()).toBeNull();
    expect(cloud.requests.filter((r) => r.path === "/v2.1/servers/detail")).toEqual([]);
    expect(await d.releaseLifeboatLock(s.id, "r-1")).toBe("unlocked");
    expect(s.locked).toBe(false);
  });
});
