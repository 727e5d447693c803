import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CloudReachability, trackReachability } from "../../src/openstack/reachability.js";
import { FRESH_READ } from "../../src/domain/ports/cloud.js";
import { silentLogger } from "../../src/logging.js";
import { openstackSchema } from "../../src/openstack/config.js";
import { createKeystoneSession } from "../../src/openstack/keystone.js";
import { NovaClient } from "../../src/openstack/nova.js";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import type { Config } from "../../src/config/schema.js";
import { etcdStoreSchema } from "../../src/store/config.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { makeLifeboat, startStack, type Stack } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";
import { waitFor } from "../kit/http.js";

/**
 * /readyz: the store (required), and — without calling anyone — whether a leader is known
 * and whether the cloud answered lifeboat's own last calls (advisory: a lifeboat whose cloud
 * is down keeps journaling alerts, so it stays in the load balancer).
 */

interface Ready {
  status: string;
  checks: Record<string, { ok: boolean; detail?: string; required?: boolean }>;
}

async function readyz(url: string): Promise<{ code: number; body: Ready }> {
  const res = await fetch(`${url}/readyz`);
  return { code: res.status, body: (await res.json()) as Ready };
}

describe("cloud reachability, from the calls lifeboat makes anyway", () => {
  let cloud: SandboxCloud;
  beforeAll(async () => {
    cloud = await startSandboxCloud();
  });
  afterAll(async () => {
    await cloud?.close();
  });

  function tracked(timeoutSeconds = 5) {
    const reach = new CloudReachability();
    const session = trackReachability(
      createKeystoneSession(openstackSchema.parse({ auth: cloud.admin, timeout_seconds: timeoutSeconds, retries: 0 }), { logger: silentLogger(), env: {} }),
      reach,
    );
    return { reach, session, nova: new NovaClient(session, { logger: silentLogger() }) };
  }

  it("not contacted yet, then every service that answered; an answer is an answer, even a 404", async () => {
    const { reach, session, nova } = tracked();
    expect(reach.readiness()).toEqual({ ok: true, required: false, detail: "not contacted yet" });
    await nova.negotiate();
    await expect(session.request({ service: "compute", method: "GET", path: "/os-no-such-thing" })).rejects.toThrow();
    const r = reach.readiness();
    expect(r).toMatchObject({ ok: true, required: false });
    expect(r.detail).toMatch(/^compute answered \d+ s ago$/);
    session.close();
  });

  it("a 5xx or no answer makes it not ok, with the reason; the next answer makes it ok again", async () => {
    const { reach, session, nova } = tracked();
    await nova.negotiate();
    const fault = cloud.faults.fail(503, { match: { service: "compute" } });
    await expect(nova.listServices()).rejects.toThrow();
    fault.remove();
    expect(reach.readiness()).toMatchObject({ ok: false, required: false });
    expect(reach.readiness().detail).toMatch(/^compute unreachable \(.*503.*\) \d+ s ago$/);
    await nova.listServices();
    expect(reach.readiness().ok).toBe(true);
    session.close();
  });

  it("Keystone hanging is recorded against identity; our own cancellations are not recorded", async () => {
    const { reach, session, nova } = tracked(1);
    const hang = cloud.faults.hang({ match: { service: "identity" } });
    try {
      await expect(nova.negotiate()).rejects.toThrow(/timed out/);
    } finally {
      hang.remove();
    }
    expect(reach.readiness()).toMatchObject({ ok: false });
    expect(reach.readiness().detail).toMatch(/^identity unreachable \(POST .*\/auth\/tokens timed out after 1000 ms\)/);

    const fresh = tracked();
    await expect(fresh.nova.negotiate(AbortSignal.abort(new Error("cancelled by us")))).rejects.toThrow("cancelled by us");
    expect(fresh.reach.readiness().detail).toBe("not contacted yet");
    session.close();
    fresh.session.close();
  });

  it("refused credentials are unreachable for lifeboat's purposes", async () => {
    const reach = new CloudReachability();
    const session = trackReachability(
      createKeystoneSession(openstackSchema.parse({ auth: { ...cloud.admin, password: "wrong" }, timeout_seconds: 5, retries: 0 }), { logger: silentLogger(), env: {} }),
      reach,
    );
    await expect(session.authenticate()).rejects.toThrow(/401|authentication/i);
    expect(reach.readiness()).toMatchObject({ ok: false });
    expect(reach.readiness().detail).toMatch(/^identity unreachable/);
    session.close();
  });
});

describe("/readyz of a running lifeboat", () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it("ready with the real drivers; degraded (still 200) when the cloud stops answering; probes never call the cloud", async () => {
    stack = await startStack();
    const s = stack;
    const first = await readyz(s.app.url);
    expect(first.code).toBe(200);
    expect(first.body.status).toBe("ready");
    expect(first.body.checks.store).toEqual({ ok: true });
    expect(first.body.checks.leader).toEqual({ ok: true, detail: "single instance, running recoveries" });
    // Start-up negotiated with Nova: that is what /readyz knows.
    expect(first.body.checks.openstack).toMatchObject({ ok: true, required: false });
    expect(first.body.checks.openstack!.detail).toMatch(/compute answered/);

    const fault = s.sandbox.cloud.faults.fail(500, { match: { service: "compute" } });
    // A new request (the driver's shared listing from start-up would answer otherwise).
    await expect(s.app.drivers.evacuation.listComputeServices(undefined, FRESH_READ)).rejects.toThrow();
    const before = s.sandbox.cloud.requests.length;
    const during = await Promise.all([readyz(s.app.url), readyz(s.app.url), readyz(s.app.url)]);
    expect(s.sandbox.cloud.requests.length).toBe(before);
    for (const d of during) {
      expect(d.code).toBe(200);
      expect(d.body.status).toBe("degraded");
      expect(d.body.checks.openstack).toMatchObject({ ok: false, required: false });
      expect(d.body.checks.openstack!.detail).toMatch(/compute unreachable/);
    }
    fault.remove();
    await s.app.drivers.evacuation.listComputeServices(undefined, FRESH_READ);
    expect((await readyz(s.app.url)).body.status).toBe("ready");
  }, 60_000);

  it("a store that cannot be written makes it not ready (503)", async () => {
    const t = makeLifeboat(lifeboatConfig());
    await t.app.start({ listen: "127.0.0.1:0" });
    try {
      expect((await readyz(t.app.url)).code).toBe(200);
      await t.app.store.close();
      const r = await readyz(t.app.url);
      expect(r.code).toBe(503);
      expect(r.body.status).toBe("not ready");
      expect(r.body.checks.store!.ok).toBe(false);
    } finally {
      await t.app.stop().catch(() => undefined);
    }
  });
});

describe("/readyz with etcd (active-passive)", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it("names the leader: this instance leads, the other follows", async () => {
    const config = (id: string): Config => ({
      ...lifeboatConfig(),
      store: etcdStoreSchema.parse({ driver: "etcd", endpoints: [etcd.endpoint], prefix: "/readyz-test/", instance_id: id, lease_ttl_seconds: 2, request_timeout_seconds: 1 }),
    });
    const a = makeLifeboat(config("inst-a"));
    await a.app.start({ listen: "127.0.0.1:0" });
    const b = makeLifeboat(config("inst-b"));
    try {
      await waitFor(async () => (await readyz(a.app.url)).body.checks.leader?.ok, 15_000, "a leads");
      await b.app.start({ listen: "127.0.0.1:0" });
      const ra = await readyz(a.app.url);
      const rb = await readyz(b.app.url);
      expect(ra.body.checks.leader).toEqual({ ok: true, detail: "this instance (inst-a) leads" });
      expect(rb.body.checks.leader).toEqual({ ok: true, detail: "inst-a leads; this instance follows" });
      expect([ra.code, rb.code]).toEqual([200, 200]);
    } finally {
      await b.app.stop().catch(() => undefined);
      await a.app.stop().catch(() => undefined);
    }
  }, 60_000);
});
