import type { FaultBody } from "../../packages/sandbox/src/control.js";
import type { SiteView } from "../../packages/sandbox/src/environment.js";

/** One request of the simulated cloud's log, as `GET /requests` shows it. */
export interface LoggedRequest {
  seq: number;
  time: string;
  service: "compute" | "identity" | "placement" | "other";
  method: string;
  path: string;
  action?: string;
  status?: number;
  fault?: string;
  client_closed?: boolean;
}

export interface RequestLog {
  requests: LoggedRequest[];
  counts: Record<string, number>;
  last: number;
}

/**
 * A client of the sandbox's control API (`lifeboat sandbox`'s control port), used the way an
 * operator rehearsing faults would: over HTTP, never through the simulator's objects.
 */
export class SandboxControl {
  constructor(readonly url: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async inject(fault: FaultBody): Promise<number> {
    return (await this.call<{ id: number }>("POST", "/faults", fault)).id;
  }

  clearFaults(): Promise<{ removed: number }> {
    return this.call("DELETE", "/faults");
  }

  requests(since = 0): Promise<RequestLog> {
    return this.call("GET", `/requests?since=${since}`);
  }

  state(): Promise<SiteView> {
    return this.call("GET", "/state");
  }

  failHost(host: string): Promise<unknown> {
    return this.call("POST", `/hosts/${encodeURIComponent(host)}/fail`);
  }
}

/** The server a `POST /v2.1/servers/{id}/action` was about. */
export function actionServer(q: LoggedRequest): string | undefined {
  return /^\/v2\.1\/servers\/([^/]+)\/action$/.exec(q.path)?.[1];
}
