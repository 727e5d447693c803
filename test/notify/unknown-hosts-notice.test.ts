import { describe, expect, it } from "vitest";
import { notificationsSchema, type NotificationsConfigInput } from "../../src/notify/config.js";
import { planUnknownHosts, type PlanContext, type UnknownHostsInfo } from "../../src/notify/planner.js";

function ctx(over: NotificationsConfigInput = {}, channels = ["email", "webhook:chat"]): PlanContext {
  const config = notificationsSchema.parse({
    from: "lifeboat <lifeboat@cloud.example>",
    operators: ["ops@cloud.example", "Oncall@Cloud.example"],
    smtp: { host: "127.0.0.1" },
    tenants: { enabled: true },
    webhooks: [{ name: "chat", url: "https://chat.example/hooks/x" }],
    ...over,
  });
  return { config, channels: new Set(channels) };
}

const info: UnknownHostsInfo = {
  hosts: [
    { host: "COMPUTE-2", likely: "compute-2" },
    { host: "node-0001.bad-relabel", likely: null },
    { host: "<b>x</b>", likely: null },
  ],
  hostCount: 4003,
  alertCount: 4010,
  since: "2026-03-01T10:00:00.000Z",
  at: "2026-03-01T10:00:05.000Z",
};

describe("planner: alerts for hosts lifeboat cannot act on", () => {
  it("one notice per operator and webhook, listing the names, the likely hosts and how many more", () => {
    const plan = planUnknownHosts(info, ctx());
    expect(plan.map((p) => [p.channel, p.message.recipient, p.dedupKey, p.mode])).toEqual([
      ["email", "ops@cloud.example", "unknown-hosts|2026-03-01T10:00:05.000Z|email|ops@cloud.example", "send"],
      ["email", "oncall@cloud.example", "unknown-hosts|2026-03-01T10:00:05.000Z|email|oncall@cloud.example", "send"],
      ["webhook:chat", "chat", "unknown-hosts|2026-03-01T10:00:05.000Z|webhook:chat", "send"],
    ]);
    const m = plan[0]!.message;
    expect(m.kind).toBe("unknown-hosts");
    expect(m.subject).toBe("[lifeboat] alerts for 4003 host(s) lifeboat cannot act on were ignored");
    expect(m.text).toContain("Since 2026-03-01T10:00:00.000Z, 4010 alert(s) named 4003 host(s) that lifeboat cannot act on");
    expect(m.text).toContain("  - COMPUTE-2  (probably compute-2)\n  - node-0001.bad-relabel\n");
    expect(m.text).toContain("  ... and 4000 more");
    expect(m.text).toContain("Fix alerts.host_label\nor alerts.host_pattern");
    expect(m.html).toContain("<li>&lt;b&gt;x&lt;&#x2F;b&gt;</li>");
    expect(m.html).not.toContain("<b>x</b>");
  });

  it("says nothing of the host label when no name looks like a known host, and nothing of more when all are listed", () => {
    const m = planUnknownHosts({ ...info, hosts: [{ host: "ghost", likely: null }], hostCount: 1, alertCount: 1 }, ctx())[0]!.message;
    expect(m.text).not.toContain("alerts.host_label");
    expect(m.text).not.toContain("more");
  });

  it("goes to the webhooks that ask for it, and is sent even when recoveries are dry runs", () => {
    const c = ctx({ notify_in_dry_run: false, webhooks: [{ name: "chat", url: "https://chat.example/h", kinds: ["storm"] }] });
    const plan = planUnknownHosts(info, c);
    expect(plan.map((p) => p.channel)).toEqual(["email", "email"]);
    expect(notificationsSchema.safeParse({ webhooks: [{ name: "chat", url: "https://chat.example/h", kinds: ["unknown-hosts"] }] }).success).toBe(true);
  });
});
