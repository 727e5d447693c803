import { execFile } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { NotificationRecord, RecoveryDetail } from "../../src/domain/model.js";
import { startSandbox, type Sandbox } from "../../packages/sandbox/src/environment.js";
import { startSmtpCatcher, type SmtpCatcher } from "../../packages/sandbox/src/smtp.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import type { ServedLifeboat } from "../kit/served.js";
import { ADMIN_TOKEN, fastSite } from "../kit/config.js";
import { alertPayload, api, postAlert, waitFor } from "../kit/http.js";
import { type Stack, startStack, serveOnSite, useCleanup } from "../kit/lifeboat.js";
import { failAndAlert, novaSeesDown, serversOn, siteScenario, TERMINAL } from "../kit/site.js";

/**
 * Notifications never stand in a recovery's way: they are journaled and sent by a background
 * worker. A mail server that accepts TCP and never greets does not delay the fence of a
 * blocked recovery whose block clears; what was queued is sent once a relay answers, and
 * survives a kill -9 (sent again after the restart, with the same Message-ID).
 */

const CLI = resolve(import.meta.dirname, "../../dist/cli.js");
const run = promisify(execFile);

let stack: Stack | undefined;
let sandbox: Sandbox | undefined;
const closers: (() => Promise<unknown>)[] = [];
const cleanup = useCleanup();
afterEach(async () => {
  await stack?.close();
  stack = undefined;
  for (const c of closers.splice(0).reverse()) await c();
});

/** Accepts connections and never says a word: an SMTP server hung before its greeting. */
async function muteServer(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  let closed = false;
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => sockets.length,
    close: async () => {
      if (closed) return;
      closed = true;
      for (const s of sockets) s.destroy();
      await new Promise((done) => server.close(done));
    },
  };
}

const blockedMail = (records: NotificationRecord[]): NotificationRecord | undefined => records.find((n) => n.kind === "blocked" && n.channel === "email");

describe("notifications are delivered in the background", () => {
  it("a hung mail server: the block clears and the host is fenced while the blocked mail is still undelivered; the mail goes out once a relay answers", async () => {
    const mute = await muteServer();
    closers.push(() => mute.close());
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn("compute-1", 2)) },
      config: {
        recovery: { recheck_interval_seconds: 0.2 },
        notifications: {
          smtp: { host: "127.0.0.1", port: mute.port, security: "none", timeout_seconds: 2 },
          tenants: { enabled: false },
          retry: { attempts: 20, initial_backoff_seconds: 0.2, max_backoff_seconds: 0.5, message_timeout_seconds: 30 },
        },
      },
    });
    const s = stack;
    // The BMC does not answer: the bmc gate blocks (and re-checks).
    s.sandbox.redfish.failAll(503);
    await failAndAlert(s, "compute-1");
    const r = await waitFor(async () => (await s.app.store.listRecoveries({ host: "compute-1", state: "blocked" }))[0], 30_000, "the recovery to block");
    expect(r.reason).toMatch(/bmc/);
    // The blocked mail is being tried against the server that never greets.
    await waitFor(() => mute.connections() > 0, 20_000, "a try of the blocked mail");

    s.sandbox.redfish.failAll(false); // the BMC answers again
    const fenced = await waitFor(
      async () => {
        const d = await recoveryDetail(s.app.store, r.id);
        return d && !["pending", "validating", "blocked"].includes(d.state) ? d : undefined;
      },
      90_000,
      "the recovery to leave blocked",
    );
    // The fence did not wait for the mail: at that moment it was still undelivered.
    expect(blockedMail(fenced.notifications)).toMatchObject({ state: "pending" });
    const done = await waitFor(async () => {
      const d = await recoveryDetail(s.app.store, r.id);
      return d && TERMINAL.includes(d.state) ? d : undefined;
    }, 30_000, "the recovery to end");
    expect(done.state, done.reason).toBe("completed");
    expect(done.fenceState).toBe("off");
    const fencedAt = done.timeline.find((t) => t.to === "fencing")!.at;
    expect(done.timeline.at(-1)!.reason).toBe("recovery completed; notifications queued for delivery");
    expect(done.delivery).toMatchObject({ state: "pending", sent: 0 });

    // A working relay on the same address: the worker's next try delivers what was queued.
    await mute.close();
    const relay: SmtpCatcher = await startSmtpCatcher({ port: mute.port, starttls: false });
    closers.push(() => relay.close());
    const mails = await relay.waitFor(2, 30_000);
    expect(mails.map((m) => m.subject).sort()).toEqual(["[lifeboat] compute-1: recovery blocked", "[lifeboat] compute-1: recovery completed (2/2 instances evacuated)"]);
    const after = await waitFor(async () => {
      const d = await recoveryDetail(s.app.store, r.id);
      return d?.delivery?.state === "delivered" ? d : undefined;
    }, 30_000, "every notification of the recovery sent");
    const mail = blockedMail(after.notifications)!;
    expect(mail.state).toBe("sent");
    expect(mail.attempts).toBeGreaterThan(1);
    expect(mail.sentAt! > fencedAt).toBe(true);
    expect(mails.find((m) => m.subject.includes("blocked"))!.headers["message-id"]).toBe(mail.messageId);
  }, 180_000);

  it("when every message fails: the timeline says they were queued, not that people were told; the recovery shows what failed; the metrics count it", async () => {
    stack = await startStack({ pace: "fast",
      cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn("compute-1", 2)) },
      config: { notifications: { retry: { attempts: 2, initial_backoff_seconds: 0.1, max_backoff_seconds: 0.1 } } },
    });
    const s = stack;
    s.sandbox.smtp.failNext(1000, 550, "5.7.1 relaying denied");
    await failAndAlert(s, "compute-1");
    const r = await waitFor(async () => (await s.app.store.listRecoveries({ host: "compute-1" }))[0], 20_000, "a recovery");
    const ended = await waitFor(async () => {
      const d = await recoveryDetail(s.app.store, r.id);
      return d && TERMINAL.includes(d.state) ? d : undefined;
    }, 60_000, "the recovery to end");
    expect(ended.state, ended.reason).toBe("completed");
    expect(ended.timeline.at(-1)!.reason).toBe("recovery completed; notifications queued for delivery");

    const failed = await waitFor(async () => {
      const d = (await api(s.app.url, "GET", `/api/v1/recoveries/${r.id}`)).body as RecoveryDetail;
      return d.delivery?.state === "failed" ? d : undefined;
    }, 30_000, "the delivery outcome on the recovery");
    const mails = failed.notifications.filter((n) => n.channel === "email");
    expect(mails.length).toBeGreaterThanOrEqual(2);
    expect(mails.every((n) => n.state === "failed" && /550 5\.7\.1 relaying denied/.test(n.error ?? ""))).toBe(true);
    expect(failed.delivery!.text).toMatch(new RegExp(`^every notification failed \\(${mails.length}\\): email to .*: SMTP: .*550 5\\.7\\.1 relaying denied`));
    expect(s.sandbox.smtp.messages).toHaveLength(0);

    const show = await run(process.execPath, [CLI, "show", r.id, "--url", s.app.url, "--token", ADMIN_TOKEN], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000 });
    expect(show.stdout).toContain(`notifications: every notification failed (${mails.length})`);
    const metrics = await (await fetch(`${s.app.url}/metrics`)).text();
    expect(metrics).toContain(`lifeboat_notifications_total{channel="email",result="failed"} ${mails.length}`);
    expect(metrics).toContain("lifeboat_notifications_pending 0");
  }, 120_000);

  it("kill -9 while the relay holds a message's answer, the recovery already ended: after the restart every message is sent, the held one again under the same Message-ID", async () => {
    sandbox = await startSandbox(fastSite({ cloud: { scenario: siteScenario(["compute-1", "compute-2", "compute-3"], serversOn("compute-1", 3)) } }));
    cleanup.add(sandbox);
    const site = sandbox;
    const storeDir = cleanup.dir();
    const serve = async (): Promise<ServedLifeboat> => cleanup.add(await serveOnSite(site, storeDir, { notifications: { smtp: { timeout_seconds: 60 }, retry: { initial_backoff_seconds: 0.5, max_backoff_seconds: 1 } } }));
    const recoveryOf = async (url: string): Promise<RecoveryDetail | undefined> => {
      const list = await api(url, "GET", "/api/v1/recoveries?host=compute-1");
      const r = (list.body as { recoveries: { id: string }[] }).recoveries[0];
      return r ? ((await api(url, "GET", `/api/v1/recoveries/${r.id}`, undefined, ADMIN_TOKEN)).body as RecoveryDetail) : undefined;
    };

    // The relay takes the first message and never answers it (as if its 250 were lost).
    site.smtp.holdNext(1);
    const one = await serve();
    site.failHost("compute-1");
    await novaSeesDown(site.cloud, "compute-1");
    expect((await postAlert(one.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
    const ended = await waitFor(
      async () => {
        const d = await recoveryOf(one.url);
        return d && TERMINAL.includes(d.state) ? d : undefined;
      },
      60_000,
      "the recovery to end",
    );
    expect(ended.state, ended.reason).toBe("completed");
    await waitFor(() => site.smtp.held === 1, 20_000, "the relay to hold a message");
    // Ended while a message is still undelivered: nothing waited for the relay.
    const pending = (await recoveryOf(one.url))!.notifications.filter((n) => n.state === "pending");
    expect(pending.length).toBeGreaterThan(0);
    const heldMail = site.smtp.messages[0]!;

    process.kill(one.pid, "SIGKILL");
    await one.stop();
    const two = await serve();
    const after = await waitFor(
      async () => {
        const d = await recoveryOf(two.url);
        return d?.delivery?.state === "delivered" ? d : undefined;
      },
      60_000,
      "every notification sent after the restart",
    );
    const sent = after.notifications.filter((n) => n.channel === "email");
    expect(sent.length).toBeGreaterThanOrEqual(2); // the operator and the tenants' people
    expect(sent.every((n) => n.state === "sent")).toBe(true);
    // Each message reached the relay once, but the held one twice — and both copies carry the same Message-ID.
    const ids = site.smtp.messages.map((m) => m.headers["message-id"]);
    expect(new Set(ids).size).toBe(sent.length);
    const copies = site.smtp.messages.filter((m) => m.headers["message-id"] === heldMail.headers["message-id"]);
    expect(copies).toHaveLength(2);
    expect(copies[1]!.to).toEqual(copies[0]!.to);
    expect(heldMail.headers["message-id"]).toBe(sent.find((n) => n.recipient === heldMail.to[0])!.messageId);
  }, 180_000);
});
