import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite.js";
import { ConsoleClient, secretsOf } from "./client.js";
import { ADMIN_TOKEN, WEBHOOK_TOKEN, removeDir, tempDir, lifeboatConfig } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { makeLifeboat, type TestLifeboat } from "../kit/lifeboat.js";

let running: TestLifeboat[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.map((t) => t.app.stop().catch(() => undefined)));
  running = [];
  dirs.splice(0).forEach(removeDir);
});

async function start(overrides: Record<string, unknown> = {}, dir?: string): Promise<TestLifeboat> {
  const t = makeLifeboat(lifeboatConfig(overrides, dir === undefined ? {} : { dir }));
  running.push(t);
  await t.app.start({ listen: "127.0.0.1:0" });
  return t;
}

async function loggedIn(t: TestLifeboat, name?: string): Promise<ConsoleClient> {
  const c = new ConsoleClient(t.app.url);
  const r = await c.login(ADMIN_TOKEN, name);
  expect(r.status).toBe(303);
  return c;
}

describe("console: sessions", () => {
  it("shows nothing and does nothing without a session", async () => {
    const t = await start();
    const c = new ConsoleClient(t.app.url);
    const home = await c.get("/console");
    expect(home.status).toBe(303);
    expect(home.location).toBe("/console/login?next=%2Fconsole");
    expect((await c.get("/console/recoveries")).status).toBe(303);
    expect((await c.get("/console/hosts/compute-1")).status).toBe(303);
    expect((await c.get("/console/events?view=overview")).status).toBe(401);
    const pause = await c.post("/console/actions/pause", { reason: "x" });
    expect(pause.status).toBe(401);
    expect((await t.app.commands.pauseState()).paused).toBe(false);
    const login = await c.get("/console/login");
    expect(login.status).toBe(200);
    expect(login.text).toContain('name="token"');
  });

  it("the webhook token opens nothing; the admin token opens a session whose cookie is HttpOnly, SameSite=Strict, scoped to /console and expiring", async () => {
    const t = await start({ console: { session_ttl_seconds: 3600 } });
    const c = new ConsoleClient(t.app.url);
    const hook = await c.login(WEBHOOK_TOKEN);
    expect(hook.status).toBe(401);
    expect(hook.text).toContain("That is not the admin token.");
    expect(hook.headers.get("set-cookie")).toBeNull();
    expect((await c.get("/console")).status).toBe(303);

    const ok = await c.login(ADMIN_TOKEN, "alice");
    expect(ok.status).toBe(303);
    expect(ok.location).toBe("/console");
    const set = ok.headers.get("set-cookie")!;
    expect(set).toMatch(/^lifeboat_session=[A-Za-z0-9_-]{43}; /);
    expect(set).toContain("HttpOnly");
    expect(set).toContain("SameSite=Strict");
    expect(set).toContain("Path=/console");
    expect(set).toContain("Max-Age=3600");
    expect(set).not.toContain("Secure");
    const home = await c.get("/console");
    expect(home.status).toBe(200);
    expect(home.text).toContain("alice@console");
    expect(home.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(home.headers.get("x-frame-options")).toBe("DENY");

    // Behind a TLS proxy the cookie is Secure.
    const viaTls = new ConsoleClient(t.app.url);
    const tls = await viaTls.post("/console/login", { token: ADMIN_TOKEN }, { "x-forwarded-proto": "https" });
    expect(tls.headers.get("set-cookie")).toContain("; Secure");

    // Log out: the cookie is worth nothing afterwards.
    const cookie = c.cookie!;
    const csrf = await c.csrf();
    expect((await c.post("/console/logout", { _csrf: csrf })).status).toBe(303);
    const replay = new ConsoleClient(t.app.url);
    replay.cookie = cookie;
    expect((await replay.get("/console")).status).toBe(303);
  });

  it("the session cookie opens nothing in the control API, whose bearer token still works", async () => {
    const t = await start();
    const c = await loggedIn(t);
    const res = await fetch(`${t.app.url}/api/v1/status`, { headers: { cookie: c.cookie! } });
    expect(res.status).toBe(401);
    expect((await api(t.app.url, "GET", "/api/v1/status")).status).toBe(200);
  });

  it("throttles failed logins: after five, even the right token waits", async () => {
    const t = await start();
    const c = new ConsoleClient(t.app.url);
    const answers: number[] = [];
    for (let i = 0; i < 8; i++) answers.push((await c.login(`wrong-${i}`)).status);
    expect(answers.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(answers).toContain(429);
    const right = await c.login(ADMIN_TOKEN);
    expect(right.status).toBe(429);
    expect(Number(right.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(right.headers.get("set-cookie")).toBeNull();
  });
});

describe("console: actions", () => {
  it("refuses an action without the session's CSRF token or from another site, and records the operator's name when it acts", async () => {
    const t = await start();
    const c = await loggedIn(t, "alice");
    const csrf = await c.csrf();
    expect((await c.post("/console/actions/pause", { reason: "no token" })).status).toBe(403);
    expect((await c.post("/console/actions/pause", { reason: "wrong token", _csrf: "x".repeat(43) })).status).toBe(403);
    expect((await c.post("/console/actions/pause", { reason: "cross-site", _csrf: csrf }, { "sec-fetch-site": "cross-site" })).status).toBe(403);
    expect((await c.post("/console/actions/pause", { reason: "other origin", _csrf: csrf }, { origin: "http://evil.example" })).status).toBe(403);
    expect((await t.app.commands.pauseState()).paused).toBe(false);
    // Another session's token is not this session's.
    const other = await loggedIn(t);
    expect((await other.post("/console/actions/pause", { reason: "stolen token", _csrf: csrf })).status).toBe(403);

    const ok = await c.post("/console/actions/pause", { reason: "network maintenance", _csrf: csrf, back: "/console" });
    expect(ok.status).toBe(303);
    expect(ok.location).toBe("/console");
    expect(await t.app.commands.pauseState()).toMatchObject({ paused: true, by: "alice@console", reason: "network maintenance" });
    const after = await c.get("/console");
    expect(after.text).toContain("automation paused");
    expect(after.text).toMatch(/paused<\/span> by alice@console/);
  });

  it("a confirmation page names the consequence before anything is done; the API's refusals come through with their status", async () => {
    const t = await start({ gates: { require_approval: true } });
    const c = await loggedIn(t);
    t.world.kill("compute-1");
    expect((await postAlert(t.app.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const r = await waitFor(async () => {
      const x = (await t.app.store.listRecoveries({ host: "compute-1", limit: 1 }))[0];
      return x?.state === "blocked" ? x : undefined;
    }, 10_000, "the recovery to block on approval");

    const confirm = await c.get(`/console/confirm/approve?id=${r.id}`);
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain("powers compute-1 off");
    expect(confirm.text).toContain("does not override evidence");
    expect((await t.app.store.getRecovery(r.id))!.approved).toBe(false);

    const csrf = /name="_csrf" value="([^"]+)"/.exec(confirm.text)![1]!;
    const approve = await c.post("/console/actions/approve", { _csrf: csrf, id: r.id, back: `/console/recoveries/${r.id}` });
    expect(approve.status).toBe(303);
    await waitFor(async () => (await t.app.store.getRecovery(r.id))?.state === "completed", 15_000, "the approved recovery to complete");
    expect((await t.app.store.transitions(r.id)).some((x) => /approved by console/.test(x.reason))).toBe(true);

    // Cancel after fencing: the API's 409, shown as such.
    const cancel = await c.post("/console/actions/cancel", { _csrf: csrf, id: r.id, back: "/console" });
    expect(cancel.status).toBe(303);
    const page = await c.get("/console");
    expect(page.text).toContain("Refused (409)");
    expect(page.text).toContain("cannot be cancelled");
    // An unknown recovery: the API's 404.
    await c.post("/console/actions/approve", { _csrf: csrf, id: "r-nope", back: "/console" });
    expect((await c.get("/console")).text).toContain("Refused (404): no recovery r-nope");
  });
});

describe("console: pages", () => {
  it("paginates 120 recoveries 50 to a page, filters by host and state, and refuses a bad query with the field named", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = new SqliteStore(join(dir, "lifeboat.db"));
    await store.init();
    for (let i = 0; i < 120; i++) {
      const host = `h-${String(i).padStart(3, "0")}`;
      const at = new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString();
      const r = await store.createRecovery({ host, incidentKey: `${host}@${at}`, kind: "alert", trigger: "alert", dryRun: false, confirmedOff: false, detectedAt: at, graceUntil: at, reason: `alert for ${host}` });
      await store.transition(r.id, "pending", "aborted", "alert resolved in the grace period");
    }
    await store.close();
    const t = await start({}, dir);
    const c = await loggedIn(t);
    const rows = (html: string): string[] => [...html.matchAll(/<a href="\/console\/hosts\/(h-\d{3})">/g)].map((m) => m[1]!);

    const p1 = await c.get("/console/recoveries");
    expect(rows(p1.text)).toHaveLength(50);
    expect(rows(p1.text)[0]).toBe("h-119");
    expect(p1.text).toContain('href="/console/recoveries?page=2"');
    const p3 = await c.get("/console/recoveries?page=3");
    expect(rows(p3.text)).toHaveLength(20);
    expect(rows(p3.text).at(-1)).toBe("h-000");
    expect(p3.text).not.toContain("Older");
    expect(rows((await c.get("/console/recoveries?host=h-007")).text)).toEqual(["h-007"]);
    expect(rows((await c.get("/console/recoveries?state=open")).text)).toEqual([]);
    expect(rows((await c.get("/console/recoveries?state=aborted&page=2")).text)).toHaveLength(50);
    const bad = await c.get("/console/recoveries?page=0");
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("page: expected a whole number");
    expect((await c.get("/console/recoveries?state=bogus")).text).toContain("state: expected open, finished or one of");
    // The overview lists the last finished ones, not all.
    expect(rows((await c.get("/console")).text)).toHaveLength(10);
  });

  it("escapes what the journal says: a reason with markup is shown as text", async () => {
    const t = await start();
    const r = await t.app.store.createRecovery({
      host: "compute-9",
      incidentKey: "compute-9@x",
      kind: "alert", trigger: "alert",
      dryRun: false,
      confirmedOff: false,
      detectedAt: new Date().toISOString(),
      graceUntil: new Date().toISOString(),
      reason: `<script>alert("x")</script><img src=x onerror=alert(1)>`,
    });
    await t.app.store.transition(r.id, "pending", "aborted", `<b onmouseover="steal()">resolved</b>`);
    const c = await loggedIn(t);
    for (const path of [`/console/recoveries/${r.id}`, "/console", "/console/recoveries", "/console/hosts/compute-9"]) {
      const page = await c.get(path);
      expect(page.status, path).toBe(200);
      expect(page.text, path).not.toMatch(/<script>alert|<img src=x|<b onmouseover/);
    }
    expect((await c.get(`/console/recoveries/${r.id}`)).text).toContain("&lt;b onmouseover=&quot;steal()&quot;&gt;resolved&lt;/b&gt;");
    expect((await c.get("/console/recoveries/r-none")).status).toBe(404);
    expect((await c.get("/console/hosts/bad%20host")).status).toBe(400);
  });

  it("no secret from the config appears in any page or asset", async () => {
    const t = await start({
      notifications: { from: "lifeboat@example.com", operators: ["ops@example.com"], smtp: { host: "127.0.0.1", port: 2525, security: "none", username: "mailer", password: "smtp-password-s3cret" } },
      fencing: { hosts: { "compute-1": { driver: "ipmi", address: "10.0.0.1", username: "admin", password: "ipmi-password-s3cret" } } },
    });
    const secrets = secretsOf(t.app.config);
    expect(secrets).toEqual(expect.arrayContaining([ADMIN_TOKEN, WEBHOOK_TOKEN, "smtp-password-s3cret", "ipmi-password-s3cret"]));
    t.world.kill("compute-1");
    await postAlert(t.app.url, alertPayload({ host: "compute-1" }));
    const r = await waitFor(async () => (await t.app.store.listRecoveries({ host: "compute-1", limit: 1 }))[0], 10_000, "a recovery");
    const c = await loggedIn(t);
    const seen: string[] = [(await new ConsoleClient(t.app.url).get("/console/login")).text];
    for (const path of ["/console", "/console/recoveries", `/console/recoveries/${r.id}`, "/console/hosts/compute-1", "/console/confirm/pause", `/console/confirm/approve?id=${r.id}`, "/console/confirm/release?host=compute-1"]) {
      const page = await c.get(path);
      expect(page.status, path).toBe(200);
      seen.push(page.text);
    }
    for (const m of seen[1]!.matchAll(/(?:href|src)="(\/console\/assets\/[^"]+)"/g)) seen.push((await c.get(m[1]!.replace(/&amp;/g, "&"))).text);
    expect(seen.length).toBeGreaterThan(9);
    for (const s of secrets) for (const page of seen) expect(page.includes(s), `a page shows the secret ${s.slice(0, 3)}…`).toBe(false);
  });

  it("console.enabled: false removes every /console route", async () => {
    const t = await start({ console: { enabled: false } });
    const c = new ConsoleClient(t.app.url);
    expect((await c.get("/console")).status).toBe(404);
    expect((await c.login(ADMIN_TOKEN)).status).toBe(404);
    expect((await c.get("/console/assets/console.css")).status).toBe(404);
  });
});

describe("console: live updates", () => {
  it("listens to the journal only while a browser is connected, and streams a recovery's sections as they change", async () => {
    const t = await start({ gates: { require_approval: true } });
    expect(t.app.changes.listening).toBe(0);
    t.world.kill("compute-2");
    await postAlert(t.app.url, alertPayload({ host: "compute-2" }));
    const r = await waitFor(async () => {
      const x = (await t.app.store.listRecoveries({ host: "compute-2", limit: 1 }))[0];
      return x?.state === "blocked" ? x : undefined;
    }, 10_000, "a blocked recovery");
    // Journal writes while nobody watches reach no listener.
    expect(t.app.changes.listening).toBe(0);

    const c = await loggedIn(t);
    const abort = new AbortController();
    const res = await fetch(`${t.app.url}/console/events?view=recovery&id=${r.id}`, { headers: { cookie: c.cookie! }, signal: abort.signal });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    let text = "";
    const until = async (re: RegExp): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!re.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${re} in the stream: ${text.slice(-500)}`);
        const chunk = (await reader.read()) as { done: boolean; value?: Uint8Array };
        if (chunk.done) throw new Error("stream ended");
        text += Buffer.from(chunk.value ?? []).toString("utf8");
      }
    };
    await until(/"id":"sec-summary".*data-state=\\"blocked\\"/);
    expect(t.app.changes.listening).toBe(1);

    await t.app.commands.cancel(r.id, "bob", "test");
    await until(/"id":"sec-summary".*data-state=\\"aborted\\"/);
    await until(/"id":"sec-timeline".*cancelled by bob/);
    abort.abort();
    await waitFor(() => t.app.changes.listening === 0, 5_000, "the console to stop listening once the browser left");
  });
});
