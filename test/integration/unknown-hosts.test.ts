import { afterEach, describe, expect, it } from "vitest";
import type { SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { type Stack, startStack } from "../kit/lifeboat.js";
import { finished, metricValue, novaSeesDown } from "../kit/site.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const serviceReads = (requests: readonly SimRequest[], since: number): SimRequest[] =>
  requests.filter((q) => q.seq > since && q.service === "compute" && q.method === "GET" && q.path === "/v2.1/os-services");

describe("one delivery naming thousands of hosts lifeboat cannot act on", () => {
  it("starts no recovery for them and mails operators once, asks Nova a bounded number of times, and the real failure in it recovers", async () => {
    // Big enough for the 4,000 alerts of one delivery (the default limit is 1 MiB).
    stack = await startStack({ pace: "fast", config: { server: { body_limit_bytes: 4 * 1024 * 1024 } } });
    const s = stack;
    const cloud = s.sandbox.cloud;
    s.sandbox.failHost("compute-1");
    await novaSeesDown(cloud, "compute-1");

    const unknown = Array.from({ length: 4000 }, (_, i) => `node-${String(i).padStart(4, "0")}.bad-relabel`);
    const variants = ["COMPUTE-2", "compute-2.", "compute-2.example.com"];
    const hosts = [...unknown.slice(0, 2000), "compute-1", ...variants, ...unknown.slice(2000)];
    const body = alertPayload({ host: "compute-1" });
    body.alerts = hosts.map((host) => (alertPayload({ host }).alerts as unknown[])[0]);

    const since = cloud.requests.at(-1)?.seq ?? 0;
    const sent = Date.now();
    const res = await postAlert(s.app.url, body);
    expect(res.status).toBe(202);
    await s.app.coordinator.drain();
    const routedMs = Date.now() - sent;

    // Nova: no question about any of those names on its own; listings shared, at most one per
    // 5 s of routing (plus the one the real recovery's gates may share).
    const reads = serviceReads(cloud.requests, since);
    const perHost = reads.filter((q) => q.query.host !== undefined).map((q) => q.query.host);
    expect(new Set(perHost)).toEqual(new Set(perHost.length ? ["compute-1"] : []));
    const listings = reads.filter((q) => q.query.host === undefined && Date.parse(q.at) <= sent + routedMs);
    expect(listings.length).toBeLessThanOrEqual(2 + Math.ceil(routedMs / 5000));

    const d = await finished(s, "compute-1", 60_000);
    expect(d.state, d.reason).toBe("completed");
    expect((await s.app.store.listRecoveries({ limit: 10_000 })).map((r) => r.host)).toEqual(["compute-1"]);

    const text = await (await fetch(`${s.app.url}/metrics`)).text();
    expect(metricValue(text, "lifeboat_alerts_ignored_total", { reason: "unknown_host" })).toBe(4000);
    expect(metricValue(text, "lifeboat_alerts_ignored_total", { reason: "host_name_mismatch" })).toBe(3);

    // Operators: the recovery's summary and one notice for the 4,003 names, nothing per host.
    await waitFor(() => s.sandbox.smtp.messages.some((m) => m.subject.includes("cannot act on")), 10_000, "the notice");
    await waitFor(() => s.sandbox.smtp.messages.some((m) => m.to.includes("ops@cloud.example") && m.subject.includes("compute-1")), 10_000, "the summary");
    await new Promise((r) => setTimeout(r, 2500)); // a periodic pass: nothing more is sent
    const ops = s.sandbox.smtp.messages.filter((m) => m.to.includes("ops@cloud.example"));
    const notices = ops.filter((m) => m.subject.includes("cannot act on"));
    expect(notices).toHaveLength(1);
    expect(notices[0]!.subject).toBe("[lifeboat] alerts for 4003 host(s) lifeboat cannot act on were ignored");
    expect(notices[0]!.text).toContain("  - COMPUTE-2  (probably compute-2)");
    expect(notices[0]!.text).toContain("alerts.host_label");
    expect(notices[0]!.text).toMatch(/\.\.\. and 3953 more/);
    expect(ops.length).toBe(2);
  }, 120_000);
});
