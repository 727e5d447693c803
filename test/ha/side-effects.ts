import type { SimRequest } from "../../packages/sandbox/src/cloud-state.js";
import type { ProxiedRequest } from "../kit/recording-proxy.js";

/**
 * The requests that change something on the site, read from the recording proxies' log:
 * a BMC power action on a host, a change of a nova-compute service, a server action
 * (evacuate, lock, unlock…). Reads (GET), logins and session handling are not side effects.
 */
export interface SideEffect {
  instance: string;
  /** e.g. "reset:ForceOff", "service:forced_down", "service:disabled_reason,status", "server:evacuate". */
  kind: string;
  /** The host, service or server it acts on. */
  target: string;
  at: number;
  seq: number;
  status?: number;
}

export function sideEffects(log: readonly ProxiedRequest[]): SideEffect[] {
  const out: SideEffect[] = [];
  for (const r of log) {
    const path = r.url.split("?")[0] ?? "";
    const body = isObject(r.body) ? r.body : {};
    const base = { instance: r.instance, at: r.at, seq: r.seq, ...(r.status !== undefined ? { status: r.status } : {}) };
    let m: RegExpExecArray | null;
    if (r.target === "bmc" && r.method === "POST" && (m = /\/Systems\/([^/]+)\/Actions\/ComputerSystem\.Reset$/.exec(path))) {
      out.push({ ...base, kind: `reset:${String(body.ResetType)}`, target: decodeURIComponent(m[1]!) });
    } else if (r.target === "cloud" && r.method === "PUT" && (m = /\/os-services\/([^/]+)$/.exec(path))) {
      // Newer microversions: PUT os-services/<id> {forced_down} | {status, disabled_reason};
      // older ones: PUT os-services/force-down {host, binary, forced_down}.
      const target = typeof body.host === "string" ? body.host : m[1]!;
      out.push({ ...base, kind: `service:${Object.keys(body).filter((k) => k !== "host" && k !== "binary").sort().join(",")}`, target });
    } else if (r.target === "cloud" && r.method === "POST" && (m = /\/servers\/([^/]+)\/action$/.exec(path))) {
      out.push({ ...base, kind: `server:${Object.keys(body).sort().join(",")}`, target: m[1]! });
    }
  }
  return out;
}

/** Side effects of one kind on one target, issued by more than one instance. */
export function issuedByBoth(effects: readonly SideEffect[]): { kind: string; target: string; instances: string[] }[] {
  const by = new Map<string, Set<string>>();
  for (const e of effects) {
    const k = `${e.kind}\u0000${e.target}`;
    const s = by.get(k) ?? new Set<string>();
    s.add(e.instance);
    by.set(k, s);
  }
  return [...by.entries()]
    .filter(([, s]) => s.size > 1)
    .map(([k, s]) => {
      const [kind, target] = k.split("\u0000") as [string, string];
      return { kind, target, instances: [...s].sort() };
    });
}

/** Evacuate POSTs in the simulated cloud's own request log, per server id. */
export function evacuatePostsPerServer(cloudLog: readonly SimRequest[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const q of cloudLog) {
    const m = /\/servers\/([^/]+)\/action$/.exec(q.path);
    if (q.method !== "POST" || !m || !isObject(q.body) || !("evacuate" in q.body)) continue;
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + 1);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
