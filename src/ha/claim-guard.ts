import type { Logger } from "../logging.js";
import type { Recovery } from "../recovery/model.js";
import { errorMessage } from "../util/errors.js";
import type { Claim, HostClaims } from "./claims.js";

/**
 * The check an HA instance runs right before every side effect of a recovery (fence,
 * force-down, each evacuate): it claims the host for the recovery once, then proves the
 * claim still stands in etcd under a fresh leadership term. Any doubt throws, and the
 * side effect is not sent.
 */
export class ClaimGuard {
  readonly #held = new Map<string, Claim>();

  constructor(
    private readonly claims: HostClaims,
    private readonly logger: Logger,
  ) {}

  async check(recovery: Recovery, what: string): Promise<void> {
    let claim = this.#held.get(recovery.id);
    if (!claim || claim.signal.aborted) {
      claim = await this.claims.claim(recovery.host, recovery.id);
      this.#held.set(recovery.id, claim);
    }
    try {
      await this.claims.assertHeld(claim);
    } catch (err) {
      // Unconfirmed is lost: the next check claims the host anew (which only succeeds
      // while this instance leads and nobody else holds the host).
      if (this.#held.get(recovery.id) === claim) this.#held.delete(recovery.id);
      throw err;
    }
    this.logger.debug({ recovery: recovery.id, host: recovery.host, what }, "host claim confirmed");
  }

  /** The recovery ended: give the host up. */
  async release(recoveryId: string): Promise<void> {
    const claim = this.#held.get(recoveryId);
    this.#held.delete(recoveryId);
    if (!claim) return;
    await this.claims.release(claim).catch((err: unknown) => this.logger.warn({ err: errorMessage(err), host: claim.host }, "could not release host claim"));
  }

  /** Forget every claim (the term ended: they vanish with its lease). */
  forget(): void {
    this.#held.clear();
  }
}

/** Errors after which this instance must stop acting (it no longer leads or holds the host). */
export function isLeadershipLoss(err: unknown): boolean {
  return err instanceof Error && ["ClaimLostError", "NotLeaderError", "LeadershipLostError"].includes(err.name);
}

/** Another instance holds the host: wait, do not fail the recovery. */
export function isHeldElsewhere(err: unknown): boolean {
  return err instanceof Error && err.name === "ClaimHeldError";
}
