import { defaultScenario, type SandboxScenario, type ScenarioServer } from "../../packages/sandbox/src/cloud.js";
import type { Sandbox } from "../../packages/sandbox/src/environment.js";
import { deepMerge, stackConfigData } from "../../test/support/stack.js";

/**
 * The config of a `lifeboat serve` process pointing at a simulated site (the same sections
 * the full-stack tests use), on a fixed port, with production pacing for blocked recoveries
 * rather than the tests' quick re-checks, plus the benchmark's own overrides.
 */
export function serveConfig(site: Sandbox, port: number, dir: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base = stackConfigData(site, dir, {
    server: { listen: `127.0.0.1:${port}` },
    recovery: { recheck_interval_seconds: 15 },
    logging: { level: "info" },
  });
  return deepMerge(base, overrides);
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
