import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { CLI } from "../kit/served.js";
import { usePairPerTest } from "../kit/pair.js";
import { sideEffects } from "./side-effects.js";
import { ADMIN_TOKEN } from "../kit/config.js";
import { waitFor } from "../kit/http.js";

/**
 * Operators reach either instance (a DNS name or a VIP over both): a request the follower
 * accepts is journaled in etcd and carried out by the leader.
 */
const execFileP = promisify(execFile);

const ha = usePairPerTest();

describe("operator requests sent to the follower", () => {
  it("lifeboat recover through the follower: the leader runs the recovery to its end", async () => {
    const pair = await ha.start({ sandbox: { cloud: { serviceDownTimeSeconds: 2, reportIntervalSeconds: 0.5, evacuationDurationMs: 500 }, powerDelayMs: 200 } });
    const p = pair;
    const leader = await p.leader();
    const follower = p.other(leader);
    const host = "compute-1";
    p.sandbox.failHost(host);

    const out = await execFileP(process.execPath, [CLI, "recover", host, "--url", follower.url, "--token", ADMIN_TOKEN]);
    expect(out.stdout).toMatch(new RegExp(`recovery (\\S+) of ${host} started`));
    const id = /recovery (\S+) of/.exec(out.stdout)![1]!;
    await waitFor(async () => (await p.store.getRecovery(id))?.state === "completed", 60_000, "the recovery to complete");
    expect(p.sandbox.redfish.system(host).resets).toEqual(["ForceOff"]);
    const effects = sideEffects(p.requests);
    expect(effects.length).toBeGreaterThan(0);
    expect(new Set(effects.map((e) => e.instance))).toEqual(new Set([leader.id]));
  }, 90_000);
});
