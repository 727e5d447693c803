import type { SimRequest } from "./cloud-state.js";

/**
 * Faults the simulated cloud can inject into matching requests: latency, an error status
 * (5xx) for N calls or for good, a 429 or 503 asking the client to come back later
 * (`Retry-After`), a 401 as if the token had been revoked, a request that hangs until the
 * client gives up, and a connection reset.
 */

export type FaultKind = "status" | "latency" | "hang" | "reset" | "unauthorized";

export interface FaultMatch {
  service?: SimRequest["service"];
  method?: string;
  /** Matched against the path below the service root, e.g. `/v2.1/servers/detail`. */
  path?: string | RegExp;
  /** A server action by its body's key (`POST /servers/{id}/action {"unlock": null}`: "unlock"). */
  action?: string;
  /**
   * Query parameters the request must carry with exactly these values, e.g.
   * `{"scope.project.id": P}`: Keystone refusing the role assignments of one project only.
   */
  query?: Readonly<Record<string, string>>;
}

export interface FaultSpec {
  kind: FaultKind;
  match?: FaultMatch;
  /** How many matching requests it hits (default: all of them until removed). */
  times?: number;
  /** For `status` (default 500). */
  status?: number;
  /**
   * For `status`: a `Retry-After` header on the answer — delay-seconds (a number) or an
   * HTTP-date (a string), as a rate limiter in front of the API (or the API itself) sends it
   * with 429 Too Many Requests or 503 Service Unavailable.
   */
  retryAfter?: number | string;
  /** For `latency`. */
  ms?: number;
}

export interface ActiveFault extends FaultSpec {
  id: number;
  remaining: number;
  hits: number;
}

export interface FaultHandle {
  readonly id: number;
  /** Requests it has hit so far. */
  hits(): number;
  remove(): void;
}

interface MatchOpts {
  times?: number;
  match?: FaultMatch;
}

export class SandboxFaults {
  private readonly faults: ActiveFault[] = [];
  private nextId = 1;

  inject(spec: FaultSpec): FaultHandle {
    const f: ActiveFault = { ...spec, id: this.nextId++, remaining: spec.times ?? Infinity, hits: 0 };
    this.faults.push(f);
    return {
      id: f.id,
      hits: () => f.hits,
      remove: () => {
        const i = this.faults.indexOf(f);
        if (i >= 0) this.faults.splice(i, 1);
      },
    };
  }

  /** Answer `status` (default 500) with the service's own error body. */
  fail(status = 500, opts: MatchOpts = {}): FaultHandle {
    return this.inject({ kind: "status", status, ...opts });
  }

  /**
   * Answer `status` (429 by default, or 503) with `Retry-After: retryAfter`: the request was
   * not handled; the client is asked to wait that long before sending anything again.
   */
  slowDown(retryAfter: number | string, opts: MatchOpts & { status?: 429 | 503 } = {}): FaultHandle {
    const { status = 429, ...rest } = opts;
    return this.inject({ kind: "status", status, retryAfter, ...rest });
  }

  latency(ms: number, opts: MatchOpts = {}): FaultHandle {
    return this.inject({ kind: "latency", ms, ...opts });
  }

  /** Never answer (the socket stays open until the client times out or the cloud closes). */
  hang(opts: MatchOpts = {}): FaultHandle {
    return this.inject({ kind: "hang", ...opts });
  }

  /** Destroy the connection without an answer. */
  reset(opts: MatchOpts = {}): FaultHandle {
    return this.inject({ kind: "reset", ...opts });
  }

  /** Answer 401 as keystonemiddleware does for a bad token (default once). */
  unauthorized(opts: MatchOpts = {}): FaultHandle {
    return this.inject({ kind: "unauthorized", times: 1, ...opts });
  }

  /** Remove one fault by id; false when there is none (it was removed or used up). */
  remove(id: number): boolean {
    const i = this.faults.findIndex((f) => f.id === id);
    if (i < 0) return false;
    this.faults.splice(i, 1);
    return true;
  }

  /** Remove every fault; returns how many there were. */
  clear(): number {
    const n = this.faults.length;
    this.faults.length = 0;
    return n;
  }

  list(): readonly ActiveFault[] {
    return this.faults;
  }

  /** The latency to add and the one terminal fault (if any) for this request; consumes them. */
  take(req: Pick<SimRequest, "service" | "method" | "path" | "query" | "body">, opts: { tokenProtected: boolean }): { delayMs: number; terminal?: ActiveFault } {
    let delayMs = 0;
    let terminal: ActiveFault | undefined;
    for (const f of [...this.faults]) {
      if (f.remaining <= 0 || !matches(f.match, req)) continue;
      if (f.kind === "unauthorized" && !opts.tokenProtected) continue;
      if (f.kind === "latency") delayMs += f.ms ?? 0;
      else if (terminal) continue;
      else terminal = f;
      f.remaining--;
      f.hits++;
      if (f.remaining <= 0) this.faults.splice(this.faults.indexOf(f), 1);
    }
    return { delayMs, terminal };
  }
}

function matches(m: FaultMatch | undefined, req: Pick<SimRequest, "service" | "method" | "path" | "query" | "body">): boolean {
  if (!m) return true;
  if (m.service && m.service !== req.service) return false;
  if (m.method && m.method.toUpperCase() !== req.method) return false;
  if (m.path !== undefined) {
    if (typeof m.path === "string" ? !req.path.startsWith(m.path) : !m.path.test(req.path)) return false;
  }
  if (m.action !== undefined && !(typeof req.body === "object" && req.body !== null && m.action in req.body)) return false;
  if (m.query && Object.entries(m.query).some(([k, v]) => req.query[k] !== v)) return false;
  return true;
}
