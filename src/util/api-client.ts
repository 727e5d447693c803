import axios, { type AxiosInstance } from "axios";
import type { Secret } from "./secret.js";

export interface ApiClientOptions {
  timeoutMs: number;
  /** Sent as `Authorization: Bearer …` (e.g. behind an authenticating proxy). */
  bearerToken?: Secret;
}

/** An HTTP client for a monitoring API (Alertmanager, Prometheus) at `baseUrl`. */
export function monitoringApi(baseUrl: string, opts: ApiClientOptions): AxiosInstance {
  return axios.create({
    baseURL: baseUrl.replace(/\/+$/, ""),
    timeout: opts.timeoutMs,
    headers: opts.bearerToken ? { Authorization: `Bearer ${opts.bearerToken.reveal()}` } : {},
  });
}
