/**
 * Notification channels (Alertmanager notify/ style): one small file per integration
 * behind this interface. A channel delivers one message to one recipient; retries,
 * deduplication and result records are the delivery worker's job, not the channel's.
 */

export interface OutboundMessage {
  /** operator-summary, tenant, blocked, storm, fence-failed… */
  kind: string;
  /** An email address for email, a configured target name for webhooks. */
  recipient: string;
  subject: string;
  text: string;
  html?: string;
  /** Structured content for JSON channels (webhooks) and templates. */
  data: Record<string, unknown>;
  /** The same on every try and resend of this message (email Message-ID, webhook X-Lifeboat-Message-Id). */
  messageId?: string;
}

export interface NotificationChannel {
  /** "email", "webhook:<name>"… */
  readonly name: string;
  /** Longest one try may take (its own timeouts are the first bound; this one catches a trickling peer). */
  readonly attemptTimeoutMs?: number;
  send(message: OutboundMessage, signal?: AbortSignal): Promise<void>;
}
