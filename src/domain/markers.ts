/**
 * The marks lifeboat leaves in Nova: every nova-compute `disabled_reason` and server lock
 * reason it writes starts with `lifeboat:` and names its recovery. They double as state kept
 * in Nova (start-up reconciliation and the sweep of stale locks read them back), so their
 * shape is part of the domain, not of the Nova adapter.
 */

/** Every disabled_reason and lock reason lifeboat writes starts with this. */
export const LIFEBOAT_REASON_PREFIX = "lifeboat:";

/** True for a reason lifeboat wrote; false for a human's (or none). */
export function isLifeboatReason(reason: string | null | undefined): boolean {
  return typeof reason === "string" && reason.trimStart().startsWith(LIFEBOAT_REASON_PREFIX);
}

/** The recovery a lifeboat reason names ("… (recovery r-…)", "… recovery r-… fenced …"), if any. */
export function reasonRecoveryId(reason: string | null | undefined): string | null {
  if (!isLifeboatReason(reason)) return null;
  return /\brecovery ([^\s()]+)/.exec(reason ?? "")?.[1] ?? null;
}

/** `reason`, prefixed with `lifeboat:` when it is not already. */
export function lifeboatReason(reason: string): string {
  const r = reason.trim();
  return isLifeboatReason(r) ? r : `${LIFEBOAT_REASON_PREFIX} ${r}`;
}

/** The reason lifeboat writes when it fences and isolates a host for a recovery. */
export function isolationReason(recoveryId: string, fencedAt: string): string {
  return `${LIFEBOAT_REASON_PREFIX} recovery ${recoveryId} fenced ${fencedAt}`;
}
