import http from "node:http";
import https from "node:https";
import { nextTurn } from "./turns.js";

/** An answer as the session reads it: any status, headers lowercased, the body parsed. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  /** The JSON body; the text when it is not JSON (a proxy's HTML page); null when empty. */
  data: unknown;
}

export interface HttpExchangeOptions {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Sent as is (already JSON text). */
  body?: string;
  /** Aborts the exchange at any point (the caller's stop and its timeout, combined). */
  signal: AbortSignal;
  agents: { http: http.Agent; https: https.Agent };
}

/**
 * One HTTP exchange on Node's own client and the caller's agents. Every call lifeboat makes
 * to OpenStack goes through here (on the session's keep-alive agents), hundreds a second in
 * a storm, and the CLI's calls to lifeboat's API (whose start-up it spares the ~30 ms of
 * loading the global fetch), so it is kept to what they need: no redirects followed, no proxy
 * from the environment, every status handed back as an answer, on a later turn of the event
 * loop than the one it arrived in. Connection failures reject with Node's error (its `code`:
 * ECONNREFUSED, ECONNRESET…), an abort with the signal's.
 */
export function httpExchange(o: HttpExchangeOptions): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    const tls = o.url.startsWith("https:");
    const headers: Record<string, string | number> = { ...o.headers };
    if (o.body !== undefined) headers["Content-Length"] = Buffer.byteLength(o.body);
    const request = tls ? https.request : http.request;
    const req = request(o.url, { method: o.method, headers, agent: tls ? o.agents.https : o.agents.http, signal: o.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        if (!res.complete) {
          reject(Object.assign(new Error("the connection closed before the whole answer arrived"), { code: "ECONNRESET" }));
          return;
        }
        // Read and handed over on a later turn of the event loop (util/turns.ts): a storm's
        // answers arrive by the hundred, and what each sets going would otherwise run back to
        // back before the loop reads its sockets again (a webhook delivery among them).
        const body = Buffer.concat(chunks);
        void nextTurn().then(() => resolve({ status: res.statusCode ?? 0, headers: flatten(res.headers), data: parseBody(body.toString("utf8")) }));
      });
    });
    req.on("error", reject);
    req.end(o.body);
  });
}

function flatten(raw: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

function parseBody(text: string): unknown {
  if (text === "") return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
