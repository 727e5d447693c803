import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { rootCertificates } from "node:tls";
import axios from "axios";
import type { Secret } from "../util/secret.js";
import { errorMessage } from "../util/errors.js";
import type { WebhookConfig } from "./config.js";
import { DeliveryError, scrub } from "./dispatcher.js";
import { renderJsonBody } from "./templates.js";
import type { NotificationChannel, OutboundMessage } from "./types.js";

/**
 * The webhook channel: one JSON POST per message to a chat tool or any HTTP receiver.
 * Body: the configured template (values JSON-escaped), or by default
 * `{"text": "<subject>\n\n<text>", "lifeboat": {kind, subject, …the message's view}}` —
 * Slack, Mattermost and Rocket.Chat incoming webhooks show `text` and ignore the rest.
 * 2xx is delivered; 408, 429, 5xx and network errors are worth a retry; other answers are
 * permanent. Redirects are not followed (the auth header must not travel elsewhere).
 */

export interface WebhookChannel extends NotificationChannel {
  readonly secrets: Secret[];
}

export function webhookBody(cfg: Pick<WebhookConfig, "template">, message: OutboundMessage): unknown {
  if (cfg.template !== undefined) {
    // `{{{json.<field>}}}` places any value (lists, objects) as ready-made JSON.
    const view: Record<string, unknown> = { ...message.data, kind: message.kind, subject: message.subject, text: message.text };
    const json = Object.fromEntries(Object.entries(view).map(([k, v]) => [k, JSON.stringify(v) ?? "null"]));
    return renderJsonBody(cfg.template, { ...view, json });
  }
  return { text: `${message.subject}\n\n${message.text}`, lifeboat: { ...message.data, kind: message.kind, subject: message.subject } };
}

export function createWebhookChannel(cfg: WebhookConfig): WebhookChannel {
  const secrets = cfg.auth ? [cfg.auth.credentials] : [];
  let httpsAgent: HttpsAgent | undefined;
  let caProblem: string | null = null;
  if (cfg.url.startsWith("https:") && (cfg.ca_file || !cfg.verify_tls)) {
    try {
      const ca = cfg.ca_file ? [...rootCertificates, readFileSync(cfg.ca_file, "utf8")] : undefined;
      httpsAgent = new HttpsAgent({ rejectUnauthorized: cfg.verify_tls, ...(ca ? { ca } : {}) });
    } catch (err) {
      caProblem = `cannot read ca_file ${cfg.ca_file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`;
    }
  }

  return {
    name: `webhook:${cfg.name}`,
    secrets,
    attemptTimeoutMs: cfg.timeout_seconds * 1000 + 1000,
    async send(message: OutboundMessage, signal?: AbortSignal): Promise<void> {
      if (caProblem) throw new DeliveryError(caProblem, true);
      let body: unknown;
      try {
        body = webhookBody(cfg, message);
      } catch (err) {
        throw new DeliveryError(errorMessage(err), true);
      }
      const headers: Record<string, string> = {
        ...cfg.headers,
        "Content-Type": "application/json",
        "User-Agent": "lifeboat",
        // The same on every try: a receiver can tell a resend after a crash from a new message.
        ...(message.messageId !== undefined ? { "X-Lifeboat-Message-Id": message.messageId } : {}),
        ...(cfg.auth ? { [cfg.auth.header]: cfg.auth.credentials.reveal() } : {}),
      };
      let status: number;
      let data: unknown;
      try {
        const res = await axios.post<unknown>(cfg.url, body, {
          headers,
          timeout: cfg.timeout_seconds * 1000,
          maxRedirects: 0,
          validateStatus: () => true,
          responseType: "text",
          ...(httpsAgent ? { httpsAgent } : {}),
          ...(signal ? { signal } : {}),
        });
        status = res.status;
        data = res.data;
      } catch (err) {
        // Network trouble, a timeout or an abort; axios' message names none of the headers.
        const code = (err as { code?: string }).code;
        throw new DeliveryError(scrub(`POST ${cfg.name}: ${errorMessage(err)}${code && !errorMessage(err).includes(code) ? ` (${code})` : ""}`, secrets), false);
      }
      if (status >= 200 && status < 300) return;
      const snippet = typeof data === "string" ? data.slice(0, 200).replace(/\s+/g, " ").trim() : "";
      const retry = status === 408 || status === 429 || status >= 500;
      throw new DeliveryError(scrub(`POST ${cfg.name}: HTTP ${status}${snippet ? `: ${snippet}` : ""}`, secrets), !retry, status);
    },
  };
}
