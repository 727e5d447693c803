import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import { call, loadFixture } from "./support/fixtures.js";
import { expectLikeFixture, FIXTURE_IDS, fixtureScenario, replay } from "./support/replay.js";

/**
 * The simulated cloud replays every captured call of a real Zed cloud in the order they
 * were captured (isolate compute-2, evacuate its servers, look at the results) and must
 * answer like it: status, error messages, body keys and types, headers.
 */
describe("simulated cloud vs answers captured from a real cloud", () => {
  let cloud: SandboxCloud;
  let token: string;

  beforeAll(async () => {
    cloud = await startSandboxCloud({ scenario: fixtureScenario(), evacuationDurationMs: 200, serviceDownTimeSeconds: 60 });
  });
  afterAll(async () => {
    await cloud.close();
  });

  async function waitForServer(id: string, done: (s: Record<string, unknown>) => boolean): Promise<void> {
    const until = Date.now() + 10_000;
    for (;;) {
      const r = await call(`${cloud.endpoints.compute}/servers/${id}`, { token, microversion: "compute 2.53" });
      if (done((r.body as { server: Record<string, unknown> }).server)) return;
      if (Date.now() > until) throw new Error(`server ${id} did not reach the expected state`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it("Keystone: project-scoped password token (201, X-Subject-Token, expires_at, catalog)", async () => {
    const got = await expectLikeFixture(cloud, "keystone-token-password-project-scoped", undefined);
    token = got.headers.get("x-subject-token")!;
    expect(token.length).toBeGreaterThan(20);
    const body = got.body as { token: { catalog: { type: string }[]; expires_at: string; issued_at: string; roles: { name: string }[] } };
    expect(body.token.catalog.map((c) => c.type).sort()).toEqual(["compute", "identity", "placement"]);
    expect(Date.parse(body.token.expires_at) - Date.parse(body.token.issued_at)).toBe(3600_000);
    expect(body.token.roles.map((r) => r.name).sort()).toEqual(["admin", "member", "reader"]);
  });

  it("Keystone: wrong password → 401 with Keystone's body", async () => {
    await expectLikeFixture(cloud, "keystone-token-wrong-password", undefined);
  });

  it("Keystone: effective role assignments with names, implied roles included", async () => {
    await expectLikeFixture(cloud, "keystone-role-assignments-admin-project", token);
  });

  it("Keystone: a user without email has no email field", async () => {
    const got = await expectLikeFixture(cloud, "keystone-user", token);
    expect(got.body).not.toHaveProperty("user.email");
  });

  it("Nova refuses a bad token with keystonemiddleware's 401", async () => {
    await expectLikeFixture(cloud, "keystone-token-expired-or-invalid", "not-a-valid-token");
  });

  it("Nova version documents announce 2.1–2.93", async () => {
    const root = await expectLikeFixture(cloud, "nova-versions-root", token);
    expect(root.body).toEqual(
      expect.objectContaining({ versions: expect.arrayContaining([expect.objectContaining({ id: "v2.1", version: "2.93", min_version: "2.1" })]) as unknown }),
    );
    const doc = await expectLikeFixture(cloud, "nova-version-v2.1", token);
    expect((doc.body as { version: { version: string } }).version.version).toBe("2.93");
  });

  it("unsupported microversions → 406 with Nova's message", async () => {
    await expectLikeFixture(cloud, "nova-unsupported-microversion-406", token);
    await expectLikeFixture(cloud, "nova-servers-on-host-2.95", token);
  });

  it("evacuate while the source service is still up → 400 'still in use'", async () => {
    await expectLikeFixture(cloud, "nova-evacuate-while-service-up-400", token);
  });

  it("a dead host's service goes down after service_down_time, still enabled and not forced", async () => {
    cloud.killHost("compute-2");
    const before = await replay(cloud, "nova-service-of-dead-host-2.53", token);
    expect((before.body as { services: { state: string }[] }).services[0]!.state).toBe("up");
    cloud.clock.advance(61_000);
    const got = await expectLikeFixture(cloud, "nova-service-of-dead-host-2.53", token);
    expect((got.body as { services: unknown[] }).services[0]).toEqual(
      expect.objectContaining({ state: "down", status: "enabled", forced_down: false, disabled_reason: null }),
    );
  });

  it("force down (twice: idempotent), the old URL refused at 2.53, then disable with a reason", async () => {
    const first = await expectLikeFixture(cloud, "nova-service-force-down-2.53", token);
    expect((first.body as { service: { state: string; forced_down: boolean } }).service).toEqual(
      expect.objectContaining({ state: "down", forced_down: true, status: "enabled" }),
    );
    await expectLikeFixture(cloud, "nova-service-force-down-again-2.53", token);
    await expectLikeFixture(cloud, "nova-service-force-down-old-url-2.53-400", token);
    const dis = await expectLikeFixture(cloud, "nova-service-disable-with-reason-2.53", token);
    expect((dis.body as { service: { disabled_reason: string } }).service.disabled_reason).toBe("lifeboat: recovery 42 fenced 2026-11-25T13:00:00Z");
  });

  it("os-services: integer ids at 2.1 without forced_down, UUIDs and forced_down at 2.53", async () => {
    const v21 = await expectLikeFixture(cloud, "nova-services-2.1", token);
    expect((v21.body as { services: { id: unknown }[] }).services.every((s) => typeof s.id === "number")).toBe(true);
    const v253 = await expectLikeFixture(cloud, "nova-services-2.53", token);
    const c2 = (v253.body as { services: { host: string; id: string }[] }).services.find((s) => s.host === "compute-2");
    expect(c2?.id).toBe(FIXTURE_IDS.compute2.service);
  });

  it("lock with a reason (2.73), the locked server, unlock", async () => {
    await expectLikeFixture(cloud, "nova-lock-with-reason-2.73", token);
    const got = await expectLikeFixture(cloud, "nova-server-locked-2.73", token);
    expect((got.body as { server: { locked: boolean; locked_reason: string } }).server).toEqual(
      expect.objectContaining({ locked: true, locked_reason: "lifeboat evacuation" }),
    );
    await expectLikeFixture(cloud, "nova-unlock", token);
  });

  it("evacuate errors: unknown server 404, same host 400", async () => {
    await expectLikeFixture(cloud, "nova-evacuate-unknown-server-404", token);
    await expectLikeFixture(cloud, "nova-evacuate-same-host-400", token);
  });

  it("evacuate → 200 empty; REBUILD during; ACTIVE on another host after; migration done", async () => {
    await expectLikeFixture(cloud, "nova-evacuate-2.53", token);
    const during = await expectLikeFixture(cloud, "nova-server-during-evacuation", token);
    expect((during.body as { server: Record<string, unknown> }).server).toEqual(
      expect.objectContaining({ status: "REBUILD", "OS-EXT-STS:task_state": "rebuilding", "OS-EXT-SRV-ATTR:host": "compute-2", host_status: "DOWN" }),
    );
    await waitForServer(FIXTURE_IDS.fx5, (s) => s["OS-EXT-STS:task_state"] === null);
    const after = await expectLikeFixture(cloud, "nova-server-after-evacuation", token);
    const s = (after.body as { server: Record<string, unknown> }).server;
    expect(s.status).toBe("ACTIVE");
    expect(["compute-1", "compute-3"]).toContain(s["OS-EXT-SRV-ATTR:host"]);
    const m53 = await expectLikeFixture(cloud, "nova-migrations-evacuation-2.53", token);
    expect((m53.body as { migrations: { status: string; source_compute: string }[] }).migrations).toEqual([
      expect.objectContaining({ status: "done", source_compute: "compute-2", migration_type: "evacuation" }),
    ]);
    await expectLikeFixture(cloud, "nova-migrations-evacuation-2.59", token);
  });

  it("servers of a host: servers_links paging at 2.53, and the 2.73 / 2.93 views", async () => {
    const p1 = await expectLikeFixture(cloud, "nova-servers-on-host-2.53-page1", token);
    expect((p1.body as { servers: { name: string }[] }).servers.map((s) => s.name)).toEqual(["fx-4", "fx-3"]);
    const p2 = await expectLikeFixture(cloud, "nova-servers-on-host-2.53-page2", token);
    expect((p2.body as { servers: { name: string }[] }).servers.map((s) => s.name)).toEqual(["fx-2", "fx-1"]);
    const shutoff = (p2.body as { servers: Record<string, unknown>[] }).servers[0]!;
    expect(shutoff).not.toHaveProperty("progress");
    await expectLikeFixture(cloud, "nova-servers-on-host-2.73", token);
    await expectLikeFixture(cloud, "nova-servers-on-host-2.93", token);
  });

  it("a SHUTOFF server is evacuated (200) and stays SHUTOFF on its new host at 2.53", async () => {
    await expectLikeFixture(cloud, "nova-evacuate-shutoff-server-2.53", token);
    await waitForServer(FIXTURE_IDS.fx2, (s) => s["OS-EXT-STS:task_state"] === null);
    const got = await expectLikeFixture(cloud, "nova-shutoff-server-after-evacuation", token);
    expect((got.body as { server: Record<string, unknown> }).server).toEqual(
      expect.objectContaining({ status: "SHUTOFF", "OS-EXT-STS:vm_state": "stopped", "OS-EXT-STS:power_state": 4 }),
    );
  });

  it("un-forcing the host is refused while `done` evacuation migrations remain", async () => {
    await expectLikeFixture(cloud, "nova-service-unforce-while-done-migrations-400", token);
  });

  it("hypervisors: figures at 2.53, trimmed at 2.88", async () => {
    const h53 = await expectLikeFixture(cloud, "nova-hypervisors-detail-2.53", token);
    cloud.settle();
    for (const h of (h53.body as { hypervisors: Record<string, unknown>[] }).hypervisors) {
      const here = cloud.state.serversOn(h.hypervisor_hostname as string).length;
      // compute-2 still holds the allocations of its `done` evacuations (until nova-compute restarts there).
      const held = h.hypervisor_hostname === "compute-2" ? 2 : 0;
      expect({ host: h.hypervisor_hostname, used: h.memory_mb_used, vms: h.running_vms }).toEqual({
        host: h.hypervisor_hostname,
        used: 512 + 64 * (here + held),
        vms: here,
      });
    }
    const h88 = await expectLikeFixture(cloud, "nova-hypervisors-detail-2.88", token);
    expect((h88.body as { hypervisors: Record<string, unknown>[] }).hypervisors[0]).not.toHaveProperty("vcpus");
  });

  it("Placement: resource providers, inventories, usages; flavors", async () => {
    await expectLikeFixture(cloud, "placement-resource-providers", token);
    const inv = await expectLikeFixture(cloud, "placement-inventories", token);
    expect((inv.body as { inventories: { MEMORY_MB: { reserved: number } } }).inventories.MEMORY_MB.reserved).toBe(512);
    const usage = await expectLikeFixture(cloud, "placement-usages", token);
    expect((usage.body as { usages: { MEMORY_MB: number } }).usages.MEMORY_MB).toBe(64 * cloud.state.serversOn("compute-1").length);
    await expectLikeFixture(cloud, "nova-flavors-detail", token);
  });

  it("the request log recorded every call in order, with microversions", () => {
    const forced = cloud.requests.findIndex((r) => r.method === "PUT" && r.path === `/v2.1/os-services/${FIXTURE_IDS.compute2.service}`);
    const evac = cloud.requests.findIndex((r) => r.method === "POST" && r.path === `/v2.1/servers/${FIXTURE_IDS.fx5}/action` && r.status === 200);
    expect(forced).toBeGreaterThan(0);
    expect(evac).toBeGreaterThan(forced);
    expect(cloud.requests[evac]!.microversion).toBe("compute 2.53");
    expect(loadFixture("nova-evacuate-2.53").request.body).toEqual(cloud.requests[evac]!.body);
  });
});
