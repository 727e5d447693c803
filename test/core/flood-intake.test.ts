import { afterEach, describe, expect, it, vi } from "vitest";
import { ALERTS_PER_SLICE, parseWebhookPayload, payloadProblems, webhookPayloadSchema } from "../../src/intake/alertmanager-payload.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";

/**
 * A delivery of thousands of alerts: checked and journaled a slice at a time with the event
 * loop free in between, and the alerts of hosts lifeboat can fence routed before the others.
 */

let running: TestLifeboat[] = [];
afterEach(async () => {
  await Promise.all(running.map((t) => t.app.stop().catch(() => undefined)));
  running = [];
});

function delivery(hosts: string[]): Record<string, unknown> {
  const one = alertPayload({ host: hosts[0]! });
  one.alerts = hosts.map((host) => (alertPayload({ host }).alerts as unknown[])[0]);
  return one;
}

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `ghost-${i}`);

describe("a delivery of thousands of alerts", () => {
  it("is checked a slice of alerts at a time: other work runs in between, and the answer is the schema's", async () => {
    const body = delivery(names(3 * ALERTS_PER_SLICE));
    const order: string[] = [];
    setImmediate(() => order.push("other work"));
    const parsed = await parseWebhookPayload(body);
    order.push("checked");
    expect(order).toEqual(["other work", "checked"]);
    expect(parsed.success).toBe(true);
    expect(parsed.success && parsed.data).toEqual(webhookPayloadSchema.parse(body));

    const broken = structuredClone(body);
    const alerts = broken.alerts as Record<string, unknown>[];
    alerts[2 * ALERTS_PER_SLICE + 7]!.startsAt = "yesterday";
    delete alerts[ALERTS_PER_SLICE + 1]!.fingerprint;
    broken.version = "3";
    const mine = await parseWebhookPayload(broken);
    const theirs = webhookPayloadSchema.safeParse(broken);
    expect(mine.success || theirs.success).toBe(false);
    if (mine.success || theirs.success) return;
    expect(payloadProblems(mine.error, broken)).toEqual(payloadProblems(theirs.error, broken));
    expect(payloadProblems(mine.error, broken).map((p) => p.path)).toEqual(["version", `alerts.${ALERTS_PER_SLICE + 1}.fingerprint`, `alerts.${2 * ALERTS_PER_SLICE + 7}.startsAt`]);
  });

  it("routes the alerts of hosts lifeboat can fence first, each host's in order", async () => {
    const t = makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 3600 } }));
    running.push(t);
    await t.app.start({ listen: "127.0.0.1:0" });
    const marked = vi.spyOn(t.app.store, "markEvent");
    // Posted just after a tick of the engine's 2 s safety net: that pass would otherwise route
    // what part of the delivery is journaled so far, when the tick falls while it is journaled.
    const kick = vi.spyOn(t.app.coordinator, "kick");
    await waitFor(() => kick.mock.calls.length > 0, 5000, "a tick of the engine's safety net");
    const res = await postAlert(t.app.url, delivery([...names(600), "compute-2", ...names(300).map((n) => `${n}.late`), "compute-3"]));
    expect(res.status).toBe(202);
    const ids = (res.body as { events: number[] }).events;
    await t.app.coordinator.drain();
    await waitFor(() => marked.mock.calls.length >= ids.length, 5000, "every event marked");
    expect(marked.mock.calls.slice(0, 2).map((c) => c[0])).toEqual([ids[600], ids[901]]);
    expect(marked.mock.calls.slice(0, 2).map((c) => c[1])).toEqual(["started", "started"]);
    expect(marked.mock.calls.slice(2).map((c) => c[0])).toEqual(ids.filter((_, i) => i !== 600 && i !== 901));
  });
});
