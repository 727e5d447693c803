/**
 * The errors the core speaks in. An operator's request fails as not found, conflicting with
 * the current state, or refused as it stands; http/ maps them to 404, 409 and 400. An
 * instance that must not act now (it does not lead, or another instance holds the host)
 * says so with NotOursError, which the engine answers by changing nothing and looking again.
 */

/** What was asked about does not exist. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** The request conflicts with the current state (a recovery past the point of no return, a host still failing…). */
export class ConflictError extends Error {
  override name = "ConflictError";
}

/** The request cannot be carried out as it stands (no fencing for the host, nothing to release…). */
export class RefusedError extends Error {
  override name = "RefusedError";
}

/** This instance must not act on the host now: it does not lead, or it lost the host's claim. */
export class NotOursError extends Error {
  override name = "NotOursError";
}

/** Another instance holds the host: wait for it, do not fail the recovery. */
export class HeldElsewhereError extends NotOursError {
  override name = "HeldElsewhereError";
}

/** This instance no longer leads or holds the host: stop acting (not: another instance holds it). */
export function isLeadershipLoss(err: unknown): boolean {
  return err instanceof NotOursError && !(err instanceof HeldElsewhereError);
}

/** Another instance holds the host. */
export function isHeldElsewhere(err: unknown): boolean {
  return err instanceof HeldElsewhereError;
}

/**
 * A failure no retry can change: a refusal (HTTP 4xx, SMTP 5xx), bad credentials, a missing
 * object, a device that does not exist. The one word every adapter uses for it: its errors
 * carry `permanent` (DeviceError, DeliveryError, OpenStackApiError), or it throws this class.
 * A step's retry policy (engine/retry-policy.ts) never retries one; everything else is
 * transient and retried by the step, not by the transport under it.
 */
export class PermanentError extends Error {
  override name = "PermanentError";
  readonly permanent = true;
}

/** The error says retrying is pointless (see PermanentError). */
export function isPermanent(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { permanent?: unknown }).permanent === true;
}
