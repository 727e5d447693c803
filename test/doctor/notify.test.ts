import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterEach, describe, expect, it } from "vitest";
import { smtpCheck, webhookChecks } from "../../src/doctor/notify.js";
import { runChecks } from "../../src/doctor/runner.js";
import { configSecrets } from "../../src/doctor/doctor.js";
import { closedPort } from "./support.js";
import { lifeboatConfig } from "../kit/config.js";

/**
 * The notification targets are checked without notifying anyone: a real SMTP server sees
 * EHLO, STARTTLS and AUTH and never a MAIL FROM; a webhook receiver sees a HEAD, never a POST.
 */

interface SmtpLog {
  auths: { user: string; secure: boolean }[];
  mailFrom: number;
  data: number;
}

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.allSettled(closers.map((c) => c()));
  closers = [];
});

async function smtpServer(opts: { starttls: boolean; user: string; password: string }): Promise<{ port: number; log: SmtpLog }> {
  const log: SmtpLog = { auths: [], mailFrom: 0, data: 0 };
  const server = new SMTPServer({
    disabledCommands: opts.starttls ? [] : ["STARTTLS"],
    authMethods: ["PLAIN", "LOGIN"],
    logger: false,
    closeTimeout: 200,
    onAuth(auth, session, cb) {
      log.auths.push({ user: auth.username ?? "", secure: session.secure });
      if (auth.username === opts.user && auth.password === opts.password) cb(null, { user: auth.username });
      else cb(Object.assign(new Error("5.7.8 Authentication credentials invalid"), { responseCode: 535 }));
    },
    onMailFrom(_a, _s, cb) {
      log.mailFrom++;
      cb();
    },
    onData(stream, _s, cb) {
      log.data++;
      stream.resume();
      stream.on("end", () => cb());
    },
  });
  server.on("error", () => undefined);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.server.address() as AddressInfo).port, log };
}

function notifications(smtp: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return lifeboatConfig({ notifications: { from: "lifeboat <lifeboat@cloud.example>", operators: ["ops@cloud.example"], smtp, ...extra } });
}

describe("SMTP check", () => {
  it("STARTTLS then AUTH with the configured user, QUIT: no MAIL FROM, no DATA", async () => {
    const { port, log } = await smtpServer({ starttls: true, user: "lifeboat", password: "smtp-pass-1234" });
    const cfg = notifications({ host: "127.0.0.1", port, security: "starttls", verify_tls: false, username: "lifeboat", password: "smtp-pass-1234", timeout_seconds: 5 });
    const r = await runChecks([smtpCheck(cfg.notifications)!]);
    expect(r.rows).toMatchObject([{ check: "smtp", target: `127.0.0.1:${port}`, result: "ok", detail: "connected, EHLO, STARTTLS, AUTH as lifeboat; no mail sent" }]);
    expect(log.auths).toEqual([{ user: "lifeboat", secure: true }]);
    expect(log.mailFrom).toBe(0);
    expect(log.data).toBe(0);
  });

  it("refused credentials fail the row with the server's answer, never the password", async () => {
    const { port, log } = await smtpServer({ starttls: true, user: "lifeboat", password: "smtp-pass-1234" });
    const cfg = notifications({ host: "127.0.0.1", port, security: "starttls", verify_tls: false, username: "lifeboat", password: "wrong-smtp-pass", timeout_seconds: 5 });
    const r = await runChecks([smtpCheck(cfg.notifications)!], { secrets: configSecrets(cfg) });
    expect(r.rows[0]).toMatchObject({ result: "fail" });
    expect(r.rows[0]!.detail).toMatch(/535/);
    expect(JSON.stringify(r)).not.toContain("wrong-smtp-pass");
    expect(log.auths).toHaveLength(1);
    expect(log.mailFrom).toBe(0);
  });

  it("security starttls against a server that does not offer it fails (credentials never sent in clear)", async () => {
    const { port, log } = await smtpServer({ starttls: false, user: "lifeboat", password: "smtp-pass-1234" });
    const cfg = notifications({ host: "127.0.0.1", port, security: "starttls", username: "lifeboat", password: "smtp-pass-1234", timeout_seconds: 5 });
    const r = await runChecks([smtpCheck(cfg.notifications)!]);
    expect(r.rows[0]).toMatchObject({ result: "fail" });
    expect(r.rows[0]!.detail).toMatch(/STARTTLS/i);
    expect(log.auths).toEqual([]);
  });

  it("no smtp section: no row", () => {
    expect(smtpCheck(lifeboatConfig().notifications)).toBeNull();
  });
});

/** An HTTP receiver that answers every request with `status` and keeps what it saw. */
async function receiver(status: number): Promise<{ url: string; methods: string[]; bodies: number }> {
  const seen = { url: "", methods: [] as string[], bodies: 0 };
  const server: Server = createServer((req: IncomingMessage, res) => {
    seen.methods.push(req.method ?? "");
    req.on("data", () => seen.bodies++);
    req.on("end", () => {
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  seen.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return seen;
}

describe("webhook checks", () => {
  it("a HEAD, never a POST; any answer below 500 is reachable; the path (a token) is never shown", async () => {
    const chat = await receiver(405);
    const cfg = lifeboatConfig({ notifications: { webhooks: [{ name: "chat", url: `${chat.url}/hooks/T000/B000/s3cr3t-token`, auth: { credentials: "Bearer hook-credential" } }] } });
    const r = await runChecks(webhookChecks(cfg.notifications), { secrets: configSecrets(cfg) });
    expect(r.rows).toMatchObject([{ check: "webhook", target: `chat (${chat.url})`, result: "ok", detail: "reachable: HTTP 405 to HEAD; nothing posted" }]);
    expect(chat.methods).toEqual(["HEAD"]);
    expect(chat.bodies).toBe(0);
    expect(JSON.stringify(r)).not.toMatch(/s3cr3t-token|hook-credential/);
  });

  it("5xx is a warning, connection refused a failure", async () => {
    const proxy = await receiver(502);
    const port = await closedPort();
    const cfg = lifeboatConfig({
      notifications: {
        webhooks: [
          { name: "behind-proxy", url: `${proxy.url}/hook` },
          { name: "gone", url: `http://127.0.0.1:${port}/hook`, timeout_seconds: 2 },
        ],
      },
    });
    const r = await runChecks(webhookChecks(cfg.notifications));
    expect(r.rows.map((x) => [x.target, x.result])).toEqual([
      [`behind-proxy (${proxy.url})`, "warn"],
      [`gone (http://127.0.0.1:${port})`, "fail"],
    ]);
    expect(r.rows[1]!.detail).toMatch(/ECONNREFUSED/);
    expect(r.ok).toBe(false);
  });
});
