import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type {
  AppendedEvent,
  EvacuateCall,
  EventDisposition,
  GateDecision,
  HostEvent,
  HostState,
  HostStateRecord,
  InstanceResult,
  NewHostEvent,
  NewRecovery,
  NotificationPayload,
  NotificationRecord,
  OutboxEntry,
  Recovery,
  RecoveryState,
  StepRecord,
  Transition,
} from "../domain/model.js";
import { TERMINAL_STATES } from "../domain/model.js";
import { newId } from "../util/ids.js";
import { factsOf, legacyKind, patchFacts, patchesFacts } from "./recovery-record.js";
import { HostBusyError, HostStateConflictError, recoveryOfWrite, StateConflictError, type RecoveryFilter, type RecoveryPatch, type Store } from "../domain/journal.js";
import { NotFoundError } from "../domain/errors.js";
import { MIGRATIONS } from "./sqlite-migrations.js";
import { WalSync } from "./wal-sync.js";

type Row = Record<string, unknown>;

const TERMINAL_SQL = TERMINAL_STATES.map((s) => `'${s}'`).join(",");
/**
 * Events journaled per transaction by one appendEvents call: small, because every other
 * write queued meanwhile (a recovery's next step) shares the slice's transaction and waits
 * for it.
 */
const APPEND_SLICE = 25;
/** Past this many, the record of events whose commit may not be synced drops those that are. */
const UNSYNCED_EVENTS_PRUNE = 1000;

/**
 * The embedded store: one SQLite file in WAL mode, where a write is on disk when its promise
 * resolves. Writes that arrive in the same event-loop turn share one transaction (group
 * commit): one fsync for a burst of webhook deliveries, for the events routed in one pass,
 * or for evacuations finishing together. Each write runs in its own savepoint inside it, so
 * one that fails (a state conflict, a busy host) fails alone.
 *
 * The fsync does not run on the event loop: SQLite commits with `synchronous=NORMAL` (the
 * WAL is written, not synced) and the store then syncs the WAL file on libuv's thread pool
 * (./wal-sync.ts), settling the transaction's writes once that sync is done. A virtual disk
 * that now and then takes hundreds of milliseconds to answer an fsync (measured on the
 * benchmark machine) then delays the writes waiting for it, not every lease renewal, Nova
 * poll and HTTP answer of the process. An acknowledged write is as durable as with
 * `synchronous=FULL`, which syncs the same WAL at each commit; a power loss before the
 * sync loses only writes nobody was told of, and NORMAL keeps the file consistent.
 *
 * Reads run at once and may see a commit whose sync is still running. That is safe for
 * lifeboat's rule of writing status before acting: the actor's own write is settled only
 * after a sync that started after it, and a sync covers every commit before it, so
 * whatever it read is on disk before it acts.
 *
 * The turn's commit runs once the turn's I/O callbacks have all run (setImmediate). While
 * evacuations run, those are hundreds of Nova answers, each starting the next request: a
 * webhook delivery waiting for that commit waited for all of them. So the first delivery
 * of a turn commits at the end of its own task, with whatever was queued before it; the
 * deliveries after it in the same turn share the turn's commit (a burst still costs two
 * fsyncs, not one per delivery).
 */
export class SqliteStore implements Store {
  readonly kind = "sqlite";
  #db: Database.Database | null = null;
  #queue: { work: () => unknown; through?: (value: unknown, commit: number) => number; resolve: (value: unknown) => void; reject: (err: unknown) => void }[] = [];
  #flushScheduled = false;
  /** A delivery of this turn already committed at the end of its task. */
  #deliveryCommitted = false;
  /** Syncs the WAL after commits (null: `:memory:` or `synchronous: "NORMAL"`, nothing to wait for). */
  #walSync: WalSync | null = null;
  /** Events this process journaled whose commit may not be synced yet: key → commit number. */
  readonly #unsyncedEvents = new Map<string, number>();

  constructor(
    readonly path: string,
    private readonly opts: {
      synchronous?: "FULL" | "NORMAL";
      now?: () => string;
      /** How the WAL is synced after a commit (tests hold or fail it); fdatasync on the thread pool. */
      syncWal?: (fd: number, done: (err: Error | null) => void) => void;
    } = {},
  ) {}

  /** Prepared statements are cached: preparing is a large share of a small query's cost. */
  readonly #stmts = new Map<string, Database.Statement>();
  private q(sql: string): Database.Statement {
    let st = this.#stmts.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.#stmts.set(sql, st);
    }
    return st;
  }

  private get db(): Database.Database {
    if (!this.#db) throw new Error("store is closed");
    return this.#db;
  }

  private now(): string {
    return this.opts.now ? this.opts.now() : new Date().toISOString();
  }

  init(): Promise<void> {
    return settle(() => {
      if (this.path !== ":memory:") mkdirSync(dirname(this.path), { recursive: true });
      const db = new Database(this.path);
      db.pragma("journal_mode = WAL");
      // FULL: durable before a write settles, by the WAL sync after each commit (see above).
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      db.pragma("busy_timeout = 5000");
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > MIGRATIONS.length) {
        db.close();
        throw new Error(`${this.path} has schema version ${version}, newer than this lifeboat (${MIGRATIONS.length}); upgrade lifeboat`);
      }
      for (let v = version; v < MIGRATIONS.length; v++) {
        db.transaction(() => {
          db.exec(MIGRATIONS[v]!);
          db.pragma(`user_version = ${v + 1}`);
        })();
      }
      if (this.path !== ":memory:" && (this.opts.synchronous ?? "FULL") === "FULL") this.#walSync = new WalSync(`${this.path}-wal`, this.opts.syncWal);
      this.#db = db;
    });
  }

  async close(): Promise<void> {
    this.flush();
    this.#stmts.clear();
    this.#db?.close();
    this.#db = null;
    // The last commits' sync (the file stays open until it is done).
    await this.#walSync?.close();
    this.#walSync = null;
  }

  ping(): Promise<void> {
    return this.write(() => {
      this.q("INSERT INTO settings(key, value, updated_at) VALUES ('ping', '1', ?) ON CONFLICT(key) DO UPDATE SET updated_at = excluded.updated_at").run(this.now());
    });
  }

  /**
   * Queue a write for the next group commit; the promise settles once it is on disk (or
   * failed). `delivery`: a webhook delivery's events, committed at the end of the current
   * task if no other delivery did so this turn (see the class comment).
   */
  private write<T>(work: () => T, delivery = false, through?: (value: T, commit: number) => number): Promise<T> {
    if (!this.#db) return Promise.reject(new Error("store is closed"));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, ...(through ? { through: through as (value: unknown, commit: number) => number } : {}), resolve: resolve as (value: unknown) => void, reject });
      if (delivery && !this.#deliveryCommitted) {
        this.#deliveryCommitted = true;
        queueMicrotask(() => this.flush());
      }
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => {
          this.#flushScheduled = false;
          this.#deliveryCommitted = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    const db = this.#db;
    if (!db) {
      for (const w of batch) w.reject(new Error("store is closed"));
      return;
    }
    // A nested better-sqlite3 transaction is a savepoint: a write that throws is rolled back alone.
    const savepoint = db.transaction((work: () => unknown) => work());
    const outcomes: { ok: boolean; value: unknown }[] = [];
    const sync = this.#walSync;
    try {
      db.transaction(() => {
        for (const w of batch) {
          try {
            outcomes.push({ ok: true, value: savepoint(w.work) });
          } catch (err) {
            outcomes.push({ ok: false, value: err instanceof Error ? err : new Error(String(err)) });
          }
        }
      })();
    } catch (err) {
      // The commit itself failed: nothing of the batch is on disk.
      for (const w of batch) w.reject(err);
      return;
    }
    const gen = sync?.committed() ?? 0;
    batch.forEach((w, i) => {
      const o = outcomes[i]!;
      // A write that failed is rolled back: nothing of it to wait for.
      if (!o.ok || !sync) return o.ok ? w.resolve(o.value) : w.reject(o.value);
      // Committed, and visible to reads; settled once the WAL is on disk up to the commit the
      // write needs (its own, unless it says otherwise). A failed sync fails it: nothing of
      // it may be taken as durable.
      sync.through(w.through ? w.through(o.value, gen) : gen).then(
        () => w.resolve(o.value),
        (err: unknown) => w.reject(new Error(`the journal could not be synced to disk: ${err instanceof Error ? err.message : String(err)}`)),
      );
    });
    if (sync && this.#unsyncedEvents.size > UNSYNCED_EVENTS_PRUNE) {
      for (const [key, g] of this.#unsyncedEvents) if (g <= sync.synced) this.#unsyncedEvents.delete(key);
    }
  }


  // ---- events ------------------------------------------------------------------------

  /**
   * Journal events; a large delivery goes in slices of APPEND_SLICE, each committed before
   * the next is queued, so that thousands of alerts do not hold the event loop for the
   * whole of one transaction and the appends of other deliveries commit in between. (Each
   * slice is durable on its own; a failure answers the whole delivery 503, and the re-send
   * finds the slices already journaled as repeats.)
   */
  async appendEvents(events: NewHostEvent[]): Promise<AppendedEvent[]> {
    if (events.length <= APPEND_SLICE) return this.appendSlice(events);
    const out: AppendedEvent[] = [];
    for (let i = 0; i < events.length; i += APPEND_SLICE) out.push(...(await this.appendSlice(events.slice(i, i + APPEND_SLICE))));
    return out;
  }

  private appendSlice(events: NewHostEvent[]): Promise<AppendedEvent[]> {
    return this.write(
      () => this.journalSlice(events),
      true,
      // A delivery that only repeats alerts on disk already adds bookkeeping (a delivery
      // count, the last time received): it is answered once committed. Anything new or put
      // back in the queue, or a repeat of an alert whose own commit is not synced yet, waits
      // for the sync that covers it.
      (appended, commit) => Math.max(0, ...appended.map((a) => (a.duplicate ? (this.#unsyncedEvents.get(a.event.key) ?? 0) : commit))),
    );
  }

  private journalSlice(events: NewHostEvent[]): AppendedEvent[] {
    // The number the commit this runs in will get (WalSync): what a repeat's sync waits for.
    const commit = this.#walSync?.next ?? 0;
    const find = this.q("SELECT * FROM events WHERE key = ?");
    // A new event's record is what intake gave, so only its id is read back (most of a large
    // delivery's cost was reading every row back whole).
    const insert = this.q(
      `INSERT INTO events(key, received_at, last_received_at, source, host, alertname, status, fingerprint, starts_at, ends_at,
         labels, annotations, generator_url, group_key, receiver, disposition, note)
       VALUES (@key, @receivedAt, @receivedAt, @source, @host, @alertname, @status, @fingerprint, @startsAt, @endsAt,
         @labels, @annotations, @generatorURL, @groupKey, @receiver, 'unprocessed', @note)
       ON CONFLICT(key) DO UPDATE SET deliveries = deliveries + 1, last_received_at = excluded.last_received_at
       RETURNING id, deliveries`,
    );
    // A known key counts one more delivery; if routing had ignored it, it goes back in the
    // queue with the host and note intake gave it now (SET reads the row as it was).
    const repeat = this.q(
      `UPDATE events SET deliveries = deliveries + 1, last_received_at = @receivedAt,
         host = CASE disposition WHEN 'ignored' THEN @host ELSE host END,
         note = CASE disposition WHEN 'ignored' THEN @note ELSE note END,
         disposition = CASE disposition WHEN 'ignored' THEN 'unprocessed' ELSE disposition END
       WHERE id = @id`,
    );
    return events.map((e): AppendedEvent => {
      const note = e.note ?? null;
      const row = find.get(e.key) as Row | undefined;
      if (!row) {
        const got = insert.get({ ...e, note, labels: JSON.stringify(e.labels), annotations: JSON.stringify(e.annotations) }) as { id: number; deliveries: number };
        // Until this commit is synced, a repeat of the alert waits for that sync too.
        this.#unsyncedEvents.set(e.key, commit);
        // Another process on this file journaled it first: a repeat after all (waiting for
        // this commit's sync, since this process cannot tell whether that one's is done).
        if (got.deliveries > 1) return { event: eventFromRow(find.get(e.key) as Row), duplicate: true, requeued: false };
        return { event: newEventRecord(e, got.id), duplicate: false, requeued: false };
      }
      const was = eventFromRow(row);
      const requeued = was.disposition === "ignored";
      if (requeued) this.#unsyncedEvents.set(e.key, commit);
      repeat.run({ id: was.id, receivedAt: e.receivedAt, host: e.host, note });
      const event: HostEvent = { ...was, deliveries: was.deliveries + 1, lastReceivedAt: e.receivedAt, ...(requeued ? { host: e.host, note, disposition: "unprocessed" as const } : {}) };
      return { event, duplicate: !requeued, requeued };
    });
  }

  unprocessedEvents(limit: number): Promise<HostEvent[]> {
    return settle(() => {
      const rows = this.q("SELECT * FROM events WHERE disposition = 'unprocessed' ORDER BY id LIMIT ?").all(limit) as Row[];
      return rows.map(eventFromRow);
    });
  }

  markEvent(id: number, disposition: EventDisposition, recoveryId: string | null, note: string | null): Promise<void> {
    return this.write(() => {
      this.q("UPDATE events SET disposition = ?, recovery_id = ?, note = ? WHERE id = ?").run(disposition, recoveryId, note, id);
    });
  }

  listEvents(filter: { host?: string; recoveryId?: string; limit?: number }): Promise<HostEvent[]> {
    return settle(() => {
      const where: string[] = [];
      const args: unknown[] = [];
      if (filter.host) {
        where.push("host = ?");
        args.push(filter.host);
      }
      if (filter.recoveryId) {
        where.push("recovery_id = ?");
        args.push(filter.recoveryId);
      }
      const sql = `SELECT * FROM events ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id DESC LIMIT ?`;
      const rows = this.q(sql).all(...args, filter.limit ?? 100) as Row[];
      return rows.map(eventFromRow);
    });
  }

  // ---- recoveries --------------------------------------------------------------------

  createRecovery(r: NewRecovery): Promise<Recovery> {
    return this.write(() => {
      const now = this.now();
      const id = newId("r");
      const open = this.q(`SELECT id FROM recoveries WHERE host = ? AND state NOT IN (${TERMINAL_SQL})`).get(r.host) as Row | undefined;
      if (open) throw new HostBusyError(r.host, String(open.id));
      this.q(
        `INSERT INTO recoveries(id, host, kind, incident_key, state, trigger, dry_run, confirmed_off, approved, approved_by, fence_state, reason,
           detected_at, created_at, updated_at, grace_until, alerts, facts)
         VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, 'not-attempted', ?, ?, ?, ?, ?, ?, '{}')`,
      ).run(id, r.host, r.kind, r.incidentKey, r.trigger, r.dryRun ? 1 : 0, r.confirmedOff ? 1 : 0, r.approvedBy ? 1 : 0, r.approvedBy ?? null, r.reason, r.detectedAt, now, now, r.graceUntil, JSON.stringify(r.alerts ?? {}));
      this.q("INSERT INTO transitions(recovery_id, seq, from_state, to_state, at, reason, actor) VALUES (?, 1, NULL, 'pending', ?, ?, ?)").run(id, now, r.reason, r.actor ?? null);
      return this.mustGet(id);
    });
  }

  getRecovery(id: string): Promise<Recovery | null> {
    return settle(() => {
      const row = this.q("SELECT * FROM recoveries WHERE id = ?").get(id) as Row | undefined;
      return row ? recoveryFromRow(row) : null;
    });
  }

  private mustGet(id: string): Recovery {
    const row = this.q("SELECT * FROM recoveries WHERE id = ?").get(id) as Row | undefined;
    if (!row) throw new NotFoundError(`recovery ${id} not found`);
    return recoveryFromRow(row);
  }

  findOpenRecovery(host: string): Promise<Recovery | null> {
    return settle(() => {
      const row = this.q(`SELECT * FROM recoveries WHERE host = ? AND state NOT IN (${TERMINAL_SQL})`).get(host) as Row | undefined;
      return row ? recoveryFromRow(row) : null;
    });
  }

  findRecoveryByIncident(host: string, incidentKey: string): Promise<Recovery | null> {
    return settle(() => {
      const row = this.q("SELECT * FROM recoveries WHERE host = ? AND incident_key = ? ORDER BY created_at DESC LIMIT 1")
        .get(host, incidentKey) as Row | undefined;
      return row ? recoveryFromRow(row) : null;
    });
  }

  listRecoveries(filter: RecoveryFilter): Promise<Recovery[]> {
    return settle(() => {
      const where: string[] = [];
      const args: unknown[] = [];
      if (filter.host) {
        where.push("host = ?");
        args.push(filter.host);
      }
      if (filter.state) {
        const states = Array.isArray(filter.state) ? filter.state : [filter.state];
        where.push(`state IN (${states.map(() => "?").join(",")})`);
        args.push(...states);
      }
      if (filter.open !== undefined) where.push(filter.open ? `state NOT IN (${TERMINAL_SQL})` : `state IN (${TERMINAL_SQL})`);
      if (filter.since) {
        where.push("created_at >= ?");
        args.push(filter.since);
      }
      const sql = `SELECT * FROM recoveries ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY created_at DESC, id DESC LIMIT ?`;
      const rows = this.q(sql).all(...args, filter.limit ?? 1000) as Row[];
      return rows.map(recoveryFromRow);
    });
  }

  transition(id: string, from: RecoveryState, to: RecoveryState, reason: string, patch: RecoveryPatch = {}, actor?: string): Promise<Recovery> {
    return this.write(() => {
      const now = this.now();
      const row = this.q("SELECT state FROM recoveries WHERE id = ?").get(id) as Row | undefined;
      if (!row) throw new NotFoundError(`recovery ${id} not found`);
      if (row.state !== from) throw new StateConflictError(id, from, row.state as RecoveryState);
      this.applyPatch(id, patch, { state: to, reason, updated_at: now });
      const seq = (this.q("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM transitions WHERE recovery_id = ?").get(id) as Row).n as number;
      this.q("INSERT INTO transitions(recovery_id, seq, from_state, to_state, at, reason, actor) VALUES (?, ?, ?, ?, ?, ?, ?)").run(id, seq, from, to, now, reason, actor ?? null);
      return this.mustGet(id);
    });
  }

  updateRecovery(id: string, patch: RecoveryPatch): Promise<Recovery> {
    return this.write(() => {
      if (!this.q("SELECT 1 FROM recoveries WHERE id = ?").get(id)) throw new NotFoundError(`recovery ${id} not found`);
      this.applyPatch(id, patch, { updated_at: this.now() });
      return this.mustGet(id);
    });
  }

  private applyPatch(id: string, patch: RecoveryPatch, extra: Record<string, string>): void {
    const cols: Record<string, unknown> = { ...extra };
    if (patch.dryRun !== undefined) cols.dry_run = patch.dryRun ? 1 : 0;
    if (patch.confirmedOff !== undefined) cols.confirmed_off = patch.confirmedOff ? 1 : 0;
    if (patch.approved !== undefined) cols.approved = patch.approved ? 1 : 0;
    if (patch.approvedBy !== undefined) cols.approved_by = patch.approvedBy;
    if (patch.outcome !== undefined) cols.outcome = patch.outcome;
    if (patch.fenceState !== undefined) cols.fence_state = patch.fenceState;
    if (patch.graceUntil !== undefined) cols.grace_until = patch.graceUntil;
    if (patch.alerts !== undefined) cols.alerts = JSON.stringify(patch.alerts);
    if (patchesFacts(patch)) {
      const row = this.q("SELECT facts, updated_at FROM recoveries WHERE id = ?").get(id) as Row;
      cols.facts = JSON.stringify(patchFacts(factsOf(JSON.parse(row.facts as string), row.updated_at as string), patch));
    }
    const keys = Object.keys(cols);
    this.q(`UPDATE recoveries SET ${keys.map((k) => `${k} = @${k}`).join(", ")} WHERE id = @__id`).run({ ...cols, __id: id });
  }

  transitions(recoveryId: string): Promise<Transition[]> {
    return settle(() => {
      const rows = this.q("SELECT * FROM transitions WHERE recovery_id = ? ORDER BY seq").all(recoveryId) as Row[];
      return rows.map((r) => ({
        recoveryId: r.recovery_id as string,
        seq: r.seq as number,
        from: (r.from_state as RecoveryState | null) ?? null,
        to: r.to_state as RecoveryState,
        at: r.at as string,
        reason: r.reason as string,
        ...(r.actor ? { actor: r.actor as string } : {}),
      }));
    });
  }

  // ---- journal records ---------------------------------------------------------------

  async recordDecisions(ds: readonly GateDecision[]): Promise<void> {
    if (recoveryOfWrite(ds, "recordDecisions") === undefined) return;
    await this.write(() => {
      for (const d of ds) {
        this.q("INSERT INTO decisions(recovery_id, gate, result, reason, at, details) VALUES (?, ?, ?, ?, ?, ?)")
          .run(d.recoveryId, d.gate, d.result, d.reason, d.at, d.details ? JSON.stringify(d.details) : null);
      }
    });
  }

  decisions(recoveryId: string): Promise<GateDecision[]> {
    return settle(() => {
      const rows = this.q("SELECT * FROM decisions WHERE recovery_id = ? ORDER BY id").all(recoveryId) as Row[];
      return rows.map((r) => ({
        recoveryId: r.recovery_id as string,
        gate: r.gate as string,
        result: r.result as GateDecision["result"],
        reason: r.reason as string,
        at: r.at as string,
        ...(r.details ? { details: JSON.parse(r.details as string) as Record<string, unknown> } : {}),
      }));
    });
  }

  getStep(recoveryId: string, key: string): Promise<StepRecord | null> {
    return settle(() => {
      const row = this.q("SELECT * FROM steps WHERE recovery_id = ? AND key = ?").get(recoveryId, key) as Row | undefined;
      return row ? stepFromRow(row) : null;
    });
  }

  putStep(s: StepRecord): Promise<void> {
    return this.write(() => {
      this.q(
        `INSERT INTO steps(recovery_id, key, state, attempts, started_at, finished_at, result, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(recovery_id, key) DO UPDATE SET state = excluded.state, attempts = excluded.attempts, started_at = excluded.started_at,
           finished_at = excluded.finished_at, result = excluded.result, error = excluded.error`,
      ).run(s.recoveryId, s.key, s.state, s.attempts, s.startedAt, s.finishedAt ?? null, s.result === undefined ? null : JSON.stringify(s.result), s.error ?? null);
    });
  }

  steps(recoveryId: string): Promise<StepRecord[]> {
    return settle(() => {
      const rows = this.q("SELECT * FROM steps WHERE recovery_id = ? ORDER BY started_at, key").all(recoveryId) as Row[];
      return rows.map(stepFromRow);
    });
  }

  putInstance(r: InstanceResult): Promise<void> {
    return this.write(() => this.upsertInstance(r));
  }

  async putInstances(list: readonly InstanceResult[]): Promise<void> {
    if (recoveryOfWrite(list, "putInstances") === undefined) return;
    await this.write(() => {
      for (const r of list) this.upsertInstance(r);
    });
  }

  private upsertInstance(r: InstanceResult): void {
    {
      this.q(
        `INSERT INTO instances(recovery_id, instance_id, name, project_id, user_id, original_status, state, priority, target_host,
           attempts, error, note, started_at, finished_at, evacuate_call)
         VALUES (@recoveryId, @instanceId, @name, @projectId, @userId, @originalStatus, @state, @priority, @targetHost,
           @attempts, @error, @note, @startedAt, @finishedAt, @evacuateCall)
         ON CONFLICT(recovery_id, instance_id) DO UPDATE SET name = excluded.name, project_id = excluded.project_id,
           user_id = excluded.user_id, original_status = excluded.original_status, state = excluded.state,
           priority = excluded.priority, target_host = excluded.target_host, attempts = excluded.attempts,
           error = excluded.error, note = excluded.note, started_at = excluded.started_at, finished_at = excluded.finished_at,
           evacuate_call = excluded.evacuate_call`,
      ).run({
          userId: null,
          targetHost: null,
          error: null,
          note: null,
          startedAt: null,
          finishedAt: null,
          ...stripUndefined(r),
          evacuateCall: r.evacuateCall ? JSON.stringify(r.evacuateCall) : null,
        });
    }
  }

  instances(recoveryId: string): Promise<InstanceResult[]> {
    return settle(() => {
      const rows = this.q("SELECT * FROM instances WHERE recovery_id = ? ORDER BY priority DESC, name, instance_id").all(recoveryId) as Row[];
      return rows.map(
        (r): InstanceResult =>
          dropNulls({
            recoveryId: r.recovery_id,
            instanceId: r.instance_id,
            name: r.name,
            projectId: r.project_id,
            userId: r.user_id,
            originalStatus: r.original_status,
            state: r.state,
            priority: r.priority,
            targetHost: r.target_host,
            attempts: r.attempts,
            error: r.error,
            note: r.note,
            startedAt: r.started_at,
            finishedAt: r.finished_at,
            evacuateCall: typeof r.evacuate_call === "string" ? (JSON.parse(r.evacuate_call) as EvacuateCall) : null,
          }) as unknown as InstanceResult,
      );
    });
  }

  putNotification(n: NotificationRecord, payload?: NotificationPayload): Promise<void> {
    return this.write(() => {
      this.q(
        `INSERT INTO notifications(recovery_id, dedup_key, channel, kind, recipient, subject, state, attempts, error, sent_at, project_id,
           message_id, queued_at, next_attempt_at, payload)
         VALUES (@recoveryId, @dedupKey, @channel, @kind, @recipient, @subject, @state, @attempts, @error, @sentAt, @projectId,
           @messageId, @queuedAt, @nextAttemptAt, CASE WHEN @state = 'pending' THEN @payload END)
         ON CONFLICT(recovery_id, dedup_key) DO UPDATE SET channel = excluded.channel, kind = excluded.kind,
           recipient = excluded.recipient, subject = excluded.subject, state = excluded.state, attempts = excluded.attempts,
           error = excluded.error, sent_at = excluded.sent_at, project_id = excluded.project_id, message_id = excluded.message_id,
           queued_at = excluded.queued_at, next_attempt_at = excluded.next_attempt_at,
           payload = CASE WHEN excluded.state = 'pending' THEN COALESCE(excluded.payload, notifications.payload) END`,
      ).run({
        error: null,
        sentAt: null,
        projectId: null,
        messageId: null,
        queuedAt: null,
        nextAttemptAt: null,
        ...stripUndefined(n),
        payload: payload ? JSON.stringify(payload) : null,
      });
    });
  }

  pendingNotifications(limit: number): Promise<OutboxEntry[]> {
    return settle(() => {
      const rows = this.q("SELECT * FROM notifications WHERE state = 'pending' AND payload IS NOT NULL ORDER BY next_attempt_at, rowid LIMIT ?").all(limit) as Row[];
      return rows.map((r) => ({ record: notificationFromRow(r), payload: JSON.parse(r.payload as string) as NotificationPayload }));
    });
  }

  notifications(recoveryId: string): Promise<NotificationRecord[]> {
    return settle(() => {
      const rows = this.q("SELECT * FROM notifications WHERE recovery_id = ? ORDER BY rowid").all(recoveryId) as Row[];
      return rows.map(notificationFromRow);
    });
  }

  notificationsByKey(dedupKey: string): Promise<NotificationRecord[]> {
    return settle(() => {
      const rows = this.q("SELECT * FROM notifications WHERE dedup_key = ? ORDER BY rowid").all(dedupKey) as Row[];
      return rows.map(notificationFromRow);
    });
  }

  // ---- host states -------------------------------------------------------------------

  getHostState(host: string): Promise<HostState | null> {
    return settle(() => {
      const row = this.q("SELECT doc, version FROM hosts WHERE host = ?").get(host) as Row | undefined;
      return row ? hostStateFromRow(row) : null;
    });
  }

  putHostState(next: HostStateRecord, expected: number): Promise<HostState> {
    return this.write(() => {
      const row = this.q("SELECT version FROM hosts WHERE host = ?").get(next.host) as Row | undefined;
      const actual = row ? Number(row.version) : 0;
      if (actual !== expected) throw new HostStateConflictError(next.host, expected, actual);
      const version = expected + 1;
      this.q("INSERT INTO hosts(host, doc, version, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(host) DO UPDATE SET doc = excluded.doc, version = excluded.version, updated_at = excluded.updated_at")
        .run(next.host, JSON.stringify(next), version, this.now());
      return { ...next, version };
    });
  }

  listHostStates(): Promise<HostState[]> {
    return settle(() => (this.q("SELECT doc, version FROM hosts ORDER BY host").all() as Row[]).map(hostStateFromRow));
  }

  // ---- settings ----------------------------------------------------------------------

  getSetting<T>(key: string): Promise<T | null> {
    return settle(() => {
      const row = this.q("SELECT value FROM settings WHERE key = ?").get(key) as Row | undefined;
      return row ? (JSON.parse(row.value as string) as T) : null;
    });
  }

  putSetting(key: string, value: unknown): Promise<void> {
    return this.write(() => {
      this.q("INSERT INTO settings(key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")
        .run(key, JSON.stringify(value), this.now());
    });
  }
}

/**
 * Run synchronous database work behind a promise-returning method: a thrown error (closed
 * store, HostBusyError, StateConflictError, a constraint) becomes a rejection, never a
 * synchronous throw that `promise.catch()` would miss.
 */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function stripUndefined<T extends object>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function dropNulls(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));
}

/** The record of an event just journaled, from what intake gave. */
function newEventRecord(e: NewHostEvent, id: number): HostEvent {
  return {
    id,
    key: e.key,
    deliveries: 1,
    receivedAt: e.receivedAt,
    lastReceivedAt: e.receivedAt,
    source: e.source,
    host: e.host,
    alertname: e.alertname,
    status: e.status,
    fingerprint: e.fingerprint,
    startsAt: e.startsAt,
    endsAt: e.endsAt,
    labels: e.labels,
    annotations: e.annotations,
    generatorURL: e.generatorURL,
    groupKey: e.groupKey,
    receiver: e.receiver,
    disposition: "unprocessed",
    recoveryId: null,
    note: e.note ?? null,
  };
}

function eventFromRow(r: Row): HostEvent {
  return {
    id: r.id as number,
    key: r.key as string,
    deliveries: r.deliveries as number,
    receivedAt: r.received_at as string,
    lastReceivedAt: r.last_received_at as string,
    source: r.source as HostEvent["source"],
    host: (r.host as string | null) ?? null,
    alertname: r.alertname as string,
    status: r.status as HostEvent["status"],
    fingerprint: r.fingerprint as string,
    startsAt: r.starts_at as string,
    endsAt: (r.ends_at as string | null) ?? null,
    labels: JSON.parse(r.labels as string) as Record<string, string>,
    annotations: JSON.parse(r.annotations as string) as Record<string, string>,
    generatorURL: r.generator_url as string,
    groupKey: r.group_key as string,
    receiver: r.receiver as string,
    disposition: r.disposition as EventDisposition,
    recoveryId: (r.recovery_id as string | null) ?? null,
    note: (r.note as string | null) ?? null,
  };
}

function recoveryFromRow(r: Row): Recovery {
  const facts: unknown = JSON.parse(r.facts as string);
  return {
    id: r.id as string,
    host: r.host as string,
    kind: (r.kind as Recovery["kind"] | null) ?? legacyKind(r.trigger as string, facts),
    incidentKey: r.incident_key as string,
    state: r.state as RecoveryState,
    trigger: r.trigger as Recovery["trigger"],
    dryRun: r.dry_run === 1,
    confirmedOff: r.confirmed_off === 1,
    approved: r.approved === 1,
    ...(r.approved_by ? { approvedBy: r.approved_by as string } : {}),
    ...(r.outcome ? { outcome: r.outcome as Recovery["outcome"] } : {}),
    fenceState: r.fence_state as Recovery["fenceState"],
    reason: r.reason as string,
    detectedAt: r.detected_at as string,
    createdAt: r.created_at as string,
    updatedAt: r.updated_at as string,
    graceUntil: r.grace_until as string,
    alerts: JSON.parse(r.alerts as string) as Recovery["alerts"],
    ...factsOf(facts, r.updated_at as string),
  };
}

function stepFromRow(r: Row): StepRecord {
  return {
    recoveryId: r.recovery_id as string,
    key: r.key as string,
    state: r.state as StepRecord["state"],
    attempts: r.attempts as number,
    startedAt: r.started_at as string,
    ...(r.finished_at ? { finishedAt: r.finished_at as string } : {}),
    ...(r.result !== null && r.result !== undefined ? { result: JSON.parse(r.result as string) as unknown } : {}),
    ...(r.error ? { error: r.error as string } : {}),
  };
}

function notificationFromRow(r: Row): NotificationRecord {
  return dropNulls({
    recoveryId: r.recovery_id,
    dedupKey: r.dedup_key,
    channel: r.channel,
    kind: r.kind,
    recipient: r.recipient,
    subject: r.subject,
    state: r.state,
    attempts: r.attempts,
    error: r.error,
    sentAt: r.sent_at,
    projectId: r.project_id,
    messageId: r.message_id,
    queuedAt: r.queued_at,
    nextAttemptAt: r.next_attempt_at,
  }) as unknown as NotificationRecord;
}

function hostStateFromRow(row: Row): HostState {
  return { ...(JSON.parse(row.doc as string) as HostStateRecord), version: Number(row.version) };
}
