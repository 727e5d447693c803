import { afterEach, describe, expect, it } from "vitest";
import type { SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import { alertPayload, postAlert } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { acceptedEvacuations, evacuatePosts, finished, servicePuts, serversOn, siteScenario } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/**
 * Nova keeps believing a dead host up for service_down_time (30 s here) unless it is forced
 * down, and the only confirmation is the BMC: lifeboat fences right after the alert, while
 * Nova would still refuse an evacuation with 400 "Compute service of compute-1 is still in use."
 */
async function startEarly(): Promise<Stack> {
  return startStack({ pace: "fast",
    cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn("compute-1", 4)), serviceDownTimeSeconds: 30, disableWhileUpDelayMs: 300 },
    config: { gates: { confirmations: [{ driver: "bmc" }] }, evacuation: { retries: 2 } },
  });
}

/**
 * The host's forced_down writes are answered 200 (forced_down: true) but do not stick, `times`
 * times: the flag is back to false before any other request is read (a microtask after the
 * write, not a turn later, when an evacuate already on its way could still find it set).
 */
function loseForceDown(cloud: SandboxCloud, host: string, times: number): { lost(): number } {
  const h = cloud.state.mustHost(host);
  let value = h.forcedDown;
  let lost = 0;
  Object.defineProperty(h, "forcedDown", {
    configurable: true,
    enumerable: true,
    get: () => value,
    set: (v: boolean) => {
      value = v;
      if (v && lost < times) {
        lost++;
        queueMicrotask(() => {
          value = false;
        });
      }
    },
  });
  return { lost: () => lost };
}

/** Where in the request log the BMC was told to power the host off. */
function markForceOff(s: Stack, host: string): () => number | undefined {
  let at: number | undefined;
  const sys = s.sandbox.redfish.system(host);
  const previous = sys.beforeReset;
  sys.beforeReset = (type) => {
    if (type === "ForceOff" && at === undefined) at = s.sandbox.cloud.requests.length;
    previous?.(type);
  };
  return () => at;
}

async function alert(s: Stack, host: string): Promise<void> {
  s.sandbox.failHost(host);
  expect((await postAlert(s.app.url, alertPayload({ host }))).status).toBe(202);
}

const isForceDown = (body: unknown): boolean => typeof body === "object" && body !== null && (body as { forced_down?: unknown }).forced_down === true;

describe("never evacuate before isolating", () => {
  it("fence, then force down, then disable, then evacuate: Nova accepts at once although the host's heartbeat is still fresh", async () => {
    stack = await startEarly();
    const s = stack;
    const cloud = s.sandbox.cloud;
    const forceOffAt = markForceOff(s, "compute-1");
    await alert(s, "compute-1");
    const d = await finished(s, "compute-1");
    expect(d.state, d.reason).toBe("completed");

    const puts = servicePuts(cloud);
    expect(puts.map((q) => q.body)).toEqual([{ forced_down: true }, { status: "disabled", disabled_reason: expect.stringMatching(/^lifeboat: recovery /) as unknown }]);
    const posts = evacuatePosts(cloud);
    expect(posts).toHaveLength(4);
    expect(posts.every((q) => q.status === 200)).toBe(true);
    // Request log order: power-off (BMC), force-down, disable, then the first evacuate.
    const fenced = forceOffAt();
    expect(fenced).toBeDefined();
    expect(puts[0]!.seq).toBeGreaterThan(fenced!);
    expect(puts[1]!.seq).toBeGreaterThan(puts[0]!.seq);
    expect(Math.min(...posts.map((q) => q.seq))).toBeGreaterThan(puts[1]!.seq);
    // Only the force-down made Nova see the host down: its last heartbeat is younger than service_down_time.
    const h = cloud.state.mustHost("compute-1");
    expect(cloud.clock.now() - h.lastSeenUpMs).toBeLessThan(cloud.state.opts.serviceDownTimeMs);
  }, 60_000);

  it("a force-down Nova answered but lost: evacuate refused with 400 'still in use', isolation asserted again, then every instance evacuated", async () => {
    stack = await startEarly();
    const s = stack;
    const cloud = s.sandbox.cloud;
    const lossy = loseForceDown(cloud, "compute-1", 1);
    await alert(s, "compute-1");
    const d = await finished(s, "compute-1");
    expect(lossy.lost()).toBe(1);
    expect(d.state, d.reason).toBe("completed");
    expect(d.instances.every((i) => i.state === "evacuated")).toBe(true);

    const posts = evacuatePosts(cloud);
    const refused = posts.filter((q) => q.status === 400);
    expect(refused.length).toBeGreaterThan(0);
    const forceDowns = servicePuts(cloud).filter((q) => isForceDown(q.body));
    expect(forceDowns).toHaveLength(2);
    // The refusals came after the lost force-down; the accepted evacuates after the one that held.
    expect(refused.every((q) => q.seq > forceDowns[0]!.seq)).toBe(true);
    expect(refused.some((q) => q.seq < forceDowns[1]!.seq)).toBe(true);
    const accepted = posts.filter((q) => q.status === 200);
    expect(accepted).toHaveLength(4);
    expect(accepted.every((q) => q.seq > forceDowns[1]!.seq)).toBe(true);
    for (const i of d.instances) expect(acceptedEvacuations(cloud, i.instanceId)).toBe(1);
    expect(cloud.state.mustHost("compute-1").forcedDown).toBe(true);
  }, 60_000);

  it("a force-down that never holds: every instance is reported with Nova's reason, nothing is evacuated", async () => {
    stack = await startEarly();
    const s = stack;
    const cloud = s.sandbox.cloud;
    loseForceDown(cloud, "compute-1", Number.POSITIVE_INFINITY);
    await alert(s, "compute-1");
    const d = await finished(s, "compute-1");
    expect(d.state).toBe("partial");
    expect(d.reason).toMatch(/4 of 4 instance\(s\) not recovered/);
    for (const i of d.instances) {
      expect(i.state).toBe("failed");
      expect(i.attempts).toBe(3); // evacuation.retries: 2
      expect(i.error).toMatch(/Compute service of compute-1 is still in use/);
      expect(acceptedEvacuations(cloud, i.instanceId)).toBe(0);
    }
    expect(evacuatePosts(cloud).every((q) => q.status === 400)).toBe(true);
    // Before each re-issue lifeboat tried to isolate the host again.
    expect(servicePuts(cloud).filter((q) => isForceDown(q.body)).length).toBeGreaterThan(1);
    cloud.settle();
    expect(cloud.state.serversOn("compute-1")).toHaveLength(4);
  }, 60_000);
});
