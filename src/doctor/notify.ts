import nodemailer from "nodemailer";
import { smtpPort, type NotificationsConfig, type WebhookConfig } from "../notify/config.js";
import { smtpTransportOptions } from "../notify/email.js";
import { probe } from "./http-get.js";
import type { DoctorCheck, DoctorRow } from "./types.js";

/**
 * Where notifications go, checked without notifying anyone: the SMTP server gets a
 * connection, EHLO, STARTTLS or TLS and AUTH as configured, then QUIT (nodemailer's
 * verify(): no MAIL FROM, no message); each webhook target gets a HEAD, never a POST.
 */

export function smtpCheck(n: NotificationsConfig): DoctorCheck | null {
  const smtp = n.smtp;
  if (!smtp) return null;
  const target = `${smtp.host}:${smtpPort(smtp)}`;
  const timeoutMs = smtp.timeout_seconds * 1000;
  return {
    check: "smtp",
    target,
    // connection, greeting and each command are bounded by timeout_seconds; a few of them.
    timeoutMs: 3 * timeoutMs + 2000,
    run: async (): Promise<DoctorRow[]> => {
      const { options, problem } = smtpTransportOptions(smtp);
      if (problem) return [{ check: "smtp", target, result: "fail", detail: problem }];
      const transport = nodemailer.createTransport(options);
      try {
        await transport.verify();
      } finally {
        transport.close();
      }
      const tls = smtp.security === "tls" ? "TLS" : smtp.security === "starttls" ? "STARTTLS" : "no encryption";
      const auth = smtp.username ? `AUTH as ${smtp.username}` : "no AUTH configured";
      return [{ check: "smtp", target, result: "ok", detail: `connected, EHLO, ${tls}, ${auth}; no mail sent` }];
    },
  };
}

/** A webhook's name and origin only: chat webhooks carry their token in the path. */
export function webhookTarget(w: Pick<WebhookConfig, "name" | "url">): string {
  try {
    return `${w.name} (${new URL(w.url).origin})`;
  } catch {
    return w.name;
  }
}

export function webhookChecks(n: NotificationsConfig): DoctorCheck[] {
  return n.webhooks.map((w) => {
    const target = webhookTarget(w);
    const timeoutMs = w.timeout_seconds * 1000;
    return {
      check: "webhook",
      target,
      timeoutMs: timeoutMs + 2000,
      run: async (signal): Promise<DoctorRow[]> => {
        const res = await probe(w.url, { method: "HEAD", timeoutMs, signal, verifyTls: w.verify_tls, ...(w.ca_file ? { caFile: w.ca_file } : {}) });
        // Receivers answer HEAD as they like (405, 404, 400): any answer proves the way there.
        // A 5xx is usually a proxy whose receiver is down.
        const result = res.status >= 500 ? "warn" : "ok";
        return [{ check: "webhook", target, result, detail: `reachable: HTTP ${res.status} to HEAD${result === "warn" ? " (the receiver behind may be down)" : ""}; nothing posted` }];
      },
    };
  });
}
