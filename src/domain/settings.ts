import type { SelectionPolicy } from "./selection.js";

/**
 * The settings the engine runs on: a slice of the configuration (config/schema.ts), which the
 * composition root passes whole; the engine never reads the rest of it.
 */
export interface EngineSettings {
  recovery: {
    grace_seconds: number;
    dry_run: boolean;
    recheck_interval_seconds: number;
    evidence_recheck_interval_seconds: number;
    step_retries: number;
  };
  notifications: { blocked_delay_seconds: number };
  evacuation: EvacuationPolicy;
  alerts: {
    trigger_alertnames: readonly string[];
    unknown_hosts: { notify_interval_seconds: number; max_listed: number };
  };
}

/** How instances are evacuated: selection, order, bounds and re-issues. */
export interface EvacuationPolicy extends SelectionPolicy {
  /** Per recovery. */
  concurrency: number;
  /** Evacuations in flight across every recovery of this process (the engine's evacuation budget). */
  site_concurrency: number;
  /** The same per availability zone; 0: none. */
  zone_concurrency: number;
  stagger_ms: number;
  instance_timeout_seconds: number;
  no_answer_window_seconds: number;
  retries: number;
  reserved_hosts: readonly string[];
}
