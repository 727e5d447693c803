import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import nodemailer from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport/index.js";
import type { Secret } from "../util/secret.js";
import { abortReason } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";
import { smtpPort, type SmtpConfig } from "./config.js";
import { DeliveryError, scrub } from "./dispatcher.js";
import type { NotificationChannel, OutboundMessage } from "./types.js";

/**
 * The email channel: one SMTP transaction per message and recipient (tenants never see each
 * other's addresses, and every recipient has its own record and retries). Retries are the
 * delivery worker's; this channel only says whether a failure is permanent (SMTP 5xx,
 * refused credentials) or worth another try (4xx, connection trouble, a server that never
 * greets: nodemailer's connection, greeting and socket timeouts are `smtp.timeout_seconds`).
 */

export interface EmailChannelOptions {
  smtp: SmtpConfig;
  from: string;
  replyTo?: string;
}

export interface EmailChannel extends NotificationChannel {
  /** Values that must never appear in a record or a log line. */
  readonly secrets: Secret[];
  close(): void;
}

interface NodemailerError extends Error {
  code?: string;
  responseCode?: number;
  command?: string;
}

/**
 * The nodemailer SMTP options of a config: TLS mode, AUTH, CA, timeouts. Shared by the
 * channel and `lifeboat doctor` (which only connects and authenticates with them).
 * `problem` is set when smtp.ca_file cannot be read.
 */
export function smtpTransportOptions(smtp: SmtpConfig): { options: SMTPTransport.Options; problem: string | null } {
  const timeoutMs = smtp.timeout_seconds * 1000;
  let problem: string | null = null;
  let ca: string[] | undefined;
  if (smtp.ca_file) {
    try {
      // Node replaces its trust store with `ca`: keep the public roots next to the private CA.
      ca = [...rootCertificates, readFileSync(smtp.ca_file, "utf8")];
    } catch (err) {
      problem = `cannot read smtp.ca_file ${smtp.ca_file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`;
    }
  }
  const options: SMTPTransport.Options = {
    host: smtp.host,
    port: smtpPort(smtp),
    secure: smtp.security === "tls",
    requireTLS: smtp.security === "starttls",
    ignoreTLS: smtp.security === "none",
    ...(smtp.username && smtp.password ? { auth: { user: smtp.username, pass: smtp.password.reveal() } } : {}),
    tls: { rejectUnauthorized: smtp.verify_tls, minVersion: "TLSv1.2", ...(ca ? { ca } : {}) },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    debug: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
  return { options, problem };
}

export function createEmailChannel(opts: EmailChannelOptions): EmailChannel {
  const { smtp } = opts;
  const secrets = smtp.password ? [smtp.password] : [];
  const { options, problem: caProblem } = smtpTransportOptions(smtp);
  const transport = nodemailer.createTransport(options);

  return {
    name: "email",
    secrets,
    // Connecting, the greeting and a transaction's quiet spells are each bounded by timeout_seconds.
    attemptTimeoutMs: 3 * smtp.timeout_seconds * 1000,
    async send(message: OutboundMessage, signal?: AbortSignal): Promise<void> {
      if (caProblem) throw new DeliveryError(caProblem, true);
      if (signal?.aborted) throw new DeliveryError(`not sent: ${errorMessage(abortReason(signal))}`, true);
      const sending = transport.sendMail({
        from: opts.from,
        to: message.recipient,
        ...(opts.replyTo ? { replyTo: opts.replyTo } : {}),
        subject: message.subject,
        text: message.text,
        ...(message.html !== undefined ? { html: message.html } : {}),
        // The same on every try: a copy sent again after a crash is recognisable as the same message.
        ...(message.messageId !== undefined ? { messageId: message.messageId } : {}),
        // RFC 3834: no vacation auto-replies to an automated notice.
        headers: { "Auto-Submitted": "auto-generated", "X-Lifeboat-Kind": message.kind },
      });
      let info: Awaited<typeof sending>;
      try {
        info = await untilAborted(sending, signal);
      } catch (err) {
        throw classify(err, secrets);
      }
      const rejected: string[] = info.rejected;
      if (rejected.length > 0) throw new DeliveryError(`SMTP server rejected ${rejected.join(", ")}: ${info.response}`, true);
    },
    close() {
      transport.close();
    },
  };
}

/** nodemailer cannot cancel a transaction: stop waiting for it (its socket timeout ends it). */
function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new DeliveryError(`gave up: ${errorMessage(abortReason(signal))}`, true));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener("abort", onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener("abort", onAbort), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

/** SMTP 5xx and refused credentials will not change on a retry; 4xx and network trouble may. */
function classify(err: unknown, secrets: Secret[]): DeliveryError {
  if (err instanceof DeliveryError) return err;
  const e = err as NodemailerError;
  const text = scrub(`SMTP: ${errorMessage(err)}`, secrets);
  const code = typeof e.responseCode === "number" ? e.responseCode : undefined;
  if (code !== undefined) return new DeliveryError(text, code >= 500, code);
  if (e.code === "EAUTH" || e.code === "EENVELOPE") return new DeliveryError(text, true);
  return new DeliveryError(text, false);
}
