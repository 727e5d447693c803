import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logging.js";
import { tenantsSchema } from "../../src/notify/config.js";
import { RecipientResolver, splitAddresses } from "../../src/notify/recipients.js";
import type { InstanceResult } from "../../src/domain/model.js";
import { FIXTURE_PROJECT_ID, FIXTURE_USER_ID, startCloudStub, type CloudData, type CloudStub } from "./support/cloud.js";

const P1 = "p1000000000000000000000000000001";
const P2 = "p2000000000000000000000000000002";

function data(): CloudData {
  return {
    users: {
      alice: { name: "alice", email: "Alice@Tenant-One.example" },
      bob: { name: "bob", email: "bob@tenant-one.example" },
      carol: { name: "carol", email: "carol@tenant-one.example" },
      dave: { name: "dave", email: "dave@tenant-one.example" },
      erin: { name: "erin" },
      frank: { name: "frank", email: "frank@tenant-one.example", enabled: false },
      gina: { name: "gina", email: "gina@tenant-two.example" },
      creator2: { name: "creator2", email: "creator2@tenant-two.example" },
    },
    groups: { devs: ["dave"] },
    projects: {
      [P1]: {
        name: "tenant-one",
        assignments: [
          { user: "alice", role: "member" },
          { user: "bob", role: "admin" }, // member through the implied role
          { user: "carol", role: "reader" }, // read-only: not told
          { group: "devs", role: "member" }, // member through a group
          { user: "erin", role: "member" }, // no email
          { user: "frank", role: "member" }, // disabled
        ],
      },
      [P2]: { name: "tenant-two", assignments: [{ user: "gina", role: "member" }] },
    },
    servers: {
      "srv-a": { "lifeboat:notify": "oncall@tenant-one.example, Alice@tenant-one.example; not-an-address" },
      "srv-b": { other: "x" },
    },
  };
}

function inst(id: string, projectId: string, over: Partial<InstanceResult> = {}): InstanceResult {
  return { recoveryId: "r-1", instanceId: id, name: `vm-${id}`, projectId, originalStatus: "ACTIVE", state: "evacuated", priority: 0, attempts: 1, ...over };
}

let stub: CloudStub | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

function resolver(tenants: Record<string, unknown>, withSession = true) {
  return new RecipientResolver(tenantsSchema.parse({ enabled: true, ...tenants }), { logger: silentLogger(), ...(withSession && stub ? { session: stub.session } : {}) });
}

describe("tenant recipients", () => {
  it("finds members holding the role directly, through a group or an implied role, with an email, enabled", async () => {
    stub = await startCloudStub(data());
    const r = await resolver({ creator: false, metadata_key: null }).forProject(P1, [inst("srv-a", P1)]);
    expect(r.projectName).toBe("tenant-one");
    expect(r.recipients.map((x) => x.email).sort()).toEqual(["alice@tenant-one.example", "bob@tenant-one.example", "dave@tenant-one.example"]);
    expect(r.problems).toEqual([]);
    const q = stub.requests.find((x) => x.path === "/identity/v3/role_assignments")!.query;
    expect(q["scope.project.id"]).toBe(P1);
    expect(q.effective).toBeDefined();
    expect(q.effective).not.toBe("0");
    expect(q.include_names).toBeDefined();
  });

  it("honours the configured roles", async () => {
    stub = await startCloudStub(data());
    const r = await resolver({ creator: false, metadata_key: null, keystone: { roles: ["reader"] } }).forProject(P1, []);
    // Everyone with member or admin also holds reader through implied roles.
    expect(r.recipients.map((x) => x.email).sort()).toEqual([
      "alice@tenant-one.example",
      "bob@tenant-one.example",
      "carol@tenant-one.example",
      "dave@tenant-one.example",
    ]);
  });

  it("reads the captured admin-project answer: a user without email is no recipient, the project name comes along", async () => {
    stub = await startCloudStub(data());
    const r = await resolver({ creator: false, metadata_key: null, keystone: { roles: ["admin", "member"] } }).forProject(FIXTURE_PROJECT_ID, []);
    expect(r).toMatchObject({ projectId: FIXTURE_PROJECT_ID, projectName: "admin", recipients: [], problems: [] });
    expect(stub.requests.filter((x) => x.path === `/identity/v3/users/${FIXTURE_USER_ID}`)).toHaveLength(1);
  });

  it("adds each server's creator, the metadata key's addresses and the static map; merges duplicates", async () => {
    stub = await startCloudStub(data());
    const r = await resolver({
      keystone: { enabled: false },
      static: { [P1]: ["noc@tenant-one.example", "alice@tenant-one.example"] },
    }).forProject(P1, [inst("srv-a", P1, { userId: "bob" }), inst("srv-b", P1, { userId: "ghost" }), inst("srv-x", P2, { userId: "gina" })]);
    const byEmail = Object.fromEntries(r.recipients.map((x) => [x.email, x.sources]));
    expect(byEmail).toEqual({
      "noc@tenant-one.example": ["static"],
      "alice@tenant-one.example": ["static", "metadata:vm-srv-a"],
      "oncall@tenant-one.example": ["metadata:vm-srv-a"],
      "bob@tenant-one.example": ["creator:bob"],
    });
    // gina created a server of another project: not a recipient here; "ghost" is a deleted user (404).
    expect(r.problems).toEqual(["server srv-a metadata lifeboat:notify: not an address: not-an-address"]);
    expect(stub.requests.some((x) => x.path.includes("srv-x"))).toBe(false);
  });

  it("reads the metadata the recovery recorded for its servers: no Nova request for those, one for a server it did not record", async () => {
    stub = await startCloudStub(data());
    const recordedMetadata = new Map<string, Record<string, string>>([
      ["srv-a", { "lifeboat:notify": "recorded@tenant-one.example" }],
      ["srv-b", { other: "x" }],
    ]);
    const r = await new RecipientResolver(tenantsSchema.parse({ enabled: true, keystone: { enabled: false }, creator: false }), {
      logger: silentLogger(),
      session: stub.session,
      recordedMetadata,
    }).forProject(P1, [inst("srv-a", P1), inst("srv-b", P1), inst("srv-c", P1)]);
    expect(r.recipients).toEqual([{ email: "recorded@tenant-one.example", sources: ["metadata:vm-srv-a"] }]);
    const novaPaths = stub.requests.filter((x) => x.path.includes("/servers/")).map((x) => x.path);
    expect(novaPaths).toHaveLength(1);
    expect(novaPaths[0]).toContain("srv-c");
  });

  it("asks Keystone once per project and user however many times it is asked (one cache per run)", async () => {
    stub = await startCloudStub(data());
    const res = resolver({ metadata_key: null });
    const instances = [inst("srv-a", P1, { userId: "alice" }), inst("srv-b", P1, { userId: "alice" })];
    await res.forProject(P1, instances);
    await res.forProject(P1, instances);
    expect(stub.requests.filter((x) => x.path === "/identity/v3/role_assignments")).toHaveLength(1);
    expect(stub.requests.filter((x) => x.path === "/identity/v3/users/alice")).toHaveLength(1);
  });

  it("keeps the other sources when Keystone refuses, and says why", async () => {
    stub = await startCloudStub({ ...data(), failRoleAssignments: { [P2]: 403 } });
    const r = await resolver({ static: { [P2]: ["ops@tenant-two.example"] }, metadata_key: null }).forProject(P2, [inst("srv-y", P2, { userId: "creator2" })]);
    expect(r.recipients.map((x) => x.email)).toEqual(["ops@tenant-two.example", "creator2@tenant-two.example"]);
    expect(r.problems).toEqual([expect.stringMatching(/role assignments of project p2.*not authorized/)]);
  });

  it("uses only the static map without an OpenStack session", async () => {
    const r = await new RecipientResolver(tenantsSchema.parse({ enabled: true, static: { [P1]: ["noc@tenant-one.example"] } }), { logger: silentLogger() }).forProject(P1, [inst("a", P1)]);
    expect(r.recipients.map((x) => x.email)).toEqual(["noc@tenant-one.example"]);
    expect(r.problems).toEqual(["no OpenStack session: only static recipients were used"]);
  });

  it("caps the recipients of one project, keeping static ones first", async () => {
    stub = await startCloudStub(data());
    const r = await resolver({ creator: false, metadata_key: null, max_recipients_per_project: 2, static: { [P1]: ["noc@tenant-one.example"] } }).forProject(P1, []);
    expect(r.recipients).toHaveLength(2);
    expect(r.recipients[0]!.email).toBe("noc@tenant-one.example");
    expect(r.problems[0]).toMatch(/4 recipients found, only the first 2/);
  });

  it("splits metadata values on commas, semicolons and spaces", () => {
    expect(splitAddresses(" a@x.example;b@y.example , nope c@z.example")).toEqual({ valid: ["a@x.example", "b@y.example", "c@z.example"], invalid: ["nope"] });
  });
});
