import { afterEach, describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { startStack, type Stack } from "../kit/lifeboat.js";
import { novaSeesDown } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function finished(s: Stack, host: string, timeoutMs = 30_000): Promise<RecoveryDetail> {
  const r = await waitFor(async () => (await s.app.store.listRecoveries({ host, limit: 1 }))[0], timeoutMs, "recovery");
  await waitFor(async () => ["completed", "partial", "failed", "aborted"].includes((await s.app.store.getRecovery(r.id))!.state), timeoutMs, `${host} finished`);
  return (await recoveryDetail(s.app.store, r.id))!;
}

describe("full recovery with the real drivers against the simulated site", () => {
  it("fences through Redfish, isolates in Nova, evacuates every instance, mails operators and tenants", async () => {
    stack = await startStack({ pace: "fast" });
    const s = stack;
    const before = s.sandbox.cloud.state;
    s.sandbox.failHost("compute-1");
    await novaSeesDown(s.sandbox.cloud, "compute-1"); // Nova's service_down_time (1 s on the fast site)
    expect((await postAlert(s.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const d = await finished(s, "compute-1", 60_000);
    expect(d.state, d.reason).toBe("completed");
    expect(d.fenceState).toBe("off");
    expect(s.sandbox.redfish.system("compute-1").powerState).toBe("Off");
    expect(s.sandbox.redfish.system("compute-1").resets).toEqual(["ForceOff"]);
    // Nova: forced down first, then disabled with lifeboat's reason.
    const puts = s.sandbox.cloud.requests.filter((q) => q.method === "PUT" && q.path.startsWith("/v2.1/os-services/"));
    expect(puts.map((q) => Object.keys(q.body as object).sort().join(","))).toEqual(["forced_down", "disabled_reason,status"]);
    s.sandbox.cloud.settle();
    const h = before.hosts.get("compute-1")!;
    expect(h).toMatchObject({ forcedDown: true, disabled: true });
    expect(h.disabledReason).toMatch(new RegExp(`^lifeboat: recovery ${d.id} fenced `));
    // Every evacuable instance left compute-1; one evacuate per instance.
    const evacuated = d.instances.filter((i) => i.state === "evacuated");
    expect(evacuated.length).toBeGreaterThan(0);
    for (const i of evacuated) expect(i.targetHost).not.toBe("compute-1");
    const posts = s.sandbox.cloud.requests.filter((q) => q.method === "POST" && /\/action$/.test(q.path) && q.body && typeof q.body === "object" && "evacuate" in q.body);
    expect(posts.length).toBe(evacuated.length);
    // SHUTOFF stays SHUTOFF.
    for (const i of evacuated.filter((x) => x.originalStatus === "SHUTOFF")) {
      expect(before.servers.get(i.instanceId)?.vmState).toBe("stopped");
    }
    // Every log line written while the recovery ran (drivers' lines included) names it.
    const during = s.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.component === "fencing" || l.component === "evacuation" || l.component === "notify");
    expect(during.length).toBeGreaterThan(3);
    expect(during.filter((l) => l.recovery !== d.id || l.host !== "compute-1")).toEqual([]);
    // Emails (delivered in the background, after the recovery ended): one operator summary,
    // and one per affected project recipient.
    await waitFor(() => s.sandbox.smtp.messages.some((m) => m.to.includes("ops@cloud.example")) && s.sandbox.smtp.messages.length >= 2, 20_000, "mails");
    const ops = s.sandbox.smtp.messages.filter((m) => m.to.includes("ops@cloud.example"));
    expect(ops).toHaveLength(1);
    expect(ops[0]!.subject).toMatch(/compute-1/);
    const tenantMails = s.sandbox.smtp.messages.filter((m) => !m.to.includes("ops@cloud.example"));
    expect(tenantMails.length).toBeGreaterThan(0);
    const projects = new Set(d.instances.map((i) => i.projectId));
    expect(new Set(d.notifications.filter((n) => n.kind === "tenant").map((n) => n.projectId)).size).toBeLessThanOrEqual(projects.size);
  }, 90_000);
});
