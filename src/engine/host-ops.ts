import type { ReleaseResult } from "../domain/ports/cloud.js";
import type { Logger } from "../logging.js";
import type { Store } from "../domain/journal.js";
import type { Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import { ConflictError, RefusedError } from "../domain/errors.js";
import type { Coordinator } from "./engine.js";
import type { HostHold } from "./event-router.js";
import type { FencingPort } from "../domain/ports/fencing.js";

/** How a repaired host is brought back (the nova driver's release flow). */
export type ReleaseFn = (host: string, opts: { powerOn: () => Promise<unknown>; stillFailing: () => Promise<string | null>; signal: AbortSignal }) => Promise<ReleaseResult>;

export interface ReleaseStatus {
  host: string;
  state: "running" | "released" | "refused" | "error";
  by: string;
  startedAt: string;
  finishedAt?: string;
  result?: ReleaseResult;
  error?: string;
}

/**
 * Operator actions on a host as a whole: `release` brings a repaired host back (power on,
 * wait for nova-compute and its evacuation records, un-force, enable) and lifts lifeboat's
 * hold on it; `fenceOff` powers a host off by hand, journaled as a recovery of its own.
 */
export class HostOperations {
  readonly #running = new Map<string, AbortController>();

  constructor(
    private readonly deps: { store: Store; coordinator: Coordinator; fencing: FencingPort; release?: ReleaseFn; logger: Logger; clock: Clock },
  ) {}

  async describe(host: string): Promise<{ host: string; hold: HostHold | null; release: ReleaseStatus | null; openRecovery: string | null; fencing: boolean }> {
    const [hold, release, open] = await Promise.all([
      this.deps.store.getSetting<HostHold>(`host/${host}`),
      this.deps.store.getSetting<ReleaseStatus>(`release/${host}`),
      this.deps.store.findOpenRecovery(host),
    ]);
    return { host, hold, release, openRecovery: open?.id ?? null, fencing: this.deps.fencing.hasHost(host) };
  }

  /** Start releasing `host` in the background; its progress is in `describe(host).release`. */
  async release(host: string, actor: string): Promise<ReleaseStatus> {
    const { store } = this.deps;
    const releaseFn = this.deps.release;
    if (!releaseFn) throw new RefusedError("this evacuation driver cannot release hosts");
    if (this.#running.has(host)) throw new ConflictError(`a release of ${host} is already running`);
    // In an HA pair only the leader acts on hosts; a follower's release could race the leader.
    if (!this.deps.coordinator.running) throw new ConflictError("this instance does not lead: send the release to the leader (lifeboat status names it)");
    const open = await store.findOpenRecovery(host);
    if (open) throw new ConflictError(`${host} has an open recovery ${open.id} (${open.state}): release refused while the host is still failing`);
    const status: ReleaseStatus = { host, state: "running", by: actor, startedAt: this.now() };
    await store.putSetting(`release/${host}`, status);
    const abort = new AbortController();
    this.#running.set(host, abort);
    const log = this.deps.logger.child({ host, actor });
    log.warn("release of a repaired host started");
    void releaseFn(host, {
      signal: abort.signal,
      powerOn: async () => {
        if (!this.deps.fencing.hasHost(host)) return;
        const r = await this.deps.fencing.powerOn(host, abort.signal);
        if (!r.ok) throw new Error(`power-on failed: ${r.message}`);
      },
      stillFailing: async () => {
        const o = await store.findOpenRecovery(host);
        return o ? `recovery ${o.id} is ${o.state}` : null;
      },
    })
      .then(async (result) => {
        await store.putSetting(`release/${host}`, { ...status, state: result.released ? "released" : "refused", finishedAt: this.now(), result } satisfies ReleaseStatus);
        if (result.released) await this.deps.coordinator.clearHostHold(host, actor);
        log.warn({ released: result.released, message: result.message }, "release finished");
      })
      .catch(async (err: unknown) => {
        await store.putSetting(`release/${host}`, { ...status, state: "error", finishedAt: this.now(), error: errorMessage(err) } satisfies ReleaseStatus).catch(() => undefined);
        log.error({ err: errorMessage(err) }, "release failed");
      })
      .finally(() => this.#running.delete(host));
    return status;
  }

  /** `lifeboat fence off HOST --yes`: power off by hand, journaled as a fence-only recovery. */
  async fenceOff(host: string, actor: string): Promise<string> {
    if (!this.deps.fencing.hasHost(host)) throw new RefusedError(`no fencing configured for ${host}`);
    const r = await this.deps.coordinator.fenceManually(host, actor);
    return r.id;
  }

  stop(): void {
    for (const a of this.#running.values()) a.abort(new Error("stopping"));
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}
