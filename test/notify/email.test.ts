import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { smtpSchema, type SmtpConfig } from "../../src/notify/config.js";
import { DeliveryError } from "../../src/notify/dispatcher.js";
import { createEmailChannel, type EmailChannel } from "../../src/notify/email.js";
import type { OutboundMessage } from "../../src/notify/types.js";
import { startSmtpCatcher, type SmtpCatcher } from "../../packages/sandbox/src/smtp.js";
import { selfSignedCert, type TestCert } from "./support/tls.js";

const PASSWORD = "s3cret-smtp-Pa55";
let cert: TestCert;
const open: { catcher?: SmtpCatcher; channel?: EmailChannel }[] = [];

beforeAll(() => {
  cert = selfSignedCert();
});

afterEach(async () => {
  for (const o of open.splice(0)) {
    o.channel?.close();
    await o.catcher?.close();
  }
});

function message(over: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    kind: "operator-summary",
    recipient: "ops@cloud.example",
    subject: "[lifeboat] compute-1: recovery completed",
    text: "Recovery r-1 of host compute-1: completed.\n",
    html: "<p>Recovery r-1 of host compute-1: completed.</p>",
    data: {},
    ...over,
  };
}

function smtp(catcher: SmtpCatcher, over: Record<string, unknown>): SmtpConfig {
  return smtpSchema.parse({ host: catcher.host, port: catcher.port, timeout_seconds: 5, ...over });
}

async function setup(catcherOpts: Parameters<typeof startSmtpCatcher>[0], smtpOver: Record<string, unknown>) {
  const catcher = await startSmtpCatcher(catcherOpts);
  const channel = createEmailChannel({ smtp: smtp(catcher, smtpOver), from: "lifeboat <lifeboat@cloud.example>", replyTo: "noc@cloud.example" });
  open.push({ catcher, channel });
  return { catcher, channel };
}

async function failure(p: Promise<unknown>): Promise<DeliveryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DeliveryError);
    return err as DeliveryError;
  }
  throw new Error("expected the send to fail");
}

describe("email channel against a real SMTP server", () => {
  it("delivers one message to one recipient, text and HTML, with automated-mail headers", async () => {
    const { catcher, channel } = await setup({ starttls: false }, { security: "none" });
    await channel.send(message());
    const [m] = await catcher.waitFor(1);
    expect(m).toMatchObject({
      from: '"lifeboat" <lifeboat@cloud.example>',
      to: ["ops@cloud.example"],
      subject: "[lifeboat] compute-1: recovery completed",
      envelope: { mailFrom: "lifeboat@cloud.example", rcptTo: ["ops@cloud.example"] },
      secure: false,
    });
    expect(m!.text.trim()).toBe("Recovery r-1 of host compute-1: completed.");
    expect(m!.html).toContain("<p>Recovery r-1 of host compute-1: completed.</p>");
    expect(m!.headers["auto-submitted"]).toBe("auto-generated");
    expect(m!.headers["x-lifeboat-kind"]).toBe("operator-summary");
    expect(m!.headers["reply-to"]).toBe("noc@cloud.example");
  });

  it("upgrades with STARTTLS, verifies the certificate against ca_file, and authenticates with AUTH PLAIN", async () => {
    const { catcher, channel } = await setup(
      { username: "lifeboat", password: PASSWORD, authMethods: ["PLAIN", "LOGIN"], key: cert.keyPem, cert: cert.certPem },
      { security: "starttls", username: "lifeboat", password: PASSWORD, ca_file: cert.certFile },
    );
    await channel.send(message());
    const [m] = await catcher.waitFor(1);
    expect(m).toMatchObject({ secure: true, user: "lifeboat", authMethod: "PLAIN" });
  });

  it("speaks TLS from the first byte (security: tls) and authenticates with AUTH LOGIN", async () => {
    const { catcher, channel } = await setup(
      { secure: true, username: "lifeboat", password: PASSWORD, authMethods: ["LOGIN"], key: cert.keyPem, cert: cert.certPem },
      { security: "tls", username: "lifeboat", password: PASSWORD, ca_file: cert.certFile },
    );
    await channel.send(message());
    const [m] = await catcher.waitFor(1);
    expect(m).toMatchObject({ secure: true, user: "lifeboat", authMethod: "LOGIN" });
  });

  it("refuses a certificate it cannot verify, unless verify_tls is false", async () => {
    const strict = await setup({ key: cert.keyPem, cert: cert.certPem }, { security: "starttls" });
    const err = await failure(strict.channel.send(message()));
    expect(err.message).toMatch(/certificate/i);
    expect(strict.catcher.messages).toHaveLength(0);

    const lax = await setup({ key: cert.keyPem, cert: cert.certPem }, { security: "starttls", verify_tls: false });
    await lax.channel.send(message());
    expect((await lax.catcher.waitFor(1))[0]!.secure).toBe(true);
  });

  it("refuses to send in clear when STARTTLS is required but not offered", async () => {
    const { catcher, channel } = await setup({ starttls: false }, { security: "starttls" });
    const err = await failure(channel.send(message()));
    expect(err.message).toMatch(/STARTTLS/i);
    expect(catcher.messages).toHaveLength(0);
  });

  it("reports wrong credentials as a permanent failure that does not reveal the password", async () => {
    const { catcher, channel } = await setup(
      { username: "lifeboat", password: "the-right-one", key: cert.keyPem, cert: cert.certPem },
      { security: "starttls", username: "lifeboat", password: PASSWORD, ca_file: cert.certFile },
    );
    const err = await failure(channel.send(message()));
    expect(err.permanent).toBe(true);
    expect(err.code).toBe(535);
    expect(err.message).not.toContain(PASSWORD);
    expect(catcher.authFailures).toBe(1);
    expect(JSON.stringify(channel)).not.toContain(PASSWORD);
  });

  it("tells a temporary refusal (4xx) from a permanent one (5xx)", async () => {
    const { catcher, channel } = await setup({ starttls: false }, { security: "none" });
    catcher.failNext(1, 451);
    const temp = await failure(channel.send(message()));
    expect(temp).toMatchObject({ permanent: false, code: 451 });
    catcher.failNext(1, 550);
    const perm = await failure(channel.send(message()));
    expect(perm).toMatchObject({ permanent: true, code: 550 });
    await channel.send(message());
    expect(await catcher.waitFor(1)).toHaveLength(1);
    expect(catcher.rejected).toBe(2);
  });

  it("reports an unreachable server as worth a retry", async () => {
    const catcher = await startSmtpCatcher();
    const port = catcher.port;
    await catcher.close();
    const channel = createEmailChannel({ smtp: smtpSchema.parse({ host: "127.0.0.1", port, security: "none", timeout_seconds: 2 }), from: "lifeboat@cloud.example" });
    open.push({ channel });
    const err = await failure(channel.send(message()));
    expect(err.permanent).toBe(false);
    expect(err.message).toMatch(/ECONNREFUSED|connect/i);
  });
});
