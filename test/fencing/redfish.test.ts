import { afterEach, describe, expect, it } from "vitest";
import { redfishDeviceSchema } from "../../src/fencing/config.js";
import { RedfishDevice, chooseResetType, powerStateOf } from "../../src/fencing/redfish.js";
import { silentLogger } from "../../src/logging.js";
import { startRedfishSimulator, type RedfishSimulator, type RedfishSimulatorOptions } from "../../packages/sandbox/src/redfish.js";

// The Redfish driver against the Redfish BMC simulator (real HTTP on 127.0.0.1).

const USER = "root";
const PASSWORD = "calvin-Redfish-9";
const sims: RedfishSimulator[] = [];

async function sim(opts: Partial<RedfishSimulatorOptions> = {}): Promise<RedfishSimulator> {
  const s = await startRedfishSimulator({ systems: [{ id: "1", powerState: "On" }], username: USER, password: PASSWORD, ...opts });
  sims.push(s);
  return s;
}

function device(s: { url: string }, overrides: Record<string, unknown> = {}): RedfishDevice {
  const config = redfishDeviceSchema.parse({
    driver: "redfish",
    address: s.url,
    username: USER,
    password: PASSWORD,
    retries: 1,
    retry_delay_seconds: 0.05,
    poll_interval_seconds: 0.1,
    power_timeout_seconds: 2,
    command_timeout_seconds: 2,
    timeout_seconds: 10,
    ...overrides,
  });
  return new RedfishDevice(config, { logger: silentLogger() });
}

const posts = (s: RedfishSimulator) => s.requests.filter((r) => r.method === "POST" && r.path.endsWith("ComputerSystem.Reset"));

afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

describe("redfish device: discovery and auth", () => {
  it("finds the only system and reads its PowerState with basic auth", async () => {
    const s = await sim();
    expect(await device(s).status()).toEqual({ state: "on", raw: "PowerState: On" });
    expect(s.requests.map((r) => `${r.method} ${r.path} ${r.auth}`)).toEqual([
      "GET /redfish/v1/ basic",
      "GET /redfish/v1/Systems basic",
      "GET /redfish/v1/Systems/1 basic",
    ]);
    for (const r of s.requests) {
      expect(r.headers["odata-version"]).toBe("4.0");
      expect(r.headers.accept).toContain("application/json");
    }
  });

  it("uses an explicit system_id (id or path) and refuses to guess among several systems", async () => {
    const s = await sim({
      systems: [
        { id: "System.Embedded.1", powerState: "On" },
        { id: "System.Embedded.2", powerState: "Off" },
      ],
    });
    expect((await device(s, { system_id: "System.Embedded.2" }).status()).state).toBe("off");
    expect((await device(s, { system_id: "/redfish/v1/Systems/System.Embedded.1" }).status()).state).toBe("on");
    await expect(device(s).status()).rejects.toThrow(/lists 2 systems .*System\.Embedded\.1.*System\.Embedded\.2.*set system_id/);
    const r = await device(s).off();
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/set system_id/);
    expect(posts(s)).toHaveLength(0);
  });

  it("works through a session: X-Auth-Token on every call, and the session deleted afterwards", async () => {
    const s = await sim({ maxSessions: 2 });
    const d = device(s, { auth: "session" });
    for (let i = 0; i < 3; i++) {
      s.system("1").setPowerState("On");
      expect(await d.off()).toMatchObject({ ok: true, state: "off" });
    }
    expect((await d.status()).state).toBe("off");
    expect(s.sessionCount()).toBe(0);
    const logins = s.requests.filter((r) => r.method === "POST" && r.path === "/redfish/v1/SessionService/Sessions");
    const logouts = s.requests.filter((r) => r.method === "DELETE" && r.path.startsWith("/redfish/v1/SessionService/Sessions/"));
    expect(logins).toHaveLength(4);
    expect(logouts.map((r) => r.status)).toEqual([204, 204, 204, 204]);
    expect(logins[0]?.body).toEqual({ UserName: USER, Password: PASSWORD });
    for (const r of s.requests.filter((x) => !logins.includes(x))) {
      expect(r.auth).toBe("session");
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  it("fails on bad credentials with the BMC's words, without retrying", async () => {
    const s = await sim();
    const bad = device(s, { password: "wrong", retries: 3, retry_delay_seconds: 1 });
    await expect(bad.status()).rejects.toThrow(/HTTP 401.*no valid session/i);
    s.requests.length = 0;
    const r = await bad.off();
    expect(r).toMatchObject({ ok: false, state: "unknown", attempts: 0 });
    expect(r.message).toMatch(/HTTP 401/);
    expect(s.requests.filter((x) => x.status === 401)).toHaveLength(1);

    const session = await device(s, { auth: "session", password: "wrong" }).off();
    expect(session.ok).toBe(false);
    expect(session.message).toMatch(/HTTP 401.*ResourceAtUriUnauthorized/);
    expect(s.system("1").powerState).toBe("On");
  });
});

describe("redfish device: power", () => {
  it("sends ForceOff to the action target and polls PowerState through PoweringOff until Off", async () => {
    const s = await sim({ powerDelayMs: 500 });
    const r = await device(s).off();
    expect(r).toMatchObject({ ok: true, state: "off", already: false, attempts: 1 });
    expect(r.message).toContain("ForceOff accepted (HTTP 204)");
    expect(r.message).toContain("read back: PowerState: Off");
    expect(r.durationMs).toBeGreaterThanOrEqual(500);
    expect(s.system("1").resets).toEqual(["ForceOff"]);
    const [post] = posts(s);
    expect(post?.path).toBe("/redfish/v1/Systems/1/Actions/ComputerSystem.Reset");
    expect(post?.headers["content-type"]).toContain("application/json");
    expect(post?.headers["odata-version"]).toBe("4.0");
    expect(post?.body).toEqual({ ResetType: "ForceOff" });
    const reads = s.requests.filter((x) => x.method === "GET" && x.path === "/redfish/v1/Systems/1");
    expect(reads.length).toBeGreaterThanOrEqual(3); // before, while PoweringOff, Off
  });

  it("reads PowerState right after ForceOff, without waiting, and confirms Off with two fresh GETs", async () => {
    // The BMC takes 2 s to power off: a read made at once still sees PoweringOff.
    const s = await sim({ powerDelayMs: 2000 });
    const r = await device(s, { power_timeout_seconds: 5 }).off();
    expect(r).toMatchObject({ ok: true, state: "off", already: false, attempts: 1 });
    expect(r.message).toContain("read back: PowerState: Off (twice, 0.1s apart)");
    const reads = s.system("1").powerReads;
    expect(reads[0]).toBe("On"); // before the command
    expect(reads[1]).toBe("PoweringOff"); // at once after it
    expect(reads.slice(-2)).toEqual(["Off", "Off"]);
    expect(reads.filter((x) => x === "Off")).toHaveLength(2);
  });

  it("still waits power_wait_seconds after the command when it is set", async () => {
    // A 1 s power_wait outlasts the BMC's 300 ms power-off: the first read after it is Off.
    const s = await sim({ powerDelayMs: 300 });
    const r = await device(s, { power_wait_seconds: 1 }).off();
    expect(r).toMatchObject({ ok: true, state: "off", attempts: 1 });
    expect(s.system("1").powerReads).toEqual(["On", "Off", "Off"]);
  });

  it("does not confirm a BMC that shows Off once and then On again", async () => {
    const s = await sim();
    s.system("1").ignoreResets(true);
    s.system("1").scriptPowerStates(["On", "Off"]);
    const r = await device(s, { power_timeout_seconds: 1 }).off();
    expect(r).toMatchObject({ ok: false, state: "on", already: false, attempts: 1 });
    expect(r.message).toContain("last status: PowerState: On; it read off once, but the next read said: PowerState: On");
    const reads = s.system("1").powerReads;
    expect(reads.slice(0, 3)).toEqual(["On", "Off", "On"]);
    expect(reads.slice(3).every((x) => x === "On")).toBe(true);
  });

  it("counts an Off system as already off and sends nothing, once a second GET agrees", async () => {
    const s = await sim({ systems: [{ id: "1", powerState: "Off" }] });
    expect(await device(s).off()).toMatchObject({ ok: true, state: "off", already: true, attempts: 0 });
    expect(posts(s)).toHaveLength(0);
    expect(s.system("1").powerReads).toEqual(["Off", "Off"]);
  });

  it("powers on with On, or ForceOn when only that is allowed", async () => {
    const s = await sim({ systems: [{ id: "1", powerState: "Off" }], powerDelayMs: 200 });
    expect(await device(s).on()).toMatchObject({ ok: true, state: "on" });
    expect(s.system("1").resets).toEqual(["On"]);
    const t = await sim({ systems: [{ id: "1", powerState: "Off", allowableResetTypes: ["ForceOn", "ForceOff"] }] });
    expect(await device(t).on()).toMatchObject({ ok: true, state: "on" });
    expect(t.system("1").resets).toEqual(["ForceOn"]);
  });

  it("accepts 200 and 202 answers to the reset", async () => {
    for (const resetStatus of [200, 202] as const) {
      const s = await sim({ resetStatus, powerDelayMs: 200 });
      const r = await device(s).off();
      expect(r).toMatchObject({ ok: true, state: "off" });
      expect(r.message).toContain(`HTTP ${resetStatus}`);
    }
  });

  it("re-checks a Dell-style 409 'already off' by reading PowerState", async () => {
    const s = await sim();
    // The host goes down on its own between our status read and our ForceOff.
    s.system("1").beforeReset = () => s.system("1").setPowerState("Off");
    const r = await device(s).off();
    expect(r).toMatchObject({ ok: true, state: "off", already: false });
    expect(r.message).toContain("HTTP 409");
    expect(r.message).toContain("already powered off");
    expect(posts(s).map((x) => x.status)).toEqual([409]);
  });

  it("re-checks an HPE-style 400 'already off' by reading PowerState", async () => {
    const s = await sim({ alreadyInStateStatus: 400 });
    s.system("1").beforeReset = () => s.system("1").setPowerState("Off");
    const r = await device(s).off();
    expect(r).toMatchObject({ ok: true, state: "off" });
    expect(r.message).toContain("iLO.2.14.InvalidOperationForSystemState: Power is off");
  });

  it("does not trust a 409 while PowerState still says On", async () => {
    const s = await sim();
    s.system("1").answerResetsWith({ status: 409, message: "Unable to perform the operation because the server is already powered off." });
    const t0 = Date.now();
    const r = await device(s, { power_timeout_seconds: 1 }).off();
    expect(r).toMatchObject({ ok: false, state: "on" });
    expect(r.message).toContain("already powered off");
    expect(r.message).toContain("last status: PowerState: On");
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("fails when the BMC accepts the reset but the power stays on", async () => {
    const s = await sim();
    s.system("1").ignoreResets(true);
    const t0 = Date.now();
    const r = await device(s, { power_timeout_seconds: 1 }).off();
    expect(r).toMatchObject({ ok: false, state: "on", attempts: 1 });
    expect(r.message).toContain("did not read back off within 1s; last status: PowerState: On");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("honours AllowableValues: never sends anything but ForceOff to fence", async () => {
    const s = await sim({ systems: [{ id: "1", powerState: "On", allowableResetTypes: ["On", "GracefulShutdown", "PushPowerButton", "PowerCycle"] }] });
    const r = await device(s).off();
    expect(r).toMatchObject({ ok: false, state: "on", attempts: 1 });
    expect(r.message).toContain("does not allow ResetType ForceOff (allows: On, GracefulShutdown, PushPowerButton, PowerCycle)");
    expect(s.system("1").resets).toEqual([]);
    expect(s.system("1").powerState).toBe("On");
  });

  it("reads AllowableValues from an ActionInfo resource", async () => {
    const s = await sim({ allowableValuesIn: "actionInfo", systems: [{ id: "1", powerState: "On", allowableResetTypes: ["On", "GracefulShutdown"] }] });
    const r = await device(s).off();
    expect(r.ok).toBe(false);
    expect(r.message).toContain("allows: On, GracefulShutdown");
    expect(s.requests.some((x) => x.path === "/redfish/v1/Systems/1/ResetActionInfo")).toBe(true);

    const t = await sim({ allowableValuesIn: "actionInfo" });
    expect(await device(t).off()).toMatchObject({ ok: true, state: "off" });
    expect(t.system("1").resets).toEqual(["ForceOff"]);
  });

  it("retries server errors and reports the BMC's words", async () => {
    const s = await sim();
    s.failAll(500);
    const r = await device(s, { retries: 2 }).off();
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/HTTP 500.*InternalError/);
    expect(s.requests).toHaveLength(3);
  });

  it("fails in bounded time when the BMC is unreachable", async () => {
    const s = await sim();
    const d = device(s);
    await s.close();
    const t0 = Date.now();
    const r = await d.off();
    expect(r.ok).toBe(false);
    expect(r.message).toContain("ECONNREFUSED");
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe("redfish device: TLS", () => {
  it("verifies the certificate by default, trusts a ca_file, and can skip verification", async () => {
    const s = await sim({ tls: true });
    expect(s.url).toMatch(/^https:/);
    const strict = device(s, { retries: 3, retry_delay_seconds: 5 });
    const t0 = Date.now();
    await expect(strict.status()).rejects.toThrow(/self.signed certificate/i);
    expect(Date.now() - t0).toBeLessThan(4000); // not retried: a retry would wait 5 s first
    expect((await device(s, { ca_file: s.certFile }).status()).state).toBe("on");
    expect((await device(s, { verify_tls: false }).status()).state).toBe("on");
  });
});

describe("redfish helpers", () => {
  it("maps PowerState and picks ResetTypes", () => {
    expect(["On", "Off", "PoweringOn", "PoweringOff", "Paused", undefined, "Weird"].map(powerStateOf)).toEqual(["on", "off", "on", "on", "on", "unknown", "unknown"]);
    expect(chooseResetType("off", undefined)).toBe("ForceOff");
    expect(chooseResetType("off", ["ForceOff", "On"])).toBe("ForceOff");
    expect(() => chooseResetType("off", ["GracefulShutdown", "Off"])).toThrow(/does not allow ResetType ForceOff/);
    expect(chooseResetType("on", undefined)).toBe("On");
    expect(chooseResetType("on", ["ForceOn"])).toBe("ForceOn");
    expect(() => chooseResetType("on", ["ForceOff"])).toThrow(/neither On nor ForceOn/);
  });
});
