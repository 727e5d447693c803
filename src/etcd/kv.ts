import type { Etcd3, ICompare, IKeyValue, IRequestOp, IResponseOp, ITxnResponse } from "etcd3";
import { withDeadline } from "./deadline.js";
import { etcd3 } from "./lazy.js";
import { nextTurn } from "../util/turns.js";

/**
 * Thin, typed building blocks over etcd's KV API, relative to one key prefix: range / put /
 * delete operations, revision compares, and transactions. Every multi-key write lifeboat
 * does is one `txn` of these, so it is atomic and conditional on what was read.
 */

/** A path segment that cannot contain "/" (so prefix ranges never match a longer name). */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

export function unseg(s: string): string {
  return decodeURIComponent(s);
}

/** The smallest key greater than every key starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all 0xff: to the end of the keyspace
}

export interface RangeOptions {
  limit?: number;
  descending?: boolean;
  /** Sort by creation revision (first-write order) instead of by key. */
  byCreate?: boolean;
  keysOnly?: boolean;
  /** Start of the range (inclusive), for paging; default the prefix itself. */
  from?: string;
  /** End of the range (exclusive), for paging backwards; default the end of the prefix. */
  to?: string;
}

export class Keyspace {
  readonly #prefix: string;

  /** `deadlineMs`: each transaction fails after that long without an answer (see withDeadline). */
  constructor(
    readonly client: Etcd3,
    prefix: string,
    private readonly deadlineMs?: number,
  ) {
    this.#prefix = prefix;
  }

  get prefix(): string {
    return this.#prefix;
  }

  key(rel: string): Buffer {
    return Buffer.from(this.#prefix + rel);
  }

  /** The key relative to the prefix. */
  rel(kv: IKeyValue): string {
    return kv.key.toString().slice(this.#prefix.length);
  }

  // ---- operations -------------------------------------------------------------------

  get(rel: string): IRequestOp {
    return { request_range: { key: this.key(rel) } };
  }

  range(relPrefix: string, o: RangeOptions = {}): IRequestOp {
    const start = this.key(o.from ?? relPrefix);
    const end = o.to !== undefined ? this.key(o.to) : prefixEnd(this.key(relPrefix));
    return {
      request_range: {
        key: start,
        range_end: end,
        ...(o.limit ? { limit: o.limit } : {}),
        ...(o.descending || o.byCreate
          ? { sort_order: o.descending ? etcd3().SortOrder.Descend : etcd3().SortOrder.Ascend, sort_target: o.byCreate ? etcd3().SortTarget.Create : etcd3().SortTarget.Key }
          : {}),
        ...(o.keysOnly ? { keys_only: true } : {}),
      },
    };
  }

  put(rel: string, value: string, lease?: string): IRequestOp {
    return { request_put: { key: this.key(rel), value: Buffer.from(value), ...(lease !== undefined ? { lease } : {}) } };
  }

  putJson(rel: string, value: unknown, lease?: string): IRequestOp {
    return this.put(rel, JSON.stringify(value) ?? "null", lease);
  }

  del(rel: string): IRequestOp {
    return { request_delete_range: { key: this.key(rel) } };
  }

  /** A nested transaction as one operation (etcd ≥ 3.3). */
  nested(compare: ICompare[], success: IRequestOp[], failure: IRequestOp[] = []): IRequestOp {
    return { request_txn: { compare, success, failure } };
  }

  // ---- compares ---------------------------------------------------------------------

  /** create_revision == rev; 0 means "the key does not exist". */
  createRevIs(rel: string, rev: string | number): ICompare {
    return { key: this.key(rel), target: etcd3().CompareTarget.Create, result: etcd3().CompareResult.Equal, create_revision: rev };
  }

  absent(rel: string): ICompare {
    return this.createRevIs(rel, 0);
  }

  exists(rel: string): ICompare {
    return { key: this.key(rel), target: etcd3().CompareTarget.Create, result: etcd3().CompareResult.Greater, create_revision: 0 };
  }

  /** mod_revision == rev; 0 means "the key does not exist". */
  modRevIs(rel: string, rev: string | number): ICompare {
    return { key: this.key(rel), target: etcd3().CompareTarget.Mod, result: etcd3().CompareResult.Equal, mod_revision: rev };
  }

  valueIs(rel: string, value: string): ICompare {
    return { key: this.key(rel), target: etcd3().CompareTarget.Value, result: etcd3().CompareResult.Equal, value: Buffer.from(value) };
  }

  leaseIs(rel: string, lease: string): ICompare {
    return { key: this.key(rel), target: etcd3().CompareTarget.Lease, result: etcd3().CompareResult.Equal, lease };
  }

  // ---- calls ------------------------------------------------------------------------

  txn(compare: ICompare[], success: IRequestOp[], failure: IRequestOp[] = []): Promise<ITxnResponse> {
    const call = this.client.kv.txn({ compare, success, failure });
    const bounded = this.deadlineMs === undefined ? call : withDeadline(call, this.deadlineMs, "etcd transaction");
    // Handed over on a later turn of the event loop, as HTTP answers are (util/turns.ts).
    return bounded.then(async (r) => {
      await nextTurn();
      return r;
    });
  }

  /** Several reads at one revision (one round trip). */
  async read(ops: IRequestOp[]): Promise<IKeyValue[][]> {
    if (ops.length === 0) return [];
    const res = await this.txn([], ops);
    return res.responses.map(kvs);
  }

  async readOne(op: IRequestOp): Promise<IKeyValue[]> {
    const [r] = await this.read([op]);
    return r ?? [];
  }
}

/** The key-values of a range response inside a transaction response. */
export function kvs(r: IResponseOp | undefined): IKeyValue[] {
  return r?.response_range?.kvs ?? [];
}

export function parseJson<T>(kv: IKeyValue): T {
  return JSON.parse(kv.value.toString()) as T;
}

/** Read one key given in full (outside any Keyspace prefix). */
export function getKey(key: string): IRequestOp {
  return { request_range: { key: Buffer.from(key) } };
}

/** The key, given in full, exists and is attached to `lease`. */
export function keyLeaseIs(key: string, lease: string): ICompare {
  return { key: Buffer.from(key), target: etcd3().CompareTarget.Lease, result: etcd3().CompareResult.Equal, lease };
}
