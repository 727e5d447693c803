import { startSandboxCloud, type SandboxCloud } from "../../../packages/sandbox/src/cloud.js";
import type { SandboxScenario, ScenarioGroup, ScenarioRole } from "../../../packages/sandbox/src/cloud-scenario.js";
import type { SimRequest } from "../../../packages/sandbox/src/cloud-state.js";
import type { KeystoneSession } from "../../../src/openstack/keystone.js";
import { sessionFor } from "../../openstack/support/session.js";
import { FIXTURE_IDS } from "../../sandbox/support/replay.js";

/**
 * The simulated cloud the recipient lookups ask (Keystone role assignments and users, Nova
 * server metadata), holding the tenants a test describes. lifeboat signs in as the admin of
 * the cloud the Keystone fixtures were captured on (test/fixtures/openstack/keystone-*.json),
 * with the same project and user ids: that admin has no email, and its role assignments are
 * the captured ones. Tenant users carry their name as id, so a test names them as the
 * creators its recovery journaled.
 */

export const FIXTURE_PROJECT_ID = FIXTURE_IDS.project;
export const FIXTURE_USER_ID = FIXTURE_IDS.user;

export interface TenantUser {
  name: string;
  /** Keystone's optional "extra" attribute. */
  email?: string;
  enabled?: boolean;
  /** Roles on projects, by project name or id. */
  roles?: ScenarioRole[];
}

export interface TenantServer {
  id: string;
  project: string;
  /** Creator (user name); default the project's first member. */
  user?: string;
  metadata?: Record<string, string>;
}

export interface Tenants {
  projects: { id: string; name: string }[];
  users: TenantUser[];
  groups?: ScenarioGroup[];
  servers?: TenantServer[];
}

export function tenantScenario(t: Tenants): SandboxScenario {
  return {
    projects: [{ id: FIXTURE_PROJECT_ID, name: "admin" }, ...t.projects],
    users: [
      { id: FIXTURE_USER_ID, name: "admin", password: "admin-secret", roles: [{ project: "admin", role: "admin" }] },
      ...t.users.map((u) => ({ id: u.name, password: `${u.name}-secret`, ...u })),
    ],
    groups: t.groups ?? [],
    flavors: [{ name: "m1.small", vcpus: 1, ram: 2048, disk: 20 }],
    hosts: [{ name: "compute-1" }, { name: "compute-2" }],
    servers: (t.servers ?? []).map((s, n) => ({ name: `server-${n + 1}`, host: "compute-1", flavor: "m1.small", ...s })),
  };
}

export interface TenantCloud {
  sandbox: SandboxCloud;
  /** lifeboat's Keystone session on it, signed in as the fixture's admin. */
  session: KeystoneSession;
  /** The requests to one service, sign-in excluded, below the service root (`/v3/users/alice`). */
  calls(service: "identity" | "compute"): SimRequest[];
  close(): Promise<void>;
}

export async function startTenantCloud(t: Tenants): Promise<TenantCloud> {
  const cloud = await startSandboxCloud({ scenario: tenantScenario(t) });
  const session = sessionFor(cloud);
  return {
    sandbox: cloud,
    session,
    calls: (service) => cloud.requests.filter((r) => r.service === service && !(r.method === "POST" && r.path === "/v3/auth/tokens")),
    close: async () => {
      session.close();
      await cloud.close();
    },
  };
}
