import { stringify } from "yaml";
import { loadSandbox } from "./sandbox-package.js";

export interface SandboxCommandOptions {
  host: string;
  cloudPort: string;
  redfishPort: string;
  smtpPort: string;
  controlPort: string;
  hosts: string;
  serversPerHost: string;
  racks?: string;
  zones: string;
  printConfig?: boolean;
}

/**
 * `lifeboat sandbox`: the simulated site on fixed ports — Keystone/Nova/Placement, one
 * Redfish BMC per host, an SMTP catcher and a control API to fail hosts, inject cloud faults
 * and read the cloud's request log — so that `lifeboat serve --config config/example.yaml`
 * has a cloud to work on. Runs until Ctrl-C. The site is the @lifeboat/sandbox package,
 * which only a development install has.
 */
export async function sandboxCommand(o: SandboxCommandOptions): Promise<void> {
  const { rackScenario, startSandbox } = await loadSandbox("sandbox");
  const layout = { hosts: count("--hosts", o.hosts), serversPerHost: count("--servers-per-host", o.serversPerHost, 0) };
  const site = await startSandbox({
    host: o.host,
    ports: { cloud: Number(o.cloudPort), redfish: Number(o.redfishPort), smtp: Number(o.smtpPort) },
    controlPort: Number(o.controlPort),
    // In racks: every host carries the same load, and any rack can be failed whole.
    cloud: o.racks !== undefined ? { scenario: rackScenario({ ...layout, racks: count("--racks", o.racks), zones: count("--zones", o.zones) }) } : { generate: layout },
  });
  if (o.printConfig) {
    console.log(stringify(site.config()));
  }
  const v = site.view();
  console.log(
    [
      "lifeboat sandbox: a simulated site",
      `  Keystone auth URL  ${site.cloud.url}   (user ${site.cloud.admin.username}, project ${site.cloud.admin.project_name})`,
      `  Redfish BMCs       ${site.redfish.url}/redfish/v1/Systems/<host>`,
      `  SMTP catcher       ${o.host}:${site.smtp.port}   (messages are printed below)`,
      `  control API        ${site.controlUrl ?? "-"}`,
      "                       POST /hosts/<host>/fail | /repair, GET /state",
      ...(site.racks.size ? ["                       GET /racks, POST /racks/<rack>/fail   (every host of the rack off at once)"] : []),
      "                       POST /faults, GET /faults, DELETE /faults[/<id>]   (inject cloud faults)",
      "                       GET /requests?since=<seq>                          (the cloud's request log)",
      site.racks.size
        ? `  racks              ${[...site.racks].map(([rack, hosts]) => `${rack} (${hosts.length} hosts, ${v.hosts.find((h) => h.host === hosts[0])?.zone ?? "?"})`).join(", ")}`
        : `  hosts              ${v.hosts.map((h) => `${h.host} (${h.servers} servers)`).join(", ")}`,
      "",
      "fail a host, then tell lifeboat (as Alertmanager would):",
      `  curl -X POST ${site.controlUrl ?? ""}/hosts/compute-1/fail`,
      "rehearse a slow Nova (3 s on every server action), then remove every fault:",
      `  curl -X POST ${site.controlUrl ?? ""}/faults -H 'Content-Type: application/json' \\`,
      `    -d '{"kind": "latency", "ms": 3000, "match": {"service": "compute", "method": "POST", "path": "^/v2.1/servers/[^/]+/action$"}}'`,
      `  curl -X DELETE ${site.controlUrl ?? ""}/faults`,
      "Ctrl-C stops the site.",
    ].join("\n"),
  );
  let shown = 0;
  const timer = setInterval(() => {
    for (const m of site.smtp.messages.slice(shown)) console.log(`[smtp] to ${m.to.join(", ")}: ${m.subject}`);
    shown = site.smtp.messages.length;
  }, 500);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  clearInterval(timer);
  await site.close();
}

/** A whole number from the command line, or an error naming the option. */
function count(option: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${option} must be a whole number ≥ ${min}, not ${JSON.stringify(value)}`);
  return n;
}
