import type { RecoveryDetail } from "../../src/domain/model.js";
import type { SandboxScenario, ScenarioServer } from "../../packages/sandbox/src/cloud-scenario.js";
import { defaultScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import type { SimMigration, SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import type { SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import type { Sandbox } from "../../packages/sandbox/src/environment.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import { alertPayload, postAlert, waitFor } from "./http.js";
import type { Stack } from "./lifeboat.js";

/**
 * The one fake cloud's side of a test: scenarios for the simulated site (packages/sandbox),
 * what it says of a host, and readers of its request log.
 */

export const TERMINAL = ["completed", "partial", "failed", "aborted"];

/** The default cloud's projects, users and flavors with these hosts and servers instead. */
export function siteScenario(hosts: string[], servers: ScenarioServer[]): SandboxScenario {
  const base = defaultScenario({ hosts: 1, serversPerHost: 0 });
  return { ...base, hosts: hosts.map((name, i) => ({ name, zone: "nova", hostIp: `192.168.0.${i + 1}` })), servers };
}

/** `count` servers named `${prefix}-NN` on `host`, spread over the tenant projects. */
export function serversOn(host: string, count: number, prefix = "vm", more: Partial<ScenarioServer> = {}): ScenarioServer[] {
  const projects = ["acme", "globex", "initech"];
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}-${String(i + 1).padStart(2, "0")}`,
    host,
    project: projects[i % projects.length]!,
    flavor: "m1.small",
    ...more,
  }));
}

/** The host dies and Nova notices (service `down`, heartbeat older than the gate's 1 s); then Alertmanager's alert arrives. */
export async function failAndAlert(stack: Stack, host: string): Promise<void> {
  stack.sandbox.failHost(host);
  await novaSeesDown(stack.sandbox.cloud, host);
  const r = await postAlert(stack.app.url, alertPayload({ host }));
  if (r.status !== 202) throw new Error(`webhook answered ${r.status}: ${JSON.stringify(r.body)}`);
}

export async function novaSeesDown(cloud: SandboxCloud, host: string): Promise<void> {
  await waitFor(
    () => {
      cloud.settle();
      const h = cloud.state.mustHost(host);
      return !cloud.state.serviceIsUp(h) && cloud.clock.now() - h.updatedAtMs > 1100;
    },
    15_000,
    `Nova to see ${host} down`,
  );
}

/** The host's latest recovery once it has ended. */
export async function finished(stack: Stack, host: string, timeoutMs = 30_000): Promise<RecoveryDetail> {
  const r = await waitFor(async () => (await stack.app.store.listRecoveries({ host, limit: 1 }))[0], timeoutMs, `a recovery of ${host}`);
  await waitFor(async () => TERMINAL.includes((await stack.app.store.getRecovery(r.id))!.state), timeoutMs, `the recovery of ${host} to end`);
  return (await recoveryDetail(stack.app.store, r.id))!;
}

export function isEvacuatePost(q: SimRequest, serverId?: string): boolean {
  if (q.service !== "compute" || q.method !== "POST") return false;
  const m = /^\/v2\.1\/servers\/([^/]+)\/action$/.exec(q.path);
  if (!m || (serverId !== undefined && m[1] !== serverId)) return false;
  return typeof q.body === "object" && q.body !== null && "evacuate" in q.body;
}

export function evacuatePosts(cloud: SandboxCloud, serverId?: string): SimRequest[] {
  return cloud.requests.filter((q) => isEvacuatePost(q, serverId));
}

export function serverIdOf(q: SimRequest): string {
  return /^\/v2\.1\/servers\/([^/]+)\/action$/.exec(q.path)?.[1] ?? "";
}

/** PUT bodies sent to os-services, in order. */
export function servicePuts(cloud: SandboxCloud): SimRequest[] {
  return cloud.requests.filter((q) => q.service === "compute" && q.method === "PUT" && q.path.startsWith("/v2.1/os-services/"));
}

/** Evacuations Nova accepted for a server (the simulator's count, whatever the client saw). */
export function acceptedEvacuations(cloud: SandboxCloud, serverId: string): number {
  return cloud.state.servers.get(serverId)?.evacuationAttempts ?? 0;
}

/**
 * The most evacuations running in Nova at one instant: each from its acceptance (the
 * migration is created by the evacuate POST) to the moment the destination finished
 * (`done`) or it failed (`error`).
 */
export function maxInFlight(migrations: readonly SimMigration[]): number {
  const edges: [number, number][] = [];
  for (const m of migrations) {
    const end = m.status === "error" ? m.plan.preAtMs : m.plan.endAtMs;
    edges.push([m.createdMs, 1], [end, -1]);
  }
  // An evacuation ending at the instant another starts does not overlap it.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) {
    now += d;
    max = Math.max(max, now);
  }
  return max;
}

/** A sample of lifeboat's /metrics, e.g. metric(text, "lifeboat_instances_evacuated_total", { result: "failed" }). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!] as const));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[4]);
  }
  return 0;
}

/**
 * A site whose first host runs `servers` small ACTIVE instances and whose other `spares`
 * hosts are empty (room for all of them), owned by the default scenario's projects.
 */
export function loadedHostScenario(servers: number, spares: number): SandboxScenario {
  const base = defaultScenario({ hosts: spares + 1, serversPerHost: 0, fillAllHosts: true });
  const projects = ["acme", "globex", "initech"];
  const owners: Record<string, string> = { acme: "alice", globex: "carol", initech: "erin" };
  const list: ScenarioServer[] = [];
  for (let i = 1; i <= servers; i++) {
    const project = projects[i % projects.length]!;
    list.push({ name: `${project}-vm-${String(i).padStart(3, "0")}`, host: "compute-1", project, user: owners[project], flavor: "m1.small" });
  }
  return { ...base, hosts: base.hosts.map((h) => ({ ...h, aggregates: ["ha-pool"] })), servers: list };
}

/** What Nova's API says of a host's nova-compute now (down only once service_down_time has passed). */
export function novaSaysDown(site: Sandbox, host: string): boolean {
  site.cloud.settle();
  return site.cloud.state.services().find((s) => s.binary === "nova-compute" && s.host === host)?.state === "down";
}
