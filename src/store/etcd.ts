import { randomBytes } from "node:crypto";
import type { Etcd3, ICompare, IKeyValue, IRequestOp } from "etcd3";
import { createEtcdClient, DEFAULT_REQUEST_TIMEOUT_MS, type EtcdConnection } from "../etcd/client.js";
import { GroupCommit } from "../util/group-commit.js";
import { etcdConnectionFromConfig } from "./config.js";
import { Keyspace, kvs, parseJson, seg } from "../etcd/kv.js";
import { RepeatCounts } from "./repeat-counts.js";
import type {
  AppendedEvent,
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
import { isTerminal } from "../domain/model.js";
import { systemClock, type Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import type { EtcdStoreConfig } from "./config.js";
import { HostBusyError, HostStateConflictError, INSTANCES_PER_WRITE, recoveryOfWrite, StateConflictError, type RecoveryFilter, type RecoveryPatch, type Store } from "../domain/journal.js";
import { NotFoundError } from "../domain/errors.js";
import { recoveryFromDocument, withLearned } from "./recovery-record.js";

/**
 * The shared store: every lifeboat instance of one deployment reads and writes the same
 * keys under one etcd prefix. Values are JSON. Every write that touches several keys is one
 * etcd transaction whose compares pin the revisions it read, so concurrent writers on
 * different instances serialise: a repeated alert is one event, a recovery moves once.
 *
 * Layout (relative to the prefix; `<…>` segments are URI-encoded, ids zero-padded so key
 * order is numeric order):
 *
 *   meta/schema                        layout version
 *   ev/seq                             last event id (a counter advanced by compare-and-swap)
 *   ev/id/<id>                         { event, op }
 *   ev/key/<event key>                 id — the dedup index
 *   ev/q/<id>                          present while the event is unprocessed
 *   ev/host/<host>/<id>, ev/rec/<recovery>/<id>   listing indexes
 *   rec/<id>                           { recovery, transitions, op }
 *   rec-host/<host>/<id>, rec-inc/<host>/<incident>/<id>   listing indexes
 *   open/<host>                        id of the host's one open recovery
 *   tr/<id>/<seq>                      transitions
 *   dec/<id>/<unique>                  decisions (listed in commit order)
 *   step/<id>/<key>, inst/<id>/<instance>, notif/<id>/<dedup key>
 *   notif-key/<dedup key>/<id>         index of notificationsByKey
 *   notif-q/<id>/<dedup key>           what to send, present while the notification is pending
 *   host/<host>                        { state, op }: what lifeboat holds about a host (older: set/host%2F<host>)
 *   set/<key>                          settings
 *   leader, claims/<host>              leader election and host claims (src/ha/), on leases
 *
 * `op` is a random token of the write that produced a record: when etcd's client retries a
 * transaction whose answer was lost, the re-read shows our own token and the write is
 * recognised as done instead of being applied twice or reported as a conflict.
 */

const SCHEMA_VERSION = 1;
/** Events whose last append this process remembers (the repeats' fast path). */
const EVENT_CACHE_SIZE = 10_000;

/** Distinct event keys per transaction: each new key is 4 puts, under etcd's default 128 ops. */
const EVENT_CHUNK = 25;
/** Gets per read transaction. */
const READ_BATCH = 100;
/** Keys per page when a listing has to filter. */
const PAGE = 200;
const MAX_CAS_ATTEMPTS = 200;
/**
 * Dispositions routing never changes again (only an ignored event goes back in the queue):
 * a re-send of such an event changes nothing but its count (RepeatCounts).
 */
const ROUTED_FOR_GOOD: ReadonlySet<EventDisposition> = new Set(["started", "attached", "resolved", "aborted"]);
/** How long such re-sends' counts may wait before they are journaled. */
const REPEAT_COUNT_INTERVAL_MS = 2_000;

interface StoredEvent {
  event: HostEvent;
  op: string;
}

/** What one append transaction does to one key: deliveries before it, the record after it. */
interface Planned {
  before: number;
  record: HostEvent;
  /** An event routing had ignored went back in the queue. */
  requeued: boolean;
}

interface StoredRecovery {
  recovery: Recovery;
  /** Number of transitions written; the next one is seq + 1. */
  transitions: number;
  op: string;
}

export interface EtcdStoreOptions {
  /** A client to use (and not close); or `connection` to make one owned by the store. */
  client?: Etcd3;
  connection?: EtcdConnection;
  /** Key prefix, e.g. "/lifeboat/"; a trailing "/" is added when missing. */
  prefix: string;
  clock?: Clock;
  /** How long the counts of re-sends of events routed for good wait (default 2 s; tests). */
  repeatCountIntervalMs?: number;
  /** Bound of one call to etcd, ms (default: the connection's, else 5 s). */
  requestTimeoutMs?: number;
}

/** The key of an instance's record. */
function instanceKey(r: Pick<InstanceResult, "recoveryId" | "instanceId">): string {
  return `inst/${seg(r.recoveryId)}/${seg(r.instanceId)}`;
}

/** An instance record waiting for the next transaction of them (EtcdStore.putInstance). */
interface QueuedInstance {
  record: InstanceResult;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Events waiting for the next append transaction (EtcdStore.appendEvents). */
interface QueuedAppend {
  events: NewHostEvent[];
  resolve: (e: AppendedEvent[]) => void;
  reject: (err: unknown) => void;
}

/** The queued instance records one transaction takes, from the front: at most INSTANCES_PER_WRITE instances. */
function nextInstanceBatch(queue: QueuedInstance[]): QueuedInstance[] {
  const batch: QueuedInstance[] = [];
  const keys = new Set<string>();
  while (queue.length) {
    const key = instanceKey(queue[0]!.record);
    if (!keys.has(key) && keys.size >= INSTANCES_PER_WRITE) break;
    keys.add(key);
    batch.push(queue.shift()!);
  }
  return batch;
}

/** Re-sends of events found routed for good, by key: counted later (EtcdStore.countLater). */
type Later = Map<string, { id: string; modRevision: string; event: HostEvent; occ: NewHostEvent[] }>;

/** A recovery update waiting for the next batch (EtcdStore.updateRecovery). */
interface QueuedUpdate {
  id: string;
  patch: RecoveryPatch;
  resolve: (r: Recovery) => void;
  reject: (err: unknown) => void;
}

/** Recoveries updated in one transaction at most (a compare and a put each). */
const UPDATES_PER_WRITE = 50;

/** The next batch of updates: one per recovery (a second update of one waits for the next batch). */
function nextUpdateBatch(queue: QueuedUpdate[]): QueuedUpdate[] {
  const batch: QueuedUpdate[] = [];
  const ids = new Set<string>();
  for (let i = 0; i < queue.length && batch.length < UPDATES_PER_WRITE; ) {
    const u = queue[i]!;
    if (ids.has(u.id)) {
      i++;
      continue;
    }
    ids.add(u.id);
    batch.push(u);
    queue.splice(i, 1);
  }
  return batch;
}

export class EtcdStore implements Store {
  readonly kind = "etcd";
  readonly #client: Etcd3;
  readonly #ownsClient: boolean;
  readonly #ks: Keyspace;
  readonly #clock: Clock;
  #open = false;
  #closed = false;

  // Group commit of appends: appends made while a batch is in flight go in the next one.
  readonly #appends = new GroupCommit<QueuedAppend>((batch) => this.writeAppends(batch));
  /** Events this process appended last, by key: id, record and its mod revision then (see appendChunk). */
  readonly #eventCache = new Map<string, { id: string; modRevision: string; event: HostEvent }>();
  /** Re-sends of events routed for good, journaled a little later (see appendBatch). */
  readonly #repeats: RepeatCounts;
  // Group commit of instance records, as of appends (a storm writes two per evacuation,
  // fifty at a time), as many as one transaction takes.
  readonly #instances = new GroupCommit<QueuedInstance>(
    (batch) => this.writeInstanceBatch(batch),
    (queue) => nextInstanceBatch(queue),
  );

  // Updates of recoveries made together (an approval of a storm's held recoveries): one read
  // and one compare-and-swap of them all, instead of one of each per recovery.
  readonly #updates = new GroupCommit<QueuedUpdate>((batch) => this.writeUpdateBatch(batch), nextUpdateBatch);

  constructor(opts: EtcdStoreOptions) {
    if (!opts.client && !opts.connection) throw new Error("EtcdStore needs a client or a connection");
    this.#client = opts.client ?? createEtcdClient(opts.connection!);
    this.#ownsClient = !opts.client;
    const deadlineMs = opts.requestTimeoutMs ?? opts.connection?.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#ks = new Keyspace(this.#client, opts.prefix.endsWith("/") ? opts.prefix : `${opts.prefix}/`, deadlineMs);
    this.#clock = opts.clock ?? systemClock;
    this.#repeats = new RepeatCounts(opts.repeatCountIntervalMs ?? REPEAT_COUNT_INTERVAL_MS, (deliveries) => this.appendBatch(deliveries, false));
  }

  static fromConfig(cfg: EtcdStoreConfig, client?: Etcd3): EtcdStore {
    return new EtcdStore({ ...(client ? { client } : { connection: etcdConnectionFromConfig(cfg) }), prefix: cfg.prefix, requestTimeoutMs: cfg.request_timeout_seconds * 1000 });
  }

  get prefix(): string {
    return this.#ks.prefix;
  }

  private check(): void {
    const err = this.unusable();
    if (err) throw err;
  }

  private unusable(): Error | null {
    if (this.#closed) return new Error("store is closed");
    return this.#open ? null : new Error("store is not initialised");
  }

  private nowIso(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  async init(): Promise<void> {
    if (this.#closed) throw new Error("store is closed");
    const ks = this.#ks;
    const res = await ks.txn([ks.absent("meta/schema")], [ks.put("meta/schema", String(SCHEMA_VERSION))], [ks.get("meta/schema")]);
    if (!res.succeeded) {
      const [kv] = kvs(res.responses[0]);
      const version = Number(kv?.value.toString());
      if (!Number.isInteger(version) || version > SCHEMA_VERSION) {
        throw new Error(`etcd prefix ${ks.prefix} has layout version ${kv?.value.toString() ?? "?"}, newer than this lifeboat (${SCHEMA_VERSION}); upgrade lifeboat`);
      }
    }
    this.#open = true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Counts not journaled yet are written now; if etcd does not take them, they are lost (only counts).
    if (this.#open) await this.#repeats.close();
    while (this.#appends.busy || this.#instances.busy || this.#updates.busy) {
      await this.#appends.idle();
      await this.#instances.idle();
      await this.#updates.idle();
    }
    this.#closed = true;
    this.#open = false;
    if (this.#ownsClient) this.#client.close();
  }

  async ping(): Promise<void> {
    this.check();
    const probe = `${this.nowIso()} ${token()}`;
    const ks = this.#ks;
    const res = await ks.txn([], [ks.put("ping", probe), ks.get("ping")]);
    const [kv] = kvs(res.responses[1]);
    if (kv?.value.toString() !== probe) throw new Error("etcd did not read back the probe it just wrote");
  }

  // ---- events ------------------------------------------------------------------------

  appendEvents(events: NewHostEvent[]): Promise<AppendedEvent[]> {
    const err = this.unusable();
    if (err) return Promise.reject(err);
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => this.#appends.add({ events, resolve, reject }));
  }

  private async writeAppends(batch: QueuedAppend[]): Promise<void> {
    try {
      const results = await this.appendBatch(batch.flatMap((b) => b.events));
      let i = 0;
      for (const b of batch) {
        b.resolve(results.slice(i, i + b.events.length));
        i += b.events.length;
      }
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /**
   * `countLater`: a re-send of an event this process knows routed for good (ROUTED_FOR_GOOD,
   * as it appended or marked it last) is counted by RepeatCounts and journaled with the next
   * interval's counts, so its answer does not wait for etcd. Everything else (a new alert, a
   * re-send of an event not routed yet or ignored, one this process has not seen) is written
   * before the append resolves.
   */
  private async appendBatch(events: NewHostEvent[], countLater = true): Promise<AppendedEvent[]> {
    const groups = new Map<string, NewHostEvent[]>();
    for (const e of events) {
      const g = groups.get(e.key);
      if (g) g.push(e);
      else groups.set(e.key, [e]);
    }
    const applied = new Map<string, Planned>();
    const entries: [string, NewHostEvent[]][] = [];
    for (const [key, occ] of groups) {
      const known = countLater ? this.#eventCache.get(key) : undefined;
      if (!known || !ROUTED_FOR_GOOD.has(known.event.disposition)) {
        entries.push([key, occ]);
        continue;
      }
      // Each delivery's own count and time are set below, from `before`.
      applied.set(key, { before: known.event.deliveries + this.#repeats.waiting(key), record: known.event, requeued: false });
      this.#repeats.add(key, occ);
    }
    for (let i = 0; i < entries.length; i += EVENT_CHUNK) {
      for (const [k, v] of await this.appendChunk(entries.slice(i, i + EVENT_CHUNK), countLater)) applied.set(k, v);
    }
    const seen = new Map<string, number>();
    return events.map((e) => {
      const { before, record, requeued } = applied.get(e.key)!;
      const n = (seen.get(e.key) ?? 0) + 1;
      seen.set(e.key, n);
      const deliveries = before + n;
      // The first of this batch's deliveries is the one that put an ignored event back in the queue.
      const requeue = requeued && n === 1;
      return { event: { ...record, deliveries, lastReceivedAt: e.receivedAt }, duplicate: deliveries > 1 && !requeue, requeued: requeue };
    });
  }

  /**
   * One transaction for up to EVENT_CHUNK distinct keys: new keys are created only if still
   * absent (create revision 0) with ids from the counter (compared on its mod revision);
   * known keys get their delivery count raised only if unchanged since read, and go back in
   * the queue (host and note as intake gave them now) if routing had ignored them.
   */
  private async appendChunk(groups: [string, NewHostEvent[]][], countLater = false): Promise<Map<string, Planned>> {
    const ks = this.#ks;
    const op = token();
    let lastPlan: Map<string, Planned> | null = null;
    let lastLater: Later = new Map();
    // Repeats of events this process journaled last: one compare-and-swap on the record as
    // it was then, no reads. Anyone's write since (routing's mark, the other instance's
    // delivery) fails the compare, and the reads below decide. A failed compare reads the
    // records in the same transaction: re-sends of events routed for good since (by the
    // other instance of a pair, say) are then counted later, with no further round trip.
    const cached = groups.map(([key]) => this.#eventCache.get(key));
    if (cached.every((c) => c !== undefined)) {
      const compare: ICompare[] = [];
      const success: IRequestOp[] = [];
      const plan = new Map<string, Planned>();
      groups.forEach(([key, occ], i) => plan.set(key, this.planRepeat(cached[i]!.id, cached[i]!.modRevision, cached[i]!.event, occ, op, compare, success)));
      lastPlan = plan;
      const res = await ks.txn(compare, success, countLater ? cached.map((c) => ks.get(`ev/id/${c.id}`)) : []);
      if (res.succeeded) {
        this.remember(plan, groups.map((_, i) => cached[i]!.id), res.header.revision);
        return plan;
      }
      for (const [key] of groups) this.#eventCache.delete(key);
      if (countLater) {
        const now = res.responses.map((r) => kvs(r)[0]);
        const stored = now.map((kv) => (kv ? parseJson<StoredEvent>(kv).event : undefined));
        if (stored.every((e) => e !== undefined && ROUTED_FOR_GOOD.has(e.disposition))) {
          return new Map(groups.map(([key, occ], i) => [key, this.countLater(key, cached[i]!.id, String(now[i]!.mod_revision), stored[i]!, occ)]));
        }
      }
    }
    for (let attempt = 0; ; attempt++) {
      if (attempt >= MAX_CAS_ATTEMPTS) throw new Error(`could not journal events: ${MAX_CAS_ATTEMPTS} conflicting writes in a row`);
      if (attempt > 0) await backoff(attempt);

      const idx = await ks.read([ks.get("ev/seq"), ...groups.map(([key]) => ks.get(`ev/key/${seg(key)}`))]);
      const seqKv = idx[0]![0];
      const ids = groups.map((_, i) => idx[i + 1]![0]?.value.toString() ?? null);
      const known = await this.readRecords(ids.filter((x): x is string => x !== null));

      // Our previous attempt may have committed with its answer lost (client retry).
      if (lastPlan && [...known.values()].some((k) => k.stored.op === op)) return this.withLater(lastPlan, lastLater);

      let seq = seqKv ? Number(seqKv.value.toString()) : 0;
      const compare: ICompare[] = [];
      const success: IRequestOp[] = [];
      const plan = new Map<string, Planned>();
      // Re-sends of events found routed for good: counted later, as on the fast path.
      const later: Later = new Map();
      const plannedIds: string[] = [];
      let created = false;
      for (const [i, [key, occ]] of groups.entries()) {
        const last = occ[occ.length - 1]!;
        const id = ids[i];
        const cur = id !== null && id !== undefined ? known.get(id) : undefined;
        if (cur && countLater && ROUTED_FOR_GOOD.has(cur.stored.event.disposition)) {
          later.set(key, { id: id!, modRevision: String(cur.kv.mod_revision), event: cur.stored.event, occ });
        } else if (cur) {
          plan.set(key, this.planRepeat(id!, cur.kv.mod_revision, cur.stored.event, occ, op, compare, success));
          plannedIds.push(id!);
        } else {
          if (id) throw new Error(`event index ${key} points to missing event ${id}`);
          seq += 1;
          created = true;
          const first = occ[0]!;
          const record: HostEvent = {
            id: seq,
            key,
            deliveries: occ.length,
            receivedAt: first.receivedAt,
            lastReceivedAt: last.receivedAt,
            source: first.source,
            host: first.host,
            alertname: first.alertname,
            status: first.status,
            fingerprint: first.fingerprint,
            startsAt: first.startsAt,
            endsAt: first.endsAt,
            labels: first.labels,
            annotations: first.annotations,
            generatorURL: first.generatorURL,
            groupKey: first.groupKey,
            receiver: first.receiver,
            disposition: "unprocessed",
            recoveryId: null,
            note: first.note ?? null,
          };
          const pid = padId(seq);
          compare.push(ks.absent(`ev/key/${seg(key)}`));
          success.push(
            ks.putJson(`ev/id/${pid}`, { event: record, op } satisfies StoredEvent),
            ks.put(`ev/key/${seg(key)}`, pid),
            ks.put(`ev/q/${pid}`, ""),
          );
          if (record.host !== null) success.push(ks.put(`ev/host/${seg(record.host)}/${pid}`, ""));
          plan.set(key, { before: 0, record, requeued: false });
          plannedIds.push(pid);
        }
      }
      if (created) {
        compare.push(ks.modRevIs("ev/seq", seqKv?.mod_revision ?? 0));
        success.push(ks.put("ev/seq", String(seq)));
      }
      lastPlan = plan;
      lastLater = later;
      if (plan.size > 0) {
        const res = await ks.txn(compare, success);
        if (!res.succeeded) continue;
        this.remember(plan, plannedIds, res.header.revision);
      }
      return this.withLater(plan, later);
    }
  }

  /** `plan` with the re-sends to count later added (see countLater). */
  private withLater(plan: Map<string, Planned>, later: Later): Map<string, Planned> {
    for (const [key, l] of later) plan.set(key, this.countLater(key, l.id, l.modRevision, l.event, l.occ));
    return plan;
  }

  /**
   * Re-sends of an event routed for good, found so in the journal (`id` at `modRevision`):
   * counted by RepeatCounts and journaled with the next interval's counts, as on
   * appendBatch's fast path, and the record is remembered for the next re-send.
   */
  private countLater(key: string, id: string, modRevision: string, event: HostEvent, occ: NewHostEvent[]): Planned {
    this.cacheEvent(key, id, modRevision, event);
    const planned = { before: event.deliveries + this.#repeats.waiting(key), record: event, requeued: false };
    this.#repeats.add(key, occ);
    return planned;
  }

  /** The compare and writes of one repeat delivery of a known event (`id` at `modRevision`). */
  private planRepeat(id: string, modRevision: string, was: HostEvent, occ: NewHostEvent[], op: string, compare: ICompare[], success: IRequestOp[]): Planned {
    const ks = this.#ks;
    const requeued = was.disposition === "ignored";
    const first = occ[0]!;
    const record: HostEvent = {
      ...was,
      deliveries: was.deliveries + occ.length,
      lastReceivedAt: occ[occ.length - 1]!.receivedAt,
      ...(requeued ? { host: first.host, note: first.note ?? null, disposition: "unprocessed" as const } : {}),
    };
    compare.push(ks.modRevIs(`ev/id/${id}`, modRevision));
    success.push(ks.putJson(`ev/id/${id}`, { event: record, op } satisfies StoredEvent));
    if (requeued) {
      success.push(ks.put(`ev/q/${id}`, ""));
      if (was.host !== record.host) {
        if (was.host !== null) success.push(ks.del(`ev/host/${seg(was.host)}/${id}`));
        if (record.host !== null) success.push(ks.put(`ev/host/${seg(record.host)}/${id}`, ""));
      }
    }
    return { before: was.deliveries, record, requeued };
  }

  /** The records an append wrote, as of the transaction's revision (their mod revision). */
  private remember(plan: Map<string, Planned>, ids: string[], revision: string): void {
    [...plan.entries()].forEach(([key, p], i) => this.cacheEvent(key, ids[i]!, revision, p.record));
  }

  /**
   * An event record as this process wrote it at `revision`. Answers to concurrent writes may
   * come in any order: a record older than the one cached is not kept (a stale entry would
   * only cost a failed compare and a read).
   */
  private cacheEvent(key: string, id: string, revision: string, event: HostEvent): void {
    const had = this.#eventCache.get(key);
    if (had && had.id === id && BigInt(had.modRevision) > BigInt(revision)) return;
    this.#eventCache.delete(key);
    this.#eventCache.set(key, { id, modRevision: revision, event });
    while (this.#eventCache.size > EVENT_CACHE_SIZE) this.#eventCache.delete(this.#eventCache.keys().next().value!);
  }

  /** Event records by padded id, with their key-values (for mod revisions). */
  private async readRecords(ids: string[]): Promise<Map<string, { kv: IKeyValue; stored: StoredEvent }>> {
    const out = new Map<string, { kv: IKeyValue; stored: StoredEvent }>();
    for (let i = 0; i < ids.length; i += READ_BATCH) {
      const chunk = ids.slice(i, i + READ_BATCH);
      const res = await this.#ks.read(chunk.map((id) => this.#ks.get(`ev/id/${id}`)));
      res.forEach((r, j) => {
        const kv = r[0];
        if (kv) out.set(chunk[j]!, { kv, stored: parseJson<StoredEvent>(kv) });
      });
    }
    return out;
  }

  private async eventsByIds(ids: string[]): Promise<HostEvent[]> {
    const got = await this.readRecords(ids);
    return ids.flatMap((id) => {
      const r = got.get(id);
      return r ? [r.stored.event] : [];
    });
  }

  async unprocessedEvents(limit: number): Promise<HostEvent[]> {
    this.check();
    if (limit <= 0) return [];
    const ks = this.#ks;
    const queued = await ks.readOne(ks.range("ev/q/", { limit, keysOnly: true }));
    const ids = queued.map((kv) => lastSegment(ks.rel(kv)));
    return (await this.eventsByIds(ids)).filter((e) => e.disposition === "unprocessed");
  }

  async markEvent(id: number, disposition: EventDisposition, recoveryId: string | null, note: string | null): Promise<void> {
    this.check();
    const ks = this.#ks;
    const pid = padId(id);
    for (let attempt = 0; ; attempt++) {
      if (attempt >= MAX_CAS_ATTEMPTS) throw new Error(`could not mark event ${id}: ${MAX_CAS_ATTEMPTS} conflicting writes in a row`);
      if (attempt > 0) await backoff(attempt);
      const [kv] = await ks.readOne(ks.get(`ev/id/${pid}`));
      if (!kv) return; // like an UPDATE that matches no row
      const { event } = parseJson<StoredEvent>(kv);
      const next: HostEvent = { ...event, disposition, recoveryId, note };
      const ops: IRequestOp[] = [ks.putJson(`ev/id/${pid}`, { event: next, op: token() } satisfies StoredEvent)];
      ops.push(disposition === "unprocessed" ? ks.put(`ev/q/${pid}`, "") : ks.del(`ev/q/${pid}`));
      if (event.recoveryId !== null && event.recoveryId !== recoveryId) ops.push(ks.del(`ev/rec/${seg(event.recoveryId)}/${pid}`));
      if (recoveryId !== null) ops.push(ks.put(`ev/rec/${seg(recoveryId)}/${pid}`, ""));
      const res = await ks.txn([ks.modRevIs(`ev/id/${pid}`, kv.mod_revision)], ops);
      if (res.succeeded) {
        // Routing's mark is this process's own write: the next repeat of the alert swaps from
        // it without reading the record first (appendChunk).
        this.cacheEvent(next.key, pid, res.header.revision, next);
        return;
      }
    }
  }

  async listEvents(filter: { host?: string; recoveryId?: string; limit?: number }): Promise<HostEvent[]> {
    this.check();
    const limit = filter.limit ?? 100;
    if (limit <= 0) return [];
    if (!filter.host && !filter.recoveryId) {
      const kvList = await this.#ks.readOne(this.#ks.range("ev/id/", { descending: true, limit }));
      return kvList.map((kv) => parseJson<StoredEvent>(kv).event);
    }
    const index = filter.recoveryId ? `ev/rec/${seg(filter.recoveryId)}/` : `ev/host/${seg(filter.host!)}/`;
    const out: HostEvent[] = [];
    for await (const ids of this.pageKeys(index)) {
      for (const e of await this.eventsByIds(ids)) {
        if (filter.host && e.host !== filter.host) continue;
        if (filter.recoveryId && e.recoveryId !== filter.recoveryId) continue;
        out.push(e);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /** The last segments of the keys under an index prefix, newest (highest) first, page by page. */
  private async *pageKeys(indexPrefix: string): AsyncGenerator<string[]> {
    const ks = this.#ks;
    let to: string | undefined;
    for (;;) {
      const page = await ks.readOne(ks.range(indexPrefix, { descending: true, limit: PAGE, keysOnly: true, ...(to !== undefined ? { to } : {}) }));
      if (page.length === 0) return;
      yield page.map((kv) => lastSegment(ks.rel(kv)));
      if (page.length < PAGE) return;
      to = ks.rel(page[page.length - 1]!);
    }
  }

  // ---- recoveries --------------------------------------------------------------------

  async createRecovery(r: NewRecovery): Promise<Recovery> {
    this.check();
    const ks = this.#ks;
    const ms = this.#clock.now();
    const now = new Date(ms).toISOString();
    const id = newId("r", ms);
    const recovery: Recovery = {
      id,
      host: r.host,
      kind: r.kind,
      incidentKey: r.incidentKey,
      state: "pending",
      trigger: r.trigger,
      dryRun: r.dryRun,
      confirmedOff: r.confirmedOff,
      approved: Boolean(r.approvedBy),
      ...(r.approvedBy ? { approvedBy: r.approvedBy } : {}),
      fenceState: "not-attempted",
      reason: r.reason,
      detectedAt: r.detectedAt,
      createdAt: now,
      updatedAt: now,
      graceUntil: r.graceUntil,
      alerts: r.alerts ?? {},
    };
    const first: Transition = { recoveryId: id, seq: 1, from: null, to: "pending", at: now, reason: r.reason, ...(r.actor ? { actor: r.actor } : {}) };
    const host = seg(r.host);
    for (let attempt = 0; ; attempt++) {
      if (attempt >= MAX_CAS_ATTEMPTS) throw new Error(`could not create a recovery for ${r.host}: ${MAX_CAS_ATTEMPTS} conflicting writes in a row`);
      if (attempt > 0) await backoff(attempt);
      const res = await ks.txn(
        [ks.absent(`open/${host}`), ks.absent(`rec/${seg(id)}`)],
        [
          ks.putJson(`rec/${seg(id)}`, { recovery, transitions: 1, op: id } satisfies StoredRecovery),
          ks.put(`open/${host}`, id),
          ks.put(`rec-host/${host}/${seg(id)}`, ""),
          ks.put(`rec-inc/${host}/${seg(r.incidentKey)}/${seg(id)}`, ""),
          ks.putJson(`tr/${seg(id)}/${padSeq(1)}`, first),
        ],
        [ks.get(`open/${host}`)],
      );
      if (res.succeeded) return recovery;
      const openId = kvs(res.responses[0])[0]?.value.toString();
      if (openId === id) return recovery; // our own earlier try committed
      if (openId !== undefined) throw new HostBusyError(r.host, openId);
      // The open recovery ended between the compare and the read: try again.
    }
  }

  async getRecovery(id: string): Promise<Recovery | null> {
    this.check();
    const [kv] = await this.#ks.readOne(this.#ks.get(`rec/${seg(id)}`));
    return kv ? recoveryFromDocument(parseJson<StoredRecovery>(kv).recovery) : null;
  }

  private async recoveriesByIds(ids: string[]): Promise<Recovery[]> {
    const out: Recovery[] = [];
    for (let i = 0; i < ids.length; i += READ_BATCH) {
      const res = await this.#ks.read(ids.slice(i, i + READ_BATCH).map((id) => this.#ks.get(`rec/${seg(id)}`)));
      for (const r of res) if (r[0]) out.push(recoveryFromDocument(parseJson<StoredRecovery>(r[0]).recovery));
    }
    return out;
  }

  async findOpenRecovery(host: string): Promise<Recovery | null> {
    this.check();
    const [kv] = await this.#ks.readOne(this.#ks.get(`open/${seg(host)}`));
    if (!kv) return null;
    const r = await this.getRecovery(kv.value.toString());
    return r && !isTerminal(r.state) ? r : null;
  }

  async findRecoveryByIncident(host: string, incidentKey: string): Promise<Recovery | null> {
    this.check();
    const ks = this.#ks;
    const [kv] = await ks.readOne(ks.range(`rec-inc/${seg(host)}/${seg(incidentKey)}/`, { descending: true, limit: 1, keysOnly: true }));
    return kv ? this.getRecovery(lastSegment(ks.rel(kv))) : null;
  }

  async listRecoveries(filter: RecoveryFilter): Promise<Recovery[]> {
    this.check();
    const ks = this.#ks;
    const limit = filter.limit ?? 1000;
    const states = filter.state === undefined ? undefined : Array.isArray(filter.state) ? filter.state : [filter.state];
    if (limit <= 0 || states?.length === 0) return [];
    const keep = (r: Recovery): boolean =>
      (filter.host === undefined || filter.host === "" || r.host === filter.host) &&
      (states === undefined || states.includes(r.state)) &&
      (filter.open === undefined || filter.open !== isTerminal(r.state)) &&
      (filter.since === undefined || filter.since === "" || r.createdAt >= filter.since);

    // Only open states asked for (blocked, evacuating…) are open recoveries too: the journal's
    // whole history need not be paged through for them.
    if (filter.open === true || (filter.open === undefined && states !== undefined && states.every((s) => !isTerminal(s)))) {
      // Few recoveries are open: read them all through the open/ index and sort.
      const open = await ks.readOne(ks.range("open/"));
      const found = (await this.recoveriesByIds(open.map((kv) => kv.value.toString()))).filter(keep);
      return found.sort(newestFirst).slice(0, limit);
    }

    // Ids start with their creation time, so key order is creation order (newest last).
    const out: Recovery[] = [];
    const pages = filter.host ? this.pageHostRecoveries(filter.host) : this.pageRecoveries();
    for await (const page of pages) {
      for (const r of page) {
        if (filter.since && r.createdAt < filter.since) return out;
        if (!keep(r)) continue;
        out.push(r);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  private async *pageHostRecoveries(host: string): AsyncGenerator<Recovery[]> {
    for await (const ids of this.pageKeys(`rec-host/${seg(host)}/`)) yield this.recoveriesByIds(ids);
  }

  private async *pageRecoveries(): AsyncGenerator<Recovery[]> {
    const ks = this.#ks;
    let to: string | undefined;
    for (;;) {
      const page = await ks.readOne(ks.range("rec/", { descending: true, limit: PAGE, ...(to !== undefined ? { to } : {}) }));
      if (page.length === 0) return;
      yield page.map((kv) => recoveryFromDocument(parseJson<StoredRecovery>(kv).recovery));
      if (page.length < PAGE) return;
      to = ks.rel(page[page.length - 1]!);
    }
  }

  async transition(id: string, from: RecoveryState, to: RecoveryState, reason: string, patch: RecoveryPatch = {}, actor?: string): Promise<Recovery> {
    this.check();
    const ks = this.#ks;
    const op = token();
    for (let attempt = 0; ; attempt++) {
      if (attempt >= MAX_CAS_ATTEMPTS) throw new Error(`could not move recovery ${id}: ${MAX_CAS_ATTEMPTS} conflicting writes in a row`);
      if (attempt > 0) await backoff(attempt);
      const [kv] = await ks.readOne(ks.get(`rec/${seg(id)}`));
      if (!kv) throw new NotFoundError(`recovery ${id} not found`);
      const stored = parseJson<StoredRecovery>(kv);
      if (stored.op === op) return recoveryFromDocument(stored.recovery); // our earlier try committed
      const cur = recoveryFromDocument(stored.recovery);
      if (cur.state !== from) throw new StateConflictError(id, from, cur.state);

      const now = this.nowIso();
      const next = applyPatch({ ...cur, state: to, reason, updatedAt: now }, patch);
      const seq = stored.transitions + 1;
      const t: Transition = { recoveryId: id, seq, from, to, at: now, reason, ...(actor ? { actor } : {}) };
      const host = seg(cur.host);
      const compare: ICompare[] = [ks.modRevIs(`rec/${seg(id)}`, kv.mod_revision)];
      const success: IRequestOp[] = [
        ks.putJson(`rec/${seg(id)}`, { recovery: next, transitions: seq, op } satisfies StoredRecovery),
        ks.putJson(`tr/${seg(id)}/${padSeq(seq)}`, t),
      ];
      if (isTerminal(to) && !isTerminal(from)) {
        // Free the host, but only if its open marker is this recovery's.
        success.push(ks.nested([ks.valueIs(`open/${host}`, id)], [ks.del(`open/${host}`)]));
      } else if (!isTerminal(to) && isTerminal(from)) {
        compare.push(ks.absent(`open/${host}`));
        success.push(ks.put(`open/${host}`, id));
      }
      const res = await ks.txn(compare, success, [ks.get(`rec/${seg(id)}`), ks.get(`open/${host}`)]);
      if (res.succeeded) return next;
      const [now1] = kvs(res.responses[0]);
      const [openKv] = kvs(res.responses[1]);
      if (now1?.mod_revision === kv.mod_revision && openKv && openKv.value.toString() !== id) {
        throw new HostBusyError(cur.host, openKv.value.toString());
      }
    }
  }

  updateRecovery(id: string, patch: RecoveryPatch): Promise<Recovery> {
    this.check();
    return new Promise((resolve, reject) => this.#updates.add({ id, patch, resolve, reject }));
  }

  /**
   * A batch of updates, one per recovery: every record read at one revision, then written in
   * one transaction that compares each one's revision. Any of them changed meanwhile: each
   * goes its own way (updateOne), as if it had come alone.
   */
  private async writeUpdateBatch(batch: QueuedUpdate[]): Promise<void> {
    if (batch.length > 1) {
      const ks = this.#ks;
      try {
        const read = await ks.read(batch.map((u) => ks.get(`rec/${seg(u.id)}`)));
        const op = token();
        const planned = batch.map((u, i) => {
          const kv = read[i]?.[0];
          return kv ? { u, ...this.patched(u.id, kv, parseJson<StoredRecovery>(kv), u.patch, op) } : null;
        });
        const found = planned.filter((p): p is NonNullable<typeof p> => p !== null);
        const res = found.length ? await ks.txn(found.map((p) => p.unchanged), found.map((p) => p.put)) : { succeeded: true };
        if (res.succeeded) {
          for (const [i, p] of planned.entries()) {
            if (p) p.u.resolve(p.next);
            else batch[i]!.reject(new NotFoundError(`recovery ${batch[i]!.id} not found`));
          }
          return;
        }
      } catch (err) {
        for (const u of batch) u.reject(err);
        return;
      }
    }
    await Promise.all(batch.map((u) => this.updateOne(u.id, u.patch).then(u.resolve, u.reject)));
  }

  private async updateOne(id: string, patch: RecoveryPatch): Promise<Recovery> {
    const ks = this.#ks;
    const op = token();
    for (let attempt = 0; ; attempt++) {
      if (attempt >= MAX_CAS_ATTEMPTS) throw new Error(`could not update recovery ${id}: ${MAX_CAS_ATTEMPTS} conflicting writes in a row`);
      if (attempt > 0) await backoff(attempt);
      const [kv] = await ks.readOne(ks.get(`rec/${seg(id)}`));
      if (!kv) throw new NotFoundError(`recovery ${id} not found`);
      const stored = parseJson<StoredRecovery>(kv);
      if (stored.op === op) return recoveryFromDocument(stored.recovery);
      const { next, unchanged, put } = this.patched(id, kv, stored, patch, op);
      const res = await ks.txn([unchanged], [put]);
      if (res.succeeded) return next;
    }
  }

  /** A recovery record as read, patched: the new record, and its write if the record is still as read. */
  private patched(id: string, kv: IKeyValue, stored: StoredRecovery, patch: RecoveryPatch, op: string): { next: Recovery; unchanged: ICompare; put: IRequestOp } {
    const ks = this.#ks;
    const next = applyPatch({ ...recoveryFromDocument(stored.recovery), updatedAt: this.nowIso() }, patch);
    return { next, unchanged: ks.modRevIs(`rec/${seg(id)}`, kv.mod_revision), put: ks.putJson(`rec/${seg(id)}`, { ...stored, recovery: next, op } satisfies StoredRecovery) };
  }

  async transitions(recoveryId: string): Promise<Transition[]> {
    this.check();
    const list = await this.#ks.readOne(this.#ks.range(`tr/${seg(recoveryId)}/`));
    return list.map((kv) => parseJson<Transition>(kv));
  }

  // ---- journal records ---------------------------------------------------------------

  /** Write `ops` only if the recovery exists (like the foreign keys of the SQLite store). */
  private async writeForRecovery(recoveryId: string, ops: IRequestOp[]): Promise<void> {
    const res = await this.#ks.txn([this.#ks.exists(`rec/${seg(recoveryId)}`)], ops);
    if (!res.succeeded) throw new NotFoundError(`recovery ${recoveryId} not found`);
  }

  async recordDecisions(ds: readonly GateDecision[]): Promise<void> {
    this.check();
    const recoveryId = recoveryOfWrite(ds, "recordDecisions");
    if (recoveryId === undefined) return;
    // A unique key per write, numbered within it: listing sorts by creation revision (commit
    // order), then by key (the order within one write, which shares a revision).
    const write = token();
    await this.writeForRecovery(recoveryId, ds.map((d, i) => this.#ks.putJson(`dec/${seg(recoveryId)}/${write}.${String(i).padStart(4, "0")}`, d)));
  }

  async decisions(recoveryId: string): Promise<GateDecision[]> {
    this.check();
    const list = await this.#ks.readOne(this.#ks.range(`dec/${seg(recoveryId)}/`, { byCreate: true }));
    const rev = (kv: IKeyValue): bigint => BigInt(kv.create_revision);
    list.sort((a, b) => (rev(a) === rev(b) ? Buffer.compare(a.key, b.key) : rev(a) < rev(b) ? -1 : 1));
    return list.map((kv) => parseJson<GateDecision>(kv));
  }

  async getStep(recoveryId: string, key: string): Promise<StepRecord | null> {
    this.check();
    const [kv] = await this.#ks.readOne(this.#ks.get(`step/${seg(recoveryId)}/${seg(key)}`));
    return kv ? parseJson<StepRecord>(kv) : null;
  }

  async putStep(step: StepRecord): Promise<void> {
    this.check();
    await this.writeForRecovery(step.recoveryId, [this.#ks.putJson(`step/${seg(step.recoveryId)}/${seg(step.key)}`, step)]);
  }

  async steps(recoveryId: string): Promise<StepRecord[]> {
    this.check();
    const list = (await this.#ks.readOne(this.#ks.range(`step/${seg(recoveryId)}/`))).map((kv) => parseJson<StepRecord>(kv));
    return list.sort((a, b) => byteCompare(a.startedAt, b.startedAt) || byteCompare(a.key, b.key));
  }

  putInstance(r: InstanceResult): Promise<void> {
    const err = this.unusable();
    if (err) return Promise.reject(err);
    return new Promise((resolve, reject) => this.#instances.add({ record: r, resolve, reject }));
  }

  /**
   * Write a batch of instance records in one transaction: one record per instance (a later
   * put of the same instance supersedes an earlier one queued with it, as it would have
   * overwritten it), each only if its recovery exists. When one of the recoveries is gone,
   * each recovery's records are written on their own, so that only those of the missing one
   * fail.
   */
  private async writeInstanceBatch(batch: QueuedInstance[]): Promise<void> {
    const latest = new Map<string, InstanceResult>();
    for (const b of batch) latest.set(instanceKey(b.record), b.record);
    const recoveries = [...new Set(batch.map((b) => b.record.recoveryId))];
    const ks = this.#ks;
    try {
      const res = await ks.txn(
        recoveries.map((id) => ks.exists(`rec/${seg(id)}`)),
        [...latest].map(([key, r]) => ks.putJson(key, dropNulls(r))),
      );
      if (res.succeeded) {
        for (const b of batch) b.resolve();
        return;
      }
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    // A recovery of the batch is gone: each recovery's records on their own.
    await Promise.all(
      recoveries.map(async (id) => {
        const mine = batch.filter((b) => b.record.recoveryId === id);
        const records = [...latest].filter(([, r]) => r.recoveryId === id);
        try {
          await this.writeForRecovery(id, records.map(([key, r]) => ks.putJson(key, dropNulls(r))));
          for (const b of mine) b.resolve();
        } catch (err) {
          for (const b of mine) b.reject(err);
        }
      }),
    );
  }

  async putInstances(list: readonly InstanceResult[]): Promise<void> {
    this.check();
    const recoveryId = recoveryOfWrite(list, "putInstances");
    if (recoveryId === undefined) return;
    // One transaction (etcd's default bound is 128 operations per transaction).
    if (list.length > INSTANCES_PER_WRITE) throw new Error(`putInstances: at most ${INSTANCES_PER_WRITE} records at once`);
    await this.writeForRecovery(recoveryId, list.map((r) => this.#ks.putJson(instanceKey(r), dropNulls(r))));
  }

  async instances(recoveryId: string): Promise<InstanceResult[]> {
    this.check();
    const list = (await this.#ks.readOne(this.#ks.range(`inst/${seg(recoveryId)}/`))).map((kv) => parseJson<InstanceResult>(kv));
    return list.sort((a, b) => b.priority - a.priority || byteCompare(a.name, b.name) || byteCompare(a.instanceId, b.instanceId));
  }

  async putNotification(n: NotificationRecord, payload?: NotificationPayload): Promise<void> {
    this.check();
    const key = seg(n.dedupKey);
    const queued = `notif-q/${seg(n.recoveryId)}/${key}`;
    await this.writeForRecovery(n.recoveryId, [
      this.#ks.putJson(`notif/${seg(n.recoveryId)}/${key}`, dropNulls(n)),
      this.#ks.put(`notif-key/${key}/${seg(n.recoveryId)}`, ""),
      // The queue entry holds the payload while the record is pending, and goes with it.
      ...(n.state !== "pending" ? [this.#ks.del(queued)] : payload ? [this.#ks.putJson(queued, payload)] : []),
    ]);
  }

  async pendingNotifications(limit: number): Promise<OutboxEntry[]> {
    this.check();
    const ks = this.#ks;
    const queue = await ks.readOne(ks.range("notif-q/"));
    const out: OutboxEntry[] = [];
    for (let i = 0; i < queue.length; i += READ_BATCH) {
      const batch = queue.slice(i, i + READ_BATCH);
      const records = await ks.read(batch.map((kv) => ks.get(`notif/${ks.rel(kv).slice("notif-q/".length)}`)));
      batch.forEach((kv, j) => {
        const r = records[j]?.[0];
        if (!r) return;
        const record = parseJson<NotificationRecord>(r);
        if (record.state === "pending") out.push({ record, payload: parseJson<NotificationPayload>(kv) });
      });
    }
    out.sort((a, b) => byteCompare(a.record.nextAttemptAt ?? "", b.record.nextAttemptAt ?? ""));
    return out.slice(0, limit);
  }

  async notifications(recoveryId: string): Promise<NotificationRecord[]> {
    this.check();
    const list = await this.#ks.readOne(this.#ks.range(`notif/${seg(recoveryId)}/`, { byCreate: true }));
    return list.map((kv) => parseJson<NotificationRecord>(kv));
  }

  async notificationsByKey(dedupKey: string): Promise<NotificationRecord[]> {
    this.check();
    const ks = this.#ks;
    const key = seg(dedupKey);
    const index = await ks.readOne(ks.range(`notif-key/${key}/`, { byCreate: true, keysOnly: true }));
    const out: NotificationRecord[] = [];
    for (let i = 0; i < index.length; i += READ_BATCH) {
      const res = await ks.read(index.slice(i, i + READ_BATCH).map((kv) => ks.get(`notif/${seg(lastSegment(ks.rel(kv)))}/${key}`)));
      for (const r of res) if (r[0]) out.push(parseJson<NotificationRecord>(r[0]));
    }
    return out;
  }

  // ---- host states -------------------------------------------------------------------

  async getHostState(host: string): Promise<HostState | null> {
    this.check();
    const [cur, old] = await this.#ks.read([this.#ks.get(`host/${seg(host)}`), this.#ks.get(legacyHostKey(host))]);
    const kv = cur?.[0];
    const legacy = old?.[0];
    if (kv) return parseJson<StoredHostState>(kv).state;
    // Written by an older lifeboat as a setting: read as version 0, moved on the next write.
    return legacy ? { ...parseJson<HostStateRecord>(legacy), host, version: 0 } : null;
  }

  async putHostState(next: HostStateRecord, expected: number): Promise<HostState> {
    this.check();
    const ks = this.#ks;
    const key = `host/${seg(next.host)}`;
    const [kv] = await ks.readOne(ks.get(key));
    const actual = kv ? parseJson<StoredHostState>(kv).state.version : 0;
    if (actual !== expected) throw new HostStateConflictError(next.host, expected, actual);
    const state: HostState = { ...next, version: expected + 1 };
    const op = token();
    const res = await ks.txn([kv ? ks.modRevIs(key, kv.mod_revision) : ks.absent(key)], [ks.putJson(key, { state, op } satisfies StoredHostState), ks.del(legacyHostKey(next.host))], [ks.get(key)]);
    if (!res.succeeded) {
      const now = kvs(res.responses[0])[0];
      const stored = now ? parseJson<StoredHostState>(now) : null;
      // Our own write, applied by a retried request whose first answer was lost.
      if (stored?.op === op) return stored.state;
      throw new HostStateConflictError(next.host, expected, stored?.state.version ?? 0);
    }
    return state;
  }

  async listHostStates(): Promise<HostState[]> {
    this.check();
    const [current, legacy] = await this.#ks.read([this.#ks.range("host/"), this.#ks.range(legacyHostKey(""))]);
    const out = new Map<string, HostState>();
    for (const kv of legacy ?? []) {
      const host = decodeURIComponent(this.#ks.rel(kv).slice("set/".length)).slice("host/".length);
      out.set(host, { ...parseJson<HostStateRecord>(kv), host, version: 0 });
    }
    for (const kv of current ?? []) {
      const { state } = parseJson<StoredHostState>(kv);
      out.set(state.host, state);
    }
    return [...out.values()].sort((a, b) => a.host.localeCompare(b.host));
  }

  // ---- settings ----------------------------------------------------------------------

  async getSetting<T>(key: string): Promise<T | null> {
    this.check();
    const [kv] = await this.#ks.readOne(this.#ks.get(`set/${seg(key)}`));
    return kv ? parseJson<T>(kv) : null;
  }

  async putSetting(key: string, value: unknown): Promise<void> {
    this.check();
    await this.#ks.txn([], [this.#ks.putJson(`set/${seg(key)}`, value)]);
  }
}

// ---- helpers -------------------------------------------------------------------------

interface StoredHostState {
  state: HostState;
  op: string;
}

/** Where an older lifeboat kept a host's hold: the setting `host/<host>`. */
function legacyHostKey(host: string): string {
  return `set/${seg(`host/${host}`)}`;
}

function token(): string {
  return randomBytes(9).toString("base64url");
}

/** Event ids as fixed-width decimal, so key order is numeric order. */
function padId(id: number): string {
  return String(id).padStart(16, "0");
}

function padSeq(seq: number): string {
  return String(seq).padStart(8, "0");
}

function lastSegment(rel: string): string {
  return decodeURIComponent(rel.slice(rel.lastIndexOf("/") + 1));
}

/** Compare as UTF-8 bytes, as SQLite's default collation does. */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function newestFirst(a: Recovery, b: Recovery): number {
  return byteCompare(b.createdAt, a.createdAt) || byteCompare(b.id, a.id);
}

function dropNulls<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as T;
}

function applyPatch(r: Recovery, patch: RecoveryPatch): Recovery {
  const next: Recovery = { ...r };
  if (patch.dryRun !== undefined) next.dryRun = patch.dryRun;
  if (patch.confirmedOff !== undefined) next.confirmedOff = patch.confirmedOff;
  if (patch.approved !== undefined) next.approved = patch.approved;
  if (patch.approvedBy !== undefined) next.approvedBy = patch.approvedBy;
  if (patch.outcome !== undefined) next.outcome = patch.outcome;
  if (patch.fenceState !== undefined) next.fenceState = patch.fenceState;
  if (patch.graceUntil !== undefined) next.graceUntil = patch.graceUntil;
  if (patch.alerts !== undefined) next.alerts = patch.alerts;
  return withLearned(next, patch);
}

/** Jittered exponential pause between compare-and-swap retries, so racing writers spread out. */
function backoff(attempt: number): Promise<void> {
  const cap = Math.min(100, 2 ** Math.min(attempt, 7));
  return new Promise((r) => setTimeout(r, Math.random() * cap));
}
