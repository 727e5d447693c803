import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpExchange } from "../../src/util/http-exchange.js";
import { createEtcdClient } from "../../src/etcd/client.js";
import { Keyspace } from "../../src/etcd/kv.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";

/**
 * Answers that arrive together (a storm's hundreds of Nova and etcd answers) are handed
 * over a few per turn of the event loop, so the loop gets to its other work (a webhook
 * delivery waiting to be read, a timer) between them instead of after all of them.
 *
 * Each continuation below holds the loop for 1 ms, as resuming a recovery does. The first
 * one sets a timer; how many continuations ran before the timer fired says how long other
 * work waited: at most one turn's release. Handed over as they arrive, it was all 120 HTTP
 * answers (they come in one read of the sockets), and 1 to 27 of the etcd ones (gRPC hands
 * them over by the read, and how many one read holds varies).
 */
const MAX_PER_TURN = 8;
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // a recovery's work after its answer
  }
}

function continuations(): { after: <T>(v: T) => T; ranBeforeTimer: () => Promise<number>; count: () => number } {
  let count = 0;
  let atTimer = -1;
  let timerFired: () => void = () => undefined;
  const fired = new Promise<void>((resolve) => (timerFired = resolve));
  return {
    after: <T>(v: T): T => {
      if (count === 0)
        setTimeout(() => {
          atTimer = count;
          timerFired();
        }, 0);
      count++;
      spin(1);
      return v;
    },
    ranBeforeTimer: async () => {
      await fired;
      return atTimer;
    },
    count: () => count,
  };
}

describe("answers handed over a few per turn of the event loop", () => {
  it("HTTP: 120 answers written at once resume their callers over many turns; a timer runs after one turn's release", async () => {
    const N = 120;
    const held: http.ServerResponse[] = [];
    const server = http.createServer((req, res) => {
      held.push(res);
      // Every answer goes out in one go, once all the requests are in.
      if (held.length === N) for (const [i, r] of held.entries()) r.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ i }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const agents = { http: new http.Agent({ keepAlive: true, maxSockets: N }), https: new https.Agent() };
    const c = continuations();
    try {
      const answers = await Promise.all(
        Array.from({ length: N }, () => httpExchange({ method: "GET", url, headers: {}, signal: AbortSignal.timeout(10_000), agents }).then(c.after)),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(N).fill(200));
      expect(new Set(answers.map((a) => (a.data as { i: number }).i)).size).toBe(N);
      expect(c.count()).toBe(N);
      expect(await c.ranBeforeTimer()).toBeLessThanOrEqual(MAX_PER_TURN);
    } finally {
      agents.http.destroy();
      server.close();
    }
  });

  describe("etcd", () => {
    let etcd: EtcdServer;
    beforeAll(async () => {
      etcd = await startEtcd();
    });
    afterAll(async () => {
      await etcd?.stop();
    });

    it("100 transactions answered together resume their callers over many turns; a timer runs after one turn's release", async () => {
      const N = 100;
      const client = createEtcdClient({ endpoints: [etcd.endpoint] });
      const ks = new Keyspace(client, `/turns-${randomBytes(4).toString("hex")}/`, 5_000);
      try {
        await ks.txn([], [ks.put("k", "v")]);
        const c = continuations();
        // etcd held while they are sent, so that its answers come back together.
        etcd.pause();
        const sent = Array.from({ length: N }, () => ks.readOne(ks.get("k")).then(c.after));
        await new Promise((r) => setTimeout(r, 200));
        etcd.resume();
        const reads = await Promise.all(sent);
        expect(reads.map((kvs) => kvs[0]?.value.toString())).toEqual(Array(N).fill("v"));
        expect(c.count()).toBe(N);
        expect(await c.ranBeforeTimer()).toBeLessThanOrEqual(MAX_PER_TURN);
      } finally {
        client.close();
      }
    });
  });
});
