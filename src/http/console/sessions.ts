import { createHash, randomBytes } from "node:crypto";
import type { Clock } from "../../util/clock.js";
import { safeEqual } from "../auth.js";

export interface Session {
  /** Sent back in every state-changing form and compared in constant time. */
  csrf: string;
  /** Recorded as the actor of every action taken in this session. */
  actor: string;
  createdAt: number;
  expiresAt: number;
  /** The outcome of the last action, shown once on the next page. */
  flash?: { kind: "ok" | "bad"; text: string };
}

/** The newest sessions are kept; past this the oldest is dropped (a login loop must not grow memory). */
const MAX_SESSIONS = 1000;

/**
 * Console sessions, in this process's memory: a restart ends them all, and each instance
 * of an HA pair has its own. The cookie carries a random id; only its hash is kept, so
 * the map's keys are worth nothing to someone who reads them. Expired sessions are
 * dropped when met or when a new one is made: no timer runs.
 */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();

  constructor(
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  /** A new session; returns the id for the cookie (never stored as such). */
  create(actor: string): { id: string; session: Session } {
    const now = this.clock.now();
    for (const [k, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(k);
    while (this.#sessions.size >= MAX_SESSIONS) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    const id = randomBytes(32).toString("base64url");
    const session: Session = { csrf: randomBytes(32).toString("base64url"), actor, createdAt: now, expiresAt: now + this.ttlMs };
    this.#sessions.set(hash(id), session);
    return { id, session };
  }

  /** The live session of this cookie value, or null (unknown, expired or ended). */
  get(id: string | undefined): Session | null {
    if (!id) return null;
    const key = hash(id);
    const s = this.#sessions.get(key);
    if (!s) return null;
    if (s.expiresAt <= this.clock.now()) {
      this.#sessions.delete(key);
      return null;
    }
    return s;
  }

  destroy(id: string | undefined): void {
    if (id) this.#sessions.delete(hash(id));
  }

  get size(): number {
    return this.#sessions.size;
  }
}

export function csrfMatches(session: Session, given: unknown): boolean {
  return typeof given === "string" && given.length > 0 && safeEqual(given, session.csrf);
}

function hash(id: string): string {
  return createHash("sha256").update(id).digest("base64url");
}

/** Clients remembered by the throttle; past this the oldest record is dropped. */
const MAX_CLIENTS = 10_000;

/**
 * Failed logins, per client address: the first few are free, then each further failure
 * doubles the wait before the next try is even looked at (up to 15 minutes). A success
 * clears the record. The admin token is long and random; this keeps a guesser slow and
 * the log quiet. Records are looked at lazily: no timer.
 */
export class LoginThrottle {
  readonly #clients = new Map<string, { failures: number; lastAt: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly free = 5,
    private readonly maxWaitMs = 15 * 60_000,
  ) {}

  /** Milliseconds this client must still wait before its next try is checked (0: go ahead). */
  waitMs(client: string): number {
    const r = this.#clients.get(client);
    if (!r || r.failures < this.free) return 0;
    const wait = Math.min(this.maxWaitMs, 1000 * 2 ** (r.failures - this.free));
    const left = r.lastAt + wait - this.clock.now();
    if (left <= 0 && this.clock.now() - r.lastAt > this.maxWaitMs) this.#clients.delete(client);
    return Math.max(0, left);
  }

  failed(client: string): void {
    const r = this.#clients.get(client) ?? { failures: 0, lastAt: 0 };
    this.#clients.delete(client);
    if (this.#clients.size >= MAX_CLIENTS) {
      const oldest = this.#clients.keys().next().value;
      if (oldest !== undefined) this.#clients.delete(oldest);
    }
    this.#clients.set(client, { failures: r.failures + 1, lastAt: this.clock.now() });
  }

  succeeded(client: string): void {
    this.#clients.delete(client);
  }
}
