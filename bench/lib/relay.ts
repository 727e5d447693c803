import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Alertmanager → relay → lifeboat: a pass-through in front of lifeboat's webhook that notes
 * the instant each notification arrives (on this process's clock) and forwards it unchanged
 * (body, content type, authorization), answering with lifeboat's own status. It adds one
 * loopback hop, well under a millisecond.
 */
export interface RelayedNotification {
  /** Date.now() when the whole POST had arrived. */
  atMs: number;
  /** lifeboat's answer (502 if it could not be reached). */
  status: number;
  alerts: { status: string; labels: Record<string, string> }[];
}

export interface Relay {
  /** Where Alertmanager posts: http://127.0.0.1:PORT/api/v1/alerts */
  readonly url: string;
  /** lifeboat's base URL; notifications arriving before it is set are answered 503. */
  target: string | undefined;
  readonly notifications: RelayedNotification[];
  close(): Promise<void>;
}

export async function startRelay(): Promise<Relay> {
  const notifications: RelayedNotification[] = [];
  const relay: { target: string | undefined } = { target: undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const atMs = Date.now();
      const body = Buffer.concat(chunks);
      void (async () => {
        let status = 503;
        if (relay.target !== undefined) {
          try {
            const answer = await fetch(`${relay.target}${req.url ?? "/"}`, {
              method: req.method ?? "POST",
              headers: {
                "content-type": req.headers["content-type"] ?? "application/json",
                ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
              },
              body,
              signal: AbortSignal.timeout(10_000),
            });
            await answer.arrayBuffer();
            status = answer.status;
          } catch {
            status = 502;
          }
        }
        let alerts: RelayedNotification["alerts"] = [];
        try {
          alerts = ((JSON.parse(body.toString("utf8")) as { alerts?: RelayedNotification["alerts"] }).alerts ?? []).map((a) => ({ status: a.status, labels: a.labels }));
        } catch {
          // not JSON: recorded without alerts
        }
        notifications.push({ atMs, status, alerts });
        res.writeHead(status).end();
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/v1/alerts`,
    get target() {
      return relay.target;
    },
    set target(url: string | undefined) {
      relay.target = url;
    },
    notifications,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
