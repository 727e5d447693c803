import type { KeystoneSession } from "./keystone.js";
import { OpenStackConnectionError } from "./errors.js";
import { OpenStackApiError, type OpenStackRequest, type ServiceType } from "./types.js";
import { isAbortError } from "../util/abort.js";
import { errorMessage } from "../util/errors.js";
import { systemClock, type Clock } from "../util/clock.js";
import type { ReadinessCheck } from "../util/readiness.js";

/**
 * What `/readyz` knows of the cloud without asking it: the outcome of the last call lifeboat
 * made to each OpenStack service on its own business (start-up negotiation, gates,
 * recoveries, the native monitor). No probe ever calls the cloud — doctor does that.
 *
 * Reachable means the service answered: a 404 or 409 is an answer. Unreachable is no answer
 * (connection refused, timeout, TLS), a 5xx, or Keystone refusing lifeboat's credentials.
 */
interface Outcome {
  ok: boolean;
  atMs: number;
  detail: string;
}

export class CloudReachability {
  readonly #last = new Map<ServiceType, Outcome>();
  readonly #clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  record(service: ServiceType, ok: boolean, detail: string): void {
    this.#last.set(service, { ok, atMs: this.#clock.now(), detail });
  }

  /** The last outcome per service ("not contacted yet" before the first call). */
  readiness(): ReadinessCheck {
    if (this.#last.size === 0) return { ok: true, required: false, detail: "not contacted yet" };
    const now = this.#clock.now();
    const parts = [...this.#last.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([service, o]) => `${service} ${o.ok ? "answered" : `unreachable (${o.detail})`} ${Math.max(0, Math.round((now - o.atMs) / 1000))} s ago`);
    // Advisory: an instance whose cloud is down must still journal the alerts it receives.
    return { ok: [...this.#last.values()].every((o) => o.ok), required: false, detail: parts.join("; ") };
  }
}

/** Did the service answer? `undefined` for our own cancellations, which say nothing about it. */
export function answered(err: unknown): boolean | undefined {
  if (isAbortError(err)) return undefined;
  if (err instanceof OpenStackConnectionError) return false;
  if (err instanceof OpenStackApiError) return err.status < 500 && !(err.status === 401 && err.url.endsWith("/auth/tokens"));
  return undefined;
}

/** The same session, with every request's and authentication's outcome recorded. */
export function trackReachability(session: KeystoneSession, tracker: CloudReachability): KeystoneSession {
  const observe = async <T>(service: ServiceType, call: () => Promise<T>): Promise<T> => {
    try {
      const v = await call();
      tracker.record(service, true, "answered");
      return v;
    } catch (err) {
      const ok = answered(err);
      if (ok !== undefined) tracker.record(isKeystoneError(err) ? "identity" : service, ok, errorMessage(err));
      throw err;
    }
  };
  return {
    get credentials() {
      return session.credentials;
    },
    describe: () => session.describe(),
    authenticate: (signal?: AbortSignal) => observe("identity", () => session.authenticate(signal)),
    endpoint: (service: ServiceType, signal?: AbortSignal) => session.endpoint(service, signal),
    tokenInfo: () => session.tokenInfo(),
    invalidateToken: () => session.invalidateToken(),
    close: () => session.close(),
    request: <T = unknown>(req: OpenStackRequest) => observe(req.service, () => session.request<T>(req)),
  };
}

/** A request that failed while authenticating failed at Keystone, whatever service it was for. */
function isKeystoneError(err: unknown): boolean {
  return (err instanceof OpenStackApiError || err instanceof OpenStackConnectionError) && /\/auth\/tokens$/.test(err.url.split("?")[0] ?? "");
}
