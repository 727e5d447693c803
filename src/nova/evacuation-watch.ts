import type { Logger } from "../logging.js";
import { abortReason } from "../util/abort.js";
import type { Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { newestFirst, type DatedListing, type NovaClient, type NovaMigration, type NovaServer } from "../openstack/nova.js";

/**
 * One shared look at Nova for every evacuation from one failed host: instead of a GET of the
 * server and a GET of its migrations per instance per poll, each poll cycle asks Nova one or
 * two listings for all of them —
 *
 * - the servers: the first time the failed host's listing (`GET /servers/detail?all_tenants=1
 *   &host=HOST`, usually the one the evacuating stage already made), then only what changed
 *   (`changes-since`: every server whose `updated_at` is at or after it, deleted ones
 *   included with status DELETED; the servers leave the host, so the filter cannot be `host`);
 * - the host's evacuation migrations (`GET /os-migrations?source_compute=HOST
 *   &migration_type=evacuation`), from 2.59 with `changes-since` after the first; below 2.59
 *   Nova ignores that filter, so the whole listing is asked. Only in the cycles that need
 *   it: see LookPurpose.
 *
 * Changed records are laid over what earlier cycles saw, so each cycle yields the current
 * state of every server of the host. A server the host listing never showed (it had left
 * before; a resumed recovery) is asked once by GET, then followed by the changes too.
 *
 * Every look is a cycle that starts after it was asked for: an attempt never decides on what
 * Nova showed before it began (inspect before acting). Cycles run at most once per poll
 * interval while someone waits, and stop when nobody does. `changes-since` starts from the
 * previous listing's mark (nextMark: Nova's time of it, never later than the newest record
 * it returned) less a margin for the clocks of the services writing `updated_at`: a record
 * may come twice, never be missed. The one decision a shared look does not make alone (that
 * an unanswered evacuate did nothing, so it may be sent again) is confirmed by a look of its
 * own at the server (driver.ts, afterNoAnswer).
 */

/**
 * Why a look is asked, which tells whether its cycle lists the migrations as well as the
 * servers (after the first cycle, which always lists both):
 *
 * - `decide`: what a refused or unanswered call did: the migrations are listed.
 * - `first`: the look before lifeboat's evacuate. The server's record decides: nova-api marks
 *   the server `rebuilding` before it creates an evacuation migration, so a migration newer
 *   than the last listing of them always comes with a change of the server this look shows
 *   (busy: not sent; or already elsewhere, or idle again after it ended). Migrations listed
 *   before stay in the view: an open one is still seen.
 * - `track`: following a running evacuation. While the server is busy its record alone says
 *   so; the migrations are listed once it is idle again (done or failed: the migration says
 *   which) or gone.
 */
export type LookPurpose = "decide" | "first" | "track";

/** What one look shows of one server. */
export interface ServerLook {
  /** null: Nova has no such server any more (404, or listed DELETED). */
  server: NovaServer | null;
  /** Its evacuation migrations from the watched host, newest first. */
  evacuations: NovaMigration[];
  /** When the look's cycle started (clock ms): it shows nothing older than this instant. */
  sentAt: number;
}

/** How far before the previous listing's mark `changes-since` reaches back (clock skew between Nova's services, commit lag). */
export const CHANGES_SINCE_MARGIN_MS = 10_000;

export interface WatchDeps {
  nova: NovaClient;
  clock: Clock;
  log: Logger;
  pollIntervalMs: number;
}

interface Waiter {
  ids: readonly string[];
  purpose: LookPurpose;
  /** The first cycle that may answer it: one that starts after it asked. */
  cycle: number;
  resolve(looks: Map<string, ServerLook>): void;
  reject(err: unknown): void;
}

/** A record's `updated_at` (servers: `updated`, with a zone; migrations: naive UTC), ms; undefined when it has none. */
export function updatedAt(raw: string | null | undefined): number | undefined {
  if (!raw) return undefined;
  const ms = Date.parse(/(Z|[+-]\d{2}:?\d{2})$/.test(raw) ? raw : `${raw}Z`);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Where the next `changes-since` starts after a listing (before the margin), in Nova's time.
 *
 * - Its `Date` less the round trip: at or before the instant Nova read its records (Date has
 *   whole seconds and is written as the answer goes out).
 * - For a listing of changes, never later than the newest `updated_at` it returned: those
 *   stamps come from the clocks of the services writing the records, which a proxy's Date
 *   (or a Date-less answer) does not speak for; a record written after the read carries a
 *   later stamp than one written before it, whoever's clock is off. When it returned nothing,
 *   nothing changed: the mark stays where it was.
 * - A complete listing (the host's servers, its migrations) has no such bound (its newest
 *   record may be days old, and `changes-since` over the cloud from then would list half of
 *   it): its Date decides, or its newest record when it sent none.
 *
 * undefined: no base known yet; the next listing is a complete one again.
 */
export function nextMark(
  prev: number | undefined,
  listing: DatedListing<unknown>,
  stamps: readonly (number | undefined)[],
  how: { complete: boolean; sentAt: number; receivedAt: number },
): number | undefined {
  const dated = listing.date === undefined ? undefined : listing.date - Math.max(0, how.receivedAt - how.sentAt);
  const known = stamps.filter((t): t is number => t !== undefined);
  const newest = known.length ? Math.max(...known) : undefined;
  if (how.complete) return dated ?? newest;
  if (newest === undefined) return prev;
  return dated === undefined ? newest : Math.min(dated, newest);
}

export class HostEvacuationWatch {
  private readonly servers = new Map<string, NovaServer | null>();
  private readonly migrations = new Map<number, NovaMigration>();
  /** `changes-since` bases; undefined: no complete listing yet. */
  private serversMark: number | undefined;
  private migrationsMark: number | undefined;
  private readonly waiters = new Set<Waiter>();
  private cycles = 0;
  private lastStart = Number.NEGATIVE_INFINITY;
  private lastEnd = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private running: AbortController | undefined;
  private usedAt: number;

  constructor(
    readonly source: string,
    private readonly deps: WatchDeps,
  ) {
    this.usedAt = deps.clock.now();
  }

  /**
   * The host's server listing made elsewhere (the stage's instance list): the base the first
   * cycle's changes are laid over, instead of a listing of its own.
   */
  seed(listing: DatedListing<NovaServer>, sentAt: number, receivedAt: number): void {
    if (this.serversMark !== undefined) return;
    for (const s of listing.items) this.servers.set(s.id, s);
    this.serversMark = nextMark(undefined, listing, listing.items.map((s) => updatedAt(s.updated)), { complete: true, sentAt, receivedAt });
    this.usedAt = this.deps.clock.now();
  }

  /** Nobody waits, nothing runs, and nobody asked for `ms`: the view may be dropped. */
  idleFor(ms: number): boolean {
    return this.waiters.size === 0 && !this.running && this.deps.clock.now() - this.usedAt >= ms;
  }

  /** The servers as the next cycle (one that starts after this call) shows them. */
  look(ids: readonly string[], signal?: AbortSignal, purpose: LookPurpose = "decide"): Promise<Map<string, ServerLook>> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    this.usedAt = this.deps.clock.now();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(w);
        reject(abortReason(signal));
        this.nobodyWaits();
      };
      const w: Waiter = {
        ids,
        purpose,
        cycle: this.cycles + 1,
        resolve: (v) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(v);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e instanceof Error ? e : new Error(errorMessage(e)));
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(w);
      this.schedule();
    });
  }

  private nobodyWaits(): void {
    if (this.waiters.size > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // Polls stop when nobody waits: a cycle under way is called off too.
    this.running?.abort(new Error("nobody waits for this look any more"));
  }

  private schedule(): void {
    if (this.running || this.timer || this.waiters.size === 0) return;
    const now = this.deps.clock.now();
    const interval = this.deps.pollIntervalMs;
    // Coming out of idleness, wait a moment so that looks asked together share a cycle.
    const gather = now - this.lastEnd > interval ? Math.min(50, interval / 2) : 0;
    const at = Math.max(this.lastStart + interval, this.lastEnd, now + gather);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, Math.max(0, at - now));
  }

  private async run(): Promise<void> {
    const ctl = new AbortController();
    this.running = ctl;
    const cycle = ++this.cycles;
    const sentAt = this.deps.clock.now();
    this.lastStart = sentAt;
    const due = [...this.waiters].filter((w) => w.cycle <= cycle);
    const wanted = new Set(due.flatMap((w) => w.ids));
    try {
      await this.deps.nova.negotiate(ctl.signal);
      await this.refreshServers(wanted, ctl.signal);
      // Servers no listing showed (they had left the host before the first one): asked once each.
      const unknown = [...wanted].filter((id) => !this.servers.has(id));
      const found = await Promise.all(unknown.map((id) => this.deps.nova.getServer(id, ctl.signal)));
      unknown.forEach((id, i) => this.servers.set(id, found[i] ?? null));
      // The migrations after the servers: never older than them (a server seen idle comes
      // with its migration's end, or a later state of it, not an earlier one).
      if (this.needsMigrations(due)) await this.refreshMigrations(ctl.signal);
      for (const w of due) {
        this.waiters.delete(w);
        w.resolve(this.snapshot(w.ids, sentAt));
      }
    } catch (err) {
      if (!ctl.signal.aborted) this.deps.log.debug({ host: this.source, err: errorMessage(err) }, "could not look at the host's evacuations");
      for (const w of due) {
        this.waiters.delete(w);
        w.reject(err);
      }
    } finally {
      this.running = undefined;
      this.lastEnd = this.deps.clock.now();
      this.usedAt = this.lastEnd;
      this.schedule();
    }
  }

  /** Whether this cycle lists the migrations (see LookPurpose). */
  private needsMigrations(due: readonly Waiter[]): boolean {
    if (this.migrationsMark === undefined) return true;
    for (const w of due) {
      if (w.purpose === "decide") return true;
      if (w.purpose !== "track") continue;
      for (const id of w.ids) {
        const s = this.servers.get(id);
        if (!s || (s["OS-EXT-STS:task_state"] ?? null) === null) return true;
      }
    }
    return false;
  }

  private async refreshServers(wanted: ReadonlySet<string>, signal: AbortSignal): Promise<void> {
    const { nova, clock } = this.deps;
    const sentAt = clock.now();
    if (this.serversMark === undefined) {
      const listing = await nova.listServersDated({ all_tenants: 1, host: this.source }, signal);
      for (const s of listing.items) this.servers.set(s.id, s);
      this.serversMark = nextMark(undefined, listing, listing.items.map((s) => updatedAt(s.updated)), { complete: true, sentAt, receivedAt: clock.now() });
      return;
    }
    const since = new Date(this.serversMark - CHANGES_SINCE_MARGIN_MS).toISOString();
    const listing = await nova.listServersDated({ all_tenants: 1, "changes-since": since }, signal);
    // Every server of the cloud that changed: only those of this host (or asked about) are kept.
    for (const s of listing.items) {
      if (this.servers.has(s.id) || wanted.has(s.id)) this.servers.set(s.id, s.status === "DELETED" ? null : s);
    }
    this.serversMark = nextMark(this.serversMark, listing, listing.items.map((s) => updatedAt(s.updated)), { complete: false, sentAt, receivedAt: clock.now() });
  }

  private async refreshMigrations(signal: AbortSignal): Promise<void> {
    const { nova, clock } = this.deps;
    const filter = { source_compute: this.source, migration_type: "evacuation" };
    const sentAt = clock.now();
    if (this.migrationsMark === undefined || !nova.supports("2.59")) {
      const listing = await nova.listMigrationsDated(filter, signal);
      this.migrations.clear();
      for (const m of listing.items) this.migrations.set(m.id, m);
      this.migrationsMark = nextMark(undefined, listing, listing.items.map((m) => updatedAt(m.updated_at)), { complete: true, sentAt, receivedAt: clock.now() });
      return;
    }
    const since = new Date(this.migrationsMark - CHANGES_SINCE_MARGIN_MS).toISOString();
    const listing = await nova.listMigrationsDated({ ...filter, "changes-since": since }, signal);
    for (const m of listing.items) this.migrations.set(m.id, m);
    this.migrationsMark = nextMark(this.migrationsMark, listing, listing.items.map((m) => updatedAt(m.updated_at)), { complete: false, sentAt, receivedAt: clock.now() });
  }

  private snapshot(ids: readonly string[], sentAt: number): Map<string, ServerLook> {
    const out = new Map<string, ServerLook>();
    for (const id of ids) {
      const evacuations = [...this.migrations.values()].filter((m) => m.instance_uuid === id).sort(newestFirst);
      out.set(id, { server: this.servers.get(id) ?? null, evacuations, sentAt });
    }
    return out;
  }
}
