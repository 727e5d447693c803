import type { Logger } from "../logging.js";
import type { Recovery } from "../domain/model.js";
import { errorMessage } from "../util/errors.js";
import type { Claim, HostClaims } from "./claims.js";
import { Coalesced } from "../util/coalesced.js";

/**
 * The check an HA instance runs right before every side effect of a recovery (fence,
 * force-down, each evacuate): it claims the host for the recovery once, then proves the
 * claim still stands in etcd under a fresh leadership term. Any doubt throws, and the
 * side effect is not sent.
 *
 * The recovery's workers (one per evacuation slot) share it. Within this instance there is
 * at most one claim of a host in flight: workers that need the claim while another is
 * taking it wait for that answer instead of racing it (a race with itself used to make
 * the claim give up, "it kept changing under us", and abort the stage after a takeover).
 * Concurrent checks of one claim share one etcd round trip, always one that started after
 * the caller asked, so every side effect is still preceded by its own proof.
 */
export class ClaimGuard {
  /** Claims held, by recovery id. */
  readonly #held = new Map<string, Claim>();
  /** The claim being taken, by host: one at a time per host. */
  readonly #claiming = new Map<string, { recoveryId: string; claim: Promise<Claim> }>();
  readonly #checks = new WeakMap<Claim, Coalesced>();

  constructor(
    private readonly claims: Pick<HostClaims, "claim" | "assertHeld" | "release">,
    private readonly logger: Logger,
  ) {}

  async check(recovery: Pick<Recovery, "id" | "host">, what: string): Promise<void> {
    const claim = await this.claimFor(recovery);
    try {
      await this.confirm(claim);
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

  /** The claim this recovery holds, or the one being taken for it, or a new one. */
  private async claimFor(recovery: Pick<Recovery, "id" | "host">): Promise<Claim> {
    for (;;) {
      const held = this.#held.get(recovery.id);
      if (held && !held.signal.aborted) return held;
      const pending = this.#claiming.get(recovery.host);
      if (pending?.recoveryId === recovery.id) return pending.claim;
      if (pending) {
        // Taken for another recovery of the host (one that just ended): wait, then claim for ours.
        await pending.claim.catch(() => undefined);
        continue;
      }
      const claim = this.claims.claim(recovery.host, recovery.id).then((c) => {
        this.#held.set(recovery.id, c);
        return c;
      });
      const entry = { recoveryId: recovery.id, claim };
      this.#claiming.set(recovery.host, entry);
      const forget = (): void => {
        if (this.#claiming.get(recovery.host) === entry) this.#claiming.delete(recovery.host);
      };
      claim.then(forget, forget);
      return claim;
    }
  }

  private confirm(claim: Claim): Promise<void> {
    let c = this.#checks.get(claim);
    if (!c) {
      c = new Coalesced(() => this.claims.assertHeld(claim));
      this.#checks.set(claim, c);
    }
    return c.request();
  }
}
