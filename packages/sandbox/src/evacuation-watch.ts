import type { SandboxState, SimMigration, SimRequest } from "./cloud-state.js";

/**
 * What Nova itself saw of the evacuations since a reset, for experiments that must not take
 * the word of the client under test: how many ran at once, and how many evacuate calls each
 * server received.
 *
 * In flight: an evacuation Nova accepted (migration `accepted` or `pre-migrating`) and that has
 * not ended. The maximum is exact rather than polled: each evacuation's migration record says
 * when it was accepted and when it ended (the rebuild done, or the scheduling failed), and the
 * count can only rise when one is accepted, so a sweep over those instants finds every peak,
 * however short. An evacuation still open counts until now.
 */
export interface EvacuationCount {
  id: string;
  name: string;
  /** evacuate POSTs for this server since the reset (answered or not, accepted or refused). */
  posts: number;
  /** Evacuations of it Nova accepted since the reset (its migration records). */
  accepted: number;
}

export interface EvacuationWatchView {
  /** When the window began (the last reset, or the start of the cloud). */
  since: string;
  inFlight: number;
  maxInFlight: number;
  /** When the maximum was first reached (null: no evacuation in the window). */
  maxAt: string | null;
  /** Evacuate POSTs and accepted evacuations in the window, over every server. */
  posts: number;
  accepted: number;
  /** Servers with at least one evacuate POST or accepted evacuation, by id. */
  servers: EvacuationCount[];
}

/** Migration statuses of an evacuation that is still acting (nova/objects/migration.py). */
const OPEN = new Set(["accepted", "pre-migrating"]);
const EVACUATE_PATH = /^\/v2\.1\/servers\/([^/]+)\/action$/;

export class EvacuationWatch {
  private sinceMs: number;
  private sinceSeq: number;
  private migrationsFrom = 0;

  constructor(private readonly state: SandboxState) {
    this.sinceMs = state.clock.now();
    this.sinceSeq = 0;
  }

  /** Start a new window: the maximum and the counts start again from what is in flight now. */
  reset(): void {
    this.state.settle();
    this.sinceMs = this.state.clock.now();
    this.sinceSeq = this.state.requests.at(-1)?.seq ?? 0;
    // Migrations that ended before the window can be skipped from now on (the list only grows).
    while (this.migrationsFrom < this.state.migrations.length && this.endOf(this.state.migrations[this.migrationsFrom]!) <= this.sinceMs) this.migrationsFrom++;
  }

  inFlight(): number {
    this.state.settle();
    const now = this.state.clock.now();
    let n = 0;
    for (let i = this.migrationsFrom; i < this.state.migrations.length; i++) {
      const m = this.state.migrations[i]!;
      if (m.createdMs <= now && this.endOf(m) > now) n++;
    }
    return n;
  }

  view(): EvacuationWatchView {
    this.state.settle();
    const peak = this.peak();
    const counts = new Map<string, EvacuationCount>();
    const count = (id: string): EvacuationCount => {
      let c = counts.get(id);
      if (!c) {
        c = { id, name: this.state.servers.get(id)?.name ?? id, posts: 0, accepted: 0 };
        counts.set(id, c);
      }
      return c;
    };
    let posts = 0;
    for (const q of this.requestsSinceReset()) {
      const id = evacuatedServer(q);
      if (id === undefined) continue;
      count(id).posts++;
      posts++;
    }
    let accepted = 0;
    for (let i = this.migrationsFrom; i < this.state.migrations.length; i++) {
      const m = this.state.migrations[i]!;
      if (m.migrationType !== "evacuation" || m.createdMs < this.sinceMs) continue;
      count(m.instanceUuid).accepted++;
      accepted++;
    }
    return {
      since: new Date(this.sinceMs).toISOString(),
      inFlight: this.inFlight(),
      maxInFlight: peak.max,
      maxAt: peak.at === null ? null : new Date(peak.at).toISOString(),
      posts,
      accepted,
      servers: [...counts.values()],
    };
  }

  /** The most evacuations open at once in the window, and when that was first reached. */
  private peak(): { max: number; at: number | null } {
    const now = this.state.clock.now();
    const events: [number, number][] = [];
    for (let i = this.migrationsFrom; i < this.state.migrations.length; i++) {
      const m = this.state.migrations[i]!;
      if (m.migrationType !== "evacuation") continue;
      const end = this.endOf(m);
      if (end <= this.sinceMs) continue;
      events.push([Math.max(m.createdMs, this.sinceMs), 1]);
      if (end <= now) events.push([end, -1]);
    }
    // At one instant ends go first: an evacuation that ended as another was accepted never overlapped it.
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let n = 0;
    let max = 0;
    let at: number | null = null;
    for (const [t, d] of events) {
      n += d;
      if (n > max) {
        max = n;
        at = t;
      }
    }
    return { max, at };
  }

  /** When an evacuation stopped acting: its rebuild done, or its scheduling failed; +∞ while open. */
  private endOf(m: SimMigration): number {
    if (OPEN.has(m.status)) return Number.POSITIVE_INFINITY;
    if (m.status === "error") return m.plan.preAtMs;
    return m.plan.endAtMs;
  }

  private *requestsSinceReset(): Generator<SimRequest> {
    const log = this.state.requests;
    // The log is in seq order: find the first request after the reset by bisection.
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (log[mid]!.seq <= this.sinceSeq) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < log.length; i++) yield log[i]!;
  }
}

/** The server an evacuate POST names, if `q` is one. */
function evacuatedServer(q: SimRequest): string | undefined {
  if (q.service !== "compute" || q.method !== "POST") return undefined;
  const m = EVACUATE_PATH.exec(q.path);
  if (!m || typeof q.body !== "object" || q.body === null || !("evacuate" in q.body)) return undefined;
  return decodeURIComponent(m[1]!);
}
