import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { fencingSchema } from "../../src/fencing/config.js";
import { FenceDriverRegistry, defaultFenceRegistry } from "../../src/fencing/registry.js";
import { silentLogger } from "../../src/logging.js";
import { Secret } from "../../src/util/secret.js";

function problems(input: unknown): string[] {
  const r = fencingSchema.safeParse(input);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("fencing config", () => {
  it("reports device errors under the host's own path", () => {
    const p = problems({ hosts: { "compute-1": { driver: "ipmi", username: "admin", password: "x" } } });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^hosts\.compute-1\.address: /);
    const q = problems({ hosts: { "compute-2": { devices: [{ driver: "libvirt", uri: "test:///default", domain: "test" }, { driver: "redfish", address: "not a url", username: "u", password: "p" }] } } });
    expect(q).toEqual(["hosts.compute-2.devices.1.address: expected an http(s) URL"]);
  });

  it("reads through the config loader as fencing.hosts.HOST.FIELD: required", () => {
    const yaml = `
server:
  auth: none
  admin_token: t0ken-0123456789abcdef
fencing:
  hosts:
    compute-1:
      driver: ipmi
      username: admin
      password: secret
`;
    const r = parseConfig(yaml, {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toContainEqual({ path: "fencing.hosts.compute-1.address", message: "required" });
  });

  it("accepts a single device or a chain, and merges per-driver defaults under each device", () => {
    const r = fencingSchema.parse({
      defaults: { ipmi: { username: "admin", password: "shared-pw", power_wait_seconds: 5 }, redfish: { username: "root", password: "calvin" } },
      hosts: {
        "compute-1": { driver: "ipmi", address: "10.0.0.1" },
        "compute-2": {
          devices: [
            { driver: "ipmi", address: "10.0.0.2", power_wait_seconds: 1, username: "other" },
            { driver: "redfish", address: "https://10.0.1.2", system_id: "System.Embedded.1" },
          ],
        },
      },
    });
    const one = r.hosts["compute-1"]!.devices;
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ driver: "ipmi", address: "10.0.0.1", username: "admin", power_wait_seconds: 5, port: 623, interface: "lanplus" });
    const two = r.hosts["compute-2"]!.devices;
    expect(two.map((d) => d.driver)).toEqual(["ipmi", "redfish"]);
    expect(two[0]).toMatchObject({ username: "other", power_wait_seconds: 1 });
    expect(two[1]).toMatchObject({ username: "root", verify_tls: true, auth: "basic", system_id: "System.Embedded.1" });
    const pw = two[1]!.driver === "redfish" ? two[1]!.password : undefined;
    expect(pw).toBeInstanceOf(Secret);
    expect(JSON.stringify(r)).not.toContain("calvin");
  });

  it("reads the power state at once after a command and confirms it with a second read, by default", () => {
    const d = fencingSchema.parse({ hosts: { h: { driver: "ipmi", address: "10.0.0.1", username: "u", password: "p" } } }).hosts.h!.devices[0]!;
    expect(d).toMatchObject({ power_wait_seconds: 0, poll_interval_seconds: 1, confirm_interval_seconds: 0.1, power_timeout_seconds: 20, timeout_seconds: 30 });
  });

  it("refuses the noop driver without unsafe_noop", () => {
    expect(problems({ hosts: { h: { driver: "noop" } } })).toEqual(["hosts.h.driver: the noop driver fences nothing; it needs fencing.unsafe_noop: true"]);
    expect(problems({ unsafe_noop: true, hosts: { h: { driver: "noop" } } })).toEqual([]);
  });

  it("refuses settings that cannot work", () => {
    const base = { driver: "ipmi", address: "10.0.0.1", username: "u", password: "p" };
    expect(problems({ hosts: { h: { ...base, ipmitool_retries: 0 } } })[0]).toMatch(/^hosts\.h\.ipmitool_retries: must be at least 1/);
    expect(problems({ hosts: { h: { ...base, timeout_seconds: 10, power_timeout_seconds: 20 } } })).toEqual([
      "hosts.h.timeout_seconds: must exceed power_wait_seconds + power_timeout_seconds + confirm_interval_seconds (20.1): it bounds the whole operation",
    ]);
    expect(problems({ hosts: { h: { ...base, timeout_seconds: 3.3, power_wait_seconds: 0.2, power_timeout_seconds: 3 } } })).toEqual([
      "hosts.h.timeout_seconds: must exceed power_wait_seconds + power_timeout_seconds + confirm_interval_seconds (3.3): it bounds the whole operation",
    ]);
    expect(problems({ hosts: { h: { devices: [base], extra: 1 } } })).toEqual(["hosts.h: unknown key(s) extra beside devices"]);
    expect(problems({ hosts: { h: { devices: [] } } })).toEqual(["hosts.h.devices: at least one device is required"]);
    expect(problems({ hosts: { h: { ...base, pasword: "typo" } } })[0]).toMatch(/^hosts\.h: Unrecognized key/);
  });
});

describe("fence driver registry", () => {
  it("builds the built-in drivers by name and lets tests add their own", () => {
    const reg = defaultFenceRegistry();
    expect(reg.names()).toEqual(["ipmi", "libvirt", "noop", "redfish"]);
    const cfg = fencingSchema.parse({ hosts: { h: { driver: "libvirt", uri: "test:///default", domain: "test" } } });
    const dev = reg.create(cfg.hosts.h!.devices[0]!, { logger: silentLogger() });
    expect(dev).toMatchObject({ driver: "libvirt", label: "libvirt test:///default test" });
    expect(() => reg.create({ driver: "smoke-signals" }, { logger: silentLogger() })).toThrow(/unknown fencing driver "smoke-signals"/);

    const custom = new FenceDriverRegistry().register<{ driver: "memory"; name: string }>("memory", (c) => ({
      driver: "memory",
      label: c.name,
      status: () => Promise.resolve({ state: "on", raw: "memory" }),
      off: () => Promise.reject(new Error("unused")),
      on: () => Promise.reject(new Error("unused")),
    }));
    expect(custom.create({ driver: "memory", name: "m1" } as { driver: string }, { logger: silentLogger() }).label).toBe("m1");
  });
});
