import type { AxiosInstance } from "axios";
import { monitoringApi, type ApiClientOptions } from "../util/api-client.js";

/**
 * Alertmanager API v2, the two reads lifeboat needs: current alerts (with their
 * suppression state) and silences. `/api/v2/silences?filter=` compares matcher text, not
 * alert labels, so lifeboat evaluates silence matchers itself where it needs to.
 */
export interface AmMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual?: boolean;
}

export interface AmSilence {
  id: string;
  status: { state: "active" | "pending" | "expired" };
  matchers: AmMatcher[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}

export interface AmAlert {
  labels: Record<string, string>;
  fingerprint: string;
  startsAt: string;
  status: { state: "unprocessed" | "active" | "suppressed"; silencedBy: string[]; inhibitedBy: string[] };
}

export class AlertmanagerClient {
  readonly #http: AxiosInstance;

  constructor(
    readonly baseUrl: string,
    opts: ApiClientOptions,
  ) {
    this.#http = monitoringApi(baseUrl, opts);
  }

  /** Alerts matching every `name="value"` filter, including silenced and inhibited ones. */
  async alerts(filters: Record<string, string>, signal?: AbortSignal): Promise<AmAlert[]> {
    const params = new URLSearchParams({ active: "true", silenced: "true", inhibited: "true", unprocessed: "true" });
    for (const [k, v] of Object.entries(filters)) params.append("filter", `${k}=${JSON.stringify(v)}`);
    const res = await this.#http.get<AmAlert[]>(`/api/v2/alerts?${params.toString()}`, signal ? { signal } : {});
    return res.data;
  }

  async activeSilences(signal?: AbortSignal): Promise<AmSilence[]> {
    const res = await this.#http.get<AmSilence[]>("/api/v2/silences", signal ? { signal } : {});
    return res.data.filter((s) => s.status.state === "active");
  }
}

/** Does this matcher accept this label value? (Regexes are fully anchored, as in Alertmanager.) */
export function matcherMatches(m: AmMatcher, value: string): boolean {
  const equal = m.isEqual ?? true;
  let hit: boolean;
  if (m.isRegex) {
    try {
      hit = new RegExp(`^(?:${m.value})$`).test(value);
    } catch {
      return false;
    }
  } else {
    hit = m.value === value;
  }
  return equal ? hit : !hit;
}

/** A silence mutes a label set when every matcher accepts it (missing labels are ""). */
export function silenceMatches(s: AmSilence, labels: Record<string, string>): boolean {
  return s.matchers.length > 0 && s.matchers.every((m) => matcherMatches(m, labels[m.name] ?? ""));
}

/** `name="value"` → a plain equality matcher. */
export function parseMatcher(text: string): AmMatcher {
  const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"$/.exec(text);
  if (!m) throw new Error(`not a matcher: ${text}`);
  return { name: m[1]!, value: m[2]!, isRegex: false, isEqual: true };
}
