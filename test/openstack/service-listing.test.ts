import { afterEach, describe, expect, it } from "vitest";
import { FRESH_READ, SHARED_READ } from "../../src/domain/ports/cloud.js";
import { createLogger } from "../../src/logging.js";
import type { Recovery } from "../../src/domain/model.js";
import { startSandboxCloud, type SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import { defaultScenario } from "../../packages/sandbox/src/cloud-scenario.js";
import type { SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import { novaServiceGate } from "../../src/gates/nova-service.js";
import { driverFor, type DriverHandle } from "./support/driver.js";

/**
 * The nova driver's nova-compute reads: readers that accept an answer a few seconds old share
 * one listing (and one request in flight); a read that must be a new look at Nova gets one.
 * Counted in the simulated Nova's request log.
 */

const clouds: SandboxCloud[] = [];
const handles: DriverHandle[] = [];
async function setup(): Promise<{ cloud: SandboxCloud; d: DriverHandle["driver"] }> {
  const cloud = await startSandboxCloud({ scenario: defaultScenario({ hosts: 4, serversPerHost: 0 }) });
  clouds.push(cloud);
  const h = driverFor(cloud, {}, createLogger({ level: "silent" }));
  handles.push(h);
  await h.driver.start();
  return { cloud, d: h.driver };
}
afterEach(async () => {
  handles.splice(0).forEach((h) => h.session.close());
  await Promise.all(clouds.splice(0).map((c) => c.close()));
});

const serviceReads = (cloud: SandboxCloud, since = 0): SimRequest[] =>
  cloud.requests.filter((q) => q.seq > since && q.service === "compute" && q.method === "GET" && q.path === "/v2.1/os-services");
const lastSeq = (cloud: SandboxCloud): number => cloud.requests.at(-1)?.seq ?? 0;

function recovery(host: string): Recovery {
  const at = new Date().toISOString();
  return {
    id: "r-1",
    host,
    kind: "alert",
    incidentKey: `${host}@${at}`,
    state: "validating",
    trigger: "alert",
    dryRun: false,
    confirmedOff: false,
    approved: false,
    fenceState: "not-attempted",
    reason: "test",
    detectedAt: at,
    createdAt: at,
    updatedAt: at,
    graceUntil: at,
    alerts: {},
  };
}

describe("the shared nova-compute listing", () => {
  it("serves 200 concurrent readers, listings and single hosts, with one request", async () => {
    const { cloud, d } = await setup();
    const since = lastSeq(cloud);
    const reads = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? d.listComputeServices(undefined, SHARED_READ) : d.getComputeService(`compute-${(i % 4) + 1}`))),
    );
    expect(serviceReads(cloud, since)).toHaveLength(1);
    expect(serviceReads(cloud, since)[0]!.query).toEqual({ binary: "nova-compute" });
    expect(reads.filter((r) => r !== null && !Array.isArray(r)).map((r) => (r as { host: string }).host)).toContain("compute-1");
    // Later readers within its age share the answer too.
    expect((await d.listComputeServices()).map((s) => s.host).sort()).toEqual(["compute-1", "compute-2", "compute-3", "compute-4"]);
    expect(await d.getComputeService("compute-9")).toBeNull();
    expect(serviceReads(cloud, since)).toHaveLength(1);
  });

  it("says when each answer was read, and asks again once it is older than the reader accepts", async () => {
    const { cloud, d } = await setup();
    const since = lastSeq(cloud);
    const before = Date.now();
    const [first] = await d.listComputeServices();
    expect(Date.parse(first!.readAt!)).toBeGreaterThanOrEqual(before - 1);
    await new Promise((r) => setTimeout(r, 30));
    await d.listComputeServices(undefined, { maxAgeMs: 10 });
    expect(serviceReads(cloud, since)).toHaveLength(2);
  });

  it("a fresh read is a new request about that host alone, never the shared answer", async () => {
    const { cloud, d } = await setup();
    await d.listComputeServices();
    const since = lastSeq(cloud);
    const svc = await d.getComputeService("compute-2", undefined, FRESH_READ);
    expect(svc).toMatchObject({ host: "compute-2", state: "up" });
    expect(svc!.readAt).toBeUndefined();
    expect(serviceReads(cloud, since).map((q) => q.query)).toEqual([{ binary: "nova-compute", host: "compute-2" }]);
    await d.listComputeServices(undefined, FRESH_READ);
    expect(serviceReads(cloud, since)).toHaveLength(2);
  });

  it("shares a failure too: 100 readers while Nova fails cost one listing, and the next interval asks again", async () => {
    const { cloud, d } = await setup();
    const since = lastSeq(cloud);
    const fault = cloud.faults.fail(503, { match: { service: "compute", path: "/v2.1/os-services" } });
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => d.listComputeServices(undefined, { maxAgeMs: 60_000 })));
    expect(results.every((r) => r.status === "rejected")).toBe(true);
    // One listing, sent once (the session does not retry a 503 without Retry-After).
    expect(serviceReads(cloud, since)).toHaveLength(1);
    fault.remove();
    await expect(d.listComputeServices(undefined, { maxAgeMs: 60_000 })).rejects.toThrow();
    expect((await d.listComputeServices(undefined, FRESH_READ)).length).toBe(4);
  });

  it("a reader's abort ends its own wait, not the shared request", async () => {
    const { cloud, d } = await setup();
    const since = lastSeq(cloud);
    cloud.faults.latency(300, { times: 1, match: { service: "compute", path: "/v2.1/os-services" } });
    const ac = new AbortController();
    const aborted = d.listComputeServices(ac.signal);
    const patient = d.listComputeServices();
    ac.abort(new Error("stopping"));
    await expect(aborted).rejects.toThrow("stopping");
    expect(await patient).toHaveLength(4);
    expect(serviceReads(cloud, since)).toHaveLength(1);
  });

  it("isolating a host drops the shared listing: the next read shows it forced down", async () => {
    const { cloud, d } = await setup();
    cloud.killHost("compute-1");
    expect((await d.getComputeService("compute-1"))?.forcedDown).toBe(false);
    await d.isolate("compute-1", "lifeboat: recovery r-1 fenced 2026-11-25T13:00:00Z");
    expect(await d.getComputeService("compute-1")).toMatchObject({ forcedDown: true, status: "disabled" });
  });
});

describe("the nova-service gate on the shared listing", () => {
  const ask = (gate: ReturnType<typeof novaServiceGate>, host: string, quiet: boolean) =>
    gate.evaluate({ recovery: recovery(host), signal: new AbortController().signal, priorPass: true, quiet });

  it("quiet re-checks share the listing; each check of a validation is its own request about the host", async () => {
    const { cloud, d } = await setup();
    const gate = novaServiceGate(d, { staleSeconds: 30, checks: 3, intervalSeconds: 0.01 });
    cloud.killHost("compute-3");
    await d.listComputeServices(); // shared: Nova still hears compute-3
    cloud.clock.advance(120_000); // now its heartbeat is two minutes old
    let since = lastSeq(cloud);

    const quiet = await Promise.all(Array.from({ length: 50 }, () => ask(gate, "compute-3", true)));
    expect(quiet.every((q) => q.result === "block" && q.reason.includes("Nova still hears nova-compute on compute-3"))).toBe(true);
    expect(serviceReads(cloud, since)).toEqual([]);

    since = lastSeq(cloud);
    expect(await ask(gate, "compute-3", false)).toMatchObject({ result: "pass" });
    expect(serviceReads(cloud, since).map((q) => q.query)).toEqual(Array.from({ length: 3 }, () => ({ binary: "nova-compute", host: "compute-3" })));
  });

  it("a fresh look at a host outdates the shared listing: a quiet re-check right after a validation never sees the host as it was before", async () => {
    const { cloud, d } = await setup();
    const gate = novaServiceGate(d, { staleSeconds: 30, checks: 1, intervalSeconds: 0 });
    await d.listComputeServices(); // shared: Nova still hears compute-2
    cloud.killHost("compute-2");
    cloud.clock.advance(120_000);
    expect(await ask(gate, "compute-2", false)).toMatchObject({ result: "pass" });
    const since = lastSeq(cloud);
    expect(await ask(gate, "compute-2", true)).toMatchObject({ result: "pass" });
    expect(serviceReads(cloud, since).map((q) => q.query)).toEqual([{ binary: "nova-compute" }]);
  });

  it("carries Nova's time of each answer: a shared answer is judged at the time Nova gave it, not now", async () => {
    const { cloud, d } = await setup();
    const gate = novaServiceGate(d, { staleSeconds: 30, checks: 1, intervalSeconds: 0 });
    cloud.killHost("compute-4");
    cloud.clock.advance(20_000);
    const [shared] = (await d.listComputeServices()).filter((s) => s.host === "compute-4");
    // Nova's Date header, whole seconds, on Nova's clock (20 s ahead of this machine's now).
    expect(shared!.novaTime).toMatch(/:\d\d\.000Z$/);
    expect(Date.parse(shared!.novaTime!)).toBeGreaterThan(Date.now() + 18_000);
    // Nova's time moves on by a minute; the shared answer stays what it was when Nova gave it.
    cloud.clock.advance(60_000);
    const v = await ask(gate, "compute-4", true);
    expect(v.result).toBe("block");
    expect(v.reason).toMatch(/last heartbeat .*, 1\d(\.\d)?s before Nova's answer \(stale from 30s on\)/);
    const fresh = await d.getComputeService("compute-4", undefined, FRESH_READ);
    expect(Date.parse(fresh!.novaTime!) - Date.parse(shared!.novaTime!)).toBeGreaterThanOrEqual(59_000);
    expect((await ask(gate, "compute-4", false)).result).toBe("pass");
  });
});
