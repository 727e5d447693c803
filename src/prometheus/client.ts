import type { AxiosInstance } from "axios";
import { monitoringApi, type ApiClientOptions } from "../util/api-client.js";

export interface InstantSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** The Prometheus HTTP API's instant query, the one call lifeboat needs. */
export class PrometheusClient {
  readonly #http: AxiosInstance;

  constructor(
    readonly baseUrl: string,
    opts: ApiClientOptions,
  ) {
    this.#http = monitoringApi(baseUrl, opts);
  }

  async query(expr: string, signal?: AbortSignal): Promise<InstantSample[]> {
    const res = await this.#http.get<{ status: string; error?: string; data?: { resultType: string; result: InstantSample[] | [number, string] } }>("/api/v1/query", {
      params: { query: expr },
      validateStatus: () => true,
      ...(signal ? { signal } : {}),
    });
    if (res.status !== 200 || res.data.status !== "success" || !res.data.data) {
      throw new Error(`Prometheus answered ${res.status}: ${res.data.error ?? JSON.stringify(res.data).slice(0, 200)}`);
    }
    const { resultType, result } = res.data.data;
    if (resultType === "vector" || resultType === "matrix") return result as InstantSample[];
    if (resultType === "scalar") return [{ metric: {}, value: result as [number, string] }];
    return [];
  }
}
