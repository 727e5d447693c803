import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlertmanagerClient } from "../../src/alertmanager/client.js";
import { Metrics } from "../../src/metrics.js";
import { alertsGate } from "../../src/gates/alerts.js";
import { silencesGate } from "../../src/gates/silences.js";
import type { Gate, GateVerdict } from "../../src/domain/ports/gate.js";
import { startAlertmanager, type AlertmanagerServer } from "../support/alertmanager.js";
import { freePort } from "../support/daemon.js";
import { askGate, validatingRecovery } from "./ask.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";

/**
 * The gates that ask Alertmanager, against a real Alertmanager: silences (a host silence and
 * the global pause matcher) and the firing-alerts confirmation — and the scenario of a silence
 * created while a recovery waits in its grace period.
 */

let am: AlertmanagerServer;
let client: AlertmanagerClient;
let deadUrl: string;

beforeAll(async () => {
  // Nothing listens at the webhook URL: these tests only use Alertmanager's API.
  am = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${await freePort()}/api/v1/alerts`, groupWait: "1h" });
  client = new AlertmanagerClient(am.url, { timeoutMs: 3000 });
  deadUrl = `http://127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  await am?.stop();
});

function evaluate(gate: Gate, host: string): Promise<GateVerdict> {
  return askGate(gate, validatingRecovery(host));
}

async function fire(host: string, alertname: string): Promise<void> {
  await am.postAlerts([{ labels: { alertname, host, severity: "critical" }, startsAt: new Date(Date.now() - 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString() }]);
}

const silences = (c: AlertmanagerClient, onError: "block" | "proceed" = "block"): Gate =>
  silencesGate(c, { pauseMatcher: 'lifeboat="paused"', onError, hostLabel: "host", triggerAlertnames: ["ComputeNodeDown"], metrics: new Metrics({ version: "t", defaultMetrics: false }) });

describe("silences gate (real Alertmanager)", () => {
  it("passes when no silence covers the host", async () => {
    await fire("compute-1", "ComputeNodeDown");
    expect((await evaluate(silences(client), "compute-1")).result).toBe("pass");
  });

  it("a silence host=X pauses X (its alert is suppressed), not the other hosts", async () => {
    await fire("compute-2", "ComputeNodeDown");
    const id = await am.createSilence({ host: "compute-2" }, 600_000, "BIOS update");
    await waitFor(async () => (await am.alerts({ host: "compute-2" }))[0]?.status.state === "suppressed", 10_000, "suppressed");
    const v = await evaluate(silences(client), "compute-2");
    // An approval does not override a silence: it lifts when the silence ends.
    expect(v).toMatchObject({ result: "block", recheck: true, overridable: false, details: { silences: [{ id, createdBy: expect.any(String) as unknown }] } });
    expect(v.reason).toContain(id);
    expect(v.reason).toMatch(/BIOS update/);
    expect((await evaluate(silences(client), "compute-1")).result).toBe("pass");
    await am.expireSilence(id);
  });

  it("a silence matching the host also pauses a manual recovery that has no alert", async () => {
    const id = await am.createSilence({ host: "compute-5" }, 600_000, "rack work");
    expect((await evaluate(silences(client), "compute-5")).result).toBe("block");
    await am.expireSilence(id);
    expect((await evaluate(silences(client), "compute-5")).result).toBe("pass");
  });

  it('a silence with the pause matcher lifeboat="paused" pauses everything', async () => {
    const id = await am.createSilence({ lifeboat: "paused" }, 600_000, "cloud upgrade");
    for (const h of ["compute-1", "compute-3"]) {
      const v = await evaluate(silences(client), h);
      expect(v.result).toBe("block");
      expect(v.reason).toMatch(/automation paused by silence .*cloud upgrade/);
    }
    await am.expireSilence(id);
    expect((await evaluate(silences(client), "compute-1")).result).toBe("pass");
  });

  it("when Alertmanager cannot be asked: blocks by default, proceeds with a warning if configured so", async () => {
    const dead = new AlertmanagerClient(deadUrl, { timeoutMs: 1000 });
    expect(await evaluate(silences(dead), "compute-1")).toMatchObject({ result: "undecided", recheck: true });
    expect((await evaluate(silences(dead, "proceed"), "compute-1")).result).toBe("warn");
  });
});

describe("alerts confirmation (real Alertmanager)", () => {
  const gate = (c: AlertmanagerClient): Gate => alertsGate(c, { alertnames: ["NodeExporterDown", "NovaComputeAgentDown"], hostLabel: "host" });

  it("passes only when every listed alertname fires for the host", async () => {
    await fire("compute-7", "NodeExporterDown");
    const one = await evaluate(gate(client), "compute-7");
    expect(one.result).toBe("block");
    expect(one.reason).toBe("not firing for compute-7: NovaComputeAgentDown");
    await fire("compute-7", "NovaComputeAgentDown");
    expect((await evaluate(gate(client), "compute-7")).result).toBe("pass");
  });

  it("cannot decide when Alertmanager cannot be asked", async () => {
    expect((await evaluate(gate(new AlertmanagerClient(deadUrl, { timeoutMs: 1000 })), "compute-7")).result).toBe("undecided");
  });
});

describe("a silence created while a recovery waits in its grace period", () => {
  let t: TestLifeboat;
  afterAll(async () => {
    await t?.app.stop();
  });

  it("pauses it; when the silence expires the recovery proceeds, because the alert still fires", async () => {
    t = makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 1.5, recheck_interval_seconds: 0.3 }, alertmanager: { url: am.url }, gates: { silences: { enabled: true } } }));
    await t.app.start({ listen: "127.0.0.1:0" });
    t.world.kill("compute-2");
    await fire("compute-2", "ComputeNodeDown");
    await postAlert(t.app.url, alertPayload({ host: "compute-2" }));
    const r = await waitFor(async () => (await t.app.store.listRecoveries({ host: "compute-2" }))[0], 5000, "recovery");
    expect(r.state).toBe("pending");
    const id = await am.createSilence({ host: "compute-2" }, 600_000, "planned maintenance");
    await waitFor(async () => (await t.app.store.getRecovery(r.id))?.state === "blocked", 10_000, "blocked by the silence");
    expect((await t.app.store.getRecovery(r.id))!.reason).toMatch(/silences: compute-2 is silenced in Alertmanager/);
    await new Promise((res) => setTimeout(res, 1000));
    expect(t.world.calls).toEqual([]);
    // An approval does not lift a silence (someone said "hands off" in Alertmanager).
    expect((await api(t.app.url, "POST", `/api/v1/recoveries/${r.id}/approve`)).status).toBe(200);
    await new Promise((res) => setTimeout(res, 1000));
    expect((await t.app.store.getRecovery(r.id))!.state).toBe("blocked");
    expect(t.world.calls).toEqual([]);
    await am.expireSilence(id);
    await waitFor(async () => (await t.app.store.getRecovery(r.id))?.state === "completed", 15_000, "completed after the silence expired");
    const detail = (await api(t.app.url, "GET", `/api/v1/recoveries/${r.id}`)).body as { decisions: { gate: string; result: string }[] };
    expect(detail.decisions.filter((d) => d.gate === "silences").map((d) => d.result)).toEqual(["block", "pass"]);
    expect(t.world.count("off compute-2")).toBe(1);
  });
});
