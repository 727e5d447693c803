import { describe, expect, it } from "vitest";
import type { HostView } from "../../src/engine/host-view.js";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { startSandbox } from "../../packages/sandbox/src/environment.js";
import type { ServedLifeboat } from "../kit/served.js";
import { SandboxControl } from "../support/sandbox-control.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { fastSite } from "../kit/config.js";
import { novaSeesDown, serversOn, servicePuts, siteScenario, TERMINAL } from "../kit/site.js";
import { serveOnSite, useCleanup } from "../kit/lifeboat.js";

/**
 * A release (`lifeboat release HOST`) run by a real `lifeboat serve` killed with SIGKILL at
 * each of its stages, some while a call is in flight, then started again on the same journal
 * as systemd would. The restarted process resumes the release where the journal says it
 * stopped and finishes it: the host powered on once (a second power-on only when the first
 * one's read-back was not journaled), never un-forced before nova-compute is back (Nova
 * refuses that while the host's evacuation records are still `done`), enabled, hold lifted.
 */

const HOST = "compute-1";

const cleanup = useCleanup();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const hostView = async (url: string): Promise<HostView> => (await api(url, "GET", `/api/v1/hosts/${HOST}`)).body as HostView;

type Moment = "power-on in flight" | "awaiting-compute" | "un-force in flight" | "un-force answered" | "enable in flight";

describe("a release killed with SIGKILL at each of its stages", () => {
  it.each<{ at: Moment }>([{ at: "power-on in flight" }, { at: "awaiting-compute" }, { at: "un-force in flight" }, { at: "un-force answered" }, { at: "enable in flight" }])(
    "killed at $at: the restarted lifeboat finishes it; powered on once, un-forced only once nova-compute is back, enabled, hold lifted",
    async ({ at }) => {
      const site = cleanup.add(await startSandbox({ ...fastSite({ cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn(HOST, 2)) } }), controlPort: 0 }));
      const cloud = site.cloud;
      const control = new SandboxControl(site.controlUrl!);
      const storeDir = cleanup.dir();
      const serve = async (): Promise<ServedLifeboat> => cleanup.add(await serveOnSite(site, storeDir, { gates: { storm: { max_percent: 100 } } }));

      // The host fails and is recovered: fenced, forced down, evacuated, held.
      const one = await serve();
      await control.failHost(HOST);
      await novaSeesDown(cloud, HOST);
      expect((await postAlert(one.url, alertPayload({ host: HOST }))).status).toBe(202);
      const recovered = await waitFor(
        async () => {
          const v = await hostView(one.url);
          return v.hold?.fenced && !v.openRecovery ? v : undefined;
        },
        60_000,
        "the recovery to end with the host held",
      );
      const first = (await api(one.url, "GET", `/api/v1/recoveries/${recovered.hold!.recoveryId}`)).body as RecoveryDetail;
      expect(first.state, first.reason).toBe("completed");
      const bmc = site.redfish.system(HOST);
      expect(bmc.resets).toEqual(["ForceOff"]);
      const mark = cloud.requests.at(-1)?.seq ?? 0;
      const markLog = (await control.requests()).last;

      // Where to strike.
      let struck = false;
      const kill = (): void => {
        if (struck) return;
        struck = true;
        process.kill(one.pid, "SIGKILL");
      };
      if (at === "power-on in flight") {
        // The BMC has the request (it powers the host on), lifeboat never sees the answer.
        const wired = bmc.beforeReset;
        bmc.beforeReset = (type) => {
          if (type === "On") kill();
          wired?.(type);
        };
      }
      if (at === "un-force in flight" || at === "enable in flight") {
        // Nova takes 1.5 s over each service update: the kill lands while one is in flight.
        await control.inject({ kind: "latency", ms: 1500, match: { service: "compute", method: "PUT", path: "^/v2\\.1/os-services/" } });
      }
      const released = await api(one.url, "POST", `/api/v1/hosts/${HOST}/release`);
      expect(released.status).toBe(202);
      const releaseId = (released.body as { recoveryId: string }).recoveryId;

      if (at === "awaiting-compute") {
        await waitFor(async () => (await hostView(one.url)).release?.state === "awaiting-compute", 30_000, "the release to wait for nova-compute");
        kill();
      } else if (at !== "power-on in flight") {
        const nth = at === "enable in flight" ? 2 : 1;
        const answered = at === "un-force answered";
        let since = markLog;
        let puts = 0;
        await waitFor(
          async () => {
            const log = await control.requests(since);
            since = log.last;
            for (const q of log.requests) {
              if (q.method !== "PUT" || !q.path.startsWith("/v2.1/os-services/")) continue;
              if (answered ? q.status === 200 : q.status === undefined) puts += 1;
            }
            return puts >= nth;
          },
          60_000,
          `service update ${nth} ${answered ? "answered" : "in flight"}`,
        );
        kill();
      }
      await waitFor(() => struck, 30_000, "the moment to strike");
      await one.stop();
      await sleep(1000);
      const two = await serve();

      // The restarted lifeboat finishes the same release.
      const done = await waitFor(
        async () => {
          const v = await hostView(two.url);
          return v.release?.recoveryId === releaseId && v.release.done ? v : undefined;
        },
        90_000,
        "the release to end after the restart",
      );
      expect(done.release!.state, done.release!.reason).toBe("completed");
      expect(done.hold).toMatchObject({ fenced: false, recoveryId: releaseId });
      const d = (await api(two.url, "GET", `/api/v1/recoveries/${releaseId}`)).body as RecoveryDetail;
      expect(d.kind).toBe("release");
      expect(d.timeline.map((t) => t.to)).toEqual(["pending", "powering-on", "awaiting-compute", "unforcing", "awaiting-up", "enabling", "completed"]);
      expect(TERMINAL).toContain(d.state);

      // Powered on once; a second "On" only when lifeboat was killed before the first one's read-back.
      const ons = bmc.resets.filter((r) => r === "On").length;
      if (at === "power-on in flight") expect(ons).toBeLessThanOrEqual(2);
      else expect(ons).toBe(1);
      expect(bmc.resets[0]).toBe("ForceOff");

      // Every service update was accepted: Nova refuses an un-force while nova-compute has not
      // completed the host's evacuation records, so none was sent before it was back; the
      // un-force came before the enable; at most one of each was repeated, after an in-flight kill.
      cloud.settle();
      const puts = servicePuts(cloud).filter((q) => q.seq > mark);
      expect(puts.map((q) => q.status)).toEqual(puts.map(() => 200));
      const unforces = puts.filter((q) => JSON.stringify(q.body) === JSON.stringify({ forced_down: false }));
      const enables = puts.filter((q) => JSON.stringify(q.body) === JSON.stringify({ status: "enabled" }));
      expect(unforces.length + enables.length).toBe(puts.length);
      expect(unforces.length).toBeGreaterThanOrEqual(1);
      expect(unforces.length).toBeLessThanOrEqual(at === "un-force in flight" ? 2 : 1);
      expect(enables.length).toBeGreaterThanOrEqual(1);
      expect(enables.length).toBeLessThanOrEqual(at === "enable in flight" ? 2 : 1);
      expect(Math.max(...unforces.map((q) => q.seq))).toBeLessThan(Math.min(...enables.map((q) => q.seq)));
      expect(cloud.state.migrations.filter((m) => m.sourceCompute === HOST).map((m) => m.status)).toEqual(["completed", "completed"]);
      const h = cloud.state.mustHost(HOST);
      expect({ forcedDown: h.forcedDown, disabled: h.disabled, up: cloud.state.serviceIsUp(h) }).toEqual({ forcedDown: false, disabled: false, up: true });
    },
    180_000,
  );
});
