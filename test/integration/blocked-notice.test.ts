import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NotificationRecord, RecoveryDetail } from "../../src/domain/model.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import type { SandboxCloud } from "../../packages/sandbox/src/cloud.js";
import type { SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import type { CaughtMessage } from "../../packages/sandbox/src/smtp.js";
import type { ServedLifeboat } from "../kit/served.js";
import { ADMIN_TOKEN, fastSite } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { type Stack, startStack, serveOnSite, useCleanup } from "../kit/lifeboat.js";
import { finished, novaSeesDown, serversOn, siteScenario, TERMINAL } from "../kit/site.js";

/**
 * Blocked recoveries on the simulated site: who is told when, and what is asked again how
 * often. Evidence that may clear by itself (Nova still hears the host's heartbeat) is told
 * only once it has held the recovery `notifications.blocked_delay_seconds`, counted from the
 * journaled block; a block that needs a person is told at once. A recovery held by evidence
 * alone asks the evidence gates every `recovery.evidence_recheck_interval_seconds` and the
 * whole gate set only every `recheck_interval_seconds` or once the evidence passes; it is
 * fenced only after a validation in which every gate passed.
 */

const HOSTS = ["compute-1", "compute-2", "compute-3"];

let stack: Stack | undefined;
let sandbox: Sandbox | undefined;
const cleanup = useCleanup();
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const blockedRecords = (d: RecoveryDetail): NotificationRecord[] => d.notifications.filter((n) => n.kind === "blocked" && n.channel === "email");
const blockedMails = (messages: readonly CaughtMessage[], host: string): CaughtMessage[] => messages.filter((m) => m.subject.includes(`${host}: recovery blocked`));
const messageIds = (mails: readonly CaughtMessage[]): Set<string> => new Set(mails.map((m) => String(m.headers["message-id"])));
const summaryMail = (messages: readonly CaughtMessage[], host: string): CaughtMessage | undefined => messages.find((m) => m.subject.includes(`${host}: recovery completed`));

/** A GET of the nova-compute listing the quiet readers share (a host's own look carries `host`; the capacity gate lists them too). */
const isSharedListing = (q: SimRequest): boolean => q.service === "compute" && q.method === "GET" && q.path === "/v2.1/os-services" && q.query.host === undefined;
const sharedListings = (cloud: SandboxCloud, since = 0): number => cloud.requests.filter((q) => q.seq > since && isSharedListing(q)).length;
/** The capacity gate asks os-hypervisors once per pass: a count of full passes of the policy gates. */
/**
 * A pass of the capacity gate (a policy gate): it lists the failed host's servers each time
 * (the site's free capacity is a reading shared for a few seconds, so it cannot count them).
 * Counted before the fence only: the evacuating stage lists them too.
 */
const isCapacityPass = (q: SimRequest): boolean => q.service === "compute" && q.method === "GET" && q.path === "/v2.1/servers/detail" && q.query.host !== undefined;
const capacityPasses = (cloud: SandboxCloud, before?: string): number => cloud.requests.filter((q) => isCapacityPass(q) && (before === undefined || q.at < before)).length;
const lastSeq = (cloud: SandboxCloud): number => cloud.requests.at(-1)?.seq ?? 0;

/**
 * Nova asked again by a quick look at the evidence, well after the last policy pass: the
 * full pass the alert's wake may have started as the block began is over.
 */
async function evidenceAskedAlone(cloud: SandboxCloud): Promise<void> {
  const seq = lastSeq(cloud);
  await waitFor(
    () => {
      const lastPolicy = Date.parse(cloud.requests.filter(isCapacityPass).at(-1)!.at);
      return cloud.requests.some((q) => q.seq > seq && isSharedListing(q) && Date.parse(q.at) - lastPolicy >= 2000);
    },
    30_000,
    "the evidence asked again, alone",
  );
}

async function detailOf(s: Stack, host: string): Promise<RecoveryDetail> {
  const r = await waitFor(async () => (await s.app.store.listRecoveries({ host, limit: 1 }))[0], 20_000, `a recovery of ${host}`);
  return (await recoveryDetail(s.app.store, r.id))!;
}

async function blockedNow(s: Stack, host: string, reason?: RegExp): Promise<RecoveryDetail> {
  return waitFor(
    async () => {
      const d = await detailOf(s, host);
      return d.state === "blocked" && (!reason || reason.test(d.reason)) ? d : undefined;
    },
    30_000,
    `${host} blocked${reason ? ` (${String(reason)})` : ""}`,
  );
}

/**
 * The recovery went to fencing right after a validation in which every gate it ever asked
 * decided, and passed (or only warned): never on a partial pass.
 */
function expectFullPassBeforeFence(d: RecoveryDetail): void {
  const fenceAt = d.timeline.findIndex((t) => t.to === "fencing");
  expect(fenceAt, "the recovery was fenced").toBeGreaterThan(0);
  const validated = d.timeline[fenceAt - 1]!;
  expect(validated.to).toBe("validating");
  const pass = d.decisions.filter((x) => x.at >= validated.at && x.at <= d.timeline[fenceAt]!.at);
  const gates = new Set(d.decisions.map((x) => x.gate));
  expect(new Set(pass.map((x) => x.gate))).toEqual(gates);
  expect(pass.filter((x) => x.result !== "pass" && x.result !== "warn")).toEqual([]);
}

describe("blocked messages: at once when a person is needed, after a delay for evidence", () => {
  it("an evidence block that clears within the delay is told to nobody, and the recovery goes on", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 2)) },
      config: {
        // Nova agrees 3 s after the host stopped heartbeating: until then the alert is ahead of it.
        gates: { confirmations: [{ driver: "nova-service", stale_seconds: 3, checks: 1, interval_seconds: 0 }, { driver: "bmc" }] },
        recovery: { evidence_recheck_interval_seconds: 0.2 },
        notifications: { blocked_delay_seconds: 120 },
      },
    });
    const s = stack;
    s.sandbox.failHost("compute-1");
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const held = await blockedNow(s, "compute-1");
    expect(held.reason).toMatch(/^nova-service: /);

    const d = await finished(s, "compute-1", 60_000);
    expect(d.state, d.reason).toBe("completed");
    await waitFor(() => summaryMail(s.sandbox.smtp.messages, "compute-1"), 30_000, "the operators' summary");
    // Nobody was told of the block…
    expect(blockedRecords(d)).toEqual([]);
    expect(d.steps.filter((x) => x.key.startsWith("notify-blocked:"))).toEqual([]);
    expect(blockedMails(s.sandbox.smtp.messages, "compute-1")).toEqual([]);
    // …which the timeline, the decisions and the metrics still show.
    expect(d.timeline.map((t) => t.to)).toContain("blocked");
    expect(d.decisions.filter((x) => x.gate === "nova-service").map((x) => x.result)).toEqual(["block", "pass"]);
    const counted = (await s.app.metrics.gateDecisions.get()).values.find((v) => v.labels.gate === "nova-service" && v.labels.result === "block");
    expect(counted?.value).toBe(1);
    expectFullPassBeforeFence(d);
    expect(held.block?.evidenceSince).toBe(held.block?.at);
  }, 90_000);

  it("an evidence block that lasts longer than the delay is told once, no earlier than the delay after it began", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 2)) },
      config: { recovery: { evidence_recheck_interval_seconds: 0.2 }, notifications: { blocked_delay_seconds: 2 } },
    });
    const s = stack;
    // compute-1 is alive: Nova hears its heartbeat, the alert is wrong for now.
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const held = await blockedNow(s, "compute-1");
    const since = Date.parse(held.block!.at);
    const record = await waitFor(async () => blockedRecords(await detailOf(s, "compute-1"))[0], 30_000, "the blocked message queued");
    expect(Date.parse(record.queuedAt!) - since).toBeGreaterThanOrEqual(2000);
    await waitFor(() => blockedMails(s.sandbox.smtp.messages, "compute-1").length > 0, 30_000, "the blocked mail");

    // The host dies for real: the evidence clears and the recovery goes on.
    s.sandbox.failHost("compute-1");
    const d = await finished(s, "compute-1", 60_000);
    expect(d.state, d.reason).toBe("completed");
    expectFullPassBeforeFence(d);
    await waitFor(() => summaryMail(s.sandbox.smtp.messages, "compute-1"), 30_000, "the operators' summary");
    expect(blockedRecords(d)).toHaveLength(1);
    const mails = blockedMails(s.sandbox.smtp.messages, "compute-1");
    expect(messageIds(mails)).toEqual(new Set([record.messageId]));
    expect(mails[0]!.text).toContain("nova-service");
    expect(held.block?.evidenceSince).toBe(held.block?.at);
  }, 90_000);

  it("an approval block is told at once; an evidence block is told the moment it needs a person, once", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, [...serversOn("compute-1", 1), ...serversOn("compute-2", 1, "web")]) },
      config: {
        gates: { require_approval: ["compute-2"] },
        recovery: { evidence_recheck_interval_seconds: 0.2 },
        notifications: { blocked_delay_seconds: 3600 },
      },
    });
    const s = stack;
    const smtp = s.sandbox.smtp;
    // compute-1 is alive (evidence holds it); compute-2 died and needs an approval.
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const first = await blockedNow(s, "compute-1", /^nova-service: /);
    s.sandbox.failHost("compute-2");
    await novaSeesDown(s.sandbox.cloud, "compute-2");
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-2" }))).status).toBe(202);
    const approval = await blockedNow(s, "compute-2", /^approval: /);
    expect(approval.block?.evidenceSince).toBeUndefined();
    await waitFor(() => blockedMails(smtp.messages, "compute-2").length > 0, 30_000, "compute-2's blocked mail");
    expect(blockedMails(smtp.messages, "compute-2")[0]!.subject).toContain("needs approval");
    // compute-1 blocked before compute-2, and nobody was told of it: its block may clear by itself.
    expect(blockedRecords(await detailOf(s, "compute-1"))).toEqual([]);

    // An operator pauses automation: compute-1's block now needs a person, and says so at once.
    expect((await api(s.app.url, "POST", "/api/v1/pause", { reason: "network work" })).status).toBe(200);
    const paused = await blockedNow(s, "compute-1", /pause: /);
    expect(paused.block).toMatchObject({ episode: first.block!.episode, gates: ["pause", "nova-service"] });
    expect(paused.block?.evidenceSince).toBeUndefined();
    await waitFor(() => blockedMails(smtp.messages, "compute-1").length > 0, 30_000, "compute-1's blocked mail");

    // Resumed, the host still heartbeating: the same episode, told already. Then it dies.
    expect((await api(s.app.url, "POST", "/api/v1/resume", {})).status).toBe(200);
    await blockedNow(s, "compute-1", /^nova-service: /);
    s.sandbox.failHost("compute-1");
    expect((await api(s.app.url, "POST", `/api/v1/recoveries/${approval.id}/approve`, {})).status).toBe(200);
    for (const host of ["compute-1", "compute-2"]) {
      const d = await finished(s, host, 60_000);
      expect(d.state, d.reason).toBe("completed");
      expectFullPassBeforeFence(d);
      await waitFor(() => summaryMail(smtp.messages, host), 30_000, `${host}'s summary`);
      expect(blockedRecords(d)).toHaveLength(1);
      expect(messageIds(blockedMails(smtp.messages, host)).size).toBe(1);
    }
  }, 120_000);
});

describe("a recovery held by evidence alone", () => {
  it("asks Nova again on its own short interval, the policy gates only once the evidence passes", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 2)) },
      config: { recovery: { recheck_interval_seconds: 3600, evidence_recheck_interval_seconds: 0.1 }, notifications: { blocked_delay_seconds: 3600 } },
    });
    const s = stack;
    const cloud = s.sandbox.cloud;
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    await blockedNow(s, "compute-1", /^nova-service: /);
    // Nova is asked again and again (through the shared listing, one request per few seconds
    // whatever the number of readers) while the policy gates are not. The alert's wake may
    // have asked every gate once more as the block began: count from a look at Nova well
    // after the last policy pass.
    await evidenceAskedAlone(cloud);
    const policyPasses = capacityPasses(cloud);
    const quiet = lastSeq(cloud);
    await waitFor(() => sharedListings(cloud, quiet) >= 2, 30_000, "the evidence asked again and again");
    expect(capacityPasses(cloud)).toBe(policyPasses);
    expect((await detailOf(s, "compute-1")).state).toBe("blocked");

    s.sandbox.failHost("compute-1");
    const d = await finished(s, "compute-1", 60_000);
    expect(d.state, d.reason).toBe("completed");
    expectFullPassBeforeFence(d);
    // Policy gates ran twice more before the fence: the full pass once the evidence passed,
    // and the validation that led to the fence.
    expect(capacityPasses(cloud, d.timeline.find((t) => t.to === "fencing")!.at)).toBe(policyPasses + 2);
  }, 90_000);

  it("is not fenced when its evidence clears while a policy holds it: the full pass finds the pause", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 2)) },
      config: { recovery: { recheck_interval_seconds: 3600, evidence_recheck_interval_seconds: 0.1 }, notifications: { blocked_delay_seconds: 3600 } },
    });
    const s = stack;
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    await blockedNow(s, "compute-1", /^nova-service: /);
    await evidenceAskedAlone(s.sandbox.cloud);
    // A pause wakes nobody: only a full pass of the gates sees it.
    expect((await api(s.app.url, "POST", "/api/v1/pause", { reason: "network work" })).status).toBe(200);
    s.sandbox.failHost("compute-1");
    const paused = await blockedNow(s, "compute-1", /^pause: /);
    const current = new Map(paused.decisions.map((x) => [x.gate, x.result]));
    expect(current.get("nova-service")).toBe("pass");
    expect(paused.timeline.map((t) => t.to)).not.toContain("fencing");
    expect(s.sandbox.redfish.system("compute-1").resets).toEqual([]);
    expect(s.sandbox.redfish.system("compute-1").powerState).toBe("On");
    // A block that needs a person: told at once.
    await waitFor(() => blockedMails(s.sandbox.smtp.messages, "compute-1").length > 0, 30_000, "the blocked mail");

    expect((await api(s.app.url, "POST", "/api/v1/resume", {})).status).toBe(200);
    const d = await finished(s, "compute-1", 60_000);
    expect(d.state, d.reason).toBe("completed");
    expectFullPassBeforeFence(d);
  }, 90_000);
});

describe("blocked messages across a SIGKILL of the serve process", () => {
  it("killed within the delay: the next process tells once, when the journaled block is old enough; killed again after, nothing is repeated", async () => {
    sandbox = await startSandbox(fastSite({ cloud: { scenario: siteScenario(HOSTS, serversOn("compute-1", 2)) } }));
    cleanup.add(sandbox);
    const site = sandbox;
    const storeDir = cleanup.dir();
    const DELAY_S = 6;
    const serve = async (): Promise<ServedLifeboat> => cleanup.add(await serveOnSite(site, storeDir, { recovery: { evidence_recheck_interval_seconds: 0.2 }, notifications: { blocked_delay_seconds: DELAY_S } }));
    const recoveryOf = async (url: string): Promise<RecoveryDetail | undefined> => {
      const list = await api(url, "GET", "/api/v1/recoveries?host=compute-1");
      const r = (list.body as { recoveries: { id: string }[] }).recoveries[0];
      return r ? ((await api(url, "GET", `/api/v1/recoveries/${r.id}`, undefined, ADMIN_TOKEN)).body as RecoveryDetail) : undefined;
    };
    const journal = async (): Promise<RecoveryDetail> => {
      const store = new SqliteStore(join(storeDir, "lifeboat.db"));
      await store.init();
      try {
        const r = (await store.listRecoveries({ host: "compute-1", limit: 1 }))[0]!;
        return (await recoveryDetail(store, r.id))!;
      } finally {
        await store.close();
      }
    };
    const kill = async (d: ServedLifeboat): Promise<void> => {
      process.kill(d.pid, "SIGKILL");
      await d.stop();
    };

    // compute-1 is alive: Nova hears its heartbeat, the alert is ahead of the truth.
    const one = await serve();
    expect((await postAlert(one.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    await waitFor(async () => (await recoveryOf(one.url))?.state === "blocked", 30_000, "compute-1 blocked");
    await kill(one);
    const killedAt = Date.now();
    const before = await journal();
    expect(before.state).toBe("blocked");
    const since = Date.parse(before.block!.at);
    expect(killedAt, "killed within the delay").toBeLessThan(since + DELAY_S * 1000);
    expect(blockedRecords(before)).toEqual([]);
    expect(before.block?.evidenceSince).toBe(before.block?.at);

    // The next process tells once the journaled block is DELAY_S old, not DELAY_S after it started.
    const two = await serve();
    const record = await waitFor(async () => {
      const d = await recoveryOf(two.url);
      return d ? blockedRecords(d)[0] : undefined;
    }, 60_000, "the blocked message queued by the second process");
    expect(Date.parse(record.queuedAt!) - since).toBeGreaterThanOrEqual(DELAY_S * 1000);
    await kill(two);

    // A third process after the message was queued: not queued again; the host dies and the recovery ends.
    const three = await serve();
    site.failHost("compute-1");
    const d = await waitFor(async () => {
      const r = await recoveryOf(three.url);
      return r && TERMINAL.includes(r.state) ? r : undefined;
    }, 60_000, "the recovery to end");
    expect(d.state, d.reason).toBe("completed");
    expectFullPassBeforeFence(d);
    await waitFor(() => summaryMail(site.smtp.messages, "compute-1"), 30_000, "the operators' summary");
    await waitFor(async () => blockedRecords((await recoveryOf(three.url))!).every((n) => n.state === "sent"), 30_000, "the blocked mail sent");
    expect(blockedRecords(d)).toHaveLength(1);
    // Delivery is at least once: a copy resent after the kill carries the same Message-ID.
    expect(messageIds(blockedMails(site.smtp.messages, "compute-1"))).toEqual(new Set([record.messageId]));
  }, 180_000);
});
