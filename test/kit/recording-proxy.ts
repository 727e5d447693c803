import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A loopback HTTP reverse proxy in front of one simulator (the cloud or the Redfish BMCs),
 * one per lifeboat instance, that records every request with the name of the instance that
 * sent it. The two instances of an HA pair use the same credentials, so this is how a test
 * tells who issued which side effect.
 *
 * The Host header is passed through unchanged, so the simulated Keystone builds its catalog
 * from the proxy's address: every later Nova/Placement call comes back through the proxy.
 * A request the client abandons is abandoned upstream too, as on a direct connection.
 */
export interface ProxiedRequest {
  /** Order of arrival over all proxies of the test (one shared counter). */
  seq: number;
  instance: string;
  /** Which simulator this proxy fronts ("cloud", "bmc"). */
  target: string;
  method: string;
  /** Path and query as sent. */
  url: string;
  /** JSON body, when there was one. */
  body: unknown;
  /** Date.now() when the request reached the proxy (it is forwarded at once). */
  at: number;
  /** Upstream status, once answered. */
  status?: number;
}

/**
 * What to do with a request (called when it arrived, before it is forwarded): "hold" keeps
 * it waiting, never forwarded, until the client gives up or the proxy closes. `answered`
 * is called once the answer went back to the client in full.
 */
export interface ProxyHooks {
  onRequest?(entry: ProxiedRequest): "hold" | undefined;
  answered?(entry: ProxiedRequest): void;
}

export interface RecordingProxy {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

let seq = 0;

export async function startRecordingProxy(opts: { upstream: string; instance: string; target: string; log: ProxiedRequest[]; hooks?: ProxyHooks }): Promise<RecordingProxy> {
  const up = new URL(opts.upstream);
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const entry: ProxiedRequest = { seq: ++seq, instance: opts.instance, target: opts.target, method: req.method ?? "GET", url: req.url ?? "/", body: parseBody(raw), at: Date.now() };
      opts.log.push(entry);
      if (opts.hooks?.onRequest?.(entry) === "hold") return;
      res.on("finish", () => opts.hooks?.answered?.(entry));
      const upstream = httpRequest(
        { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          entry.status = answer.statusCode;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      // The client went away before the answer: so does the upstream request.
      res.on("close", () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.end(raw);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function parseBody(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString("utf8")) as unknown;
  } catch {
    return raw.toString("utf8");
  }
}
