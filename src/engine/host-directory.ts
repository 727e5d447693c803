import { SHARED_READ, type ComputeServiceInfo, type CloudPort } from "../domain/ports/cloud.js";
import { errorMessage } from "../util/errors.js";
import type { FencingPort } from "../domain/ports/fencing.js";

/** Whether lifeboat can act on a host an alert names. */
export type HostStanding =
  | { kind: "known"; via: "fencing" | "nova" }
  /** Neither a fencing device nor a nova-compute service has this name. */
  | { kind: "unknown"; likely: string | null; note: string }
  /** No fencing device, and Nova could not be asked. */
  | { kind: "unconfirmed"; note: string };

/**
 * The hosts lifeboat can act on: those with a fencing device (`fencing.hosts`) and those
 * Nova runs nova-compute on. Nova's side comes from the evacuation driver's shared listing
 * (a few seconds old at most): a flood of alerts for unknown names costs at most one listing
 * per interval, not one call per alert, and a host with a fencing device costs none.
 */
export class HostDirectory {
  /** Per listing (the same array while it is shared): names by lower case, and by short name. */
  readonly #indexes = new WeakMap<readonly ComputeServiceInfo[], NameIndex>();
  readonly #fencingIndex: NameIndex;

  constructor(
    private readonly deps: {
      fencing: FencingPort;
      evacuation: CloudPort;
      /** The names in `fencing.hosts`, for "did you mean". */
      fencingHosts: readonly string[];
    },
  ) {
    this.#fencingIndex = new NameIndex(deps.fencingHosts);
  }

  async standing(host: string, signal?: AbortSignal): Promise<HostStanding> {
    if (this.deps.fencing.hasHost(host)) return { kind: "known", via: "fencing" };
    let services: ComputeServiceInfo[];
    try {
      services = await this.deps.evacuation.listComputeServices(signal, SHARED_READ);
    } catch (err) {
      if (signal?.aborted) throw err;
      return {
        kind: "unconfirmed",
        note: `host "${host}" has no fencing device (fencing.hosts) and Nova could not be asked whether it runs nova-compute (${errorMessage(err)}): routed again once Nova answers`,
      };
    }
    if (services.some((s) => s.host === host)) return { kind: "known", via: "nova" };
    let index = this.#indexes.get(services);
    if (!index) {
      index = new NameIndex(services.map((s) => s.host));
      this.#indexes.set(services, index);
    }
    const likely = this.#fencingIndex.likely(host) ?? index.likely(host);
    const note = likely
      ? `host "${host}" is not one lifeboat knows, but "${likely}" is (the names differ only in case, a trailing dot or a domain): make the alerts name hosts as Nova and fencing.hosts do (alerts.host_label, alerts.host_pattern)`
      : `host "${host}" has no fencing device (fencing.hosts) and Nova has no nova-compute service by that name: lifeboat cannot act on it`;
    return { kind: "unknown", likely, note };
  }
}

/**
 * Known names by their lower-case form without a trailing dot, and by their short form (up
 * to the first dot): `COMPUTE-2`, `compute-2.` and `compute-2.example.com` all find
 * `compute-2`, and `compute-2` finds `compute-2.example.com`.
 */
class NameIndex {
  readonly #full = new Map<string, string>();
  readonly #short = new Map<string, string>();

  constructor(names: Iterable<string>) {
    for (const n of names) {
      const full = canonical(n);
      if (!this.#full.has(full)) this.#full.set(full, n);
      const short = shortName(full);
      if (!this.#short.has(short)) this.#short.set(short, n);
    }
  }

  /** A known name `name` differs from only in case, a trailing dot or a domain; null if none. */
  likely(name: string): string | null {
    const full = canonical(name);
    return this.#full.get(full) ?? this.#short.get(shortName(full)) ?? null;
  }
}

function canonical(name: string): string {
  return name.toLowerCase().replace(/\.+$/, "");
}

function shortName(canonicalName: string): string {
  // An address is not a name with a domain: 10.0.0.5 is not "10".
  if (/^[\d.]+$/.test(canonicalName) || canonicalName.includes(":")) return canonicalName;
  const dot = canonicalName.indexOf(".");
  return dot > 0 ? canonicalName.slice(0, dot) : canonicalName;
}
