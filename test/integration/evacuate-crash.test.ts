import { describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import type { ServedLifeboat } from "../kit/served.js";
import { actionServer, SandboxControl, type LoggedRequest } from "../support/sandbox-control.js";
import { ADMIN_TOKEN, deepMerge, fastSite } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { novaSeesDown, serversOn, siteScenario, TERMINAL } from "../kit/site.js";
import { serveOnSite, useCleanup } from "../kit/lifeboat.js";

/**
 * A real `lifeboat serve` killed with SIGKILL while evacuate calls are in flight, on a Nova
 * that is slow to act on server actions (2.5–3.5 s), then started again on the same journal
 * as systemd would. nova-api goes on with a request whose client vanished, so the call is
 * carried out after the crash: a second evacuate would break the server. The faults are
 * injected and the request log read through the sandbox's control API.
 */

const HOSTS = ["compute-1", "compute-2", "compute-3"];
const SERVERS = 4;

let sandbox: Sandbox | undefined;
const cleanup = useCleanup();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function recoveryOf(url: string): Promise<RecoveryDetail | undefined> {
  const list = await api(url, "GET", "/api/v1/recoveries?host=compute-1");
  const r = (list.body as { recoveries: { id: string }[] }).recoveries[0];
  return r ? ((await api(url, "GET", `/api/v1/recoveries/${r.id}`, undefined, ADMIN_TOKEN)).body as RecoveryDetail) : undefined;
}

/** Follow the request log until a request matches; returns it. */
async function firstRequest(control: SandboxControl, match: (q: LoggedRequest) => boolean, timeoutMs: number, what: string): Promise<LoggedRequest> {
  let since = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await control.requests(since);
    const hit = log.requests.find(match);
    if (hit) return hit;
    since = log.last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(15);
  }
}

describe("lifeboat killed while an evacuate call is in flight", () => {
  // Nova takes `slowest`…`fastest` ms to act on each server's actions; the first servers in
  // lifeboat's order get the slowest, so the calls in flight at the kill are the slow ones.
  // Whether the restarted lifeboat looks before Nova has acted depends on how fast it starts;
  // the last case (a slower Nova) makes sure it looks first, also on a loaded machine.
  it.each([
    { killAfterMs: 100, restartAfterMs: 1000, slowest: 3500, fastest: 2500 },
    { killAfterMs: 300, restartAfterMs: 1500, slowest: 3500, fastest: 2500 },
    { killAfterMs: 1000, restartAfterMs: 2000, slowest: 3500, fastest: 2500 },
    { killAfterMs: 2800, restartAfterMs: 1000, slowest: 3500, fastest: 2500 },
    { killAfterMs: 300, restartAfterMs: 1000, slowest: 10_000, fastest: 9000 },
  ])(
    "SIGKILL $killAfterMs ms after the first evacuate POST reached Nova ($fastest–$slowest ms to act), restarted $restartAfterMs ms later: one evacuate POST per server, every server moved once",
    async ({ killAfterMs, restartAfterMs, slowest, fastest }) => {
      sandbox = await startSandbox({
        ...fastSite({ cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", SERVERS)), evacuationDurationMs: 1000 } }),
        controlPort: 0,
      });
      cleanup.add(sandbox);
      const site = sandbox;
      const cloud = site.cloud;
      const control = new SandboxControl(site.controlUrl!);
      const servers = (await control.state()).servers.filter((v) => v.host === "compute-1");
      expect(servers).toHaveLength(SERVERS);

      // Nova is slow to act on each server's actions (lock, evacuate, unlock).
      const byName = [...servers].sort((a, b) => a.name.localeCompare(b.name));
      for (const [i, v] of byName.entries()) {
        const ms = slowest - Math.round((i * (slowest - fastest)) / (SERVERS - 1));
        await control.inject({ kind: "latency", ms, match: { service: "compute", method: "POST", path: `^/v2\\.1/servers/${v.id}/action$` } });
      }

      const storeDir = cleanup.dir();
      // Every call answered within the client's timeout, every evacuation within the instance timeout.
      const limits = { openstack: { timeout_seconds: Math.max(10, (2 * slowest) / 1000) }, evacuation: { instance_timeout_seconds: Math.max(20, (4 * slowest) / 1000) } };
      const serve = async (): Promise<ServedLifeboat> => cleanup.add(await serveOnSite(site, storeDir, deepMerge(limits, { evacuation: { concurrency: 2 } })));

      const one = await serve();
      await control.failHost("compute-1");
      await novaSeesDown(cloud, "compute-1");
      expect((await postAlert(one.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
      const first = await firstRequest(control, (q) => q.action === "evacuate", 60_000, "the first evacuate POST");
      await sleep(killAfterMs);
      process.kill(one.pid, "SIGKILL");
      await one.stop();
      const atKill = await control.requests();
      const inFlight = atKill.requests.filter((q) => q.action === "evacuate" && q.status === undefined).length;
      await sleep(restartAfterMs);

      const two = await serve();
      const evacuates = new Map<string, number>();
      let seen = 0;
      const d = await waitFor(
        async () => {
          // A second evacuate is the failure itself: say so at once rather than wait for the broken servers.
          const log = await control.requests(seen);
          seen = log.last;
          for (const q of log.requests) if (q.action === "evacuate") evacuates.set(actionServer(q)!, (evacuates.get(actionServer(q)!) ?? 0) + 1);
          const twice = servers.find((v) => (evacuates.get(v.id) ?? 0) > 1);
          if (twice) throw new Error(`a second evacuate POST was sent for ${twice.name}`);
          const r = await recoveryOf(two.url);
          return r && TERMINAL.includes(r.state) ? r : undefined;
        },
        150_000,
        "the recovery to end after the restart",
      );
      // Let Nova finish whatever it was still doing, then count.
      await sleep(4000);
      cloud.settle();
      const log = await control.requests();
      const posts = (id: string): LoggedRequest[] => log.requests.filter((q) => q.action === "evacuate" && actionServer(q) === id);
      const firstPost = log.requests.find((q) => q.seq === first.seq)!;
      if (killAfterMs < fastest) {
        // The dangerous case: lifeboat died before Nova answered, and Nova still carried the call out.
        expect(firstPost).toMatchObject({ status: 200, client_closed: true });
        expect(inFlight).toBeGreaterThanOrEqual(1);
      }

      expect(d.instances).toHaveLength(SERVERS);
      const failed = d.instances.filter((i) => i.state === "failed");
      for (const v of servers) {
        const rec = d.instances.find((i) => i.instanceId === v.id)!;
        const sim = cloud.state.servers.get(v.id)!;
        expect(posts(v.id).length, `evacuate POSTs of ${v.name}`).toBeLessThanOrEqual(1);
        expect(sim.evacuationAttempts, `evacuations Nova accepted for ${v.name}`).toBeLessThanOrEqual(1);
        expect(sim.broken, `${v.name} broken`).toBe(false);
        expect(sim.locked, `${v.name} left locked`).toBe(false);
        if (rec.state === "evacuated") {
          expect(posts(v.id), `evacuate POSTs of ${v.name}`).toHaveLength(1);
          expect(sim.evacuationAttempts).toBe(1);
          expect(sim.host).not.toBe("compute-1");
          expect(sim.host).toBe(rec.targetHost);
          expect(sim.taskState).toBeNull();
        } else {
          // Only a call lifeboat cannot prove either way is left to an operator, named, never sent twice.
          expect(rec.state, `${v.name}: ${rec.error ?? ""}`).toBe("failed");
          expect(rec.error).toMatch(/may have been received/);
          expect(d.reason).toContain(v.name);
        }
      }
      expect(d.state, d.reason).toBe(failed.length ? "partial" : "completed");
      // Only the (at most two, the concurrency) servers in flight at the kill can be left to an operator.
      expect(failed.length).toBeLessThanOrEqual(2);
      expect(two.output()).toContain("resuming recovery");
      // The restarted lifeboat knew from its journal that the first call may have been sent.
      if (killAfterMs < fastest) expect(two.output()).toContain("was in flight when lifeboat stopped");
    },
    240_000,
  );
});
