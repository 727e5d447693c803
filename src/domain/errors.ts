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
