import { afterEach, describe, expect, it } from "vitest";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import type { SandboxScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import { call } from "./support/fixtures.js";
import { adminToken, nova } from "./support/cloud.js";

/**
 * What the notifier reads to find a tenant's people, as Keystone and Nova answer it: role
 * assignments with Keystone's boolean query flags, users, a server's metadata item, and a
 * refusal of one project's role assignments injected as a fault.
 */

const clouds: SandboxCloud[] = [];
async function start(scenario: SandboxScenario = tenants()): Promise<SandboxCloud> {
  const c = await startSandboxCloud({ scenario });
  clouds.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

const ACME = "ac0e0000000000000000000000000001";
const GLOBEX = "9106e000000000000000000000000002";
const WEB = "7e1b0000-0000-4000-8000-000000000001";
const DB = "7e1b0000-0000-4000-8000-000000000002";

function tenants(): SandboxScenario {
  return {
    projects: [{ name: "admin" }, { id: ACME, name: "acme" }, { id: GLOBEX, name: "globex" }],
    users: [
      { name: "admin", password: "pw", roles: [{ project: "admin", role: "admin" }] },
      { id: "alice", name: "alice", password: "alice-pw", email: "alice@acme.example", roles: [{ project: "acme", role: "member" }] },
      { id: "bob", name: "bob", password: "bob-pw" },
      { id: "carol", name: "carol", password: "carol-pw", email: "carol@globex.example", roles: [{ project: "globex", role: "member" }] },
    ],
    groups: [{ id: "acme-ops", name: "acme-ops", members: ["bob"], roles: [{ project: "acme", role: "admin" }] }],
    flavors: [{ name: "f1", vcpus: 1, ram: 512, disk: 10 }],
    hosts: [{ name: "c1" }, { name: "c2" }],
    servers: [
      { id: WEB, name: "web", host: "c1", project: "acme", user: "alice", flavor: "f1", metadata: { "lifeboat:notify": "oncall@acme.example", HA_Enabled: "True" } },
      { id: DB, name: "db", host: "c1", project: "globex", user: "carol", flavor: "f1" },
    ],
  };
}

async function tokenOf(cloud: SandboxCloud, user: string, password: string, project: string): Promise<string> {
  const r = await call(`${cloud.url}/auth/tokens`, {
    method: "POST",
    body: {
      auth: {
        identity: { methods: ["password"], password: { user: { name: user, domain: { name: "Default" }, password } } },
        scope: { project: { name: project, domain: { name: "Default" } } },
      },
    },
  });
  expect(r.status).toBe(201);
  return r.headers.get("x-subject-token")!;
}

interface Row {
  user?: { id: string; name?: string };
  group?: { id: string; name?: string };
  role: { id: string; name?: string };
  scope: { project: { id: string; name?: string } };
  links: { assignment: string; prior_role?: string; membership?: string };
}

async function assignments(cloud: SandboxCloud, token: string, query: string): Promise<{ status: number; rows: Row[]; body: unknown }> {
  const r = await call(`${cloud.url}/role_assignments?${query}`, { token });
  return { status: r.status, rows: (r.body as { role_assignments?: Row[] }).role_assignments ?? [], body: r.body };
}

describe("Keystone role assignments: the boolean flags as Keystone reads them (present and not \"0\")", () => {
  it("`effective` with any value but 0 expands groups and implied roles; effective=0 lists the group row", async () => {
    const cloud = await start();
    const token = await adminToken(cloud);
    const summary = (rows: Row[]) => rows.map((r) => `${r.user ? `user ${r.user.id}` : `group ${r.group!.id}`} ${r.role.name ?? "?"}`).sort();
    const expanded = ["user alice member", "user alice reader", "user bob admin", "user bob member", "user bob reader"];
    for (const flag of ["effective", "effective=true", "effective=false", "effective=1"]) {
      const got = await assignments(cloud, token, `scope.project.id=${ACME}&${flag}&include_names`);
      expect({ flag, rows: summary(got.rows) }).toEqual({ flag, rows: expanded });
    }
    const direct = await assignments(cloud, token, `scope.project.id=${ACME}&effective=0&include_names`);
    expect(summary(direct.rows)).toEqual(["group acme-ops admin", "user alice member"]);
    // An implied row points at the role it was implied from (as in the captured answer).
    const bobMember = (await assignments(cloud, token, `scope.project.id=${ACME}&effective&include_names`)).rows.find((r) => r.user?.id === "bob" && r.role.name === "member")!;
    const admin = [...cloud.state.roles.values()].find((r) => r.name === "admin")!;
    expect(bobMember.links.prior_role).toMatch(new RegExp(`/v3/prior_role/${bobMember.role.id}/implies/${admin.id}$`));
    expect(bobMember.links.membership).toMatch(/\/v3\/groups\/acme-ops\/users\/bob$/);
  });

  it("`include_names` with any value but 0 adds the names (include_names=false too); absent or 0, ids only", async () => {
    const cloud = await start();
    const token = await adminToken(cloud);
    for (const flag of ["include_names", "include_names=true", "include_names=false"]) {
      const { rows } = await assignments(cloud, token, `scope.project.id=${GLOBEX}&effective&${flag}`);
      expect({ flag, names: rows.map((r) => [r.user?.name, r.role.name, r.scope.project.name]) }).toEqual({
        flag,
        names: [
          ["carol", "member", "globex"],
          ["carol", "reader", "globex"],
        ],
      });
    }
    for (const flag of ["", "&include_names=0"]) {
      const { rows } = await assignments(cloud, token, `scope.project.id=${GLOBEX}&effective${flag}`);
      expect(rows).toHaveLength(2);
      expect(rows.every((r) => r.user!.name === undefined && r.role.name === undefined && r.scope.project.name === undefined)).toBe(true);
    }
  });

  it("a user has `email` only when it was given one; an unknown user is Keystone's 404; no token is 401", async () => {
    const cloud = await start();
    const token = await adminToken(cloud);
    expect((await call(`${cloud.url}/users/alice`, { token })).body).toMatchObject({ user: { id: "alice", name: "alice", email: "alice@acme.example", enabled: true } });
    expect((await call(`${cloud.url}/users/bob`, { token })).body).not.toHaveProperty("user.email");
    const ghost = await call(`${cloud.url}/users/ghost`, { token });
    expect(ghost).toMatchObject({ status: 404, body: { error: { code: 404, message: "Could not find user: ghost.", title: "Not Found" } } });
    for (const path of ["/users/alice", `/role_assignments?scope.project.id=${ACME}&effective`]) {
      const anon = await call(`${cloud.url}${path}`);
      expect({ path, status: anon.status, body: anon.body }).toEqual({
        path,
        status: 401,
        body: { error: { code: 401, message: "The request you have made requires authentication.", title: "Unauthorized" } },
      });
    }
  });
});

describe("Nova server metadata", () => {
  it("answers the whole map and one item; a missing key and an unknown server are itemNotFound", async () => {
    const cloud = await start();
    const token = await adminToken(cloud);
    const all = await nova(cloud, token, `/servers/${WEB}/metadata`);
    expect(all).toMatchObject({ status: 200, body: { metadata: { "lifeboat:notify": "oncall@acme.example", HA_Enabled: "True" } } });
    const one = await nova(cloud, token, `/servers/${WEB}/metadata/lifeboat:notify`);
    expect(one).toMatchObject({ status: 200, body: { meta: { "lifeboat:notify": "oncall@acme.example" } } });
    expect(one.headers.get("x-openstack-request-id")).toMatch(/^req-/);
    const encoded = await nova(cloud, token, `/servers/${WEB}/metadata/${encodeURIComponent("lifeboat:notify")}`);
    expect(encoded.body).toEqual(one.body);
    expect(await nova(cloud, token, `/servers/${DB}/metadata`)).toMatchObject({ status: 200, body: { metadata: {} } });

    const missing = await nova(cloud, token, `/servers/${DB}/metadata/lifeboat:notify`);
    expect({ status: missing.status, body: missing.body }).toEqual({ status: 404, body: { itemNotFound: { code: 404, message: "Metadata item was not found" } } });
    const gone = "7e1b0000-0000-4000-8000-0000000000ff";
    for (const path of [`/servers/${gone}/metadata`, `/servers/${gone}/metadata/lifeboat:notify`]) {
      const r = await nova(cloud, token, path);
      expect({ path, status: r.status, body: r.body }).toEqual({ path, status: 404, body: { itemNotFound: { code: 404, message: `Instance ${gone} could not be found.` } } });
    }
    const anon = await call(`${cloud.endpoints.compute}/servers/${WEB}/metadata/lifeboat:notify`);
    expect(anon.status).toBe(401);
  });

  it("a project member reads its own servers' metadata; another project's server is not found", async () => {
    const cloud = await start();
    const alice = await tokenOf(cloud, "alice", "alice-pw", "acme");
    expect(await nova(cloud, alice, `/servers/${WEB}/metadata/lifeboat:notify`)).toMatchObject({ status: 200, body: { meta: { "lifeboat:notify": "oncall@acme.example" } } });
    const other = await nova(cloud, alice, `/servers/${DB}/metadata`);
    expect({ status: other.status, body: other.body }).toEqual({ status: 404, body: { itemNotFound: { code: 404, message: `Instance ${DB} could not be found.` } } });
  });
});

describe("a fault matching query parameters", () => {
  it("refuses one project's role assignments with Keystone's 403 and answers the others", async () => {
    const cloud = await start();
    const token = await adminToken(cloud);
    const refusal = cloud.faults.fail(403, { match: { service: "identity", path: "/v3/role_assignments", query: { "scope.project.id": GLOBEX } } });
    const refused = await assignments(cloud, token, `scope.project.id=${GLOBEX}&effective&include_names=true`);
    expect({ status: refused.status, body: refused.body }).toEqual({
      status: 403,
      body: { error: { code: 403, message: "You are not authorized to perform the requested action: identity:list_role_assignments.", title: "Forbidden" } },
    });
    const answered = await assignments(cloud, token, `scope.project.id=${ACME}&effective&include_names=true`);
    expect(answered.status).toBe(200);
    expect(answered.rows.length).toBeGreaterThan(0);
    // The same project asked for another way (a user filter, no project) is not matched.
    expect((await assignments(cloud, token, "user.id=carol&effective")).status).toBe(200);
    expect(refusal.hits()).toBe(1);
    expect(cloud.requests.filter((r) => r.fault === "status").map((r) => r.query["scope.project.id"])).toEqual([GLOBEX]);
    refusal.remove();
    expect((await assignments(cloud, token, `scope.project.id=${GLOBEX}&effective`)).status).toBe(200);
  });

  it("words Keystone's other statuses as Keystone does: 503 and 500 are its unexpected error, a 403 elsewhere names that call's policy", async () => {
    const cloud = await start();
    const token = await adminToken(cloud);
    cloud.faults.fail(503, { times: 1, match: { service: "identity", query: { "scope.project.id": ACME } } });
    const outage = await assignments(cloud, token, `scope.project.id=${ACME}&effective`);
    expect({ status: outage.status, body: outage.body }).toEqual({
      status: 503,
      body: { error: { code: 503, message: "An unexpected error prevented the server from fulfilling your request.", title: "Service Unavailable" } },
    });
    cloud.faults.fail(500, { times: 1, match: { service: "identity", path: "/v3/users/" } });
    expect((await call(`${cloud.url}/users/alice`, { token })).body).toEqual({
      error: { code: 500, message: "An unexpected error prevented the server from fulfilling your request.", title: "Internal Server Error" },
    });
    cloud.faults.fail(403, { times: 1, match: { service: "identity", path: "/v3/users/" } });
    expect((await call(`${cloud.url}/users/alice`, { token })).body).toEqual({
      error: { code: 403, message: "You are not authorized to perform the requested action: identity:get_user.", title: "Forbidden" },
    });
    expect((await call(`${cloud.url}/users/alice`, { token })).status).toBe(200);
  });
});
