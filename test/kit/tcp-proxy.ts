import { connect, createServer, type Socket } from "node:net";

/**
 * A loopback TCP relay to one port that can be cut without closing anything: while cut,
 * neither side's bytes are read (they wait in socket buffers), as in a network partition
 * where packets stop but no RST arrives. Healing lets the queued bytes flow again.
 */
export interface TcpProxy {
  readonly port: number;
  readonly endpoint: string;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  let isCut = false;
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    track(client);
    track(upstream);
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => client.write(d));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    if (isCut) {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    cut: () => {
      isCut = true;
      for (const s of sockets) s.pause();
    },
    heal: () => {
      isCut = false;
      for (const s of sockets) s.resume();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
