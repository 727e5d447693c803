import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import express from "express";

export interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Answers to give, in order; when empty, 200 "ok". */
  answers: { status: number; body?: string; delayMs?: number; location?: string }[];
  close(): Promise<void>;
}

/** A chat-tool-like webhook receiver: JSON in, scripted answers out. */
export async function startReceiver(): Promise<Receiver> {
  const app = express();
  app.use(express.json());
  const received: Received[] = [];
  const answers: Receiver["answers"] = [];
  const timers = new Set<NodeJS.Timeout>();
  app.all("/{*path}", (req, res) => {
    received.push({ path: req.path, headers: req.headers, body: req.body as unknown });
    const a = answers.shift() ?? { status: 200, body: "ok" };
    const reply = (): void => {
      if (a.location) res.location(a.location);
      res.status(a.status).type("text/plain").send(a.body ?? "");
    };
    if (a.delayMs) {
      const t = setTimeout(() => (timers.delete(t), reply()), a.delayMs);
      timers.add(t);
    } else reply();
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    answers,
    close: () =>
      new Promise((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
