import { abortReason } from "./abort.js";

/** One holder's claim on a slot of `Slots`. */
export interface SlotHandle {
  /** True while this holder has a slot. */
  readonly held: boolean;
  /** Wait for a free slot (first come, first served); resolves at once when already held. */
  acquire(): Promise<void>;
  /** Hand the slot to the next waiter; nothing when not held. */
  release(): void;
}

/**
 * A counting semaphore whose holders may hand their slot on before they are done and take
 * one again later. p-limit holds a slot for a whole task; an evacuation that turns into
 * watching Nova's records (a call with no answer, an evacuation stuck past its timeout)
 * must free its slot for the next instance while it goes on watching.
 */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`slots: size must be a positive integer (got ${size})`);
    this.#free = size;
  }

  /** A new holder; `signal` aborts its waits (they reject with the signal's reason). */
  holder(signal?: AbortSignal): SlotHandle {
    let held = false;
    return {
      get held() {
        return held;
      },
      acquire: async () => {
        if (held) return;
        await this.#take(signal);
        held = true;
      },
      release: () => {
        if (!held) return;
        held = false;
        this.#give();
      },
    };
  }

  #take(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(grant);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(abortReason(signal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(grant);
    });
  }

  #give(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}
