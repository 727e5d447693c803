import { defaultScenario, startSandboxCloud, SANDBOX_ADMIN, type SandboxCloud, type SandboxCloudOptions } from "./cloud.js";
import { startRedfishSimulator, type RedfishSimulator } from "./redfish.js";
import { startSmtpCatcher, type SmtpCatcher } from "./smtp.js";
import { startControl } from "./control.js";
import { EvacuationWatch } from "./evacuation-watch.js";
import { racksOf } from "./rack-scenario.js";

/**
 * A whole simulated site for the demo, `lifeboat sandbox` and the integration tests: the
 * OpenStack cloud (Keystone, Nova, Placement), one Redfish BMC per compute host, and an SMTP
 * catcher. The BMCs are wired to the cloud: powering a host off stops its nova-compute
 * (it no longer heartbeats), powering it on starts it again — so fencing really changes what
 * Nova sees, as on a real site.
 */
export interface SandboxOptions {
  cloud?: SandboxCloudOptions;
  /** Fixed ports (lifeboat sandbox); 0 or unset: chosen by the OS. */
  ports?: { cloud?: number; redfish?: number; smtp?: number };
  host?: string;
  /** Time a Redfish power change takes (PoweringOff in between). Default 500 ms. */
  powerDelayMs?: number;
  /** Also serve the site's control API on this port (fail/repair hosts, read state, faults, request log; 0: chosen by the OS). */
  controlPort?: number;
}

export const SANDBOX_BMC = { username: "bmc-admin", password: "sandbox-bmc-secret" } as const;
export const SANDBOX_OPERATORS = ["ops@cloud.example"];

export interface Sandbox {
  cloud: SandboxCloud;
  redfish: RedfishSimulator;
  smtp: SmtpCatcher;
  hosts: string[];
  /** A host dies the way hosts do: nova-compute stops, the BMC still says On. */
  failHost(host: string): void;
  /** The hosts of each rack of the scenario (hosts with a `rack`). */
  racks: ReadonlyMap<string, readonly string[]>;
  /**
   * A whole rack dies at once (its power feed): every host of it is off, as its BMC reports,
   * and their nova-compute services stop heartbeating. Returns the rack's hosts.
   */
  failRack(rack: string): string[];
  /** What Nova saw of the evacuations since the last reset: in flight now and at most, evacuate calls per server. */
  evacuations: EvacuationWatch;
  /** The parts of a lifeboat config that point at this site (YAML-able plain data). */
  config(opts?: { graceSeconds?: number; staleSeconds?: number }): Record<string, unknown>;
  /** The control API's URL, when `controlPort` was given. */
  controlUrl?: string;
  /** Where each host is: power (BMC), Nova service state, servers on it. */
  view(): SiteView;
  close(): Promise<void>;
}

export interface SiteView {
  hosts: { host: string; zone: string; rack: string | null; power: string; service: string; forcedDown: boolean; disabled: boolean; servers: number }[];
  servers: { id: string; name: string; project: string; host: string | null; status: string }[];
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const host = opts.host ?? "127.0.0.1";
  const cloudOpts: SandboxCloudOptions = {
    serviceDownTimeSeconds: 6,
    reportIntervalSeconds: 1,
    evacuationDurationMs: 1500,
    ...opts.cloud,
    host,
    ...(opts.ports?.cloud !== undefined ? { port: opts.ports.cloud } : {}),
  };
  const scenario = cloudOpts.scenario ?? defaultScenario(cloudOpts.generate);
  const hosts = scenario.hosts.map((h) => h.name);
  const cloud = await startSandboxCloud({ ...cloudOpts, scenario });
  const redfish = await startRedfishSimulator({
    systems: scenario.hosts.map((h) => ({ id: h.name, name: h.name, powerState: h.alive === false ? "Off" : "On" })),
    username: SANDBOX_BMC.username,
    password: SANDBOX_BMC.password,
    powerDelayMs: opts.powerDelayMs ?? 500,
    host,
    ...(opts.ports?.redfish !== undefined ? { port: opts.ports.redfish } : {}),
  });
  for (const name of hosts) {
    redfish.system(name).beforeReset = (type) => {
      if (/Off|Shutdown/.test(type)) cloud.killHost(name);
      else if (/On|Restart|Cycle/.test(type)) setTimeout(() => cloud.startCompute(name), (opts.powerDelayMs ?? 500) + 200).unref();
    };
  }
  const racks = racksOf(scenario);
  const rackOf = new Map(scenario.hosts.map((h) => [h.name, h.rack ?? null]));
  const failRack = (rack: string): string[] => {
    const members = racks.get(rack);
    if (!members) throw new Error(`sandbox: unknown rack ${rack}`);
    // Power lost: the hosts are off at once (no PoweringOff), and nova-compute with them.
    for (const name of members) {
      redfish.system(name).setPowerState("Off");
      cloud.killHost(name);
    }
    return [...members];
  };
  const evacuations = new EvacuationWatch(cloud.state);
  const smtp = await startSmtpCatcher({ host, ...(opts.ports?.smtp !== undefined ? { port: opts.ports.smtp } : {}) });

  const view = (): SiteView => {
    cloud.settle();
    const st = cloud.state;
    const projectName = (id: string): string => st.projects.get(id)?.name ?? id;
    const servers = [...st.servers.values()].map((v) => ({ id: v.id, name: v.name, project: projectName(v.projectId), host: v.host, status: serverStatus(v.vmState, v.taskState) }));
    const onHost = new Map<string, number>();
    for (const x of servers) if (x.host) onHost.set(x.host, (onHost.get(x.host) ?? 0) + 1);
    return {
      hosts: hosts.map((h) => {
        const sh = st.hosts.get(h);
        const up = sh ? sh.alive && !sh.forcedDown && st.clock.now() - sh.updatedAtMs < st.opts.serviceDownTimeMs : false;
        return {
          host: h,
          zone: sh?.zone ?? "nova",
          rack: rackOf.get(h) ?? null,
          power: redfish.system(h).powerState,
          service: up ? "up" : "down",
          forcedDown: sh?.forcedDown ?? false,
          disabled: sh?.disabled ?? false,
          servers: onHost.get(h) ?? 0,
        };
      }),
      servers,
    };
  };
  const control =
    opts.controlPort !== undefined
      ? await startControl(host, opts.controlPort, {
          fail: (h) => cloud.killHost(h),
          repair: (h) => cloud.startCompute(h),
          view,
          hosts,
          racks,
          failRack,
          evacuations,
          faults: cloud.faults,
          requests: cloud.requests,
        })
      : null;

  return {
    view,
    ...(control ? { controlUrl: control.url } : {}),
    cloud,
    redfish,
    smtp,
    hosts,
    failHost: (name) => cloud.killHost(name),
    racks,
    failRack,
    evacuations,
    config: (c = {}) => ({
      openstack: {
        auth: {
          auth_url: cloud.url,
          username: cloud.admin.username,
          password: cloud.admin.password,
          user_domain_name: cloud.admin.user_domain_name,
          project_name: cloud.admin.project_name,
          project_domain_name: cloud.admin.project_domain_name,
        },
      },
      fencing: {
        defaults: {
          redfish: {
            username: SANDBOX_BMC.username,
            password: SANDBOX_BMC.password,
            poll_interval_seconds: 0.2,
            power_timeout_seconds: 10,
            timeout_seconds: 20,
          },
        },
        hosts: Object.fromEntries(hosts.map((h) => [h, { driver: "redfish", address: redfish.url, system_id: `/redfish/v1/Systems/${h}`, name: `bmc-${h}` }])),
      },
      gates: {
        confirmations: [{ driver: "nova-service", stale_seconds: c.staleSeconds ?? 5, checks: 1, interval_seconds: 0 }, { driver: "bmc" }],
        cooldown_seconds: 0,
      },
      recovery: { grace_seconds: c.graceSeconds ?? 2 },
      evacuation: { poll_interval_seconds: 0.25 },
      notifications: {
        from: "lifeboat <lifeboat@cloud.example>",
        operators: SANDBOX_OPERATORS,
        smtp: { host, port: smtp.port, security: "none" },
        tenants: { enabled: true },
      },
    }),
    close: async () => {
      await Promise.allSettled([cloud.close(), redfish.close(), smtp.close(), control?.close()]);
    },
  };
}

export { SANDBOX_ADMIN };

function serverStatus(vmState: string, taskState: string | null): string {
  if (taskState && taskState.startsWith("rebuild")) return "REBUILD";
  return ({ active: "ACTIVE", stopped: "SHUTOFF", error: "ERROR", paused: "PAUSED", suspended: "SUSPENDED", shelved_offloaded: "SHELVED_OFFLOADED" } as Record<string, string>)[vmState] ?? vmState.toUpperCase();
}
