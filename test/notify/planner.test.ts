import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { notificationsSchema, type NotificationsConfigInput } from "../../src/notify/config.js";
import type { PlannedMessage } from "../../src/notify/dispatcher.js";
import { duration, planBlocked, planFenceFailed, planRecoveryFinished, planStorm, type PlanContext } from "../../src/notify/planner.js";
import type { ProjectRecipients } from "../../src/notify/recipients.js";
import type { SqliteStore } from "../../src/store/sqlite.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import type { BlockEpisode } from "../../src/domain/model.js";
import { GENERATOR_URL, P1, P2, XSS_NAME, scenario, testStore } from "./support/recovery.js";

let store: SqliteStore;
let clock: { t: number };
beforeEach(async () => {
  ({ store, clock } = await testStore());
});
afterEach(async () => {
  await store.close();
});

function ctx(over: NotificationsConfigInput = {}, channels = ["email", "webhook:chat"]): PlanContext {
  const config = notificationsSchema.parse({
    from: "lifeboat <lifeboat@cloud.example>",
    operators: ["ops@cloud.example", "Oncall@Cloud.example"],
    smtp: { host: "127.0.0.1" },
    tenants: { enabled: true },
    webhooks: [{ name: "chat", url: "https://chat.example/hooks/x" }],
    dashboard_url: "https://grafana.example/d/lifeboat",
    api_url: "https://lifeboat.example:9095/",
    ...over,
  });
  return { config, channels: new Set(channels) };
}

const tenants: ProjectRecipients[] = [
  { projectId: P1, projectName: "tenant-one", recipients: [{ email: "alice@tenant-one.example", sources: ["keystone:alice"] }, { email: "noc@tenant-one.example", sources: ["static"] }], problems: [], transient: 0 },
  { projectId: P2, recipients: [{ email: "gina@tenant-two.example", sources: ["creator:gina"] }], problems: ["Keystone role assignments of project x: forbidden"], transient: 0 },
];

const only = (plan: PlannedMessage[], kind: string, channel?: string) => plan.filter((p) => p.message.kind === kind && (channel === undefined || p.channel === channel));

describe("planner: recovery finished", () => {
  it("sends one operator summary per operator and webhook, and one tenant mail per project and recipient", async () => {
    const d = await scenario(store, clock);
    const plan = planRecoveryFinished(d, tenants, ctx());
    expect(only(plan, "operator-summary", "email").map((p) => p.message.recipient)).toEqual(["ops@cloud.example", "oncall@cloud.example"]);
    expect(only(plan, "operator-summary", "webhook:chat").map((p) => p.message.recipient)).toEqual(["chat"]);
    expect(only(plan, "tenant").map((p) => [p.projectId, p.message.recipient])).toEqual([
      [P1, "alice@tenant-one.example"],
      [P1, "noc@tenant-one.example"],
      [P2, "gina@tenant-two.example"],
    ]);
    expect(plan.every((p) => p.mode === "send")).toBe(true);
    expect(new Set(plan.map((p) => p.dedupKey)).size).toBe(plan.length);
  });

  it("writes a summary with the timeline, gate decisions, fence result, each instance's fate, the alert's source and links", async () => {
    const d = await scenario(store, clock);
    const [m] = only(planRecoveryFinished(d, tenants, ctx()), "operator-summary", "email");
    const { subject, text, html } = m!.message;
    expect(subject).toBe("[lifeboat] compute-1: recovery PARTIAL (some instances failed) (2/5 instances evacuated)");
    // Timeline: every transition with its time, offset, time spent in the stage and reason.
    expect(text).toContain("2026-03-01T10:00:00.000Z +0s  (new) -> pending (30s): ComputeNodeDown firing");
    expect(text).toContain("2026-03-01T10:00:30.000Z +30s  pending -> validating (800ms): grace period over, alert still firing");
    expect(text).toContain("2026-03-01T10:00:30.800Z +30s  validating -> fencing (12s): all gates pass (nova-service, storm-guard)");
    expect(text).toContain("evacuating -> notifying: 1 of 3 evacuations failed");
    // Gate decisions.
    expect(text).toContain("nova-service: pass - nova-compute on compute-1 is down (last heartbeat 95 s ago)");
    expect(text).toContain("storm-guard: pass - 1 host failed in 10 min (max 2)");
    // Fence: state, the device that confirmed, and every device tried.
    expect(text).toContain("Fence:     powered off (confirmed by the fence device), by ipmi 10.0.0.7:623");
    expect(text).toContain("redfish https://10.0.0.8 (redfish): FAILED, power unknown - connect ETIMEDOUT 10.0.0.8:443");
    // Each instance's fate.
    expect(text).toContain("web-1 (11111111-aaaa-4000-8000-000000000001, project " + P1 + "): evacuated to compute-3");
    expect(text).toContain("db-1 (11111111-aaaa-4000-8000-000000000004, project " + P1 + "): FAILED: No valid host was found. There are not enough hosts available.");
    expect(text).toContain("batch-1 (22222222-bbbb-4000-8000-000000000002, project " + P2 + "): not protected: not opted in (metadata HA_Enabled is not true)");
    expect(text).toContain("cache-1 (22222222-bbbb-4000-8000-000000000005, project " + P2 + "): skipped: already in ERROR before the failure");
    expect(text).toContain("Outcome:   partial (2 evacuated, 1 failed, 1 skipped, 1 unprotected)");
    // Alert source and links.
    expect(text).toContain(`ComputeNodeDown (firing since 2026-03-01T09:59:00.000Z) ${GENERATOR_URL}`);
    expect(text).toContain(`Recovery: https://lifeboat.example:9095/api/v1/recoveries/${d.id}`);
    expect(text).toContain("Dashboard: https://grafana.example/d/lifeboat");
    // Who the tenants were.
    expect(text).toContain(`project ${P1} (tenant-one): alice@tenant-one.example, noc@tenant-one.example`);
    expect(text).toContain(`project ${P2}: gina@tenant-two.example; Keystone role assignments of project x: forbidden`);
    // The HTML carries the same facts, escaped.
    expect(html).toContain("No valid host was found. There are not enough hosts available.");
    expect(html).toContain("evacuated to compute-3");
    expect(html).toContain(`<a href="${GENERATOR_URL.replace(/&/g, "&amp;").replace(/\//g, "&#x2F;").replace(/=/g, "&#x3D;")}">source</a>`);
  });

  it("escapes user-controlled instance names in every HTML body", async () => {
    const d = await scenario(store, clock);
    const plan = planRecoveryFinished(d, tenants, ctx());
    const htmls = plan.map((p) => p.message.html ?? "");
    expect(htmls.length).toBeGreaterThan(0);
    for (const html of htmls.filter((h) => h.includes("compute-4"))) {
      expect(html).not.toContain(XSS_NAME);
      expect(html).toContain("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;");
    }
    expect(htmls.filter((h) => h.includes("&lt;script&gt;")).length).toBeGreaterThanOrEqual(3); // 2 operators + project one's 2 tenants
    expect(htmls.every((h) => !h.includes(XSS_NAME))).toBe(true);
    // Plain text shows the name as the tenant typed it.
    expect(only(plan, "tenant")[0]!.message.text).toContain(`${XSS_NAME} (11111111-aaaa-4000-8000-000000000003): restarted on host compute-4 (it stays SHUTOFF, as it was)`);
  });

  it("tells each project only about its own instances", async () => {
    const d = await scenario(store, clock);
    const plan = planRecoveryFinished(d, tenants, ctx());
    const one = only(plan, "tenant").find((p) => p.projectId === P1)!.message;
    const two = only(plan, "tenant").find((p) => p.projectId === P2)!.message;
    expect(one.subject).toBe(`Host compute-1 failed at ${d.detectedAt}: 2 of 3 instance(s) of project tenant-one (${P1}) restarted elsewhere (ref ${d.id})`);
    expect(one.text).toContain(`The compute host compute-1 of the cloud failed at ${d.detectedAt}.`);
    expect(one.text).toContain("web-1 (11111111-aaaa-4000-8000-000000000001): restarted on host compute-3");
    expect(one.text).toContain("db-1 (11111111-aaaa-4000-8000-000000000004): could not be recovered: No valid host was found.");
    for (const other of ["batch-1", "cache-1", "22222222-"]) expect(one.text + (one.html ?? "")).not.toContain(other);
    expect(two.text).toContain("batch-1 (22222222-bbbb-4000-8000-000000000002): not recovered: it is not protected by high availability");
    expect(two.text).toContain("cache-1 (22222222-bbbb-4000-8000-000000000005): not recovered: already in ERROR before the failure");
    for (const other of ["web-1", "db-1", "script", "11111111-"]) expect(two.text + (two.html ?? "")).not.toContain(other);
    // No operator links or other projects' recipients in tenant mail.
    expect(one.text).not.toContain("grafana");
    expect(one.text).not.toContain("gina@");
  });

  it("names the host, the time and the recovery in a tenant's subject: two incidents never share one", async () => {
    const first = await scenario(store, clock, { host: "compute-1" });
    clock.t += 3_600_000;
    const second = await scenario(store, clock, { host: "compute-2" });
    const subjects = [first, second].map((d) => only(planRecoveryFinished(d, tenants, ctx()), "tenant").find((p) => p.projectId === P1)!.message.subject);
    expect(new Set(subjects).size).toBe(2);
    expect(subjects[1]).toContain("compute-2");
    expect(subjects[1]).toContain(second.id);
  });

  it("builds the same dedup keys when planned again (stable per incident, project and recipient)", async () => {
    const d = await scenario(store, clock);
    const a = planRecoveryFinished(d, tenants, ctx()).map((p) => p.dedupKey);
    clock.t += 3_600_000;
    const b = planRecoveryFinished(d, tenants, ctx()).map((p) => p.dedupKey);
    expect(b).toEqual(a);
    expect(a).toContain(`tenant|compute-1|${d.incidentKey}|${P1}|alice@tenant-one.example`);
    expect(a).toContain(`operator-summary|compute-1|${d.incidentKey}|webhook:chat`);
  });

  it("records a dry run's messages as would-send, or sends operators' with a [DRY RUN] prefix when asked; never tenants'", async () => {
    const d = await scenario(store, clock, { dryRun: true });
    const quiet = planRecoveryFinished(d, tenants, ctx());
    expect(quiet.every((p) => p.mode === "would-send")).toBe(true);
    expect(only(quiet, "operator-summary")[0]!.message.subject).toMatch(/^\[DRY RUN\] \[lifeboat\] compute-1: recovery completed \(dry run\)/);
    expect(only(quiet, "operator-summary")[0]!.message.text).toContain("web-1 (11111111-aaaa-4000-8000-000000000001, project " + P1 + "): would be evacuated (dry run)");

    const loud = planRecoveryFinished(d, tenants, ctx({ notify_in_dry_run: true }));
    expect(only(loud, "operator-summary").every((p) => p.mode === "send")).toBe(true);
    expect(only(loud, "tenant").every((p) => p.mode === "would-send")).toBe(true);
  });

  it("tells no tenant about an aborted recovery, and routes only to existing channels", async () => {
    const d = await scenario(store, clock);
    const aborted = { ...d, state: "aborted" as const, outcome: "aborted" as const };
    expect(only(planRecoveryFinished(aborted, tenants, ctx()), "tenant")).toHaveLength(0);
    const noEmail = planRecoveryFinished(d, tenants, ctx({}, ["webhook:chat"]));
    expect(noEmail.map((p) => p.channel)).toEqual(["webhook:chat"]);
  });

  it("applies template overrides", async () => {
    const d = await scenario(store, clock);
    const plan = planRecoveryFinished(d, tenants, ctx({ templates: { tenant: { subject: "Incident {{id}} for {{projectLabel}}", html: "" } } }));
    const t = only(plan, "tenant")[0]!.message;
    expect(t.subject).toBe(`Incident ${d.id} for tenant-one (${P1})`);
    expect(t.html).toBeUndefined();
  });
});

describe("planner: blocked, fence failed, storm", () => {
  it("says why a recovery is blocked and quotes the exact approve command", async () => {
    const d = await scenario(store, clock, { blocked: true });
    const plan = planBlocked(d, d.reason, ctx({ approve_command: "lifeboat --config /etc/lifeboat.yaml approve {{id}}" }));
    const m = plan.find((p) => p.channel === "email")!.message;
    expect(m.subject).toBe("[lifeboat] compute-1: recovery blocked, needs approval");
    expect(m.text).toContain("is blocked: storm guard: 3 hosts failed in 10 min (max 2)");
    expect(m.text).toContain("Blocking gates: storm-guard");
    expect(m.text).toContain(`    lifeboat --config /etc/lifeboat.yaml approve ${d.id}\n`);
    expect(m.text).toContain("storm-guard: block - 3 hosts failed in 10 min (max 2)");
    expect(m.text).not.toContain("Instances on the host"); // not listed yet while blocked

    const notApprovable = { ...d, block: { gates: ["pause"], approvable: false, at: "2026-03-01T10:05:00.000Z" } as BlockEpisode };
    const m2 = planBlocked(notApprovable, "automation paused by ops", ctx()).find((p) => p.channel === "email")!;
    expect(m2.message.subject).toBe("[lifeboat] compute-1: recovery blocked");
    expect(m2.message.text).toContain("an approval alone does not lift it");
    expect(m2.message.text).not.toContain("lifeboat approve");
    // A new blocked episode is a new message; the same episode is the same key.
    expect(m2.dedupKey).not.toBe(plan.find((p) => p.channel === "email")!.dedupKey);
    expect(planBlocked(d, d.reason, ctx()).map((p) => p.dedupKey)).toEqual(plan.map((p) => p.dedupKey));
  });

  it("when what blocks it changed: says what blocked it before, lists each gate's latest decision, and is a new message only for a new episode", async () => {
    const d = await scenario(store, clock, { blocked: true });
    const at = "2026-03-01T10:05:00.000Z";
    const first = { ...d, block: { gates: ["nova-service", "storm-guard"], approvable: false, at, episode: `${at}|not-approvable|clears-itself` } as BlockEpisode };
    const later = "2026-03-01T10:07:00.000Z";
    const changed = {
      ...d,
      decisions: [
        ...d.decisions,
        { recoveryId: d.id, gate: "nova-service", result: "pass" as const, reason: "Nova says down; heartbeat 95s old", at: later },
        { recoveryId: d.id, gate: "storm-guard", result: "block" as const, reason: "3 hosts failed in 10 min (max 2)", at: later },
      ],
      block: { gates: ["storm-guard"], approvable: true, at, episode: `${at}|approvable|clears-itself`, previous: ["nova-service", "storm-guard"] } as BlockEpisode,
    };
    const m1 = planBlocked(first, "nova-service: Nova says up; storm-guard: 3 hosts failed in 10 min (max 2)", ctx()).find((p) => p.channel === "email")!;
    const m2 = planBlocked(changed, "storm-guard: 3 hosts failed in 10 min (max 2)", ctx()).find((p) => p.channel === "email")!;
    expect(m1.message.text).not.toContain("What blocks it changed");
    expect(m2.message.subject).toBe("[lifeboat] compute-1: recovery blocked, needs approval");
    expect(m2.message.text).toContain("What blocks it changed: it was blocked by nova-service, storm-guard; this replaces the earlier notice.");
    expect(m2.message.html).toContain("What blocks it changed: it was blocked by nova-service, storm-guard");
    // The gate decisions are what blocks it now: each gate once, its latest word.
    expect(m2.message.text).toContain(`${later}  nova-service: pass - Nova says down; heartbeat 95s old`);
    expect(m2.message.text.match(/ nova-service: /g)).toHaveLength(1);
    expect(m2.dedupKey).not.toBe(m1.dedupKey);
    expect(m2.dedupKey).toBe(`blocked|compute-1|${d.incidentKey}|${at}|approvable|clears-itself|email|ops@cloud.example`);
  });

  it("says what lifts a block by an Alertmanager silence (its end), and does not ask for an approval", async () => {
    const d = await scenario(store, clock, { blocked: true });
    await store.recordDecisions([
      {
        recoveryId: d.id,
        gate: "silences",
        result: "block",
        reason: "compute-1 is silenced in Alertmanager (5a1e-77 by ops until 2026-03-01T12:00:00.000Z: BIOS update)",
        at: "2026-03-01T10:05:00.000Z",
        details: { silences: [{ id: "5a1e-77", endsAt: "2026-03-01T12:00:00.000Z", createdBy: "ops" }] },
      },
    ]);
    const silenced = { ...(await recoveryDetail(store, d.id))!, block: { gates: ["silences"], recheck: true, approvable: false, at: "2026-03-01T10:05:00.000Z" } as BlockEpisode };
    const m = planBlocked(silenced, "silences: compute-1 is silenced in Alertmanager", ctx()).find((p) => p.channel === "email")!.message;
    expect(m.subject).toBe("[lifeboat] compute-1: recovery blocked");
    expect(m.text).toContain(
      "What lifts it: the end of silence 5a1e-77 (ends 2026-03-01T12:00:00.000Z): when it expires, or when someone expires it in Alertmanager (amtool silence expire 5a1e-77), lifeboat goes ahead by itself if compute-1 is still down. An approval does not lift a silence.",
    );
    expect(m.text).not.toContain("lifeboat approve");
    expect(m.html).toContain("What lifts it: the end of silence 5a1e-77");
  });

  it("pages on a failed fence: nothing evacuated, state unknown, the device's words, the confirm-off command", async () => {
    const d = await scenario(store, clock, { fenceFails: true });
    const m = planFenceFailed(d, ctx()).find((p) => p.channel === "email")!.message;
    expect(m.subject).toBe("[lifeboat] PAGE compute-1: fencing failed, nothing evacuated, host state unknown");
    expect(m.text).toContain("Nothing was evacuated.");
    expect(m.text).toContain("Host power state: UNKNOWN: no device confirmed power off");
    expect(m.text).toContain("ipmi 10.0.0.7:623 (ipmi): FAILED, power unknown - Error: Unable to establish IPMI v2 / RMCP+ session");
    expect(m.text).toContain("    lifeboat recover compute-1 --confirm-off\n");
    expect(m.html).toContain("<pre>lifeboat recover compute-1 --confirm-off</pre>");
  });

  it("lists the held hosts of a storm", () => {
    const plan = planStorm({ hosts: ["compute-1", "compute-2", "compute-7"], reason: "3 hosts failed within 600 s (limit 2)", at: "2026-03-01T10:10:00.000Z" }, ctx());
    expect(plan.map((p) => p.channel)).toEqual(["email", "email", "webhook:chat"]);
    const m = plan[0]!.message;
    expect(m.subject).toBe("[lifeboat] storm guard tripped: 3 host(s) held");
    expect(m.text).toContain("The storm guard tripped at 2026-03-01T10:10:00.000Z: 3 hosts failed within 600 s (limit 2)");
    expect(m.text).toMatch(/ {2}- compute-1\n {2}- compute-2\n {2}- compute-7\n/);
    expect(plan[0]!.dedupKey).toBe("storm|2026-03-01T10:10:00.000Z|email|ops@cloud.example");
    const until = planStorm({ hosts: ["compute-1"], reason: "2 recoveries in 600s > max_recoveries 1", at: "2026-03-01T10:10:00.000Z", until: "2026-03-01T10:20:00.000Z" }, ctx());
    expect(until[0]!.message.text).toContain("until an operator approves it, or\nuntil 2026-03-01T10:20:00.000Z if no other host fails by then");
  });

  it("sends webhooks only the kinds they asked for", async () => {
    const d = await scenario(store, clock, { fenceFails: true });
    const c = ctx({ webhooks: [{ name: "chat", url: "https://chat.example/h", kinds: ["fence-failed", "storm"] }] });
    expect(planFenceFailed(d, c).map((p) => p.channel)).toContain("webhook:chat");
    expect(planRecoveryFinished(d, [], c).map((p) => p.channel)).not.toContain("webhook:chat");
  });

  it("formats durations", () => {
    expect([850, 12_000, 65_000, 3_720_000].map(duration)).toEqual(["850ms", "12s", "1m05s", "1h02m"]);
  });
});
