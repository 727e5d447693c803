import type { Config } from "../config/schema.js";
import type { Logger } from "../logging.js";
import { createKeystoneSession, type KeystoneSession, type TokenInfo } from "../openstack/keystone.js";
import { NovaClient, type NovaService } from "../openstack/nova.js";
import { PLACEMENT_MICROVERSION, PlacementClient } from "../openstack/placement.js";
import { OpenStackApiError } from "../openstack/types.js";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";
import { heartbeatRow } from "./heartbeats.js";
import type { DoctorCheck, DoctorRow } from "./types.js";

/**
 * Keystone, Nova and (with the capacity gate on) Placement, in the order a recovery meets
 * them: authenticate and read back who lifeboat is, negotiate the Nova microversion every
 * call will pin and list the nova-compute services, compare them with the fenced hosts,
 * judge their heartbeats on Nova's clock as the nova-service gate would, then list Placement's resource providers at the microversion the capacity check pins.
 *
 * Doctor asks each once (no retries): it reports the first failure as it is, fast.
 */
export interface OpenStackCheckSetup {
  check: DoctorCheck;
  /** Credentials as resolved (from the config, clouds.yaml or OS_*): to scrub from every row. */
  secrets: Secret[];
  close(): void;
}

export function openstackCheck(config: Config, deps: { logger: Logger; env?: NodeJS.ProcessEnv }): OpenStackCheckSetup {
  const os = config.openstack;
  let session: KeystoneSession;
  try {
    session = createKeystoneSession({ ...os, retries: 0 }, { logger: deps.logger, ...(deps.env ? { env: deps.env } : {}) });
  } catch (err) {
    const message = errorMessage(err);
    return {
      check: { check: "keystone", target: "openstack", timeoutMs: 1000, run: () => Promise.resolve([{ check: "keystone", target: "openstack", result: "fail", detail: message }]) },
      secrets: [],
      close: () => undefined,
    };
  }
  const c = session.credentials;
  const secrets = [c.password, c.applicationCredentialSecret].filter((s): s is Secret => s !== undefined);
  const capacity = config.gates.capacity.mode !== "off";
  // Every request is bounded by timeout_seconds; the deadline is a backstop over the steps.
  const steps = capacity ? 4 : 3;
  const timeoutMs = steps * os.timeout_seconds * 1000 + 5000;
  const run = async (signal: AbortSignal): Promise<DoctorRow[]> => {
    const rows: DoctorRow[] = [];
    let token: TokenInfo;
    try {
      token = await session.authenticate(signal);
      rows.push({ check: "keystone", target: c.authUrl, result: "ok", detail: tokenText(token) });
    } catch (err) {
      // Keystone's refusal already names where the credentials came from: say it once.
      const why = failure(err);
      rows.push({ check: "keystone", target: c.authUrl, result: "fail", detail: why.includes(c.source) ? why : `${why} (credentials from ${c.source})` });
      rows.push({ check: "nova", target: "compute", result: "skip", detail: "needs Keystone" });
      if (capacity) rows.push({ check: "placement", target: "placement", result: "skip", detail: "needs Keystone" });
      return rows;
    }
    rows.push(...(await novaRows(session, config, deps.logger, signal)));
    if (capacity) rows.push(await placementRow(session, config, signal));
    return rows;
  };
  return { check: { check: "openstack", target: c.authUrl, timeoutMs, run }, secrets, close: () => session.close() };
}

/** An API error with its HTTP status (Keystone's own message rarely names it). */
function failure(err: unknown): string {
  return err instanceof OpenStackApiError && !err.message.includes(String(err.status)) ? `HTTP ${err.status}: ${err.message}` : errorMessage(err);
}

function tokenText(t: TokenInfo): string {
  const user = t.userName ?? t.userId ?? "?";
  const project = t.projectName ?? t.projectId ?? "no project";
  return `authenticated as ${user} in project ${project}, roles ${t.roles.join(", ") || "none"}; token valid until ${t.expiresAt}`;
}

async function endpointOf(session: KeystoneSession, service: "compute" | "placement", signal: AbortSignal): Promise<string> {
  try {
    return await session.endpoint(service, signal);
  } catch {
    return service;
  }
}

async function novaRows(session: KeystoneSession, config: Config, logger: Logger, signal: AbortSignal): Promise<DoctorRow[]> {
  const target = await endpointOf(session, "compute", signal);
  const nova = new NovaClient(session, { logger });
  let services: NovaService[];
  let novaTime: string | null;
  try {
    await nova.negotiate(signal);
    const answer = await nova.readServices({ binary: "nova-compute" }, signal);
    services = answer.services.filter((s) => s.binary === "nova-compute");
    novaTime = answer.novaTime;
  } catch (err) {
    return [{ check: "nova", target, result: "fail", detail: failure(err) }];
  }
  const down = services.filter((s) => s.state !== "up");
  const disabled = services.filter((s) => s.status !== "enabled");
  const counts = `${services.length} nova-compute service(s): ${services.length - down.length} up, ${down.length} down, ${disabled.length} disabled`;
  const rows: DoctorRow[] = [];
  // Down, enabled and not forced down: what lifeboat would be asked to recover right now.
  const failing = down.filter((s) => s.status === "enabled" && s.forced_down !== true).map((s) => s.host);
  rows.push({
    check: "nova",
    target,
    result: services.length === 0 || failing.length ? "warn" : "ok",
    detail: `${nova.describe()}; ${counts}${services.length === 0 ? " (lifeboat has nothing to protect)" : ""}${failing.length ? `; down now: ${failing.join(", ")}` : ""}`,
  });
  rows.push(coverageRow(services, Object.keys(config.fencing.hosts)));
  rows.push(heartbeatRow(services, novaTime, config));
  return rows;
}

/** Do fencing's host names and Nova's nova-compute hosts match? A recovery needs both. */
function coverageRow(services: NovaService[], fenced: string[]): DoctorRow {
  const compute = new Set(services.map((s) => s.host));
  const fencedSet = new Set(fenced);
  const unfenced = [...compute].filter((h) => !fencedSet.has(h)).sort();
  const unknown = fenced.filter((h) => !compute.has(h)).sort();
  const problems: string[] = [];
  if (unfenced.length) problems.push(`no fencing for ${list(unfenced)}: their recoveries would stop before evacuating`);
  if (unknown.length) problems.push(`not nova-compute hosts in Nova: ${list(unknown)} (names must match Nova's service host)`);
  return {
    check: "coverage",
    target: "fencing.hosts",
    result: problems.length ? "warn" : "ok",
    detail: problems.length ? problems.join("; ") : `every nova-compute host (${compute.size}) has fencing`,
  };
}

function list(hosts: string[]): string {
  return hosts.length > 8 ? `${hosts.slice(0, 8).join(", ")} and ${hosts.length - 8} more` : hosts.join(", ");
}

/** The capacity gate falls back to os-hypervisors without Placement: a warning, not a failure. */
async function placementRow(session: KeystoneSession, config: Config, signal: AbortSignal): Promise<DoctorRow> {
  const target = await endpointOf(session, "placement", signal);
  try {
    const providers = await new PlacementClient(session).listResourceProviders({}, signal);
    const roots = providers.filter((p) => !p.parent_provider_uuid);
    return { check: "placement", target, result: "ok", detail: `microversion ${PLACEMENT_MICROVERSION}: ${roots.length} root resource provider(s) for the capacity gate (mode ${config.gates.capacity.mode})` };
  } catch (err) {
    if (signal.aborted) throw err;
    return { check: "placement", target, result: "warn", detail: `${failure(err)}; the capacity gate falls back to os-hypervisors figures (no allocation ratios)` };
  }
}
