import type { Config } from "../config/schema.js";
import { joinUrl, probe } from "./http-get.js";
import type { DoctorCheck, DoctorRow } from "./types.js";

/**
 * The monitoring APIs the gates ask: Alertmanager's (silences, firing alerts) and
 * Prometheus' (PromQL confirmations). Checked only when their URL is configured.
 */

interface AmStatus {
  cluster?: { status?: string; peers?: unknown[] };
  versionInfo?: { version?: string };
  uptime?: string;
}

export function alertmanagerCheck(config: Config): DoctorCheck | null {
  const am = config.alertmanager;
  if (!am.url) return null;
  const url = am.url;
  const timeoutMs = am.timeout_seconds * 1000;
  return {
    check: "alertmanager",
    target: url,
    timeoutMs: timeoutMs + 2000,
    run: async (signal): Promise<DoctorRow[]> => {
      const res = await probe(joinUrl(url, "/api/v2/status"), { timeoutMs, signal, ...(am.bearer_token ? { bearerToken: am.bearer_token } : {}) });
      const body = (res.data ?? {}) as AmStatus;
      if (res.status !== 200 || typeof body !== "object" || !body.cluster) {
        return [{ check: "alertmanager", target: url, result: "fail", detail: `GET /api/v2/status answered HTTP ${res.status}${snippet(res.data)}: not Alertmanager's API v2` }];
      }
      const cluster = body.cluster.status ?? "unknown";
      const peers = Array.isArray(body.cluster.peers) ? body.cluster.peers.length : 0;
      const version = body.versionInfo?.version ?? "?";
      // "settling": a fresh member still gossiping; its view of silences may be incomplete.
      const result = cluster === "ready" || cluster === "disabled" ? "ok" : "warn";
      const clusterText = cluster === "disabled" ? "clustering disabled" : `cluster ${cluster} (${peers} peer(s))`;
      return [{ check: "alertmanager", target: url, result, detail: `Alertmanager ${version}, ${clusterText}${body.uptime ? `, up since ${body.uptime}` : ""}` }];
    },
  };
}

interface PromAnswer {
  status?: string;
  error?: string;
  data?: { version?: string; resultType?: string };
}

export function prometheusCheck(config: Config): DoctorCheck | null {
  const p = config.prometheus;
  if (!p.url) return null;
  const url = p.url;
  const timeoutMs = p.timeout_seconds * 1000;
  return {
    check: "prometheus",
    target: url,
    timeoutMs: 2 * timeoutMs + 2000,
    run: async (signal): Promise<DoctorRow[]> => {
      const auth = { timeoutMs, signal, ...(p.bearer_token ? { bearerToken: p.bearer_token } : {}) };
      const info = await probe(joinUrl(url, "/api/v1/status/buildinfo"), auth);
      const body = (info.data ?? {}) as PromAnswer;
      if (info.status === 200 && body.status === "success" && body.data?.version) {
        return [{ check: "prometheus", target: url, result: "ok", detail: `Prometheus ${body.data.version}, API answers` }];
      }
      // Not every PromQL API serves buildinfo (older Prometheus, some proxies): a trivial query proves the API.
      const q = await probe(joinUrl(url, "/api/v1/query?query=1"), auth);
      const qb = (q.data ?? {}) as PromAnswer;
      if (q.status === 200 && qb.status === "success") {
        return [{ check: "prometheus", target: url, result: "ok", detail: `query API answers (no buildinfo: HTTP ${info.status})` }];
      }
      return [{ check: "prometheus", target: url, result: "fail", detail: `GET /api/v1/query answered HTTP ${q.status}${qb.error ? `: ${qb.error}` : snippet(q.data)}` }];
    },
  };
}

function snippet(data: unknown): string {
  if (data === undefined || data === null || data === "") return "";
  const text = typeof data === "string" ? data : JSON.stringify(data);
  return `: ${text.slice(0, 120).replace(/\s+/g, " ").trim()}`;
}
