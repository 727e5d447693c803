import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fencingSchema, ipmiDeviceSchema } from "../../src/fencing/config.js";
import { IpmiDevice } from "../../src/fencing/ipmi.js";
import { createFencing } from "../../src/fencing/service.js";
import { createLogger } from "../../src/logging.js";
import { Metrics } from "../../src/metrics.js";
import { startRedfishSimulator, type RedfishSimulator } from "../../packages/sandbox/src/redfish.js";
import { startIpmiSim, type IpmiSim } from "../support/ipmi-sim.js";

// BMC passwords must never reach ipmitool's argv or any log line.

const IPMI_PW = "Argv-Secret-77";
const RF_PW = "Log-Secret-Rf-88";
let dir: string;
let ipmi: IpmiSim;
let redfish: RedfishSimulator;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lifeboat-fence-secrets-"));
  ipmi = await startIpmiSim({ users: [{ name: "admin", password: IPMI_PW }] });
  redfish = await startRedfishSimulator({ systems: [{ id: "1", powerState: "On" }], username: "root", password: RF_PW });
});
afterAll(async () => {
  await ipmi?.stop();
  await redfish?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("ipmitool gets the password through its environment only", () => {
  it("passes -E and IPMITOOL_PASSWORD, never the password in argv, and drops an inherited IPMI_PASSWORD", async () => {
    const fake = join(dir, "ipmitool");
    await writeFile(fake, `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/argv"\nenv > "${dir}/env"\necho "Chassis Power is off"\n`);
    await chmod(fake, 0o755);
    const before = process.env.IPMI_PASSWORD;
    process.env.IPMI_PASSWORD = "inherited-from-parent";
    try {
      const config = ipmiDeviceSchema.parse({ driver: "ipmi", address: "10.1.2.3", username: "admin", password: IPMI_PW, ipmitool_path: fake, cipher_suite: 17 });
      const status = await new IpmiDevice(config, { logger: createLogger({ level: "silent" }) }).status();
      expect(status.state).toBe("off");
    } finally {
      if (before === undefined) delete process.env.IPMI_PASSWORD;
      else process.env.IPMI_PASSWORD = before;
    }
    const argv = (await readFile(join(dir, "argv"), "utf8")).trim().split("\n");
    expect(argv).toEqual(["-I", "lanplus", "-H", "10.1.2.3", "-p", "623", "-U", "admin", "-E", "-L", "ADMINISTRATOR", "-C", "17", "-N", "1", "-R", "2", "chassis", "power", "status"]);
    expect(argv.join(" ")).not.toContain(IPMI_PW);
    const env = (await readFile(join(dir, "env"), "utf8")).split("\n");
    expect(env).toContain(`IPMITOOL_PASSWORD=${IPMI_PW}`);
    expect(env.some((l) => l.startsWith("IPMI_PASSWORD="))).toBe(false);
  });
});

describe("no password in any log line", () => {
  it("logs fencing attempts with device labels and never a password, on success and on failure", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "trace", destination: { write: (s: string) => void lines.push(s) } });
    const fast = { retries: 1, retry_delay_seconds: 0.05, power_wait_seconds: 0.1, poll_interval_seconds: 0.1, power_timeout_seconds: 1, timeout_seconds: 10 };
    const config = fencingSchema.parse({
      defaults: { ipmi: { username: "admin", password: IPMI_PW, cipher_suite: 3, ...fast } },
      hosts: {
        "compute-1": { devices: [{ driver: "ipmi", address: ipmi.host, port: ipmi.port, password: "Wrong-Pw-Also-Secret" }, { driver: "ipmi", address: ipmi.host, port: ipmi.port }] },
        "compute-2": { driver: "redfish", address: redfish.url, username: "root", password: RF_PW, auth: "session", ...fast },
        "compute-3": { driver: "redfish", address: redfish.url, username: "root", password: "Bad-Rf-Secret", ...fast },
      },
    });
    const fencing = createFencing(config, { logger, metrics: new Metrics({ version: "test", defaultMetrics: false }) });
    const results = [
      await fencing.fenceOff("compute-1"),
      await fencing.fenceOff("compute-2"),
      await fencing.fenceOff("compute-3"),
      await fencing.status("compute-1"),
      await fencing.powerOn("compute-2"),
    ];
    expect(results[0]).toMatchObject({ ok: true });
    expect(results[1]).toMatchObject({ ok: true });
    expect(results[2]).toMatchObject({ ok: false });

    const text = lines.join("") + JSON.stringify(results) + JSON.stringify(config);
    expect(lines.length).toBeGreaterThan(8);
    for (const secret of [IPMI_PW, RF_PW, "Wrong-Pw-Also-Secret", "Bad-Rf-Secret"]) expect(text).not.toContain(secret);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.some((l) => l.device === `ipmi ${ipmi.host}:${ipmi.port}` && l.operation === "off")).toBe(true);
    expect(parsed.some((l) => l.device === `redfish ${redfish.url}` && l.level === "warn")).toBe(true);
  });
});
