import { describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { isLifeboatReason } from "../../src/domain/markers.js";
import type { SandboxOptions } from "../../packages/sandbox/src/environment.js";
import type { LogLine, ServedLifeboat } from "../kit/served.js";
import { usePairPerTest, type HaPair, type InstanceId } from "../kit/pair.js";
import type { ProxiedRequest } from "../kit/recording-proxy.js";
import { failAndAlert, finished } from "./scenario.js";
import { evacuatePostsPerServer, issuedByBoth, sideEffects } from "./side-effects.js";
import { waitFor } from "../kit/http.js";

/**
 * Takeovers in the middle of an evacuation, at the two moments that used to go wrong: two
 * `lifeboat serve` processes on a real etcd (lease TTL 3 s) and the simulated site, one
 * failed host with 8 servers evacuated 8 at a time (every worker of the new leader needs
 * the host's claim at the same moment). The leader is killed (SIGKILL) or cut off from
 * etcd right after Nova accepted its first evacuate, or, on the instance that took over,
 * the moment it looks whether the lock on a server it found already moved is lifeboat's.
 * Whatever happens, from the simulator's own records: every server is evacuated exactly
 * once and none is left locked; and no stage fails on the host's claim.
 */
const TTL_SECONDS = 3;
const HOST = "compute-1";

const SITE: SandboxOptions = {
  cloud: { serviceDownTimeSeconds: 2, reportIntervalSeconds: 0.5, evacuationDurationMs: 500, generate: { hosts: 4, serversPerHost: 8 } },
  powerDelayMs: 300,
};
const CONFIG = {
  gates: { confirmations: [{ driver: "nova-service", stale_seconds: 1, checks: 1, interval_seconds: 0 }, { driver: "bmc" }] },
  evacuation: { concurrency: 8, poll_interval_seconds: 0.25 },
};

const ha = usePairPerTest();

type Blow = "SIGKILL" | "cut";

function pathOf(e: ProxiedRequest): string {
  return e.url.split("?")[0] ?? "";
}

function isAction(e: ProxiedRequest, action: string): boolean {
  return e.target === "cloud" && e.method === "POST" && /\/servers\/[^/]+\/action$/.test(pathOf(e)) && typeof e.body === "object" && e.body !== null && action in e.body;
}

function strike(p: HaPair, i: ServedLifeboat, blow: Blow): void {
  if (blow === "SIGKILL") i.kill("SIGKILL");
  else p.etcdLinks[i.id as InstanceId].cut();
}

/** Strike the leader once Nova accepted its first evacuate and the answer reached it. */
function atFirstEvacuate(p: HaPair, leader: ServedLifeboat, blow: Blow): Promise<void> {
  return new Promise((resolve) => {
    p.hooks.answered = (e) => {
      if (e.instance !== leader.id || !isAction(e, "evacuate") || e.status !== 200) return;
      p.hooks.answered = undefined;
      strike(p, leader, blow);
      resolve();
    };
  });
}

/**
 * Strike `who` the moment it turns to the lock of a server it found already on another host:
 * its second GET of that server (the check whether the lock is lifeboat's), or its unlock
 * when the look that saw the evacuation end showed lifeboat's lock. That request is held,
 * never answered.
 */
function atLockCheckOfMovedServer(p: HaPair, who: ServedLifeboat, blow: Blow): Promise<string> {
  const cloud = p.sandbox.cloud;
  const looks = new Map<string, { n: number; movedAtFirst: boolean }>();
  return new Promise((resolve) => {
    p.hooks.onRequest = (e) => {
      if (e.instance === who.id && isAction(e, "unlock")) {
        const id = /\/servers\/([0-9a-f-]{36})\/action$/.exec(pathOf(e))?.[1];
        if (!id || !looks.get(id)?.movedAtFirst) return undefined;
        p.hooks.onRequest = undefined;
        strike(p, who, blow);
        resolve(id);
        return "hold";
      }
      if (e.instance !== who.id || e.target !== "cloud" || e.method !== "GET") return undefined;
      const id = /\/servers\/([0-9a-f-]{36})$/.exec(pathOf(e))?.[1];
      if (!id) return undefined;
      cloud.settle();
      const s = cloud.state.servers.get(id);
      const seen = looks.get(id) ?? { n: 0, movedAtFirst: s !== undefined && s.host !== HOST && s.taskState === null };
      seen.n += 1;
      looks.set(id, seen);
      if (seen.n < 2 || !seen.movedAtFirst) return undefined;
      p.hooks.onRequest = undefined;
      strike(p, who, blow);
      resolve(id);
      return "hold";
    };
  });
}

/** `p`, or an error naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function claimStageErrors(instances: ServedLifeboat[]): LogLine[] {
  return instances.flatMap((i) => i.lines.filter((l) => l.msg === "stage error" && /claim/i.test(String(l.err))));
}

interface Start {
  p: HaPair;
  a: ServedLifeboat;
  b: ServedLifeboat;
  servers: string[];
  /** Each server's lock before the failure (the site has one its owner locked). */
  locksBefore: Map<string, { locked: boolean; reason: string | null }>;
}

/** What must hold after every one of these takeovers, read from the simulator and the journal. */
function expectCleanRecovery({ p, servers, locksBefore }: Start, d: RecoveryDetail, everyone: ServedLifeboat[]): void {
  expect(d.state, d.reason).toBe("completed");
  expect(d.instances.map((i) => i.state)).toEqual(servers.map(() => "evacuated"));
  const cloud = p.sandbox.cloud;
  cloud.settle();
  const posts = evacuatePostsPerServer(cloud.requests);
  expect([...posts.keys()].sort()).toEqual([...servers].sort());
  for (const id of servers) {
    const s = cloud.state.servers.get(id)!;
    expect(posts.get(id), `evacuate POSTs of ${s.name}`).toBe(1);
    expect(s.evacuationAttempts, `evacuations Nova accepted for ${s.name}`).toBe(1);
    // Left as it was: unlocked, or still locked by its owner.
    expect({ name: s.name, locked: s.locked, reason: s.lockedReason, broken: s.broken, task: s.taskState }).toEqual({ name: s.name, ...locksBefore.get(id), broken: false, task: null });
    expect(s.host).not.toBe(HOST);
  }
  expect([...cloud.state.servers.values()].filter((s) => isLifeboatReason(s.lockedReason)).map((s) => s.name)).toEqual([]);
  expect(p.sandbox.redfish.system(HOST).resets).toEqual(["ForceOff"]);
  expect(d.steps.filter((x) => x.key.startsWith("unlock/") && x.state !== "succeeded")).toEqual([]);
  expect(d.locksLeft).toBeUndefined();
  // Never the same action on the same target by two instances (a held request never reached the cloud).
  const effects = sideEffects(p.requests).filter((e) => e.status !== undefined);
  const both = issuedByBoth(effects);
  const detail = effects.filter((e) => both.some((x) => x.target === e.target)).map((e) => `${e.at} ${e.instance} ${e.kind} ${e.target} ${e.status}`);
  expect(both, detail.join("\n")).toEqual([]);
  expect(claimStageErrors(everyone)).toEqual([]);
}

async function startPair(): Promise<Start> {
  const p = await ha.start({ sandbox: SITE, config: CONFIG, ttlSeconds: TTL_SECONDS });
  const a = await p.leader();
  const b = p.other(a);
  const servers = p.sandbox.view().servers.filter((s) => s.host === HOST).map((s) => s.id);
  expect(servers).toHaveLength(8);
  const state = p.sandbox.cloud.state.servers;
  const locksBefore = new Map(servers.map((id) => [id, { locked: state.get(id)!.locked, reason: state.get(id)!.lockedReason }]));
  return { p, a, b, servers, locksBefore };
}

describe("locks left behind, found by the new leader", () => {
  it("a recovery that ended with servers still locked by lifeboat: the instance that takes over unlocks them with one listing, journaled and logged per server", async () => {
    const start = await startPair();
    const { p, a, b, servers } = start;
    await failAndAlert(p, HOST, [a, b]);
    const d = await finished(p, HOST, 90_000);
    expect(d.state, d.reason).toBe("completed");
    // As a lost unlock of an earlier version left them.
    const cloud = p.sandbox.cloud.state;
    const left = servers.filter((id) => !cloud.servers.get(id)!.locked).slice(0, 2);
    for (const id of left) Object.assign(cloud.servers.get(id)!, { locked: true, lockedReason: `lifeboat: evacuating from ${HOST} (recovery ${d.id})` });

    const killedAt = Date.now();
    a.kill("SIGKILL");
    await a.exited;
    await waitFor(() => left.every((id) => !cloud.servers.get(id)!.locked), 30_000, "the locks left behind released by the new leader");
    console.log(`locks left behind released ${Date.now() - killedAt} ms after the leader was killed`);
    const listings = p.requests.filter((r) => r.instance === b.id && r.method === "GET" && /\/servers\/detail\?(.*&)?locked=true/.test(r.url));
    expect(listings).toHaveLength(1);
    const unlocks = sideEffects(p.requests).filter((e) => e.kind === "server:unlock" && e.at >= killedAt);
    expect(unlocks.map((e) => [e.instance, e.target]).sort()).toEqual(left.map((id) => [b.id, id]).sort());
    await waitFor(
      async () => {
        const steps = (await p.store.steps(d.id)).filter((x) => x.key.startsWith("unlock/"));
        return left.every((id) => steps.some((x) => x.key === `unlock/${id}` && x.state === "succeeded"));
      },
      10_000,
      "the unlocks journaled",
    );
    const steps = await p.store.steps(d.id);
    for (const id of left) expect(steps.find((x) => x.key === `unlock/${id}`)).toMatchObject({ state: "succeeded", result: { result: "unlocked", by: "takeover" } });
    const logged = (): LogLine[] => b.lines.filter((l) => l.msg === "unlocked a server lifeboat had left locked for a recovery that ended");
    const lines = await waitFor(() => logged().length >= left.length && logged(), 10_000, "a log line per server");
    expect(lines.map((l) => l.server).sort()).toEqual([...left].sort());
    expect(lines.every((l) => l.recovery === d.id && l.trigger === "takeover")).toBe(true);
  }, 150_000);
});

describe("takeover in the middle of an evacuation", () => {
  for (const blow of ["SIGKILL", "cut"] as const) {
    it(`${blow} of the leader right after its first evacuate: the other takes over and finishes; nothing locked, each server evacuated once, no claim error`, async () => {
      const start = await startPair();
      const { p, a, b } = start;
      const struck = atFirstEvacuate(p, a, blow);
      await failAndAlert(p, HOST, [a, b]);
      await within(struck, 60_000, "the leader's first evacuate");
      const at = Date.now();
      const took = await waitFor(() => b.leadership().find((l) => l.leader && l.at >= at - 1_000), 20_000, `${b.id} takes over`);
      console.log(`${blow} of ${a.id} at its first evacuate → ${b.id} leads after ${took.at - at} ms`);

      const d = await finished(p, HOST, 90_000);
      console.log(`recovery ${d.state} ${Date.now() - at} ms after the ${blow}`);
      if (blow === "cut") p.etcdLinks[a.id as InstanceId].heal();
      expectCleanRecovery(start, d, [a, b]);
    }, 150_000);

    it(`${blow} of the new leader the moment it checks the lock of a server it found already moved: the next leader finishes; nothing locked, each server evacuated once, no claim error`, async () => {
      const start = await startPair();
      const { p, a, b } = start;
      const first = atFirstEvacuate(p, a, blow);
      const second = atLockCheckOfMovedServer(p, b, blow);
      await failAndAlert(p, HOST, [a, b]);
      await within(first, 60_000, "the leader's first evacuate");
      const moved = await within(second, 30_000, `${b.id} checking the lock of a server already moved`);
      const at = Date.now();
      console.log(`${blow} of ${b.id} at its lock check of ${moved}`);
      let third: ServedLifeboat;
      if (blow === "SIGKILL") {
        await b.exited;
        third = await p.restart(a);
      } else {
        // The first leader, cut off at its first evacuate, stepped down; healed, it leads again.
        p.etcdLinks[a.id as InstanceId].heal();
        third = a;
      }
      const leads = await waitFor(() => third.leadership().find((l) => l.leader && l.at >= at - 1_000), 20_000, `${third.id} takes over`);
      console.log(`${third.id} leads ${leads.at - at} ms after the second ${blow}`);

      const d = await finished(p, HOST, 90_000);
      if (blow === "cut") p.etcdLinks[b.id as InstanceId].heal();
      expectCleanRecovery(start, d, [a, b, third]);
    }, 180_000);
  }
});
