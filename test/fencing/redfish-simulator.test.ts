import { afterEach, describe, expect, it } from "vitest";
import { startRedfishSimulator, type RedfishSimulator, type RedfishSimulatorOptions } from "../../packages/sandbox/src/redfish.js";

// The simulator's own contract, spoken to with plain fetch: what a Redfish client meets.

const sims: RedfishSimulator[] = [];
const basic = "Basic " + Buffer.from("admin:sim-pw").toString("base64");
const H = { Authorization: basic, "OData-Version": "4.0", Accept: "application/json" };

async function sim(opts: Partial<RedfishSimulatorOptions> = {}): Promise<RedfishSimulator> {
  const s = await startRedfishSimulator({ systems: [{ id: "1", name: "node-1", powerState: "On" }], username: "admin", password: "sim-pw", ...opts });
  sims.push(s);
  return s;
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

function reset(s: RedfishSimulator, resetType: unknown, headers: Record<string, string> = H): Promise<Response> {
  return fetch(`${s.url}/redfish/v1/Systems/1/Actions/ComputerSystem.Reset`, {
    method: "POST",
    headers: { ...headers, "Content-Type": "application/json" },
    body: JSON.stringify({ ResetType: resetType }),
  });
}

const messageIds = (body: Record<string, unknown>): string[] =>
  ((body.error as Record<string, unknown>)["@Message.ExtendedInfo"] as { MessageId: string }[]).map((m) => m.MessageId);

afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

describe("Redfish BMC simulator", () => {
  it("serves the service root unauthenticated and the rest only with credentials", async () => {
    const s = await sim();
    const root = await fetch(`${s.url}/redfish/v1/`);
    expect(root.status).toBe(200);
    expect(root.headers.get("odata-version")).toBe("4.0");
    expect(await json(root)).toMatchObject({ Systems: { "@odata.id": "/redfish/v1/Systems" }, SessionService: { "@odata.id": "/redfish/v1/SessionService" } });

    const anon = await fetch(`${s.url}/redfish/v1/Systems`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get("www-authenticate")).toContain("Basic");
    expect(messageIds(await json(anon))).toEqual(["Base.1.8.NoValidSession"]);
    const wrong = await fetch(`${s.url}/redfish/v1/Systems`, { headers: { Authorization: "Basic " + Buffer.from("admin:nope").toString("base64") } });
    expect(wrong.status).toBe(401);
    expect((await fetch(`${s.url}/redfish/v1/Systems`, { headers: { "X-Auth-Token": "made-up" } })).status).toBe(401);

    const systems = await json(await fetch(`${s.url}/redfish/v1/Systems`, { headers: H }));
    expect(systems).toMatchObject({ Members: [{ "@odata.id": "/redfish/v1/Systems/1" }], "Members@odata.count": 1 });
    const system = await json(await fetch(`${s.url}/redfish/v1/Systems/1`, { headers: H }));
    expect(system).toMatchObject({
      Id: "1",
      Name: "node-1",
      PowerState: "On",
      Actions: { "#ComputerSystem.Reset": { target: "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", "ResetType@Redfish.AllowableValues": expect.arrayContaining(["ForceOff", "On"]) as unknown } },
    });
  });

  it("opens sessions (201, X-Auth-Token, Location) and deletes them", async () => {
    const s = await sim();
    const login = await fetch(`${s.url}/redfish/v1/SessionService/Sessions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ UserName: "admin", Password: "sim-pw" }),
    });
    expect(login.status).toBe(201);
    const token = login.headers.get("x-auth-token");
    const location = login.headers.get("location");
    expect(token).toBeTruthy();
    expect(location).toMatch(/^\/redfish\/v1\/SessionService\/Sessions\/\d+$/);
    expect(s.sessionCount()).toBe(1);
    expect((await fetch(`${s.url}/redfish/v1/Systems/1`, { headers: { "X-Auth-Token": token! } })).status).toBe(200);
    expect((await fetch(`${s.url}${location}`, { method: "DELETE", headers: { "X-Auth-Token": token! } })).status).toBe(204);
    expect(s.sessionCount()).toBe(0);
    expect((await fetch(`${s.url}/redfish/v1/Systems/1`, { headers: { "X-Auth-Token": token! } })).status).toBe(401);
    const bad = await fetch(`${s.url}/redfish/v1/SessionService/Sessions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ UserName: "admin", Password: "nope" }),
    });
    expect(bad.status).toBe(401);
  });

  it("changes power only after powerDelayMs, showing PoweringOff in between", async () => {
    const s = await sim({ powerDelayMs: 300 });
    expect((await reset(s, "ForceOff")).status).toBe(204);
    expect(s.system("1").powerState).toBe("PoweringOff");
    await new Promise((r) => setTimeout(r, 450));
    expect(s.system("1").powerState).toBe("Off");
    expect((await reset(s, "On")).status).toBe(204);
    expect(s.system("1").powerState).toBe("PoweringOn");
  });

  it("answers like Dell (409) or HPE (400) to ForceOff on an Off system, and 400 to a ResetType not allowed", async () => {
    const dell = await sim({ systems: [{ id: "1", powerState: "Off" }] });
    const d = await reset(dell, "ForceOff");
    expect(d.status).toBe(409);
    expect(JSON.stringify(await json(d))).toContain("already powered off");
    const hpe = await sim({ systems: [{ id: "1", powerState: "Off" }], alreadyInStateStatus: 400 });
    const h = await reset(hpe, "ForceOff");
    expect(h.status).toBe(400);
    expect(JSON.stringify(await json(h))).toContain("InvalidOperationForSystemState");
    const limited = await sim({ systems: [{ id: "1", powerState: "On", allowableResetTypes: ["On", "GracefulShutdown"] }] });
    const n = await reset(limited, "ForceOff");
    expect(n.status).toBe(400);
    expect(messageIds(await json(n))).toEqual(["Base.1.8.ActionParameterValueNotInList"]);
    expect(limited.system("1").powerState).toBe("On");
    expect((await reset(limited, undefined)).status).toBe(400);
  });

  it("checks media type and OData-Version like a Redfish service", async () => {
    const s = await sim();
    const plain = await fetch(`${s.url}/redfish/v1/Systems/1/Actions/ComputerSystem.Reset`, { method: "POST", headers: { Authorization: basic, "Content-Type": "text/plain" }, body: "ForceOff" });
    expect(plain.status).toBe(415);
    expect((await fetch(`${s.url}/redfish/v1/Systems`, { headers: { ...H, "OData-Version": "3.0" } })).status).toBe(412);
    expect(s.system("1").powerState).toBe("On");
  });

  it("injects faults: ignored resets, 500 everywhere, unreachable", async () => {
    const s = await sim();
    s.system("1").ignoreResets(true);
    expect((await reset(s, "ForceOff")).status).toBe(204);
    expect(s.system("1").powerState).toBe("On");
    expect(s.system("1").resets).toEqual(["ForceOff"]);
    s.failAll();
    expect((await fetch(`${s.url}/redfish/v1/`)).status).toBe(500);
    s.failAll(false);
    expect((await fetch(`${s.url}/redfish/v1/`)).status).toBe(200);
    await s.close();
    await expect(fetch(`${s.url}/redfish/v1/`)).rejects.toThrow();
    expect(s.requests.map((r) => r.status)).toEqual([204, 500, 200]);
  });

  it("shows scripted PowerStates to the next GETs, one each, and logs what every GET showed", async () => {
    const s = await sim();
    s.system("1").scriptPowerStates(["Off", "PoweringOn"]);
    const shown: unknown[] = [];
    for (let i = 0; i < 3; i++) shown.push((await json(await fetch(`${s.url}/redfish/v1/Systems/1`, { headers: H }))).PowerState);
    expect(shown).toEqual(["Off", "PoweringOn", "On"]);
    expect(s.system("1").powerState).toBe("On");
    expect(s.system("1").powerReads).toEqual(["Off", "PoweringOn", "On"]);
  });

  it("serves HTTPS with a self-signed certificate", async () => {
    const s = await sim({ tls: true });
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(s.certPem).toContain("BEGIN CERTIFICATE");
    await expect(fetch(`${s.url}/redfish/v1/`)).rejects.toThrow();
  });
});
