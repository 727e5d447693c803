import { afterEach, describe, expect, it } from "vitest";
import type { Recovery } from "../../src/domain/model.js";
import type { GateVerdict } from "../../src/domain/ports/gate.js";
import { novaServiceGate } from "../../src/gates/nova-service.js";
import { checkFailedHosts } from "../../src/nova/monitor.js";
import { startSandboxCloud, type SandboxCloud, type SandboxCloudOptions } from "../../packages/sandbox/src/cloud.js";
import { defaultScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import { driverFor, type DriverHandle } from "../openstack/support/driver.js";
import { validatingRecovery } from "./ask.js";

/**
 * nova-compute's heartbeat judged by lifeboat, against the simulated Nova over HTTP: Nova
 * (report_interval 1 s, service_down_time 60 s) answers with its Date header from its own
 * clock, which runs a minute ahead of or behind this machine's — lifeboat's. The nova-service
 * gate and the native monitor must reach the same verdicts whichever way the clocks are off.
 */

const STALE = 30;
const clouds: SandboxCloud[] = [];
const handles: DriverHandle[] = [];
afterEach(async () => {
  handles.splice(0).forEach((h) => h.session.close());
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

async function site(opts: SandboxCloudOptions = {}): Promise<{ cloud: SandboxCloud; h: DriverHandle }> {
  const cloud = await startSandboxCloud({ scenario: defaultScenario({ hosts: 4, serversPerHost: 0 }), serviceDownTimeSeconds: 60, reportIntervalSeconds: 1, ...opts });
  clouds.push(cloud);
  const h = driverFor(cloud);
  handles.push(h);
  await h.driver.start();
  return { cloud, h };
}

function judge(h: DriverHandle, host: string, quiet = false): Promise<GateVerdict> {
  const gate = novaServiceGate(h.driver, { staleSeconds: STALE, checks: 1, intervalSeconds: 0 });
  const recovery: Recovery = validatingRecovery(host);
  return gate.evaluate({ recovery, signal: new AbortController().signal, priorPass: true, quiet });
}

async function failedByMonitor(h: DriverHandle): Promise<string[]> {
  return (await checkFailedHosts(h.driver.nova, { staleSeconds: STALE })).map((f) => f.host);
}

/** What Nova itself says of the host's service now. */
function novaState(cloud: SandboxCloud, host: string): string | undefined {
  cloud.settle();
  return cloud.state.services().find((s) => s.binary === "nova-compute" && s.host === host)?.state;
}

describe.each([
  ["a minute ahead of", -60],
  ["a minute behind", 60],
])("lifeboat's clock %s Nova's", (_, novaAheadSeconds) => {
  it("the gate blocks a fresh heartbeat and passes one older than stale_seconds while Nova still says up", async () => {
    const { cloud, h } = await site({ clockOffsetSeconds: novaAheadSeconds });
    cloud.killHost("compute-2");
    cloud.clock.advance(35_000); // Nova's time: compute-2's heartbeat is 35 s old, compute-1 heartbeats on
    cloud.killHost("compute-3");
    cloud.clock.advance(10_000); // compute-3 died 10 s ago (Nova's time), compute-2 45 s ago
    expect(["compute-1", "compute-2", "compute-3"].map((x) => novaState(cloud, x))).toEqual(["up", "up", "up"]);

    const live = await judge(h, "compute-1");
    expect(live).toMatchObject({ result: "block", recheck: true });
    expect(live.reason).toMatch(/Nova still hears nova-compute on compute-1: last heartbeat \S+, [01](\.\d)?s before Nova's answer/);

    const recent = await judge(h, "compute-3");
    expect(recent.result).toBe("block");
    expect(recent.reason).toMatch(/, ([89]|10)(\.\d)?s before Nova's answer \(stale from 30s on\)/);

    const dead = await judge(h, "compute-2");
    expect(dead.result).toBe("pass");
    expect(dead.reason).toMatch(/nova-compute on compute-2: last heartbeat \S+, at least 4[345](\.\d)?s before Nova's answer \(≥ stale_seconds 30\); Nova says up/);
    expect(dead.details).toMatchObject({ state: "up", forcedDown: false });

    // A quiet re-check on the shared listing judges alike.
    expect((await judge(h, "compute-2", true)).result).toBe("pass");
    expect((await judge(h, "compute-1", true)).result).toBe("block");
  });

  it("the gate passes once Nova itself says down, the heartbeat long stale", async () => {
    const { cloud, h } = await site({ clockOffsetSeconds: novaAheadSeconds });
    cloud.killHost("compute-4");
    cloud.clock.advance(70_000);
    expect(novaState(cloud, "compute-4")).toBe("down");
    const v = await judge(h, "compute-4");
    expect(v.result).toBe("pass");
    expect(v.reason).toMatch(/at least (6[89]|70)(\.\d)?s before Nova's answer/);
  });

  it("the monitor reports the stale heartbeat while Nova still says up, never the fresh ones", async () => {
    const { cloud, h } = await site({ clockOffsetSeconds: novaAheadSeconds });
    expect(await failedByMonitor(h)).toEqual([]);
    cloud.killHost("compute-2");
    cloud.clock.advance(35_000);
    cloud.killHost("compute-3");
    cloud.clock.advance(10_000);
    expect(novaState(cloud, "compute-2")).toBe("up");
    const failed = await checkFailedHosts(h.driver.nova, { staleSeconds: STALE });
    expect(failed.map((f) => f.host)).toEqual(["compute-2"]);
    expect(failed[0]!.heartbeatAgeSeconds).toBeGreaterThanOrEqual(43);
    expect(failed[0]!.heartbeatAgeSeconds).toBeLessThanOrEqual(45);
    cloud.clock.advance(25_000);
    expect(await failedByMonitor(h)).toEqual(["compute-2", "compute-3"]);
  });
});

describe("the nova-service gate's other verdicts", () => {
  it("forced down passes at once, even with a fresh heartbeat", async () => {
    const { cloud, h } = await site();
    cloud.state.hosts.get("compute-1")!.forcedDown = true;
    const v = await judge(h, "compute-1");
    expect(v.result).toBe("pass");
    expect(v.reason).toMatch(/Nova has nova-compute on compute-1 forced down/);
  });

  it("a service disabled by a person is maintenance: blocked however stale its heartbeat, until an operator acts", async () => {
    const { cloud, h } = await site();
    cloud.killHost("compute-2");
    const host = cloud.state.hosts.get("compute-2")!;
    host.disabled = true;
    host.disabledReason = "BIOS update (jdoe)";
    cloud.clock.advance(120_000);
    const v = await judge(h, "compute-2");
    expect(v).toMatchObject({ result: "block", recheck: false, overridable: true });
    expect(v.reason).toMatch(/disabled by a human \("BIOS update \(jdoe\)"\): maintenance/);
    expect(await failedByMonitor(h)).toEqual([]);
  });
});

describe("an answer whose Date contradicts the heartbeats (a proxy in front of Nova, its clock a minute behind)", () => {
  it("the gate cannot tell the heartbeat's age: it says why and waits for Nova's own down", async () => {
    const { cloud, h } = await site({ dateClockOffsetSeconds: -60 });
    cloud.killHost("compute-2");
    cloud.clock.advance(45_000);
    expect(novaState(cloud, "compute-2")).toBe("up");
    const waiting = await judge(h, "compute-2");
    expect(waiting).toMatchObject({ result: "block", recheck: true, details: { heartbeatAgeSeconds: null } });
    expect(waiting.reason).toMatch(/Nova says nova-compute on compute-2 is up .* is later than the Date of Nova's answer .*: the clocks of nova-api \(or a proxy in front of it\) and nova-conductor disagree: waiting for Nova's own verdict/);
    expect((await judge(h, "compute-1")).result).toBe("block");
    expect(await failedByMonitor(h)).toEqual([]);

    cloud.clock.advance(20_000);
    const down = await judge(h, "compute-2");
    expect(down.result).toBe("pass");
    expect(down.reason).toMatch(/Nova says nova-compute on compute-2 is down/);
    expect(await failedByMonitor(h)).toEqual(["compute-2"]);
  });
});

describe("an answer without a Date header (a proxy that drops it)", () => {
  it("the gate cannot tell the heartbeat's age: it waits for Nova's own down", async () => {
    const { cloud, h } = await site({ dateHeader: false });
    cloud.killHost("compute-2");
    cloud.clock.advance(45_000);
    expect(novaState(cloud, "compute-2")).toBe("up");
    const waiting = await judge(h, "compute-2");
    expect(waiting).toMatchObject({ result: "block", recheck: true });
    expect(waiting.reason).toMatch(/Nova says nova-compute on compute-2 is up \(last heartbeat \S+\) and Nova's answer carried no Date header .*: waiting for Nova's own verdict/);
    expect((await judge(h, "compute-1")).result).toBe("block");

    cloud.clock.advance(20_000);
    const down = await judge(h, "compute-2");
    expect(down.result).toBe("pass");
    expect(down.reason).toMatch(/Nova says nova-compute on compute-2 is down/);
  });

  it("the monitor goes by Nova's own down alone", async () => {
    const { cloud, h } = await site({ dateHeader: false });
    cloud.killHost("compute-2");
    cloud.clock.advance(45_000);
    expect(await failedByMonitor(h)).toEqual([]);
    cloud.clock.advance(20_000);
    const failed = await checkFailedHosts(h.driver.nova, { staleSeconds: STALE });
    expect(failed).toEqual([expect.objectContaining({ host: "compute-2", heartbeatAgeSeconds: null })]);
  });
});
