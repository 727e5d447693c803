import { afterEach, describe, expect, it } from "vitest";
import type { SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import { FIRST_LOOK_GATHER_MS } from "../../src/nova/evacuation-watch.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { acceptedEvacuations, evacuatePosts, failAndAlert, finished, serversOn, siteScenario } from "../kit/site.js";

/**
 * What a recovery costs Nova, counted by the simulator from its own request log: the
 * evacuation part (inspection, lock, evacuate, tracking, unlock) per evacuated instance, and
 * every Nova request of the recovery (gates, isolation, notifications included).
 */

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

type Part = "evacuation" | "notify" | "other";

/** Which part of a recovery a Nova request belongs to. */
function partOf(q: SimRequest): Part {
  if (/^\/v2\.1\/servers\/[^/]+\/metadata(\/|$)/.test(q.path)) return "notify";
  if (q.method === "POST" && /^\/v2\.1\/servers\/[^/]+\/action$/.test(q.path)) return "evacuation";
  if (q.method === "GET" && (q.path.startsWith("/v2.1/servers") || q.path.startsWith("/v2.1/os-migrations"))) return "evacuation";
  // Version discovery, os-services (gates, isolation), hypervisors, aggregates.
  return "other";
}

interface Bill {
  evacuation: number;
  notify: number;
  other: number;
  all: number;
}

function billOf(requests: readonly SimRequest[]): Bill {
  const bill: Bill = { evacuation: 0, notify: 0, other: 0, all: 0 };
  for (const q of requests) {
    if (q.service !== "compute") continue;
    bill[partOf(q)]++;
    bill.all++;
  }
  return bill;
}

describe("what a recovery costs Nova", () => {
  // Each server's own calls (lock, evacuate, unlock) plus the host's shared listings: one
  // listing of its servers' changes per poll cycle, its migrations when a cycle needs them.
  it(
    "a host of 50 instances: at most 4 Nova requests per evacuated instance for the whole recovery (gates, isolation, evacuation, notifications), one evacuate each",
    async () => {
      const instances = 50;
      stack = await startStack({ pace: "fast",
        cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn("compute-1", instances)), evacuationDurationMs: 1000 },
        config: { evacuation: { concurrency: 8, poll_interval_seconds: 0.5 } },
      });
      const s = stack;
      const cloud = s.sandbox.cloud;
      const ids = cloud.state.serversOn("compute-1").map((v) => v.id);
      const from = cloud.requests.length;
      // 42 instances wait on the stage's signal for a slot at once: no "memory leak" warning.
      const warnings: string[] = [];
      const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
      process.on("warning", onWarning);
      await failAndAlert(s, "compute-1");
      const d = await finished(s, "compute-1", 120_000).finally(() => process.off("warning", onWarning));
      expect(d.state, d.reason).toBe("completed");
      expect(d.instances.filter((i) => i.state === "evacuated")).toHaveLength(instances);
      expect(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning"))).toEqual([]);
      cloud.settle();
      for (const id of ids) {
        expect(evacuatePosts(cloud, id)).toHaveLength(1);
        expect(acceptedEvacuations(cloud, id)).toBe(1);
        expect(cloud.state.servers.get(id)).toMatchObject({ broken: false, locked: false, taskState: null });
      }
      const bill = billOf(cloud.requests.slice(from));
      const per = (n: number): number => Math.round((n / instances) * 100) / 100;
      console.log(
        `Nova requests for ${instances} instances: evacuation ${bill.evacuation} (${per(bill.evacuation)}/instance), ` +
          `notifications ${bill.notify}, gates/isolation/other ${bill.other}, all ${bill.all} (${per(bill.all)}/instance)`,
      );
      // The tenants' mails take the servers' metadata from the recovery's own listing.
      expect(bill.notify).toBe(0);
      expect(bill.all / instances).toBeLessThanOrEqual(4);
    },
    180_000,
  );
});

describe("several hosts at once", () => {
  // The listings are the site's, not each host's: a rack of failed hosts costs Nova the
  // same one listing of server changes per poll cycle as one host.
  it(
    "three hosts failing together share one listing of changes per poll cycle; at most 4 Nova requests per evacuated instance, one evacuate each",
    async () => {
      const hosts = ["compute-1", "compute-2", "compute-3"];
      const perHost = 20;
      stack = await startStack({ pace: "fast",
        cloud: {
          scenario: siteScenario([...hosts, "compute-4", "compute-5", "compute-6"], hosts.flatMap((h) => serversOn(h, perHost, `${h}-vm`))),
          evacuationDurationMs: 1000,
        },
        config: { evacuation: { concurrency: 8, poll_interval_seconds: 0.5 }, gates: { storm: { max_recoveries: 3, max_percent: 100 } } },
      });
      const s = stack;
      const cloud = s.sandbox.cloud;
      const ids = hosts.flatMap((h) => cloud.state.serversOn(h).map((v) => v.id));
      const from = cloud.requests.length;
      await Promise.all(hosts.map((h) => failAndAlert(s, h)));
      for (const h of hosts) {
        const d = await finished(s, h, 120_000);
        expect(d.state, d.reason).toBe("completed");
      }
      cloud.settle();
      for (const id of ids) {
        expect(evacuatePosts(cloud, id)).toHaveLength(1);
        expect(acceptedEvacuations(cloud, id)).toBe(1);
      }
      const requests = cloud.requests.slice(from).filter((q) => q.service === "compute");
      const changes = requests.filter((q) => q.method === "GET" && q.path === "/v2.1/servers/detail" && q.query["changes-since"] !== undefined);
      const hostListings = requests.filter((q) => q.method === "GET" && q.path === "/v2.1/servers/detail" && q.query.host !== undefined);
      // One listing of changes per cycle for every host (each host its own would be three at
      // once): cycles start a poll interval apart, or, for the looks before evacuates, at
      // least FIRST_LOOK_GATHER_MS after the last one ended (1 ms for the timer's rounding).
      const times = changes.map((q) => Date.parse(q.at)).sort((a, b) => a - b);
      const tooClose = times.filter((t, i) => i > 0 && t - times[i - 1]! < FIRST_LOOK_GATHER_MS - 1);
      expect(tooClose).toEqual([]);
      const migrationChanges = requests.filter((q) => q.path === "/v2.1/os-migrations" && q.query["changes-since"] !== undefined);
      expect(migrationChanges.every((q) => q.query.source_compute === undefined)).toBe(true);
      const bill = billOf(requests);
      console.log(
        `Nova requests for ${ids.length} instances on ${hosts.length} hosts: all ${bill.all} (${Math.round((bill.all / ids.length) * 100) / 100}/instance), ` +
          `${changes.length} listings of changes, ${hostListings.length} host listings, ${migrationChanges.length} migration changes`,
      );
      expect(bill.all / ids.length).toBeLessThanOrEqual(4);
    },
    180_000,
  );
});

describe("a Nova that asks lifeboat to slow down", () => {
  it(
    "429 with Retry-After on evacuate calls and listings: every call to Nova waits out the pause, the recovery completes, no server is evacuated twice",
    async () => {
      const instances = 20;
      stack = await startStack({ pace: "fast",
        cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn("compute-1", instances)), evacuationDurationMs: 500 },
        config: { evacuation: { concurrency: 8, poll_interval_seconds: 0.5, retries: 3 } },
      });
      const s = stack;
      const cloud = s.sandbox.cloud;
      const ids = cloud.state.serversOn("compute-1").map((v) => v.id);
      const refused = cloud.faults.slowDown(2, { times: 3, match: { service: "compute", method: "POST", action: "evacuate" } });
      const listings = cloud.faults.slowDown(1, { times: 2, match: { service: "compute", method: "GET", path: "/v2.1/servers/detail" } });
      await failAndAlert(s, "compute-1");
      const d = await finished(s, "compute-1", 120_000);
      expect(d.state, d.reason).toBe("completed");
      expect(d.instances.filter((i) => i.state === "evacuated")).toHaveLength(instances);
      expect(refused.hits()).toBe(3);
      expect(listings.hits()).toBe(2);
      cloud.settle();
      for (const id of ids) {
        // A 429'd evacuate was not taken by Nova; exactly one was.
        expect(evacuatePosts(cloud, id).filter((q) => q.status !== 429)).toHaveLength(1);
        expect(acceptedEvacuations(cloud, id)).toBe(1);
        expect(cloud.state.servers.get(id)).toMatchObject({ broken: false, locked: false, taskState: null });
      }
      // After each 429, nothing more reached Nova until its Retry-After had passed (requests
      // already on their way when the answer came may land just after it).
      const compute = cloud.requests.filter((q) => q.service === "compute");
      for (const q of compute.filter((x) => x.status === 429)) {
        const t = Date.parse(q.at);
        const pause = /action$/.test(q.path) ? 2_000 : 1_000;
        const during = compute.filter((x) => Date.parse(x.at) > t + 300 && Date.parse(x.at) < t + pause - 100);
        expect(during.map((x) => `${x.method} ${x.path}`)).toEqual([]);
      }
    },
    180_000,
  );
});
