import { afterEach, describe, expect, it } from "vitest";
import { OpenStackApiError } from "../../src/openstack/types.js";
import type { KeystoneSession } from "../../src/openstack/keystone.js";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import type { SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import { capturingLogger, sessionFor } from "./support/session.js";

/**
 * The session's pace of calls to Nova (config `openstack.nova_rate_limit`), against the
 * simulated cloud: one rate for all callers, and a pause of every Nova call when Nova answers
 * 429 or 503 with Retry-After — after which a GET is sent again and a POST never is.
 */

const clouds: SandboxCloud[] = [];
const sessions: KeystoneSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) s.close();
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

async function site(): Promise<SandboxCloud> {
  const c = await startSandboxCloud({ generate: { hosts: 2, serversPerHost: 2 } });
  clouds.push(c);
  return c;
}

function ms(q: SimRequest): number {
  return Date.parse(q.at);
}

const computeGets = (cloud: SandboxCloud, path: string): SimRequest[] => cloud.requests.filter((q) => q.service === "compute" && q.method === "GET" && q.path === path);

describe("the pace of calls to Nova", () => {
  it("at most requests_per_second, all callers together, after a burst of one second's worth", async () => {
    const cloud = await site();
    const s = sessionFor(cloud, { nova_rate_limit: { requests_per_second: 4 } });
    sessions.push(s);
    await s.request({ service: "identity", method: "GET", path: "/v3/role_assignments" });
    const from = cloud.requests.length;
    await Promise.all(Array.from({ length: 12 }, (_, i) => s.request({ service: "compute", method: "GET", path: i % 2 ? "/os-services" : "/servers/detail" })));
    const sent = cloud.requests.slice(from).filter((q) => q.service === "compute");
    expect(sent).toHaveLength(12);
    // 4 at once, then one per 250 ms: the 12th no sooner than 2 s after the first.
    expect(ms(sent[11]!) - ms(sent[0]!)).toBeGreaterThanOrEqual(1_900);
    // Keystone is not paced by Nova's limit.
    const t = Date.now();
    await Promise.all(Array.from({ length: 8 }, () => s.request({ service: "identity", method: "GET", path: "/v3/role_assignments" })));
    expect(cloud.requests.filter((q) => q.service === "identity" && Date.parse(q.at) >= t)).toHaveLength(8);
  }, 30_000);

  it("a 429 with Retry-After pauses every call to Nova until then; the GET is sent again afterwards, once", async () => {
    const cloud = await site();
    const log = capturingLogger("info");
    const s = sessionFor(cloud, { retries: 3 }, { logger: log.logger });
    sessions.push(s);
    await s.request({ service: "compute", method: "GET", path: "/" });
    cloud.faults.slowDown(2, { times: 1, match: { service: "compute", method: "GET", path: "/v2.1/os-services" } });
    const services = s.request({ service: "compute", method: "GET", path: "/os-services" });
    // Another caller's request while the pause holds (once the session has read the 429).
    while (!/Nova asks lifeboat to slow down/.test(log.text())) await new Promise((r) => setTimeout(r, 10));
    const servers = s.request({ service: "compute", method: "GET", path: "/servers/detail" });
    expect((await services).status).toBe(200);
    expect((await servers).status).toBe(200);
    const [limited, again] = computeGets(cloud, "/v2.1/os-services");
    expect(limited!.status).toBe(429);
    expect(again!.status).toBe(200);
    expect(computeGets(cloud, "/v2.1/os-services")).toHaveLength(2);
    // Nothing reached Nova during the pause.
    expect(ms(again!) - ms(limited!)).toBeGreaterThanOrEqual(1_900);
    expect(ms(computeGets(cloud, "/v2.1/servers/detail")[0]!) - ms(limited!)).toBeGreaterThanOrEqual(1_900);
  }, 30_000);

  it("a second 429 after the pause reaches the caller: a GET is sent twice at most", async () => {
    const cloud = await site();
    const s = sessionFor(cloud, { retries: 3 });
    sessions.push(s);
    await s.request({ service: "compute", method: "GET", path: "/" });
    const limited = cloud.faults.slowDown(1, { times: 3, match: { service: "compute", method: "GET", path: "/v2.1/os-services" } });
    const err = await s.request({ service: "compute", method: "GET", path: "/os-services" }).catch((e: unknown) => e);
    expect((err as OpenStackApiError).status).toBe(429);
    expect(limited.hits()).toBe(2);
    expect(computeGets(cloud, "/v2.1/os-services").map((q) => q.status)).toEqual([429, 429]);
  }, 30_000);

  it("a POST answered 429 is not sent again: the caller gets the 429 (Nova did not take it) and decides", async () => {
    const cloud = await site();
    const s = sessionFor(cloud, { retries: 3 });
    sessions.push(s);
    const id = [...cloud.state.servers.keys()][0]!;
    cloud.faults.slowDown(1, { times: 1, match: { service: "compute", method: "POST" } });
    const err = await s.request({ service: "compute", method: "POST", path: `/servers/${id}/action`, body: { lock: null } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenStackApiError);
    expect((err as OpenStackApiError).status).toBe(429);
    expect(cloud.requests.filter((q) => q.method === "POST" && q.service === "compute")).toHaveLength(1);
    expect(cloud.state.servers.get(id)!.locked).toBe(false);
  }, 30_000);

  it("the pause is bounded by max_retry_after_seconds", async () => {
    const cloud = await site();
    const s = sessionFor(cloud, { retries: 3, nova_rate_limit: { max_retry_after_seconds: 1 } });
    sessions.push(s);
    await s.request({ service: "compute", method: "GET", path: "/" });
    cloud.faults.slowDown(3600, { times: 1, status: 503, match: { service: "compute", path: "/v2.1/os-services" } });
    expect((await s.request({ service: "compute", method: "GET", path: "/os-services" })).status).toBe(200);
    const [limited, again] = computeGets(cloud, "/v2.1/os-services");
    expect(limited!.status).toBe(503);
    expect(ms(again!) - ms(limited!)).toBeGreaterThanOrEqual(900);
  }, 30_000);
});
