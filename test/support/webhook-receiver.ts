import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** An alert as Alertmanager's webhook notification carries it. */
export interface WebhookAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  fingerprint: string;
}

/** Alertmanager's webhook notification (version 4). */
export interface WebhookMessage {
  version: string;
  status: string;
  receiver: string;
  groupKey: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  alerts: WebhookAlert[];
}

export interface Delivery {
  /** Date.now() when the POST had arrived whole. */
  atMs: number;
  headers: IncomingHttpHeaders;
  body: WebhookMessage;
}

export interface WebhookReceiver {
  /** http://127.0.0.1:PORT/api/v1/alerts */
  url: string;
  deliveries: Delivery[];
  close(): Promise<void>;
}

/** Stands in for lifeboat's webhook: records every POST to /api/v1/alerts and answers 200. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/api/v1/alerts") {
        deliveries.push({ atMs: Date.now(), headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as WebhookMessage });
        res.writeHead(200).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/v1/alerts`,
    deliveries,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
