import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { secretsOf } from "./client.js";
import { ADMIN_TOKEN, WEBHOOK_TOKEN, removeDir, tempDir, lifeboatConfigData, fastSite, parseConfigData } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { novaSeesDown, serversOn, siteScenario } from "../kit/site.js";
import { ROOT, serveLifeboat, type ServedLifeboat } from "../kit/served.js";

/**
 * The console in a real browser: Debian's Chromium, headless, driven by playwright-core,
 * against a real `lifeboat serve` (the built dist/cli.js) on the simulated site. The
 * screenshots of the main pages are kept in artifacts/console/ (not committed).
 */
// What the functions run inside the page use, typed by hand: the project's TypeScript has no DOM library.
interface Bar {
  value: number;
  max: number;
}
declare const document: { querySelector(selector: string): Bar | null; body: unknown; cookie: string; documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };
declare const MutationObserver: new (callback: () => void) => { observe(target: unknown, options: { subtree: boolean; childList: boolean }): void };
declare const EventSource: new (url: string) => { addEventListener(type: string, listener: (e: { data: string }) => void): void; close(): void };

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(ROOT, "artifacts/console");
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let site: Sandbox;
let lifeboat: ServedLifeboat;
let browser: Browser;
let desktop: BrowserContext;
let page: Page;
let secrets: string[] = [];
const storeDir = tempDir();
/** Every console page, asset and live update the browser received, for the secrets check. */
const received: { url: string; text: string }[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/test.sh installs it)`);
  mkdirSync(SHOTS, { recursive: true });
  // compute-1 runs six instances whose rebuilds take a while: time to watch the bar move.
  const servers = [...serversOn("compute-1", 6), ...serversOn("compute-2", 2, "db")];
  site = await startSandbox(fastSite({ cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3", "compute-4"], servers), evacuationDurationMs: 1800 } }));
  const data = lifeboatConfigData(
    {
      evacuation: { concurrency: 2 },
      // One recovery at a time: the second failed host waits for an operator.
      gates: { storm: { max_recoveries: 1, max_percent: 100, window_seconds: 600, cooldown_seconds: 600 } },
    },
    { site, dir: storeDir, pace: "fast", logLevel: "info" },
  );
  lifeboat = await serveLifeboat(data, { name: "lifeboat-console", ready: "/readyz" });
  secrets = secretsOf(parseConfigData(data));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  desktop = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await desktop.newPage();
  keepResponses(page);
}, 90_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await lifeboat?.stop();
  await site?.close();
  removeDir(storeDir);
});

function keepResponses(p: Page): void {
  p.on("response", (res) => {
    const url = res.url();
    if (!url.includes("/console") || (res.headers()["content-type"] ?? "").includes("event-stream")) return;
    void res
      .text()
      .then((text) => received.push({ url, text }))
      .catch(() => undefined);
  });
}

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function login(p: Page, token: string, name?: string): Promise<void> {
  await p.goto(`${lifeboat.url}/console`);
  await p.fill('input[name="token"]', token);
  if (name) await p.fill('input[name="name"]', name);
  await p.click('button[type="submit"]');
}

async function latestRecovery(host: string): Promise<{ id: string; state: string } | undefined> {
  const r = await api(lifeboat.url, "GET", `/api/v1/recoveries?host=${host}&limit=1`);
  return (r.body as { recoveries: { id: string; state: string }[] }).recoveries[0];
}

async function failAndAlert(host: string): Promise<void> {
  site.failHost(host);
  await novaSeesDown(site.cloud, host);
  const r = await postAlert(lifeboat.url, alertPayload({ host, startsAt: new Date(Date.now() - 60_000).toISOString() }));
  expect(r.status).toBe(202);
}

describe("the console in headless Chromium against lifeboat serve", () => {
  it("asks for the admin token; the webhook token does not open it", async () => {
    await page.goto(`${lifeboat.url}/console`);
    expect(new URL(page.url()).pathname).toBe("/console/login");
    await shot(page, "login");
    await login(page, WEBHOOK_TOKEN);
    await expect.poll(() => page.textContent("[role=alert]")).toContain("not the admin token");
    expect(new URL(page.url()).pathname).toBe("/console/login");
    await login(page, ADMIN_TOKEN, "alice");
    await page.waitForSelector("#sec-status");
    expect(await page.textContent("#sec-status")).toContain("leads");
    expect(await page.textContent(".who")).toBe("alice@console");
    const cookie = (await desktop.cookies()).find((c) => c.name === "lifeboat_session")!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/console" });
    expect(cookie.expires).toBeGreaterThan(Date.now() / 1000);
    // Scripts in the page cannot read it.
    expect(await page.evaluate(() => document.cookie)).toBe("");
  });

  it("watches a recovery run live to completed: the page updates without a reload and the progress bar moves", async () => {
    await page.goto(`${lifeboat.url}/console`);
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await failAndAlert("compute-1");
    // The overview shows the new recovery by itself.
    const link = page.locator("#sec-open a", { hasText: "Open" }).first();
    await link.waitFor({ timeout: 20_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await link.click();
    await page.waitForSelector("#sec-summary [data-state]");
    await page.evaluate(() => {
      const w = window as unknown as { notReloaded: boolean; bar: string[] };
      w.notReloaded = true;
      w.bar = [];
      const note = (): void => {
        const p = document.querySelector("#evacuation-progress");
        const v = p ? `${p.value}/${p.max}` : null;
        if (v && w.bar.at(-1) !== v) w.bar.push(v);
      };
      note();
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true });
    });
    await page.waitForFunction(
      () => {
        const p = document.querySelector("#evacuation-progress");
        return p !== null && p.value >= 2 && p.value < p.max;
      },
      undefined,
      { timeout: 40_000 },
    );
    await shot(page, "recovery-evacuating");
    await page.screenshot({ path: join(SHOTS, "console.png") }); // the README's picture: docs/console.png
    await page.waitForSelector('#sec-summary [data-state="completed"]', { timeout: 60_000 });
    const w = await page.evaluate(() => {
      const x = window as unknown as { notReloaded?: boolean; bar: string[] };
      return { notReloaded: x.notReloaded, bar: x.bar };
    });
    expect(w.notReloaded).toBe(true);
    const steps = w.bar.map((v) => v.split("/").map(Number) as [number, number]);
    expect(steps.some(([v, max]) => v > 0 && v < max), `bar: ${w.bar.join(" ")}`).toBe(true);
    expect(steps.at(-1)).toEqual([6, 6]);
    expect(steps.map(([v]) => v)).toEqual([...steps.map(([v]) => v)].sort((a, b) => a - b));
    expect(await page.textContent("#sec-timeline")).toContain("completed");
    expect(await page.textContent("#sec-fence")).toMatch(/off/);
    expect(await page.locator("#sec-instances tbody tr").count()).toBe(6);
    // Mails go out in the background after the recovery ended: the live page shows them sent.
    await expect.poll(() => page.textContent("#sec-notifications"), { timeout: 30_000 }).toContain("sent");
    await shot(page, "recovery");
  }, 120_000);

  it("approves a recovery the storm guard blocked, after a confirmation that names the consequence", async () => {
    await page.goto(`${lifeboat.url}/console`);
    await failAndAlert("compute-2");
    const box = page.locator('#sec-open input[type="checkbox"]');
    await box.waitFor({ timeout: 30_000 });
    await expect.poll(() => page.textContent("#sec-status"), { timeout: 20_000 }).toContain("tripped");
    expect(await page.textContent("#sec-open")).toContain("storm guard");
    expect(await page.textContent("#sec-held")).toContain("compute-1");
    await shot(page, "overview");
    await box.check();
    await page.click("text=Approve selected…");
    expect(new URL(page.url()).pathname).toBe("/console/confirm/approve");
    const text = (await page.textContent("main"))!;
    expect(text).toContain("powers compute-2 off");
    expect(text).toContain("storm guard");
    await shot(page, "confirm-approve");
    const r = (await latestRecovery("compute-2"))!;
    expect(r.state).toBe("blocked");
    await page.click('button:has-text("Approve")');
    await expect.poll(() => page.textContent(".flash")).toContain("approved by alice@console");
    await waitFor(async () => (await latestRecovery("compute-2"))?.state === "completed", 60_000, "the approved recovery to complete");
  }, 120_000);

  it("pauses and resumes automation", async () => {
    await page.goto(`${lifeboat.url}/console`);
    await page.click("text=Pause…");
    await page.fill('input[name="reason"]', "BIOS update on rack 4");
    await page.click('button:has-text("Pause automation")');
    await expect.poll(() => page.textContent("#sec-status")).toContain("by alice@console");
    let status = (await api(lifeboat.url, "GET", "/api/v1/status")).body as { paused: { paused: boolean; reason: string } };
    expect(status.paused).toMatchObject({ paused: true, reason: "BIOS update on rack 4" });
    await page.click("text=Resume…");
    await page.click('button:has-text("Resume automation")');
    await expect.poll(() => page.textContent(".flash")).toContain("automation resumed");
    status = (await api(lifeboat.url, "GET", "/api/v1/status")).body as { paused: { paused: boolean; reason: string } };
    expect(status.paused.paused).toBe(false);
  });

  it("refuses an action without the CSRF token, and one without a session", async () => {
    const noToken = await page.request.post(`${lifeboat.url}/console/actions/pause`, { form: { reason: "forged" }, maxRedirects: 0 });
    expect(noToken.status()).toBe(403);
    const other = await browser.newContext();
    const noSession = await other.request.post(`${lifeboat.url}/console/actions/pause`, { form: { reason: "forged" }, maxRedirects: 0 });
    expect(noSession.status()).toBe(401);
    await other.close();
    const status = (await api(lifeboat.url, "GET", "/api/v1/status")).body as { paused: { paused: boolean } };
    expect(status.paused.paused).toBe(false);
  });

  it("shows a host: held down, its fencing device's last journaled power state, its recoveries", async () => {
    await page.goto(`${lifeboat.url}/console/hosts/compute-1`);
    const summary = (await page.textContent("#sec-host"))!;
    expect(summary).toContain("held down");
    expect(summary).toMatch(/redfish[\s\S]*off/);
    expect(await page.locator("#sec-host-recoveries tbody tr").count()).toBe(1);
    await shot(page, "host");
    await page.goto(`${lifeboat.url}/console/recoveries`);
    expect(await page.locator("#sec-list tbody tr").count()).toBe(2);
    await shot(page, "recoveries");
  });

  it("is usable on a phone: no page is wider than the screen", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const p = await phone.newPage();
    keepResponses(p);
    await login(p, ADMIN_TOKEN);
    await p.waitForSelector("#sec-status");
    const id = (await latestRecovery("compute-1"))!.id;
    for (const [path, name] of [
      ["/console", "phone-overview"],
      [`/console/recoveries/${id}`, "phone-recovery"],
      ["/console/hosts/compute-1", "phone-host"],
    ] as const) {
      await p.goto(`${lifeboat.url}${path}`);
      const width = await p.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth }));
      expect(width.page, path).toBeLessThanOrEqual(width.screen);
      await shot(p, name);
    }
    await phone.close();
  });

  it("no secret from the config appears in any page, asset or live update", async () => {
    // The live updates as the browser receives them.
    const id = (await latestRecovery("compute-1"))!.id;
    await page.goto(`${lifeboat.url}/console`);
    const live = await page.evaluate(async (rid) => {
      const out: string[] = [];
      for (const q of ["view=overview", `view=recovery&id=${rid}`, "view=host&host=compute-1", "view=list"]) {
        const es = new EventSource(`/console/events?${q}`);
        es.addEventListener("section", (e) => out.push(e.data));
        await new Promise((r) => setTimeout(r, 1500));
        es.close();
      }
      return out;
    }, id);
    expect(live.length).toBeGreaterThan(5);
    const all = [...received, ...live.map((text) => ({ url: "live", text }))];
    expect(all.some((x) => x.url.includes("/console/assets/console.js"))).toBe(true);
    expect(all.length).toBeGreaterThan(20);
    expect(secrets).toEqual(expect.arrayContaining([ADMIN_TOKEN, WEBHOOK_TOKEN]));
    expect(secrets.length).toBeGreaterThanOrEqual(4); // + the BMC and Keystone passwords
    for (const s of secrets) {
      const leak = all.find((x) => x.text.includes(s));
      expect(leak?.url, `a secret (${s.slice(0, 3)}…) in a console answer`).toBeUndefined();
    }
  });
});
