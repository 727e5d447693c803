import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { rootCertificates } from "node:tls";
import axios from "axios";
import { errorMessage } from "../util/errors.js";
import type { Secret } from "../util/secret.js";

/** One bounded request for doctor: any HTTP answer is returned; no redirects, no retries. */
export interface ProbeAnswer {
  status: number;
  data: unknown;
}

export interface ProbeOptions {
  method?: "GET" | "HEAD";
  timeoutMs: number;
  bearerToken?: Secret;
  caFile?: string;
  verifyTls?: boolean;
  signal?: AbortSignal;
}

export async function probe(url: string, opts: ProbeOptions): Promise<ProbeAnswer> {
  let httpsAgent: HttpsAgent | undefined;
  if (url.startsWith("https:") && (opts.caFile || opts.verifyTls === false)) {
    let ca: string[] | undefined;
    if (opts.caFile) {
      try {
        ca = [...rootCertificates, readFileSync(opts.caFile, "utf8")];
      } catch (err) {
        throw new Error(`cannot read ca_file ${opts.caFile}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, { cause: err });
      }
    }
    httpsAgent = new HttpsAgent({ rejectUnauthorized: opts.verifyTls !== false, ...(ca ? { ca } : {}) });
  }
  try {
    const res = await axios.request<unknown>({
      url,
      method: opts.method ?? "GET",
      timeout: opts.timeoutMs,
      maxRedirects: 0,
      validateStatus: () => true,
      headers: { "User-Agent": "lifeboat doctor", ...(opts.bearerToken ? { Authorization: `Bearer ${opts.bearerToken.reveal()}` } : {}) },
      ...(httpsAgent ? { httpsAgent } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { status: res.status, data: res.data };
  } catch (err) {
    // Neither the URL (a webhook's path can hold its token) nor the headers: the caller names the target.
    const code = (err as { code?: string }).code;
    const msg = errorMessage(err);
    throw new Error(`${msg}${code && !msg.includes(code) ? ` (${code})` : ""}`, { cause: err });
  } finally {
    httpsAgent?.destroy();
  }
}

export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}${path}`;
}
