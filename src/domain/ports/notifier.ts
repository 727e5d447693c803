import type { RecoveryDetail } from "../model.js";

/**
 * What the engine needs from the notifier (src/notify/service.ts satisfies it structurally;
 * tests pass small fakes). Every method resolves once its messages are journaled: delivery
 * happens in the background and never holds a stage.
 */
export interface NotifySummary {
  sent: number;
  failed: number;
  skipped: number;
  /** Journaled for background delivery (the notifier resolves once they are durable, before any is sent). */
  queued?: number;
  /** What went wrong outside a single message (the journal…). */
  problems?: string[];
}

/**
 * Each method resolves once its messages are journaled: delivery happens in the background,
 * so a stage never waits for a mail server, a webhook or the lookups of who to tell.
 */
export interface NotifierPort {
  recoveryFinished(detail: RecoveryDetail, signal?: AbortSignal): Promise<NotifySummary>;
  recoveryBlocked(detail: RecoveryDetail, reason: string, signal?: AbortSignal): Promise<NotifySummary>;
  fenceFailed(detail: RecoveryDetail, signal?: AbortSignal): Promise<NotifySummary>;
  /** `until`: when the held recoveries go ahead on their own if no other host fails. */
  stormTripped(info: { hosts: string[]; reason: string; at: string; until?: string; recoveryId?: string }, signal?: AbortSignal): Promise<NotifySummary>;
  /** Operators only: one aggregated notice of alerts for hosts lifeboat cannot act on. */
  unknownHosts(info: UnknownHostsNotice, signal?: AbortSignal): Promise<NotifySummary>;
}

/** Alerts for hosts lifeboat cannot act on, gathered since the last notice. */
export interface UnknownHostsNotice {
  /** The names to list, each with the known host it likely meant (null: none alike). */
  hosts: { host: string; likely: string | null }[];
  /** Distinct names seen, listed or not. */
  hostCount: number;
  alertCount: number;
  since: string;
  at: string;
}
