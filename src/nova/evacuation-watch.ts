import type { Logger } from "../logging.js";
import { abortReason } from "../util/abort.js";
import type { Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { ChangeMarks } from "./change-marks.js";
import { newestFirst, type DatedListing, type NovaClient, type NovaMigration, type NovaServer } from "../openstack/nova.js";

/**
 * One shared look at Nova for every evacuation lifeboat follows, whatever the number of
 * failed hosts: instead of a GET of the server and a GET of its migrations per instance per
 * poll, each poll cycle asks Nova one or two listings for all of them —
 *
 * - the servers: each failed host's listing once (`GET /servers/detail?all_tenants=1
 *   &host=HOST`, usually the one the evacuating stage already made), then only what changed,
 *   over the whole cloud (`changes-since`: every server whose `updated_at` is at or after it,
 *   deleted ones included with status DELETED; the servers leave their host, so the filter
 *   cannot be `host`) — one listing per cycle for every host at once;
 * - the evacuation migrations: each failed host's once (`GET /os-migrations?source_compute=
 *   HOST&migration_type=evacuation`), then, from 2.59, what changed over the cloud
 *   (`migration_type=evacuation&changes-since`), one listing per cycle for every host; below
 *   2.59 Nova ignores that filter, so each host's whole listing is asked again. Only in the
 *   cycles that need them: see LookPurpose.
 *
 * A rack of ten hosts costs Nova the same one or two listings per cycle as one host.
 *
 * Changed records are laid over what earlier cycles saw (a listing shows a record as it is
 * now, never older), so each cycle yields the current state of every server followed. A
 * server no listing showed (it had left before; a resumed recovery) is asked once by GET,
 * then followed by the changes too.
 *
 * Every look is a cycle that starts after it was asked for: an attempt never decides on what
 * Nova showed before it began (inspect before acting). The one shortcut, current(), answers
 * from the last complete cycle a look before an evacuate of a server lifeboat has not acted
 * on since that cycle started: nothing lifeboat did is missing from it. Cycles run at most once per poll
 * interval while someone waits (sooner, right after the last one, for the looks before
 * evacuates: see schedule), and stop when nobody does. `changes-since` starts from the
 * previous listing's mark (nextMark: Nova's time of it, never later than the newest record
 * it returned), never later than the listing a host was first known from, less a margin for
 * the clocks of the services writing `updated_at`: a record may come twice, never be missed.
 * The one decision a shared look does not make alone (that an unanswered evacuate did
 * nothing, so it may be sent again) is confirmed by a look of its own at the server
 * (driver.ts, afterNoAnswer).
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
 *   so, and once it is idle on another host too: Nova sets the server's host to the
 *   destination only when the evacuation has succeeded (with the migration's `done`). The
 *   migrations are listed when it is idle on the failed host again or on none (failed, or
 *   about to end: the migration says which), or gone.
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

/**
 * How far before the previous listing's mark `changes-since` reaches back (clock skew between
 * Nova's services, commit lag): on each cycle the short margin, on a catch-up cycle every
 * CATCH_UP_EVERY_MS the whole one (change-marks.ts).
 */
export const CHANGES_SINCE_MARGIN_MS = 10_000;
export const CHANGES_SINCE_SHORT_MARGIN_MS = 250;
export const CATCH_UP_EVERY_MS = 5_000;

const MARGINS = { shortMs: CHANGES_SINCE_SHORT_MARGIN_MS, fullMs: CHANGES_SINCE_MARGIN_MS, catchUpEveryMs: CATCH_UP_EVERY_MS };

/**
 * The oldest view current() answers from: two poll intervals, and never more than this,
 * whatever the poll interval (with the shipped 2 s, the view of the cycle that saw a slot
 * free, or of a host's fresh list; later looks are cycles). Nova accepts a second evacuate
 * of a server whose rebuild is running (sandbox, as observed), so the view a decision to
 * evacuate rests on stays about as fresh as a cycle of its own would be under load.
 */
export const CURRENT_VIEW_MAX_AGE_MS = 250;

/** How long the looks before evacuates gather before the cycle they bring forward (at most a quarter of the poll interval). */
export const FIRST_LOOK_GATHER_MS = 20;

export interface WatchDeps {
  nova: NovaClient;
  clock: Clock;
  log: Logger;
  pollIntervalMs: number;
  /** A view nobody used for this long is dropped (and built again when next asked). */
  retentionMs: number;
}

interface Waiter {
  ids: readonly string[];
  /** The failed host the servers are evacuated from. */
  host: string;
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

/** How far along the site's view of one failed host is. */
interface HostView {
  /** Its servers were listed (or seeded): the changes since are laid over them. */
  serversListed: boolean;
  /** Its evacuation migrations were listed once. */
  migrationsListed: boolean;
  /** When the listing its servers were seeded from was sent (seed()). */
  serversSeededAt?: number;
  /** Both were seeded (seed(), seedMigrations()): the view is complete as of this instant. */
  seededAt?: number;
}

export class EvacuationWatch {
  private readonly servers = new Map<string, NovaServer | null>();
  private readonly migrations = new Map<number, NovaMigration>();
  private readonly hosts = new Map<string, HostView>();
  /** `changes-since` bases over the cloud; undefined: no listing to lay changes over yet. */
  private readonly serverMarks = new ChangeMarks(MARGINS);
  private readonly migrationMarks = new ChangeMarks(MARGINS);
  /**
   * The earliest mark of a host's servers listing laid in while a cycle ran: that cycle's
   * own mark may not pass it, or the changes between the two could be missed.
   */
  private seededDuringCycle: number | undefined;
  /** The same for a host's migration listing laid in while a cycle ran. */
  private migrationsSeededDuringCycle: number | undefined;
  private readonly waiters = new Set<Waiter>();
  private cycles = 0;
  private lastStart = Number.NEGATIVE_INFINITY;
  private lastEnd = Number.NEGATIVE_INFINITY;
  /** When the last cycle that completed (every listing answered) started. */
  private lastCompleteStart = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  /** Waiters whose purpose is `first` (see schedule). */
  private firstWaiting = 0;
  private running: AbortController | undefined;
  private usedAt: number;

  constructor(private readonly deps: WatchDeps) {
    this.usedAt = deps.clock.now();
  }

  /**
   * A failed host's server listing made elsewhere (the stage's instance list): the base its
   * servers' changes are laid over, instead of a listing of the watch's own.
   */
  seed(host: string, listing: DatedListing<NovaServer>, sentAt: number, receivedAt: number): void {
    this.forgetIfIdle();
    const view = this.viewOf(host);
    if (view.serversListed) return;
    const mark = nextMark(undefined, listing, listing.items.map((s) => updatedAt(s.updated)), { complete: true, sentAt, receivedAt });
    // No time to lay changes over (no Date, no stamped record): the next cycle lists the host.
    if (mark === undefined) return;
    for (const s of listing.items) this.servers.set(s.id, s);
    view.serversListed = true;
    view.serversSeededAt = sentAt;
    this.lowerServersMark(mark);
    this.usedAt = this.deps.clock.now();
  }

  /**
   * A failed host's evacuation migrations listed elsewhere (with the stage's instance list,
   * after its servers): the host's view is then complete without a cycle of its own.
   */
  seedMigrations(host: string, listing: DatedListing<NovaMigration>, sentAt: number, receivedAt: number): void {
    this.forgetIfIdle();
    const view = this.viewOf(host);
    if (view.migrationsListed) return;
    const mark = nextMark(undefined, listing, listing.items.map((m) => updatedAt(m.updated_at)), { complete: true, sentAt, receivedAt });
    if (mark === undefined) return;
    this.layInMigrations(host, listing.items);
    if (view.serversSeededAt !== undefined) view.seededAt = Math.min(view.serversSeededAt, sentAt);
    this.migrationMarks.lower(mark);
    if (this.running) this.migrationsSeededDuringCycle = this.migrationsSeededDuringCycle === undefined ? mark : Math.min(this.migrationsSeededDuringCycle, mark);
    this.usedAt = this.deps.clock.now();
  }

  /**
   * The servers (evacuated from `host`) as the next cycle — one that starts after this
   * call — shows them.
   */
  look(ids: readonly string[], host: string, signal?: AbortSignal, purpose: LookPurpose = "decide"): Promise<Map<string, ServerLook>> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    this.forgetIfIdle();
    this.viewOf(host);
    this.usedAt = this.deps.clock.now();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.remove(w);
        reject(abortReason(signal));
        this.nobodyWaits();
      };
      const w: Waiter = {
        ids,
        host,
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
      this.add(w);
      this.schedule();
    });
  }

  /**
   * The servers as the last complete cycle showed them, if it started at or after `since`,
   * at most two poll intervals (and CURRENT_VIEW_MAX_AGE_MS) ago, and the host's servers and
   * migrations were followed by then; undefined: ask look().
   *
   * For a look before an evacuate of a server lifeboat has not acted on since `since`: the
   * view is as current as a cycle that would start now, less the time since that one
   * started, and nothing lifeboat did to the server is missing from it. A slot of the site's
   * budget does not stand idle for a cycle of its own.
   */
  current(ids: readonly string[], host: string, since: number): Map<string, ServerLook> | undefined {
    const view = this.hosts.get(host);
    if (!view?.serversListed || !view.migrationsListed) return undefined;
    // A host seeded after the last complete cycle started is as current as its seed.
    const asOf = Math.max(this.lastCompleteStart, view.seededAt ?? Number.NEGATIVE_INFINITY);
    if (asOf < since || this.deps.clock.now() - asOf > Math.min(2 * this.deps.pollIntervalMs, CURRENT_VIEW_MAX_AGE_MS)) return undefined;
    if (ids.some((id) => !this.servers.has(id))) return undefined;
    this.usedAt = this.deps.clock.now();
    return this.snapshot(ids, host, asOf);
  }

  private add(w: Waiter): void {
    this.waiters.add(w);
    if (w.purpose === "first") this.firstWaiting++;
  }

  private remove(w: Waiter): void {
    if (this.waiters.delete(w) && w.purpose === "first") this.firstWaiting--;
  }

  private viewOf(host: string): HostView {
    let v = this.hosts.get(host);
    if (!v) {
      v = { serversListed: false, migrationsListed: false };
      this.hosts.set(host, v);
    }
    return v;
  }

  /** A host's complete listing of its evacuation migrations replaces what was known of them. */
  private layInMigrations(host: string, items: readonly NovaMigration[]): void {
    for (const [id, m] of this.migrations) if (m.source_compute === host) this.migrations.delete(id);
    for (const m of items) this.migrations.set(m.id, m);
    this.viewOf(host).migrationsListed = true;
  }

  private lowerServersMark(mark: number): void {
    this.serverMarks.lower(mark);
    if (this.running) this.seededDuringCycle = this.seededDuringCycle === undefined ? mark : Math.min(this.seededDuringCycle, mark);
  }

  /**
   * A view nobody used for `retentionMs` is dropped: bringing it up to date would cost a
   * longer listing of changes than listing the hosts again, and it would only grow.
   */
  private forgetIfIdle(): void {
    if (this.waiters.size > 0 || this.running || this.deps.clock.now() - this.usedAt < this.deps.retentionMs) return;
    this.servers.clear();
    this.migrations.clear();
    this.hosts.clear();
    this.serverMarks.clear();
    this.migrationMarks.clear();
    this.lastCompleteStart = Number.NEGATIVE_INFINITY;
  }

  private nobodyWaits(): void {
    if (this.waiters.size > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    // Polls stop when nobody waits: a cycle under way is called off too.
    this.running?.abort(new Error("nobody waits for this look any more"));
  }

  private schedule(): void {
    if (this.running || this.waiters.size === 0) return;
    const now = this.deps.clock.now();
    const interval = this.deps.pollIntervalMs;
    // Coming out of idleness, wait a moment so that looks asked together share a cycle.
    const gather = now - this.lastEnd > interval ? Math.min(50, interval / 2) : 0;
    // A look before an evacuate holds a slot of the site's budget idle while it waits: it
    // brings the next cycle forward to a moment after the last one ended (the looks granted
    // together gather for it) instead of a poll interval after the last one began. Those
    // grants follow the ends a cycle saw, so this moves the cycles rather than adding many.
    const earliest = this.firstWaiting > 0 ? this.lastEnd + Math.min(FIRST_LOOK_GATHER_MS, interval / 4) : this.lastStart + interval;
    const at = Math.max(earliest, this.lastEnd, now + gather);
    if (this.timer) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      void this.run();
    }, Math.max(0, at - now));
  }

  private async run(): Promise<void> {
    const ctl = new AbortController();
    this.running = ctl;
    this.seededDuringCycle = undefined;
    this.migrationsSeededDuringCycle = undefined;
    const cycle = ++this.cycles;
    const sentAt = this.deps.clock.now();
    this.lastStart = sentAt;
    const due = [...this.waiters].filter((w) => w.cycle <= cycle);
    const wanted = new Set(due.flatMap((w) => w.ids));
    const hosts = [...new Set(due.map((w) => w.host))];
    try {
      await this.deps.nova.negotiate(ctl.signal);
      await this.refreshServers(hosts, wanted, ctl.signal);
      // Servers no listing showed (they had left the host before the first one): asked once each.
      const unknown = [...wanted].filter((id) => !this.servers.has(id));
      const found = await Promise.all(unknown.map((id) => this.deps.nova.getServer(id, ctl.signal)));
      unknown.forEach((id, i) => this.servers.set(id, found[i] ?? null));
      // The migrations after the servers: never older than them (a server seen idle comes
      // with its migration's end, or a later state of it, not an earlier one).
      const migrationHosts = this.migrationsNeeded(due);
      if (migrationHosts.length) await this.refreshMigrations(migrationHosts, ctl.signal);
      this.lastCompleteStart = sentAt;
      for (const w of due) {
        this.remove(w);
        w.resolve(this.snapshot(w.ids, w.host, sentAt));
      }
    } catch (err) {
      if (!ctl.signal.aborted) this.deps.log.debug({ hosts, err: errorMessage(err) }, "could not look at the evacuations");
      for (const w of due) {
        this.remove(w);
        w.reject(err);
      }
    } finally {
      this.running = undefined;
      this.seededDuringCycle = undefined;
      this.migrationsSeededDuringCycle = undefined;
      this.lastEnd = this.deps.clock.now();
      this.usedAt = this.lastEnd;
      this.schedule();
    }
  }

  /** The hosts whose migrations this cycle lists (see LookPurpose); empty: none. */
  private migrationsNeeded(due: readonly Waiter[]): string[] {
    const need = new Set<string>();
    for (const w of due) {
      if (!this.viewOf(w.host).migrationsListed || w.purpose === "decide") {
        need.add(w.host);
        continue;
      }
      if (w.purpose !== "track") continue;
      for (const id of w.ids) {
        const s = this.servers.get(id);
        if (!s) {
          need.add(w.host);
          continue;
        }
        // Idle on another host needs no migration: Nova moves the server's host only when its
        // evacuation has succeeded. Idle on the failed host (or on none), only the migration
        // tells a failed evacuation from one about to end.
        const at = s["OS-EXT-SRV-ATTR:host"] ?? null;
        if ((s["OS-EXT-STS:task_state"] ?? null) === null && (at === null || at === w.host)) need.add(w.host);
      }
    }
    return [...need];
  }

  private async refreshServers(hosts: readonly string[], wanted: ReadonlySet<string>, signal: AbortSignal): Promise<void> {
    const { nova, clock } = this.deps;
    // Hosts followed before this cycle: their servers' changes since the mark.
    const plan = this.serverMarks.next(clock.now());
    const followed = plan !== undefined && [...this.hosts.values()].some((v) => v.serversListed);
    const before = this.serverMarks.cycle;
    let after: number | undefined;
    if (followed) {
      const sentAt = clock.now();
      const since = new Date(plan.since).toISOString();
      const listing = await nova.listServersDated({ all_tenants: 1, "changes-since": since }, signal);
      // Every server of the cloud that changed: only those followed (or asked about) are kept.
      for (const s of listing.items) {
        if (this.servers.has(s.id) || wanted.has(s.id)) this.servers.set(s.id, s.status === "DELETED" ? null : s);
      }
      after = nextMark(before, listing, listing.items.map((s) => updatedAt(s.updated)), { complete: false, sentAt, receivedAt: clock.now() });
    }
    // Hosts not listed yet: their own listing, which starts their place in the changes.
    for (const host of hosts) {
      const view = this.viewOf(host);
      if (view.serversListed) continue;
      const sentAt = clock.now();
      const listing = await nova.listServersDated({ all_tenants: 1, host }, signal);
      for (const s of listing.items) this.servers.set(s.id, s);
      const mark = nextMark(undefined, listing, listing.items.map((s) => updatedAt(s.updated)), { complete: true, sentAt, receivedAt: clock.now() });
      if (mark === undefined) continue;
      view.serversListed = true;
      // Both marks reach back to it (the cycle's through `after` too).
      this.serverMarks.lower(mark);
      after = after === undefined ? mark : Math.min(after, mark);
    }
    if (after === undefined) return;
    // A host seeded while this cycle ran keeps the mark at or before its listing.
    this.serverMarks.advance(this.seededDuringCycle === undefined ? after : Math.min(after, this.seededDuringCycle), followed && plan.catchUp, clock.now());
  }

  private async refreshMigrations(hosts: readonly string[], signal: AbortSignal): Promise<void> {
    const { nova, clock } = this.deps;
    const complete = async (host: string): Promise<number | undefined> => {
      const sentAt = clock.now();
      const listing = await nova.listMigrationsDated({ source_compute: host, migration_type: "evacuation" }, signal);
      this.layInMigrations(host, listing.items);
      return nextMark(undefined, listing, listing.items.map((m) => updatedAt(m.updated_at)), { complete: true, sentAt, receivedAt: clock.now() });
    };
    if (!nova.supports("2.59")) {
      // No changes-since below 2.59: each host's whole listing, every time it is needed.
      for (const host of hosts) await complete(host);
      return;
    }
    const plan = this.migrationMarks.next(clock.now());
    const followed = plan !== undefined && [...this.hosts.values()].some((v) => v.migrationsListed);
    const before = this.migrationMarks.cycle;
    let after: number | undefined;
    if (followed) {
      const sentAt = clock.now();
      const since = new Date(plan.since).toISOString();
      const listing = await nova.listMigrationsDated({ migration_type: "evacuation", "changes-since": since }, signal);
      // Every evacuation of the cloud that changed: only those from followed hosts are kept.
      for (const m of listing.items) if (m.source_compute && this.hosts.get(m.source_compute)?.migrationsListed) this.migrations.set(m.id, m);
      after = nextMark(before, listing, listing.items.map((m) => updatedAt(m.updated_at)), { complete: false, sentAt, receivedAt: clock.now() });
    }
    for (const host of hosts) {
      if (this.viewOf(host).migrationsListed) continue;
      const mark = await complete(host);
      // A complete listing with no time to lay changes over: listed again next time.
      if (mark === undefined) {
        this.viewOf(host).migrationsListed = false;
        continue;
      }
      this.migrationMarks.lower(mark);
      after = after === undefined ? mark : Math.min(after, mark);
    }
    if (after === undefined) return;
    // A host seeded while this cycle ran keeps the mark at or before its listing.
    const seeded = this.migrationsSeededDuringCycle;
    this.migrationMarks.advance(seeded === undefined ? after : Math.min(after, seeded), followed && plan.catchUp, clock.now());
  }

  private snapshot(ids: readonly string[], host: string, sentAt: number): Map<string, ServerLook> {
    const out = new Map<string, ServerLook>();
    for (const id of ids) {
      const evacuations = [...this.migrations.values()].filter((m) => m.instance_uuid === id && m.source_compute === host).sort(newestFirst);
      out.set(id, { server: this.servers.get(id) ?? null, evacuations, sentAt });
    }
    return out;
  }
}
