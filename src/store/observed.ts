import type { Store } from "../domain/journal.js";

/** What a write to the journal touched: one recovery's records, one host's record, or one setting. */
export type JournalChange = { recoveryId: string; host?: string } | { hostState: string } | { setting: string };

export type JournalListener = (change: JournalChange) => void;

/** Who is told of journal writes: listeners come and go (the console's live views). */
export class JournalChanges {
  readonly #listeners = new Set<JournalListener>();

  on(listener: JournalListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listening(): number {
    return this.#listeners.size;
  }

  emit(change: JournalChange): void {
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch {
        // A listener's failure is its own: the write it observed succeeded.
      }
    }
  }
}

type Describe = (args: unknown[], result: unknown) => JournalChange | null;

const recoveryOfResult: Describe = (_a, r) => {
  const rec = r as { id: string; host: string };
  return { recoveryId: rec.id, host: rec.host };
};
const recoveryIdField: Describe = (a) => ({ recoveryId: (a[0] as { recoveryId: string }).recoveryId });
/** Records of one recovery written together: the recovery of the first. */
const firstRecoveryId: Describe = (a) => {
  const first = (a[0] as readonly { recoveryId: string }[])[0];
  return first ? { recoveryId: first.recoveryId } : null;
};

/** The writes worth telling about, and what each touched (from its arguments or its result). */
const WRITES: Partial<Record<keyof Store, Describe>> = {
  createRecovery: recoveryOfResult,
  transition: recoveryOfResult,
  updateRecovery: recoveryOfResult,
  recordDecisions: firstRecoveryId,
  putStep: recoveryIdField,
  putInstance: recoveryIdField,
  putInstances: firstRecoveryId,
  putNotification: recoveryIdField,
  markEvent: (a) => (typeof a[2] === "string" ? { recoveryId: a[2] } : null),
  putHostState: (a) => ({ hostState: (a[0] as { host: string }).host }),
  putSetting: (a) => ({ setting: a[0] as string }),
};

/**
 * The store, telling `changes` after each journal write has succeeded. Reads and the
 * write itself are untouched: without listeners this costs one empty loop per write.
 * (It sees the writes of this process only; another instance's writes reach a reader
 * through its own re-reads.)
 */
export function observeWrites(store: Store, changes: JournalChanges): Store {
  return new Proxy(store, {
    get(target, prop) {
      // The target as receiver: class getters over private fields must see the real object.
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      const fn = value as (...args: unknown[]) => unknown;
      const describe = WRITES[prop as keyof Store];
      if (!describe) return fn.bind(target);
      return async (...args: unknown[]) => {
        const result = await fn.apply(target, args);
        if (changes.listening) {
          const change = describe(args, result);
          if (change) changes.emit(change);
        }
        return result;
      };
    },
  });
}
