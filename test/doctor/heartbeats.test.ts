import { afterEach, describe, expect, it } from "vitest";
import { runDoctor } from "../../src/doctor/doctor.js";
import { startSandbox, type Sandbox, type SandboxOptions } from "../../packages/sandbox/src/environment.js";
import { rowOf, writeSiteConfig } from "./support.js";
import { tempDir } from "../kit/config.js";

/**
 * `lifeboat doctor`'s heartbeats row: the nova-compute heartbeats as the nova-service gate
 * will judge them, on Nova's clock (the Date of Nova's answer), against the simulated site
 * (report_interval 1 s, service_down_time 60 s, the gate's stale_seconds 5).
 */
const sites: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(sites.splice(0).map((s) => s.close()));
});

async function doctorOn(cloud: NonNullable<SandboxOptions["cloud"]> = {}, overrides: Record<string, unknown> = {}) {
  const site = await startSandbox({ cloud: { serviceDownTimeSeconds: 60, reportIntervalSeconds: 1, ...cloud } });
  sites.push(site);
  const run = async () => rowOf(await runDoctor(writeSiteConfig(site, tempDir(), overrides), { env: {} }), "heartbeats");
  return { site, run };
}

describe("lifeboat doctor: heartbeats", () => {
  it("measures them on Nova's clock, whatever this machine's says, and names a host whose heartbeat is stale while Nova still says up", async () => {
    const { site, run } = await doctorOn({ clockOffsetSeconds: 90 });
    const ok = await run();
    expect(ok).toMatchObject({ result: "ok", target: "gates.confirmations[0].stale_seconds" });
    expect(ok.detail).toMatch(/^on Nova's clock \(the Date of its answer\): 4 heartbeat\(s\) Nova hears, the freshest [01] s old, the oldest [01] s; dead from 5 s on$/);

    site.failHost("compute-2");
    site.cloud.clock.advance(20_000);
    const stale = await run();
    expect(stale.result).toBe("warn");
    expect(stale.detail).toMatch(/^stale now \(Nova still says up\): compute-2 \((19|20|21) s\) \(on Nova's clock .* the oldest (19|20|21) s; dead from 5 s on\)$/);
  }, 60_000);

  it("warns when Nova's answer has no Date: lifeboat can only wait for Nova's own down", async () => {
    const { run } = await doctorOn({ dateHeader: false });
    const row = await run();
    expect(row.result).toBe("warn");
    expect(row.detail).toMatch(/no Date header .* waits for Nova's own `down`/);
  }, 60_000);

  it("warns when the Date is earlier than the heartbeats (its clock behind nova-conductor's) or so late that every heartbeat looks stale (ahead)", async () => {
    const behind = await (await doctorOn({ dateClockOffsetSeconds: -60 })).run();
    expect(behind.result).toBe("warn");
    expect(behind.detail).toMatch(/^the heartbeats of compute-1, compute-2, compute-3, compute-4 are later than the Date of Nova's answer .*: the clocks of nova-api \(or a proxy in front of it\) and nova-conductor disagree; lifeboat goes by Nova's own verdict for them/);

    const ahead = await (await doctorOn({ dateClockOffsetSeconds: 60 })).run();
    expect(ahead.result).toBe("warn");
    expect(ahead.detail).toMatch(/^even the freshest heartbeat Nova hears is (59|60|61) s old on Nova's clock \(stale from 5 s on\): the clock writing Nova's Date runs ahead of nova-conductor's/);
  }, 60_000);

  it("the native monitor's stale_seconds when there is no nova-service confirmation; nothing to judge without either", async () => {
    const { run } = await doctorOn({}, { gates: { confirmations: [{ driver: "bmc" }] }, monitor: { enabled: true, stale_seconds: 7 } });
    const row = await run();
    expect(row).toMatchObject({ result: "ok", target: "monitor.stale_seconds" });
    expect(row.detail).toMatch(/dead from 7 s on$/);

    const { run: unjudged } = await doctorOn({}, { gates: { confirmations: [{ driver: "bmc" }] } });
    expect(await unjudged()).toMatchObject({ result: "skip", detail: "no nova-service confirmation and the native monitor is off: lifeboat judges no heartbeat" });
  }, 60_000);
});
