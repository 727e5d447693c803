import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logging.js";
import { tenantsSchema } from "../../src/notify/config.js";
import { RecipientResolver, splitAddresses } from "../../src/notify/recipients.js";
import type { InstanceResult } from "../../src/domain/model.js";
import { FIXTURE_PROJECT_ID, FIXTURE_USER_ID, startTenantCloud, type TenantCloud, type Tenants } from "./support/tenants.js";

const P1 = "p1000000000000000000000000000001";
const P2 = "p2000000000000000000000000000002";
/** Servers by letter: a and b are in Nova, c, x and y are not. */
const SERVER = {
  a: "0a0a0a0a-0000-4000-8000-00000000000a",
  b: "0b0b0b0b-0000-4000-8000-00000000000b",
  c: "0c0c0c0c-0000-4000-8000-00000000000c",
  x: "0e0e0e0e-0000-4000-8000-00000000000e",
  y: "0f0f0f0f-0000-4000-8000-00000000000f",
} as const;

function tenants(): Tenants {
  const t1 = (role: string) => [{ project: "tenant-one", role }];
  return {
    projects: [
      { id: P1, name: "tenant-one" },
      { id: P2, name: "tenant-two" },
    ],
    users: [
      { name: "alice", email: "Alice@Tenant-One.example", roles: t1("member") },
      { name: "bob", email: "bob@tenant-one.example", roles: t1("admin") }, // member through the implied role
      { name: "carol", email: "carol@tenant-one.example", roles: t1("reader") }, // read-only: not told
      { name: "dave", email: "dave@tenant-one.example" }, // member through a group
      { name: "erin", roles: t1("member") }, // no email
      { name: "frank", email: "frank@tenant-one.example", enabled: false, roles: t1("member") }, // disabled
      { name: "gina", email: "gina@tenant-two.example", roles: [{ project: "tenant-two", role: "member" }] },
      { name: "creator2", email: "creator2@tenant-two.example" },
    ],
    groups: [{ name: "devs", members: ["dave"], roles: t1("member") }],
    servers: [
      { id: SERVER.a, project: P1, user: "alice", metadata: { "lifeboat:notify": "oncall@tenant-one.example, Alice@tenant-one.example; not-an-address" } },
      { id: SERVER.b, project: P1, user: "alice", metadata: { other: "x" } },
    ],
  };
}

function inst(server: keyof typeof SERVER, projectId: string, over: Partial<InstanceResult> = {}): InstanceResult {
  return { recoveryId: "r-1", instanceId: SERVER[server], name: `vm-srv-${server}`, projectId, originalStatus: "ACTIVE", state: "evacuated", priority: 0, attempts: 1, ...over };
}

let site: TenantCloud | undefined;
afterEach(async () => {
  await site?.close();
  site = undefined;
});

async function start(): Promise<TenantCloud> {
  site = await startTenantCloud(tenants());
  return site;
}

function resolver(tenantsConfig: Record<string, unknown>, withSession = true) {
  return new RecipientResolver(tenantsSchema.parse({ enabled: true, ...tenantsConfig }), { logger: silentLogger(), ...(withSession && site ? { session: site.session } : {}) });
}

describe("tenant recipients", () => {
  it("finds members holding the role directly, through a group or an implied role, with an email, enabled", async () => {
    const cloud = await start();
    const r = await resolver({ creator: false, metadata_key: null }).forProject(P1, [inst("a", P1)]);
    expect(r.projectName).toBe("tenant-one");
    expect(r.recipients.map((x) => x.email).sort()).toEqual(["alice@tenant-one.example", "bob@tenant-one.example", "dave@tenant-one.example"]);
    expect(r.problems).toEqual([]);
    const q = cloud.calls("identity").find((x) => x.path === "/v3/role_assignments")!.query;
    expect(q["scope.project.id"]).toBe(P1);
    expect(q.effective).toBeDefined();
    expect(q.effective).not.toBe("0");
    expect(q.include_names).toBeDefined();
  });

  it("honours the configured roles", async () => {
    await start();
    const r = await resolver({ creator: false, metadata_key: null, keystone: { roles: ["reader"] } }).forProject(P1, []);
    // Everyone with member or admin also holds reader through implied roles.
    expect(r.recipients.map((x) => x.email).sort()).toEqual([
      "alice@tenant-one.example",
      "bob@tenant-one.example",
      "carol@tenant-one.example",
      "dave@tenant-one.example",
    ]);
  });

  it("reads the admin project of the captured Keystone answers (same ids): a user without email is no recipient, the project name comes along", async () => {
    const cloud = await start();
    const r = await resolver({ creator: false, metadata_key: null, keystone: { roles: ["admin", "member"] } }).forProject(FIXTURE_PROJECT_ID, []);
    expect(r).toMatchObject({ projectId: FIXTURE_PROJECT_ID, projectName: "admin", recipients: [], problems: [] });
    expect(cloud.calls("identity").filter((x) => x.path === `/v3/users/${FIXTURE_USER_ID}`)).toHaveLength(1);
  });

  it("adds each server's creator, the metadata key's addresses and the static map; merges duplicates", async () => {
    const cloud = await start();
    const r = await resolver({
      keystone: { enabled: false },
      static: { [P1]: ["noc@tenant-one.example", "alice@tenant-one.example"] },
    }).forProject(P1, [inst("a", P1, { userId: "bob" }), inst("b", P1, { userId: "ghost" }), inst("x", P2, { userId: "gina" })]);
    const byEmail = Object.fromEntries(r.recipients.map((x) => [x.email, x.sources]));
    expect(byEmail).toEqual({
      "noc@tenant-one.example": ["static"],
      "alice@tenant-one.example": ["static", "metadata:vm-srv-a"],
      "oncall@tenant-one.example": ["metadata:vm-srv-a"],
      "bob@tenant-one.example": ["creator:bob"],
    });
    // gina created a server of another project: not a recipient here; "ghost" is a deleted user (404).
    expect(r.problems).toEqual([`server ${SERVER.a} metadata lifeboat:notify: not an address: not-an-address`]);
    expect(cloud.sandbox.requests.some((x) => x.path.includes(SERVER.x))).toBe(false);
    expect(cloud.calls("identity").filter((x) => x.path === "/v3/users/ghost").map((x) => x.status)).toEqual([404]);
  });

  it("reads the metadata the recovery recorded for its servers: no Nova request for those, one for a server it did not record", async () => {
    const cloud = await start();
    const recordedMetadata = new Map<string, Record<string, string>>([
      [SERVER.a, { "lifeboat:notify": "recorded@tenant-one.example" }],
      [SERVER.b, { other: "x" }],
    ]);
    const r = await new RecipientResolver(tenantsSchema.parse({ enabled: true, keystone: { enabled: false }, creator: false }), {
      logger: silentLogger(),
      session: cloud.session,
      recordedMetadata,
    }).forProject(P1, [inst("a", P1), inst("b", P1), inst("c", P1)]);
    expect(r.recipients).toEqual([{ email: "recorded@tenant-one.example", sources: ["metadata:vm-srv-a"] }]);
    const novaPaths = cloud.calls("compute").filter((x) => x.path.includes("/servers/")).map((x) => x.path);
    expect(novaPaths).toHaveLength(1);
    expect(novaPaths[0]).toContain(SERVER.c);
  });

  it("asks Keystone once per project and user however many times it is asked (one cache per run)", async () => {
    const cloud = await start();
    const res = resolver({ metadata_key: null });
    const instances = [inst("a", P1, { userId: "alice" }), inst("b", P1, { userId: "alice" })];
    await res.forProject(P1, instances);
    await res.forProject(P1, instances);
    expect(cloud.calls("identity").filter((x) => x.path === "/v3/role_assignments")).toHaveLength(1);
    expect(cloud.calls("identity").filter((x) => x.path === "/v3/users/alice")).toHaveLength(1);
  });

  it("keeps the other sources when Keystone refuses, and says why", async () => {
    const cloud = await start();
    // Keystone refuses the role assignments of tenant-two only.
    const refusal = cloud.sandbox.faults.fail(403, { match: { service: "identity", path: "/v3/role_assignments", query: { "scope.project.id": P2 } } });
    const r = await resolver({ static: { [P2]: ["ops@tenant-two.example"] }, metadata_key: null }).forProject(P2, [inst("y", P2, { userId: "creator2" })]);
    expect(r.recipients.map((x) => x.email)).toEqual(["ops@tenant-two.example", "creator2@tenant-two.example"]);
    expect(r.problems).toEqual([expect.stringMatching(/role assignments of project p2.*not authorized/)]);
    expect(refusal.hits()).toBe(1);
  });

  it("uses only the static map without an OpenStack session", async () => {
    const r = await new RecipientResolver(tenantsSchema.parse({ enabled: true, static: { [P1]: ["noc@tenant-one.example"] } }), { logger: silentLogger() }).forProject(P1, [inst("a", P1)]);
    expect(r.recipients.map((x) => x.email)).toEqual(["noc@tenant-one.example"]);
    expect(r.problems).toEqual(["no OpenStack session: only static recipients were used"]);
  });

  it("caps the recipients of one project, keeping static ones first", async () => {
    await start();
    const r = await resolver({ creator: false, metadata_key: null, max_recipients_per_project: 2, static: { [P1]: ["noc@tenant-one.example"] } }).forProject(P1, []);
    expect(r.recipients).toHaveLength(2);
    expect(r.recipients[0]!.email).toBe("noc@tenant-one.example");
    expect(r.problems[0]).toMatch(/4 recipients found, only the first 2/);
  });

  it("splits metadata values on commas, semicolons and spaces", () => {
    expect(splitAddresses(" a@x.example;b@y.example , nope c@z.example")).toEqual({ valid: ["a@x.example", "b@y.example", "c@z.example"], invalid: ["nope"] });
  });
});
