import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/util/clock.js";
import { EndpointNotFoundError } from "../../src/openstack/catalog.js";
import { OpenStackConnectionError } from "../../src/openstack/errors.js";
import { OpenStackApiError } from "../../src/openstack/types.js";
import { renewalMargin, type KeystoneSession } from "../../src/openstack/keystone.js";
import { startSandboxCloud, type SandboxCloud, type SandboxCloudOptions } from "../../packages/sandbox/src/cloud.js";
import { capturingLogger, sessionFor } from "./support/session.js";

const clouds: SandboxCloud[] = [];
const sessions: KeystoneSession[] = [];
async function start(opts: SandboxCloudOptions = {}): Promise<SandboxCloud> {
  const c = await startSandboxCloud(opts);
  clouds.push(c);
  return c;
}
function track(s: KeystoneSession): KeystoneSession {
  sessions.push(s);
  return s;
}
afterEach(async () => {
  sessions.splice(0).forEach((s) => s.close());
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

const services = (s: KeystoneSession) => s.request<{ services: unknown[] }>({ service: "compute", method: "GET", path: "/os-services", microversion: "2.53" });
const authPosts = (c: SandboxCloud) => c.requests.filter((r) => r.service === "identity" && r.method === "POST" && r.path === "/v3/auth/tokens");
const computeCalls = (c: SandboxCloud) => c.requests.filter((r) => r.service === "compute").map((r) => `${r.method} ${r.status}`);

describe("authentication", () => {
  it("password with user and project by name: token, catalog endpoint, microversion header", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud));
    const r = await services(s);
    expect(r.status).toBe(200);
    expect(r.data.services.length).toBeGreaterThan(0);
    expect(s.tokenInfo()).toMatchObject({ userName: "admin", projectName: "admin", methods: ["password"] });
    expect(cloud.requests.at(-1)).toMatchObject({ path: "/v2.1/os-services", microversion: "compute 2.53", interface: "public" });
    expect(s.describe()).toContain("user admin@Default in project admin@Default");
  });

  it("password with user and project by id", async () => {
    const cloud = await start();
    const admin = [...cloud.state.users.values()].find((u) => u.name === "admin")!;
    const project = [...cloud.state.projects.values()].find((p) => p.name === "admin")!;
    const s = track(sessionFor(cloud, { auth: { auth_url: cloud.url, user_id: admin.id, password: cloud.admin.password, project_id: project.id } }));
    expect((await services(s)).status).toBe(200);
    expect(authPosts(cloud)[0]!.body).toEqual({
      auth: { identity: { methods: ["password"], password: { user: { id: admin.id, password: cloud.admin.password } } }, scope: { project: { id: project.id } } },
    });
  });

  it("application credential: no scope sent, project from the credential", async () => {
    const cloud = await start();
    const ac = cloud.applicationCredential!;
    const s = track(sessionFor(cloud, { auth: { auth_url: cloud.url, application_credential_id: ac.id, application_credential_secret: ac.secret } }));
    expect((await services(s)).status).toBe(200);
    expect(authPosts(cloud)[0]!.body).not.toHaveProperty("auth.scope");
    expect(s.tokenInfo()).toMatchObject({ methods: ["application_credential"], projectName: "admin" });
  });

  it("a wrong password is a 401 OpenStackApiError with Keystone's message, not retried", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud, { auth: { ...cloud.admin, password: "wrong" } }));
    const err = await services(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenStackApiError);
    expect((err as OpenStackApiError).status).toBe(401);
    expect((err as OpenStackApiError).message).toContain("The request you have made requires authentication.");
    expect(authPosts(cloud)).toHaveLength(1);
  });

  it("clouds.yaml and OS_* sources authenticate too", async () => {
    const cloud = await start();
    const dir = mkdtempSync(path.join(tmpdir(), "lifeboat-ks-"));
    try {
      const a = cloud.admin;
      writeFileSync(
        path.join(dir, "clouds.yaml"),
        `clouds:\n  sandbox:\n    auth:\n      auth_url: ${a.auth_url}\n      username: ${a.username}\n      project_name: ${a.project_name}\n      user_domain_name: Default\n      project_domain_name: Default\n`,
      );
      writeFileSync(path.join(dir, "secure.yaml"), `clouds:\n  sandbox:\n    auth:\n      password: ${a.password}\n`);
      const fromYaml = track(sessionFor(cloud, { auth: undefined, cloud: "sandbox" }, { cwd: dir, homeDir: dir }));
      expect((await services(fromYaml)).status).toBe(200);
      const env = {
        OS_AUTH_URL: a.auth_url,
        OS_USERNAME: a.username,
        OS_PASSWORD: a.password,
        OS_PROJECT_NAME: a.project_name,
        OS_USER_DOMAIN_NAME: "Default",
        OS_PROJECT_DOMAIN_NAME: "Default",
      };
      const fromEnv = track(sessionFor(cloud, { auth: undefined }, { env, cwd: dir, homeDir: dir }));
      expect((await services(fromEnv)).status).toBe(200);
      expect(fromEnv.credentials.source).toBe("OS_* environment variables");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("token lifetime", () => {
  it("renews the token before expires_at (5 min margin on a 1 h token), with no 401", async () => {
    const cloud = await start({ tokenLifetimeSeconds: 3600 });
    const s = track(sessionFor(cloud));
    await services(s);
    cloud.clock.advance(3000_000);
    await services(s);
    expect(authPosts(cloud)).toHaveLength(1);
    cloud.clock.advance(400_000); // now 3400 s: inside the margin
    await services(s);
    expect(authPosts(cloud)).toHaveLength(2);
    expect(computeCalls(cloud)).toEqual(["GET 200", "GET 200", "GET 200"]);
    expect(renewalMargin(3600_000)).toBe(300_000);
    expect(renewalMargin(60_000)).toBe(6000);
  });

  it("a token that expires mid-series (clocks disagree): 401, one re-authentication, the call succeeds", async () => {
    const cloud = await start({ tokenLifetimeSeconds: 3600 });
    const s = track(sessionFor(cloud, {}, { clock: systemClock }));
    for (let i = 0; i < 3; i++) await services(s);
    cloud.clock.advance(3601_000); // the cloud's clock runs ahead: our token is dead there
    for (let i = 0; i < 3; i++) expect((await services(s)).status).toBe(200);
    expect(authPosts(cloud)).toHaveLength(2);
    expect(computeCalls(cloud)).toEqual(["GET 200", "GET 200", "GET 200", "GET 401", "GET 200", "GET 200", "GET 200"]);
  });

  it("a second 401 right after re-authenticating is an error: re-authenticate once only", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud));
    await services(s);
    cloud.faults.unauthorized({ times: 2 });
    const err = await services(s).catch((e: unknown) => e);
    expect((err as OpenStackApiError).status).toBe(401);
    expect(authPosts(cloud)).toHaveLength(2);
    expect(computeCalls(cloud)).toEqual(["GET 200", "GET 401", "GET 401"]);
  });
});

describe("endpoints", () => {
  it("picks the catalog endpoint by interface and region", async () => {
    const cloud = await start({ regions: ["RegionOne", "RegionTwo"] });
    const s = track(sessionFor(cloud, { interface: "internal", region_name: "RegionTwo" }));
    await services(s);
    expect(cloud.requests.at(-1)).toMatchObject({ service: "compute", region: "RegionTwo", interface: "internal" });
    const pub = track(sessionFor(cloud));
    await services(pub);
    expect(cloud.requests.at(-1)).toMatchObject({ region: "RegionOne", interface: "public" });
    const nowhere = track(sessionFor(cloud, { region_name: "RegionNine" }));
    const err = await services(nowhere).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EndpointNotFoundError);
    expect((err as Error).message).toMatch(/no compute endpoint with interface public in region RegionNine .*public@RegionOne/);
  });

  it("endpoint_override wins over the catalog; identity paths carry /v3 whatever the catalog says", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud, { endpoint_override: { compute: `${cloud.baseUrl}/_/RegionOne/admin/compute/v2.1` } }));
    await services(s);
    expect(cloud.requests.at(-1)).toMatchObject({ service: "compute", interface: "admin" });
    const admin = [...cloud.state.users.values()].find((u) => u.name === "admin")!;
    const u = await s.request<{ user: { name: string } }>({ service: "identity", method: "GET", path: `/v3/users/${admin.id}` });
    expect(u.data.user.name).toBe("admin");
    expect(await s.endpoint("compute")).toBe(`${cloud.baseUrl}/_/RegionOne/admin/compute/v2.1`);
  });
});

describe("retries, timeouts, errors: the transport retries only what its caller cannot see", () => {
  it("a 5xx reaches the caller after one send, GET, PUT or POST alike, whatever openstack.retries says", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud, { retries: 3 }));
    await services(s);
    cloud.faults.fail(500, { times: 2, match: { method: "GET" } });
    expect(((await services(s).catch((e: unknown) => e)) as OpenStackApiError).status).toBe(500);
    expect(computeCalls(cloud)).toEqual(["GET 200", "GET 500"]);

    const vm = [...cloud.state.servers.values()][0]!;
    cloud.faults.fail(500, { times: 1, match: { method: "POST", service: "compute" } });
    const err = await s
      .request({ service: "compute", method: "POST", path: `/servers/${vm.id}/action`, body: { lock: null }, microversion: "2.53" })
      .catch((e: unknown) => e);
    expect((err as OpenStackApiError).status).toBe(500);
    expect((err as OpenStackApiError).message).toMatch(/^Unexpected API Error/);
    expect(cloud.requests.filter((r) => r.method === "POST" && r.service === "compute")).toHaveLength(1);

    // An idempotent PUT answered 503 without Retry-After: once, not openstack.retries + 1 times.
    const svc = cloud.state.hosts.get("compute-1")!.serviceUuid;
    cloud.faults.fail(503, { times: 1, match: { method: "PUT" } });
    const put = await s
      .request({ service: "compute", method: "PUT", path: `/os-services/${svc}`, body: { forced_down: true }, microversion: "2.53", idempotent: true })
      .catch((e: unknown) => e);
    expect((put as OpenStackApiError).status).toBe(503);
    expect(cloud.requests.filter((r) => r.method === "PUT").map((r) => r.status)).toEqual([503]);
  });

  it("a connection reset before any answer: an idempotent call is sent once more at once, a POST never", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud, { retries: 3 }));
    await services(s);
    cloud.faults.reset({ times: 1, match: { service: "compute" } });
    expect((await services(s)).status).toBe(200);
    expect(computeCalls(cloud)).toHaveLength(3);

    const svc = cloud.state.hosts.get("compute-1")!.serviceUuid;
    cloud.faults.reset({ times: 1, match: { method: "PUT" } });
    const put = await s.request({ service: "compute", method: "PUT", path: `/os-services/${svc}`, body: { forced_down: true }, microversion: "2.53", idempotent: true });
    expect(put.status).toBe(200);
    expect(cloud.requests.filter((r) => r.method === "PUT")).toHaveLength(2);

    // The same PUT not declared idempotent is not sent again.
    cloud.faults.reset({ times: 1, match: { method: "PUT" } });
    const once = await s.request({ service: "compute", method: "PUT", path: `/os-services/${svc}`, body: { forced_down: true }, microversion: "2.53" }).catch((e: unknown) => e);
    expect(once).toBeInstanceOf(OpenStackConnectionError);
    expect((once as OpenStackConnectionError).brokeBeforeAnswer).toBe(true);
    expect(cloud.requests.filter((r) => r.method === "PUT")).toHaveLength(3);

    const vm = [...cloud.state.servers.values()][0]!;
    cloud.faults.reset({ times: 1, match: { method: "POST", service: "compute" } });
    const post = await s.request({ service: "compute", method: "POST", path: `/servers/${vm.id}/action`, body: { lock: null }, microversion: "2.53" }).catch((e: unknown) => e);
    expect(post).toBeInstanceOf(OpenStackConnectionError);
    expect(cloud.requests.filter((r) => r.method === "POST" && r.service === "compute")).toHaveLength(1);
  });

  it("a second failure reaches the caller: an idempotent call is sent at most twice", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud, { retries: 3 }));
    await services(s);
    const resets = cloud.faults.reset({ match: { service: "compute" } });
    expect(await services(s).catch((e: unknown) => e)).toBeInstanceOf(OpenStackConnectionError);
    expect(resets.hits()).toBe(2);
    resets.remove();
    // A reset, then a 502: the 502 is the caller's.
    cloud.faults.reset({ times: 1, match: { service: "compute" } });
    cloud.faults.fail(502, { times: 1, match: { service: "compute" } });
    expect(((await services(s).catch((e: unknown) => e)) as OpenStackApiError).status).toBe(502);
    expect(cloud.requests.filter((r) => r.service === "compute")).toHaveLength(5);
  });

  it("a hanging call is bounded by timeout_seconds and not sent again (Nova may be working on it)", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud, { timeout_seconds: 0.3, retries: 3 }));
    await services(s);
    const hang = cloud.faults.hang({ times: 2, match: { service: "compute" } });
    const t0 = Date.now();
    const err = await services(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenStackConnectionError);
    expect((err as OpenStackConnectionError).timedOut).toBe(true);
    expect((err as OpenStackConnectionError).brokeBeforeAnswer).toBe(false);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(hang.hits()).toBe(1);
  });

  it("authentication retries a failing Keystone openstack.retries times: a token is what no step sees", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud, { retries: 2 }));
    cloud.faults.fail(503, { times: 2, match: { service: "identity", method: "POST" } });
    expect((await services(s)).status).toBe(200);
    expect(authPosts(cloud).map((r) => r.status)).toEqual([503, 503, 201]);

    const none = track(sessionFor(cloud, { retries: 0 }));
    cloud.faults.fail(503, { times: 1, match: { service: "identity", method: "POST" } });
    expect(((await services(none).catch((e: unknown) => e)) as OpenStackApiError).status).toBe(503);
    // Bad credentials are final at once.
    const bad = track(sessionFor(cloud, { retries: 2, auth: { ...cloud.admin, password: "wrong" } }));
    const before = authPosts(cloud).length;
    expect(((await services(bad).catch((e: unknown) => e)) as OpenStackApiError).status).toBe(401);
    expect(authPosts(cloud).length - before).toBe(1);
  });

  it("acceptStatus returns the answer instead of throwing; other errors carry Nova's message", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud));
    const r = await s.request({ service: "compute", method: "GET", path: "/servers/nope", microversion: "2.53", acceptStatus: [404] });
    expect(r.status).toBe(404);
    expect(r.data).toEqual({ itemNotFound: { code: 404, message: "Instance nope could not be found." } });
    const err = await s.request({ service: "compute", method: "GET", path: "/servers/nope", microversion: "2.53" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenStackApiError);
    expect((err as OpenStackApiError).message).toBe("Instance nope could not be found.");
  });

  it("an aborted call stops at once and is not retried", async () => {
    const cloud = await start();
    const s = track(sessionFor(cloud, { retries: 3 }));
    await services(s);
    cloud.faults.hang({ times: 1, match: { service: "compute" } });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const err = await s.request({ service: "compute", method: "GET", path: "/os-services", microversion: "2.53", signal: ac.signal }).catch((e: unknown) => e);
    expect((err as Error).name).toBe("AbortError");
    expect(cloud.requests.filter((r) => r.service === "compute")).toHaveLength(2);
  });
});

describe("secrets", () => {
  it("neither the password nor any token reaches a log line", async () => {
    const cloud = await start({ tokenLifetimeSeconds: 3600 });
    const cap = capturingLogger("debug");
    const s = track(sessionFor(cloud, {}, { logger: cap.logger, clock: systemClock }));
    await services(s);
    // A resend logs the failed call.
    cloud.faults.reset({ times: 1 });
    await services(s);
    cloud.state.revokeAllTokens();
    await services(s);
    await track(sessionFor(cloud, { auth: { ...cloud.admin, password: "wrong-one" } }, { logger: cap.logger })).authenticate().catch(() => undefined);
    const text = cap.text();
    expect(cap.lines.length).toBeGreaterThan(3);
    expect(text).not.toContain(cloud.admin.password);
    expect(text).not.toContain("wrong-one");
    for (const t of cloud.state.tokens.keys()) expect(text).not.toContain(t);
    expect(JSON.stringify(s.credentials)).not.toContain(cloud.admin.password);
  });
});
