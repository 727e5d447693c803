import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";
import { lifeboatConfig, WEBHOOK_TOKEN, ADMIN_TOKEN } from "../kit/config.js";
import { World } from "../kit/world.js";

const FIXTURE = JSON.parse(readFileSync("test/fixtures/alertmanager/webhook-firing.json", "utf8")) as Record<string, unknown>;
const FIXTURE_RESOLVED = JSON.parse(readFileSync("test/fixtures/alertmanager/webhook-resolved.json", "utf8")) as Record<string, unknown>;

function clone<T>(v: T): T {
  return structuredClone(v);
}

function withAlert(mutate: (alert: Record<string, unknown>) => void): Record<string, unknown> {
  const p = clone(FIXTURE);
  mutate((p.alerts as Record<string, unknown>[])[0]!);
  return p;
}

function without(key: string): Record<string, unknown> {
  const p = clone(FIXTURE);
  delete p[key];
  return p;
}

function deepNest(depth: number): unknown {
  let v: unknown = "x";
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe("webhook intake", () => {
  let t: TestLifeboat;
  beforeAll(async () => {
    // Long grace: events are journaled and mapped, but nothing acts during these tests.
    // Hosts with fencing devices and nova-compute services: alerts for them start recoveries.
    t = makeLifeboat(lifeboatConfig({ recovery: { grace_seconds: 3600 }, server: { body_limit_bytes: 256 * 1024 } }), World.standard(["compute-1", "compute-2", "compute-3", "compute-4"]));
    await t.app.start({ listen: "127.0.0.1:0" });
  });
  afterAll(async () => {
    await t.app.stop();
  });

  it("accepts the captured Alertmanager payload (202) and journals it before answering", async () => {
    const res = await postAlert(t.app.url, FIXTURE);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 1, duplicates: 0 });
    const ev = (await t.app.store.listEvents({ host: "compute-2" }))[0]!;
    expect(ev).toMatchObject({ alertname: "ComputeNodeDown", status: "firing", fingerprint: "ef778129324957a9", endsAt: null, receiver: "compute-ha-webhook" });
    await t.app.coordinator.drain();
    const r = await t.app.store.findOpenRecovery("compute-2");
    expect(r?.state).toBe("pending");
    expect(r?.detectedAt).toBe("2026-11-25T12:10:55.045Z");
    // And the resolved one aborts it (still in its grace period).
    expect((await postAlert(t.app.url, FIXTURE_RESOLVED)).status).toBe(202);
    await waitFor(async () => (await t.app.store.getRecovery(r!.id))?.state === "aborted", 5000, "aborted");
  });

  it("maps hosts through a regex on another label (instance=compute-1:9100 → compute-1)", async () => {
    const t2 = makeLifeboat(lifeboatConfig({ alerts: { host_label: "instance", host_pattern: "^([^:]+)(:\\d+)?$" }, recovery: { grace_seconds: 3600 } }), World.standard(["compute-7"]));
    await t2.app.start({ listen: "127.0.0.1:0" });
    try {
      const p = alertPayload({ host: "ignored", extraLabels: { instance: "compute-7:9100" } });
      expect((await postAlert(t2.app.url, p)).status).toBe(202);
      await t2.app.coordinator.drain();
      expect((await t2.app.store.findOpenRecovery("compute-7"))?.host).toBe("compute-7");
    } finally {
      await t2.app.stop();
    }
  });

  it("1,000 identical deliveries map to one event and one recovery", async () => {
    const p = alertPayload({ host: "compute-3", startsAt: "2026-11-25T13:00:00Z" });
    const codes: number[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const res = await Promise.all(Array.from({ length: 50 }, () => postAlert(t.app.url, p)));
      codes.push(...res.map((r) => r.status));
    }
    expect(codes.every((c) => c === 202)).toBe(true);
    await t.app.coordinator.drain();
    const events = await t.app.store.listEvents({ host: "compute-3" });
    expect(events).toHaveLength(1);
    expect(events[0]!.deliveries).toBe(1000);
    expect(await t.app.store.listRecoveries({ host: "compute-3" })).toHaveLength(1);
  });

  it("interleaved deliveries from two Alertmanagers of an HA pair map to one recovery", async () => {
    const a = alertPayload({ host: "compute-4", startsAt: "2026-11-25T13:05:00Z" });
    const b = clone(a);
    b.externalURL = "http://alertmanager-2:9093";
    b.groupKey = '{}/{severity="critical"}:{alertname="ComputeNodeDown", host="compute-4"}';
    const other = alertPayload({ host: "compute-4", alertname: "ComputeNodeDown", startsAt: "2026-11-25T13:05:00Z" });
    const sends = Array.from({ length: 200 }, (_, i) => postAlert(t.app.url, i % 2 ? a : i % 3 ? b : other));
    expect((await Promise.all(sends)).every((r) => r.status === 202)).toBe(true);
    await t.app.coordinator.drain();
    expect(await t.app.store.listRecoveries({ host: "compute-4" })).toHaveLength(1);
  });

  const big = "x".repeat(300 * 1024);
  const hostile: [string, { body?: string; payload?: unknown; headers?: Record<string, string> }, number, RegExp][] = [
    ["malformed JSON", { body: '{"version": "4",' }, 400, /malformed JSON/],
    ["text/plain content type", { body: JSON.stringify(FIXTURE), headers: { "content-type": "text/plain" } }, 415, /application\/json/],
    ["form content type", { body: "version=4", headers: { "content-type": "application/x-www-form-urlencoded" } }, 415, /application\/json/],
    ["no content type", { body: JSON.stringify(FIXTURE), headers: { "content-type": "" } }, 415, /content type/],
    ["unsupported charset", { body: JSON.stringify(FIXTURE), headers: { "content-type": "application/json; charset=ebcdic" } }, 415, /charset/],
    ["unsupported content encoding", { body: JSON.stringify(FIXTURE), headers: { "content-encoding": "compress" } }, 415, /encoding/],
    ["JSON array", { payload: [] }, 400, /must be a JSON object .*got an array/],
    ["JSON scalar", { body: '"hello"' }, 400, /must be a JSON object .*got a string/],
    ["JSON null", { body: "null" }, 400, /must be a JSON object .*got null$/],
    ["empty object", { payload: {} }, 400, /version: required/],
    ["wrong version", { payload: { ...clone(FIXTURE), version: "3" } }, 400, /version: expected "4"/],
    ["version as a number", { payload: { ...clone(FIXTURE), version: 4 } }, 400, /version/],
    ["missing version", { payload: without("version") }, 400, /version: required/],
    ["missing alerts", { payload: without("alerts") }, 400, /alerts: required/],
    ["no alerts", { payload: { ...clone(FIXTURE), alerts: [] } }, 400, /alerts: .*at least one alert/],
    ["alerts not a list", { payload: { ...clone(FIXTURE), alerts: {} } }, 400, /alerts: expected array/],
    ["missing group status", { payload: without("status") }, 400, /^.*status: required/],
    ["unknown group status", { payload: { ...clone(FIXTURE), status: "pending" } }, 400, /status/],
    ["missing groupKey", { payload: without("groupKey") }, 400, /groupKey: required/],
    ["missing receiver", { payload: without("receiver") }, 400, /receiver: required/],
    ["groupLabels not a map", { payload: { ...clone(FIXTURE), groupLabels: "alertname" } }, 400, /groupLabels/],
    ["commonLabels a list", { payload: { ...clone(FIXTURE), commonLabels: ["a"] } }, 400, /commonLabels/],
    ["externalURL a number", { payload: { ...clone(FIXTURE), externalURL: 9093 } }, 400, /externalURL/],
    ["negative truncatedAlerts", { payload: { ...clone(FIXTURE), truncatedAlerts: -1 } }, 400, /truncatedAlerts/],
    ["alert without status", { payload: withAlert((a) => delete a.status) }, 400, /alerts\.0\.status: required/],
    ["alert status unknown", { payload: withAlert((a) => (a.status = "pending")) }, 400, /alerts\.0\.status/],
    ["alert without labels", { payload: withAlert((a) => delete a.labels) }, 400, /alerts\.0\.labels: required/],
    ["labels a string", { payload: withAlert((a) => (a.labels = "host=compute-2")) }, 400, /alerts\.0\.labels/],
    ["label value a number", { payload: withAlert((a) => ((a.labels as Record<string, unknown>).host = 2)) }, 400, /alerts\.0\.labels\.host/],
    ["labels without alertname", { payload: withAlert((a) => delete (a.labels as Record<string, unknown>).alertname) }, 400, /alerts\.0\.labels: must contain alertname/],
    ["annotation value an object", { payload: withAlert((a) => ((a.annotations as Record<string, unknown>).summary = { x: 1 })) }, 400, /alerts\.0\.annotations\.summary/],
    ["__proto__ label", { body: JSON.stringify(FIXTURE).replace('"labels":{', '"labels":{"__proto__":{"polluted":"yes"},') }, 400, /alerts\.0\.labels/],
    ["missing startsAt", { payload: withAlert((a) => delete a.startsAt) }, 400, /alerts\.0\.startsAt: required/],
    ["startsAt not a date", { payload: withAlert((a) => (a.startsAt = "yesterday")) }, 400, /alerts\.0\.startsAt/],
    ["startsAt impossible date", { payload: withAlert((a) => (a.startsAt = "2026-13-45T99:00:00Z")) }, 400, /alerts\.0\.startsAt/],
    ["endsAt a number", { payload: withAlert((a) => (a.endsAt = 0)) }, 400, /alerts\.0\.endsAt/],
    ["missing fingerprint", { payload: withAlert((a) => delete a.fingerprint) }, 400, /alerts\.0\.fingerprint: required/],
    ["fingerprint not hex", { payload: withAlert((a) => (a.fingerprint = "../../etc")) }, 400, /alerts\.0\.fingerprint/],
    ["deep nesting in labels", { payload: withAlert((a) => (a.labels = deepNest(2000))) }, 400, /alerts\.0\.labels/],
    ["very deep nesting", { body: "[".repeat(100_000) + "]".repeat(100_000) }, 400, /.+/],
    ["body over the limit", { payload: withAlert((a) => ((a.annotations as Record<string, unknown>).description = big)) }, 413, /larger than the limit/],
  ];

  it(`rejects ${hostile.length} malformed or hostile payloads with a 4xx naming the problem, storing nothing`, async () => {
    expect(hostile.length).toBeGreaterThanOrEqual(30);
    const before = (await t.app.store.listEvents({ limit: 10_000 })).length;
    const recoveriesBefore = (await t.app.store.listRecoveries({})).length;
    for (const [name, input, code, message] of hostile) {
      const res = await postAlert(t.app.url, input.payload, { ...(input.body !== undefined ? { body: input.body } : {}), ...(input.headers ? { headers: input.headers } : {}) });
      expect(res.status, name).toBe(code);
      const error = (res.body as { error?: string }).error ?? "";
      expect(error, name).toMatch(message);
    }
    await t.app.coordinator.drain();
    expect((await t.app.store.listEvents({ limit: 10_000 })).length).toBe(before);
    expect((await t.app.store.listRecoveries({})).length).toBe(recoveriesBefore);
    const health = await fetch(`${t.app.url}/healthz`);
    expect(health.status).toBe(200);
    expect((await postAlert(t.app.url, alertPayload({ host: "compute-9", startsAt: "2026-11-25T14:00:00Z" }))).status).toBe(202);
  });

  it("answers 503 when the event cannot be stored, so Alertmanager retries", async () => {
    const t3 = makeLifeboat(lifeboatConfig());
    await t3.app.start({ listen: "127.0.0.1:0" });
    const url = t3.app.url;
    await t3.app.store.close();
    const res = await postAlert(url, FIXTURE);
    expect(res.status).toBe(503);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    await t3.app.stop().catch(() => undefined);
  });

  it("counts alerts and webhook answers in /metrics", async () => {
    const text = await (await fetch(`${t.app.url}/metrics`)).text();
    expect(text).toMatch(/lifeboat_alerts_received_total\{status="firing",trigger="true"\} \d+/);
    expect(text).toMatch(/lifeboat_webhook_requests_total\{code="202"\} \d+/);
    expect(text).toMatch(/lifeboat_webhook_requests_total\{code="400"\} \d+/);
    expect(text).toMatch(/lifeboat_recoveries_total\{outcome="aborted"\} [1-9]/);
  });
});

describe("webhook and API authentication", () => {
  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

  async function withApp(auth: unknown, fn: (url: string) => Promise<void>): Promise<void> {
    const t = makeLifeboat(lifeboatConfig({ server: { auth }, recovery: { grace_seconds: 3600 } }));
    await t.app.start({ listen: "127.0.0.1:0" });
    try {
      await fn(t.app.url);
    } finally {
      await t.app.stop();
    }
  }
  const p = alertPayload({ host: "compute-1" });

  it("bearer: missing and wrong credentials get 401, the right token 202", async () => {
    await withApp({ bearer_token: "s3cret-token-0123456789" }, async (url) => {
      const missing = await postAlert(url, p, { token: null });
      expect(missing.status).toBe(401);
      expect((missing.body as { error: string }).error).toMatch(/missing credentials/);
      expect((await postAlert(url, p, { token: "wrong" })).status).toBe(401);
      expect((await postAlert(url, p, { token: "s3cret-token-0123456789-2" })).status).toBe(401);
      expect((await postAlert(url, p, { token: null, headers: { authorization: basic("x", "s3cret-token-0123456789") } })).status).toBe(401);
      expect((await postAlert(url, p, { token: "s3cret-token-0123456789" })).status).toBe(202);
    });
  });

  it("basic: missing, wrong user, wrong password get 401; right credentials 202", async () => {
    await withApp({ basic: { username: "alertmanager", password: "pw-123-0123456789abc" } }, async (url) => {
      expect((await postAlert(url, p, { token: null })).status).toBe(401);
      expect((await postAlert(url, p, { token: null, headers: { authorization: basic("root", "pw-123-0123456789abc") } })).status).toBe(401);
      expect((await postAlert(url, p, { token: null, headers: { authorization: basic("alertmanager", "pw-123-0123456789abcd") } })).status).toBe(401);
      expect((await postAlert(url, p, { token: null, headers: { authorization: "Basic !!!not-base64" } })).status).toBe(401);
      expect((await postAlert(url, p, { token: "pw-123-0123456789abc" })).status).toBe(401);
      expect((await postAlert(url, p, { token: null, headers: { authorization: basic("alertmanager", "pw-123-0123456789abc") } })).status).toBe(202);
    });
  });

  it("bearer and basic together: either is accepted", async () => {
    await withApp({ bearer_token: "tok-0123456789abcdef", basic: { username: "am", password: "pw-0123456789abcdef" } }, async (url) => {
      expect((await postAlert(url, p, { token: "tok-0123456789abcdef" })).status).toBe(202);
      expect((await postAlert(url, p, { token: null, headers: { authorization: basic("am", "pw-0123456789abcdef") } })).status).toBe(202);
      expect((await postAlert(url, p, { token: "pw-0123456789abcdef" })).status).toBe(401);
    });
  });

  it('"auth: none" must be explicit, and then needs no credentials', async () => {
    await withApp("none", async (url) => {
      expect((await postAlert(url, p, { token: null })).status).toBe(202);
    });
  });

  it("the control API takes only the admin token, never the webhook's", async () => {
    await withApp({ bearer_token: WEBHOOK_TOKEN }, async (url) => {
      expect((await api(url, "GET", "/api/v1/recoveries", undefined, WEBHOOK_TOKEN)).status).toBe(401);
      expect((await api(url, "POST", "/api/v1/pause", {}, "nope")).status).toBe(401);
      expect((await api(url, "GET", "/api/v1/recoveries", undefined, ADMIN_TOKEN)).status).toBe(200);
      expect((await postAlert(url, p, { token: ADMIN_TOKEN })).status).toBe(401);
      // Health and metrics stay open for probes and Prometheus.
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/metrics`)).status).toBe(200);
    });
  });
});
