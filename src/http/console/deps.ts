import type { Recovery, RecoveryDetail, RecoveryState } from "../../domain/model.js";

/**
 * Everything the console reads and does, and nothing more. It is built in one place from
 * the running lifeboat (from-app.ts); the pages, the live updates and the tests know only
 * this interface.
 */
export interface ConsoleDeps {
  status(): Promise<ConsoleStatus>;
  /** Alertmanager silences that pause lifeboat; `null` when no Alertmanager is configured. */
  silences(): Promise<SilencesView | null>;
  /** Newest first; `more` says whether an older page exists. */
  recoveries(q: RecoveryQuery): Promise<{ rows: Recovery[]; more: boolean }>;
  recovery(id: string): Promise<RecoveryDetail | null>;
  host(host: string): Promise<HostView>;
  /** Hosts lifeboat holds down (fenced) until an operator releases them. */
  heldHosts(): Promise<HeldHost[]>;
  actions: ConsoleActions;
  /** Journal writes of this process, as they happen; returns the unsubscribe. */
  onChange(listener: (change: ConsoleChange) => void): () => void;
}

export type ConsoleChange = { recoveryId: string; host?: string } | { hostState: string } | { setting: string };

export interface ConsoleStatus {
  version: string;
  instance: string;
  leader: { self: boolean; id: string | null };
  store: string;
  dryRun: boolean;
  pause: { paused: boolean; by: string; reason: string; at: string };
  storm: { tripped: boolean; since: string | null; blockedHosts: string[] };
  openByState: Partial<Record<RecoveryState, number>>;
}

export interface SilencesView {
  /** Silences that pause everything (the pause matcher) or one host. */
  pausing: { id: string; scope: string; createdBy: string; endsAt: string; comment: string }[];
  /** Alertmanager could not be asked; the gate decides on its own each time. */
  error?: string;
}

export interface RecoveryQuery {
  host?: string;
  states?: RecoveryState[];
  open?: boolean;
  offset: number;
  limit: number;
}

export interface FenceDeviceView {
  label: string;
  driver: string;
  /** The last power state lifeboat read (from the journal: no device is asked for a page). */
  lastKnown: { state: string; words: string; at: string; recoveryId: string } | null;
}

export interface ReleaseView {
  state: string;
  by: string;
  startedAt: string;
  finishedAt?: string;
  message?: string;
}

export interface HostView {
  host: string;
  hold: { fenced: boolean; recoveryId: string; by: string; at: string } | null;
  release: ReleaseView | null;
  openRecovery: string | null;
  devices: FenceDeviceView[];
  recoveries: Recovery[];
}

export interface HeldHost {
  host: string;
  recoveryId: string;
  since: string;
  by: string;
  release: ReleaseView | null;
}

/** An action's answer, with the control API's status codes (404, 409, 400…). */
export type ActionResult = { ok: true; message: string } | { ok: false; status: number; message: string };

/** The operator actions, with exactly the control API's rules; `actor` is who asked. */
export interface ConsoleActions {
  approve(id: string, actor: string): Promise<ActionResult>;
  cancel(id: string, actor: string, reason: string | undefined): Promise<ActionResult>;
  pause(actor: string, reason: string): Promise<ActionResult>;
  resume(actor: string): Promise<ActionResult>;
  release(host: string, actor: string): Promise<ActionResult>;
}
