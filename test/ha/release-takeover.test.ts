import { describe, expect, it } from "vitest";
import type { HostView } from "../../src/engine/host-view.js";
import type { SandboxOptions } from "../../packages/sandbox/src/environment.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import { usePairPerTest, type HaPair, type InstanceId } from "../kit/pair.js";
import type { ProxiedRequest } from "../kit/recording-proxy.js";
import { failAndAlert, finished } from "./scenario.js";
import { issuedByBoth, sideEffects } from "./side-effects.js";
import { api, waitFor } from "../kit/http.js";

/**
 * A release on an HA pair (two `lifeboat serve` on a real etcd, lease TTL 3 s), asked of the
 * follower and run by the leader, whose leader is cut off from etcd in the middle of it: while it waits for nova-compute, and the moment it
 * sends the un-force (held, never answered). The other instance finishes the release from
 * the journal; the cut-off one stops acting; no side effect is issued by both.
 */
const HOST = "compute-1";
const SITE: SandboxOptions = {
  cloud: { serviceDownTimeSeconds: 2, reportIntervalSeconds: 0.5, evacuationDurationMs: 300, generate: { hosts: 3, serversPerHost: 2 } },
  // The host boots slowly: the release waits for nova-compute a few seconds.
  powerDelayMs: 3000,
};
const CONFIG = {
  gates: { confirmations: [{ driver: "nova-service", stale_seconds: 1, checks: 1, interval_seconds: 0 }, { driver: "bmc" }], storm: { max_percent: 100 } },
  evacuation: { poll_interval_seconds: 0.25 },
};

const ha = usePairPerTest();

function isUnforce(e: ProxiedRequest): boolean {
  return e.target === "cloud" && e.method === "PUT" && /\/os-services\//.test(e.url) && JSON.stringify(e.body) === JSON.stringify({ forced_down: false });
}

describe("a release when the leader is cut off from etcd", () => {
  for (const moment of ["while it waits for nova-compute", "the moment it sends the un-force"] as const) {
    it(`cut ${moment}: the other instance finishes the release, the cut-off one stops acting`, async () => {
      const p: HaPair = await ha.start({ sandbox: SITE, config: CONFIG, ttlSeconds: 3 });
      const a = await p.leader();
      const b = p.other(a);
      await failAndAlert(p, HOST, [a, b]);
      const first = await finished(p, HOST, 90_000);
      expect(first.state, first.reason).toBe("completed");

      let cutAt = 0;
      const cut = (): void => {
        cutAt = Date.now();
        p.etcdLinks[a.id as InstanceId].cut();
      };
      if (moment === "the moment it sends the un-force") {
        p.hooks.onRequest = (e) => {
          if (e.instance !== a.id || !isUnforce(e)) return undefined;
          p.hooks.onRequest = undefined;
          cut();
          return "hold";
        };
      }
      // Asked of the follower: journaled there, run by the leader.
      const started = await api(b.url, "POST", `/api/v1/hosts/${HOST}/release`);
      expect(started.status).toBe(202);
      const releaseId = (started.body as { recoveryId: string }).recoveryId;
      if (moment === "while it waits for nova-compute") {
        await waitFor(async () => (await p.store.getRecovery(releaseId))?.state === "awaiting-compute", 30_000, "the release to wait for nova-compute");
        cut();
      }
      await waitFor(() => cutAt > 0, 60_000, "the moment to cut");

      const newLeader = await p.leader({ among: [b], timeoutMs: 20_000 });
      expect(newLeader.id).toBe(b.id);
      await waitFor(async () => ["completed", "failed", "aborted"].includes((await p.store.getRecovery(releaseId))?.state ?? ""), 90_000, "the release to end");
      const d = (await recoveryDetail(p.store, releaseId))!;
      expect(d.state, d.reason).toBe("completed");
      expect(d.timeline.map((t) => t.to)).toEqual(["pending", "powering-on", "awaiting-compute", "unforcing", "awaiting-up", "enabling", "completed"]);
      const view = (await api(b.url, "GET", `/api/v1/hosts/${HOST}`)).body as HostView;
      expect(view.hold).toMatchObject({ fenced: false, recoveryId: releaseId });

      const cloud = p.sandbox.cloud;
      cloud.settle();
      const h = cloud.state.mustHost(HOST);
      expect({ forcedDown: h.forcedDown, disabled: h.disabled, up: cloud.state.serviceIsUp(h) }).toEqual({ forcedDown: false, disabled: false, up: true });
      expect(p.sandbox.redfish.system(HOST).resets).toEqual(["ForceOff", "On"]);

      // The cut-off instance acted no more; nothing was done by both.
      const effects = sideEffects(p.requests);
      const afterCut = effects.filter((e) => e.instance === a.id && e.at > cutAt);
      expect(afterCut).toEqual([]);
      // (The recovery before it forced the service down: a forced_down write too.)
      const answered = effects.filter((e) => e.status !== undefined && e.at >= Date.parse(d.createdAt));
      expect(issuedByBoth(answered)).toEqual([]);
      // The un-force and the enable, by the instance that finished the release.
      const updates = answered.filter((e) => e.kind.startsWith("service:"));
      expect(updates.map((e) => [e.instance, e.kind, e.status])).toEqual([
        [b.id, "service:forced_down", 200],
        [b.id, "service:status", 200],
      ]);
      await waitFor(() => a.lines.some((l) => l.msg === "stepped down"), 10_000, "the cut-off instance to step down");
    }, 180_000);
  }
});
