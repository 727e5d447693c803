import { createLogger, type Logger } from "../../../src/logging.js";
import { createNovaEvacuationDriver, type NovaDriverOptions, type NovaEvacuationDriver } from "../../../src/nova/driver.js";
import type { KeystoneSession } from "../../../src/openstack/keystone.js";
import type { SandboxCloud } from "../../../packages/sandbox/src/cloud.js";
import type { SimRequest } from "../../../packages/sandbox/src/cloud-state.js";
import { sessionFor } from "./session.js";

export interface DriverHandle {
  driver: NovaEvacuationDriver;
  session: KeystoneSession;
}

/** The `nova` driver on the sandbox, polling fast. */
export function driverFor(cloud: SandboxCloud, opts: Partial<NovaDriverOptions> = {}, logger: Logger = createLogger({ level: "silent" })): DriverHandle {
  const session = sessionFor(cloud, {}, { logger });
  const driver = createNovaEvacuationDriver({ session, logger }, { pollIntervalMs: 25, ...opts });
  return { driver, session };
}

export function isEvacuatePost(r: SimRequest, serverId?: string): boolean {
  return (
    r.service === "compute" &&
    r.method === "POST" &&
    /^\/v2\.1\/servers\/[^/]+\/action$/.test(r.path) &&
    typeof r.body === "object" &&
    r.body !== null &&
    "evacuate" in r.body &&
    (!serverId || r.path === `/v2.1/servers/${serverId}/action`)
  );
}

export function actionsOn(cloud: SandboxCloud, serverId: string): string[] {
  return cloud.requests
    .filter((r) => r.method === "POST" && r.path === `/v2.1/servers/${serverId}/action`)
    .map((r) => `${Object.keys(r.body as object)[0]} ${r.status}`);
}

export function servicePuts(cloud: SandboxCloud): unknown[] {
  return cloud.requests.filter((r) => r.method === "PUT" && r.path.startsWith("/v2.1/os-services/")).map((r) => r.body);
}
