import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import { ADMIN_TOKEN } from "../kit/config.js";
import { waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { failAndAlert, finished, serversOn, siteScenario } from "../kit/site.js";

/**
 * lifeboat's locks on the servers it evacuates, against the simulated cloud with lifeboat's
 * real drivers: an unlock Nova refuses is journaled as owed, retried before the recovery
 * leaves `evacuating`, named where it never succeeds, and settled by the leader at its next
 * start-up, as are lifeboat locks of ended recoveries that nothing in the journal owes.
 */
const CLI = resolve(import.meta.dirname, "../../dist/cli.js");
const HOSTS = ["compute-1", "compute-2", "compute-3"];
const run = promisify(execFile);

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function start(servers = 3, cloud: Record<string, unknown> = {}): Promise<Stack> {
  const others = serversOn("compute-3", 1, "bystander");
  stack = await startStack({ pace: "fast", cloud: { scenario: siteScenario(HOSTS, [...serversOn("compute-1", servers), ...others]), ...cloud } });
  return stack;
}

/** Why the recovery left `evacuating`. */
function evacuatingReason(d: RecoveryDetail): string {
  return d.timeline.find((t) => t.from === "evacuating")?.reason ?? "";
}

function idOf(s: Stack, name: string): string {
  return s.sandbox.cloud.state.serverByName(name)!.id;
}

function lockedServers(s: Stack): string[] {
  return [...s.sandbox.cloud.state.servers.values()].filter((v) => v.locked).map((v) => v.name).sort();
}

function unlockStep(d: RecoveryDetail, serverId: string): RecoveryDetail["steps"][number] | undefined {
  return d.steps.find((x) => x.key === `unlock/${serverId}`);
}

describe("lifeboat's locks on evacuated servers", () => {
  it("Nova refuses an unlock for a while: the unlock is owed, retried before the recovery moves on, and the recovery completes with nothing locked", async () => {
    const s = await start();
    const vm2 = idOf(s, "vm-02");
    // Three refusals: the client's own tries of the first unlock call.
    const refusals = s.sandbox.cloud.faults.fail(500, { times: 3, match: { method: "POST", path: `/v2.1/servers/${vm2}/action`, action: "unlock" } });
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1");

    expect(refusals.hits()).toBe(3);
    expect(d.state, d.reason).toBe("completed");
    expect(evacuatingReason(d)).toBe("3 instance(s) evacuated");
    expect(d.instances.map((i) => i.state)).toEqual(["evacuated", "evacuated", "evacuated"]);
    expect(lockedServers(s)).toEqual([]);
    expect(unlockStep(d, vm2)).toMatchObject({ state: "succeeded", result: { result: "unlocked", by: "evacuating" } });
    expect(d.locksLeft).toBeUndefined();
  }, 60_000);

  it("Nova refuses it for good: the recovery, `lifeboat show` and the operators' mail name the server; the next start-up unlocks it, journaled and logged", async () => {
    const s = await start();
    const vm2 = idOf(s, "vm-02");
    const refusals = s.sandbox.cloud.faults.fail(500, { match: { method: "POST", path: `/v2.1/servers/${vm2}/action`, action: "unlock" } });
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1");

    expect(d.state, d.reason).toBe("completed");
    expect(evacuatingReason(d)).toMatch(/^3 instance\(s\) evacuated; lifeboat could not unlock 1 server\(s\): vm-02$/);
    expect(d.instances.find((i) => i.name === "vm-02")).toMatchObject({ state: "evacuated" });
    expect(lockedServers(s)).toEqual(["vm-02"]);
    expect(s.sandbox.cloud.state.servers.get(vm2)!.lockedReason).toBe(`lifeboat: evacuating from compute-1 (recovery ${d.id})`);
    expect(unlockStep(d, vm2)).toMatchObject({ state: "failed", error: expect.stringMatching(/^Unexpected API Error/) as unknown });
    expect(d.locksLeft).toEqual([vm2]);

    const mail = await waitFor(() => s.sandbox.smtp.messages.find((m) => m.to.includes("ops@cloud.example")), 10_000, "the operators' mail");
    expect(mail.text).toContain("Left locked: lifeboat could not unlock these servers");
    expect(mail.text).toContain(`vm-02 (${vm2}): Unexpected API Error`);

    const show = await run(process.execPath, [CLI, "show", d.id, "--url", s.app.url, "--token", ADMIN_TOKEN]);
    expect(show.stdout).toContain("left locked (lifeboat could not unlock them");
    expect(show.stdout).toMatch(new RegExp(`vm-02\\s+${vm2}\\s+\\S+\\s+Unexpected API Error`));

    // Nova answers again; lifeboat restarts.
    refusals.remove();
    const logsBefore = s.logs.length;
    await s.restart();
    await waitFor(() => lockedServers(s).length === 0, 20_000, "vm-02 unlocked by the start-up sweep");
    await waitFor(
      async () => {
        const now = (await recoveryDetail(s.app.store, d.id))!;
        return unlockStep(now, vm2)?.state === "succeeded" && now.locksLeft === undefined;
      },
      10_000,
      "the unlock journaled",
    );
    const settled = (await recoveryDetail(s.app.store, d.id))!;
    expect(unlockStep(settled, vm2)).toMatchObject({ state: "succeeded", result: { result: "unlocked", by: "start-up" } });
    expect(settled.locksLeft).toBeUndefined();
    expect(settled.state).toBe("completed");
    // A read shows the step once it is committed; the line is logged once it is on disk.
    const unlockLine = (): Record<string, unknown> | undefined =>
      s.logs.slice(logsBefore).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "unlocked a server lifeboat had left locked for a recovery that ended");
    await waitFor(() => unlockLine() !== undefined, 10_000, "the unlock logged");
    expect(unlockLine()).toMatchObject({ server: vm2, name: "vm-02", recovery: d.id, trigger: "start-up" });

    const again = await run(process.execPath, [CLI, "show", d.id, "--url", s.app.url, "--token", ADMIN_TOKEN]);
    expect(again.stdout).not.toContain("left locked");
  }, 90_000);

  it("at start-up, one listing finds lifeboat's locks of ended recoveries nothing owes; locks of unknown recoveries and owners' locks stay", async () => {
    const s = await start(2);
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1");
    expect(d.state).toBe("completed");
    const cloud = s.sandbox.cloud.state;
    // As a lost unlock of an earlier version left them: lifeboat's reason, nothing in the journal.
    const stale = cloud.servers.get(idOf(s, "vm-01"))!;
    Object.assign(stale, { locked: true, lockedReason: `lifeboat: evacuating from compute-1 (recovery ${d.id})` });
    const foreign = cloud.servers.get(idOf(s, "vm-02"))!;
    Object.assign(foreign, { locked: true, lockedReason: "lifeboat: evacuating from compute-9 (recovery r-unknown-to-this-journal)" });
    const owners = cloud.servers.get(idOf(s, "bystander-01"))!;
    Object.assign(owners, { locked: true, lockedReason: "tenant maintenance" });

    const listingsBefore = s.sandbox.cloud.requests.filter((q) => q.method === "GET" && q.path === "/v2.1/servers/detail" && q.query.locked === "true").length;
    await s.restart();
    await waitFor(() => !stale.locked, 20_000, "the stale lock released");
    await waitFor(async () => unlockStep((await recoveryDetail(s.app.store, d.id))!, stale.id)?.state === "succeeded", 10_000, "the unlock journaled");
    const settled = (await recoveryDetail(s.app.store, d.id))!;
    expect(unlockStep(settled, stale.id)).toMatchObject({ result: { result: "unlocked", by: "start-up" } });
    expect(settled.state).toBe("completed");
    expect(foreign).toMatchObject({ locked: true });
    expect(owners).toMatchObject({ locked: true, lockedReason: "tenant maintenance" });
    const listings = s.sandbox.cloud.requests.filter((q) => q.method === "GET" && q.path === "/v2.1/servers/detail" && q.query.locked === "true");
    expect(listings.length - listingsBefore).toBe(1);
    await waitFor(
      () => s.logs.some((l) => l.includes("server locked by lifeboat left alone") && l.includes(foreign.id) && l.includes("which this journal does not hold")),
      10_000,
      "the unknown recovery's lock logged",
    );
  }, 60_000);

  it("below microversion 2.73 (no lock reasons): an unlock owed by the journal is settled at the next start-up with one look at the server", async () => {
    const s = await start(2, { maxMicroversion: "2.72" });
    const vm1 = idOf(s, "vm-01");
    const refusals = s.sandbox.cloud.faults.fail(500, { match: { method: "POST", path: `/v2.1/servers/${vm1}/action`, action: "unlock" } });
    await failAndAlert(s, "compute-1");
    const d = await finished(s, "compute-1");
    expect(evacuatingReason(d)).toMatch(/lifeboat could not unlock 1 server\(s\): vm-01$/);
    expect(s.sandbox.cloud.state.servers.get(vm1)).toMatchObject({ locked: true, lockedReason: null });

    refusals.remove();
    await s.restart();
    await waitFor(() => !s.sandbox.cloud.state.servers.get(vm1)!.locked, 20_000, "vm-01 unlocked");
    await waitFor(async () => unlockStep((await recoveryDetail(s.app.store, d.id))!, vm1)?.state === "succeeded", 10_000, "the unlock journaled");
    expect(s.sandbox.cloud.requests.filter((q) => q.path === "/v2.1/servers/detail" && q.query.locked !== undefined)).toEqual([]);
    expect(lockedServers(s)).toEqual([]);
  }, 60_000);
});
