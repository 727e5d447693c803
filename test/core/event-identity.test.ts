import { afterEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { labelSetHash, type HostEvent, type RecoveryState } from "../../src/domain/model.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { tempDir, lifeboatConfig } from "../kit/config.js";
import { World } from "../kit/world.js";

/**
 * An event's identity is its content (label set, source, status, startsAt), not the
 * fingerprint its sender claims; an event routing ignored is routed again when it comes
 * again; plain repeats of routed events change nothing.
 */

let running: TestLifeboat[] = [];
afterEach(async () => {
  await Promise.all(running.map((t) => t.app.stop().catch(() => undefined)));
  running = [];
});

async function start(t: TestLifeboat): Promise<TestLifeboat> {
  running.push(t);
  await t.app.start({ listen: "127.0.0.1:0" });
  return t;
}

type Alert = { labels: Record<string, string>; fingerprint: string; startsAt: string };
const alertOf = (payload: Record<string, unknown>): Alert => (payload.alerts as Alert[])[0]!;

async function stateOf(t: TestLifeboat, host: string): Promise<RecoveryState | undefined> {
  return (await t.app.store.listRecoveries({ host, limit: 1 }))[0]?.state;
}

async function events(t: TestLifeboat, host?: string): Promise<HostEvent[]> {
  return t.app.store.listEvents({ ...(host ? { host } : {}), limit: 50 });
}

describe("event identity", () => {
  it("the same labels in any order are one alert; other labels are another, whatever the fingerprint", () => {
    expect(labelSetHash({ a: "1", b: "2" })).toBe(labelSetHash({ b: "2", a: "1" }));
    expect(labelSetHash({ a: "1", b: "2" })).not.toBe(labelSetHash({ a: "1", b: "2", host: "" }));
    // No ambiguity from how pairs are joined.
    expect(labelSetHash({ a: "b|c" })).not.toBe(labelSetHash({ "a|b": "c" }));
    expect(labelSetHash({ a: "b", c: "" })).not.toBe(labelSetHash({ a: "b\u0000c" }));
  });

  it("a delivery that reuses a real alert's fingerprint and startsAt with other labels does not swallow the real alert", async () => {
    const t = await start(makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 3600 } })));
    const real = alertPayload({ host: "compute-1" });
    const forged = structuredClone(real);
    alertOf(forged).labels.host = ""; // no host: ignored
    expect((await postAlert(t.app.url, forged)).status).toBe(202);
    await t.app.coordinator.drain();
    expect((await events(t)).map((e) => [e.disposition, e.note])).toEqual([["ignored", 'alert has no "host" label']]);

    for (let i = 0; i < 3; i++) {
      const res = await postAlert(t.app.url, real);
      expect(res.body).toMatchObject({ accepted: 1, duplicates: i === 0 ? 0 : 1 });
    }
    await waitFor(async () => (await stateOf(t, "compute-1")) === "pending", 5000, "a recovery of compute-1");
    // Routing journals the recovery, then marks the event that started it: wait for the mark too.
    await waitFor(async () => (await events(t, "compute-1"))[0]?.disposition !== "unprocessed", 5000, "the event routed");
    const [e] = await events(t, "compute-1");
    expect(e).toMatchObject({ disposition: "started", deliveries: 3, fingerprint: alertOf(real).fingerprint });
  });

  it("a resolved delivery with a tracked alert's fingerprint and startsAt but other labels does not abort it; the real one does", async () => {
    const t = await start(makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 3600 } })));
    await postAlert(t.app.url, alertPayload({ host: "compute-2" }));
    await waitFor(async () => (await stateOf(t, "compute-2")) === "pending", 5000, "pending");

    const forged = alertPayload({ host: "compute-2", status: "resolved", extraLabels: { job: "something-else" } });
    alertOf(forged).fingerprint = alertOf(alertPayload({ host: "compute-2" })).fingerprint;
    await postAlert(t.app.url, forged);
    await t.app.coordinator.drain();
    expect(await stateOf(t, "compute-2")).toBe("pending");
    expect((await events(t, "compute-2"))[0]).toMatchObject({ status: "resolved", disposition: "ignored", note: "resolved alert is not one this recovery tracks" });

    await postAlert(t.app.url, alertPayload({ host: "compute-2", status: "resolved" }));
    await waitFor(async () => (await stateOf(t, "compute-2")) === "aborted", 5000, "aborted");
  });

  it("an alert ignored under a wrong alerts.host_label is routed again, once the label is fixed, on Alertmanager's next re-send", async () => {
    const dir = tempDir();
    const world = World.standard();
    const alert = alertPayload({ host: "compute-3" });

    const wrong = await start(makeLifeboat(lifeboatConfig({ alerts: { host_label: "node" }, recovery: { grace_seconds: 3600 } }, { dir }), world));
    await postAlert(wrong.app.url, alert);
    await wrong.app.coordinator.drain();
    const [ignored] = await events(wrong);
    expect(ignored).toMatchObject({ host: null, disposition: "ignored", note: 'alert has no "node" label' });
    await wrong.app.stop();
    running = [];

    const fixed = await start(makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 3600 } }, { dir }), world));
    const res = await postAlert(fixed.app.url, alert);
    // Routed again, not a repeat.
    expect(res.body).toMatchObject({ accepted: 1, duplicates: 0, events: [ignored!.id] });
    await waitFor(async () => (await stateOf(fixed, "compute-3")) === "pending", 5000, "a recovery of compute-3");
    await waitFor(async () => (await events(fixed, "compute-3"))[0]?.disposition === "started", 5000, "the event routed");
    expect(await events(fixed)).toHaveLength(1);
    expect((await events(fixed))[0]).toMatchObject({ id: ignored!.id, host: "compute-3", note: "recovery started", deliveries: 2 });

    // Now routed: a plain repeat is counted and changes nothing (no routing pass is asked for).
    const again = await postAlert(fixed.app.url, alert);
    expect(again.body).toMatchObject({ accepted: 1, duplicates: 1 });
    expect((await events(fixed))[0]).toMatchObject({ disposition: "started", deliveries: 3 });
    expect(await fixed.app.store.listRecoveries({})).toHaveLength(1);
  });

  it("keeps a journal written with fingerprint keys working: the alert's next delivery joins its open recovery, its resolution aborts it", async () => {
    const dir = tempDir();
    const config = lifeboatConfig({ recovery: { grace_seconds: 3600 } }, { dir });
    const firing = alertPayload({ host: "compute-1" });
    const a = alertOf(firing);

    // What an earlier lifeboat left: the event under its old key, and the recovery it opened.
    const old = new SqliteStore(join(dir, "lifeboat.db"));
    await old.init();
    const [appended] = await old.appendEvents([
      {
        key: `alertmanager|${a.fingerprint}|firing|${a.startsAt}`,
        receivedAt: "2026-11-25T12:11:00.000Z",
        source: "alertmanager",
        host: "compute-1",
        alertname: "ComputeNodeDown",
        status: "firing",
        fingerprint: a.fingerprint,
        startsAt: a.startsAt,
        endsAt: null,
        labels: a.labels,
        annotations: {},
        generatorURL: "",
        groupKey: "",
        receiver: "lifeboat",
      },
    ]);
    const r = await old.createRecovery({
      host: "compute-1",
      incidentKey: `compute-1@${a.startsAt}`,
      kind: "alert", trigger: "alert",
      dryRun: false,
      confirmedOff: false,
      detectedAt: a.startsAt,
      graceUntil: "2099-01-01T00:00:00.000Z",
      reason: "ComputeNodeDown firing",
      alerts: { [a.fingerprint]: { alertname: "ComputeNodeDown", status: "firing", startsAt: a.startsAt, labels: a.labels } },
    });
    await old.markEvent(appended!.event.id, "started", r.id, "recovery started");
    await old.close();

    const t = await start(makeLifeboat(config));
    await postAlert(t.app.url, firing);
    await t.app.coordinator.drain();
    const all = await events(t, "compute-1");
    expect(all).toHaveLength(2);
    expect(all[0]).toMatchObject({ disposition: "attached", recoveryId: r.id });
    expect((await t.app.store.listRecoveries({})).map((x) => x.id)).toEqual([r.id]);

    await postAlert(t.app.url, alertPayload({ host: "compute-1", status: "resolved" }));
    await waitFor(async () => (await t.app.store.getRecovery(r.id))?.state === "aborted", 5000, "aborted");
  });
});
