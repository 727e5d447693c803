import { performance } from "node:perf_hooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Lifeboat } from "../../src/app/lifecycle.js";
import type { Config } from "../../src/config/schema.js";
import type { CloudPort } from "../../src/domain/ports/cloud.js";
import { createEtcdClient } from "../../src/etcd/client.js";
import type { EtcdStore } from "../../src/store/etcd.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { uniquePrefix } from "../kit/config.js";
import { startTcpProxy, type TcpProxy } from "../kit/tcp-proxy.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";
import { memoryLogger } from "../kit/lifeboat.js";
import { lifeboatConfig } from "../kit/config.js";
import { RecordingNotifier, World, WorldCloud, WorldFencing } from "../kit/world.js";

/**
 * One lifeboat with the etcd HA wiring of app.ts, in this process, against the in-memory
 * world: how fast does it stop acting once its leadership ends? The bound is not about
 * speed for its own sake: between its step-down (TTL/2 after its last renewal) and the
 * earliest takeover (TTL after it) there is only TTL/2, and everything it still runs
 * must be cancelled inside that margin.
 */
const TTL_SECONDS = 3;

let etcd: EtcdServer;
let link: TcpProxy | undefined;
let app: Lifeboat | undefined;

beforeAll(async () => {
  etcd = await startEtcd();
});
afterEach(async () => {
  link?.heal();
  await app?.stop().catch(() => undefined);
  await link?.close();
  app = undefined;
  link = undefined;
});
afterAll(async () => {
  await etcd?.stop();
});

function haConfig(endpoint: string, overrides: Record<string, unknown>): Config {
  return lifeboatConfig(overrides, {
    etcd: { endpoints: [endpoint], prefix: uniquePrefix(), instanceId: "lifeboat-solo", leaseTtlSeconds: TTL_SECONDS, requestTimeoutSeconds: 1, dialTimeoutSeconds: 1 },
  });
}

interface Solo {
  app: Lifeboat;
  prefix: string;
  world: World;
  lines: string[];
  /** performance.now() when the held evacuation's signal aborted. */
  abortedAt(): number | undefined;
  steppedDownAt(): number | undefined;
}

/** One instance, leading, with a recovery of compute-1 whose first evacuation hangs in flight. */
async function soloWithEvacuationInFlight(etcdLink: TcpProxy, serversPerHost: number, overrides: Record<string, unknown> = {}): Promise<Solo> {
  const world = World.standard(["compute-1", "compute-2", "compute-3"], serversPerHost);
  world.kill("compute-1");
  const cloud = new WorldCloud(world);
  let abortedAt: number | undefined;
  let steppedDownAt: number | undefined;
  const evacuation: CloudPort = Object.assign(Object.create(cloud) as WorldCloud, {
    evacuate: (...args: Parameters<WorldCloud["evacuate"]>) => {
      args[2].signal?.addEventListener("abort", () => (abortedAt ??= performance.now()), { once: true });
      return cloud.evacuate(...args);
    },
  });
  const { logger, lines } = memoryLogger();
  const config = haConfig(etcdLink.endpoint, overrides);
  const solo = new Lifeboat({ config, logger, drivers: { fencing: new WorldFencing(world), evacuation, notifier: new RecordingNotifier(world) } });
  app = solo;
  solo.ha!.election.onChange((leader) => {
    if (!leader) steppedDownAt ??= performance.now();
  });
  await solo.start();
  await waitFor(() => solo.ha!.election.isLeader(), 10_000, "leadership");
  const held = world.holdAt("evacuate");
  expect((await postAlert(solo.url, alertPayload({ host: "compute-1" }))).status).toBe(202);
  await held;
  return { app: solo, prefix: config.store.driver === "etcd" ? config.store.prefix : "", world, lines, abortedAt: () => abortedAt, steppedDownAt: () => steppedDownAt };
}

async function cancelledWithin(s: Solo, what: string): Promise<number> {
  await waitFor(() => s.abortedAt() !== undefined && s.steppedDownAt() !== undefined, 10_000, what).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${s.lines.slice(-15).join("\n")}`);
  });
  return s.abortedAt()! - s.steppedDownAt()!;
}

describe("an HA instance that stops acting", () => {
  it("a failed claim check ends the whole stage, the evacuation in flight included, and the recovery still finishes under this leader", async () => {
    link = await startTcpProxy(etcd.clientPort);
    // Three servers, evacuations started 500 ms apart; the first one hangs in flight.
    const s = await soloWithEvacuationInFlight(link, 3, { evacuation: { poll_interval_seconds: 0.01, stagger_ms: 500 } });
    // The claim vanishes while this instance still leads (as when a claim check cannot be
    // confirmed in time): the next evacuation's check fails.
    const client = createEtcdClient({ endpoints: [etcd.endpoint] });
    try {
      await client.delete().key(`${s.prefix}claims/compute-1`);
    } finally {
      client.close();
    }
    await waitFor(() => s.abortedAt() !== undefined, 5_000, "the evacuation in flight to be cancelled with its stage").catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${s.lines.slice(-10).join("\n")}`);
    });
    expect(s.app.ha!.election.isLeader()).toBe(true);
    // Still the leader: it claims the host again and finishes, each server evacuated once.
    const [r] = await s.app.store.listRecoveries({ host: "compute-1" });
    await waitFor(async () => (await s.app.store.getRecovery(r!.id))?.state === "completed", 20_000, "the recovery to complete").catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${s.lines.slice(-10).join("\n")}`);
    });
    const evacuations = s.world.calls.filter((c) => c.startsWith("evacuate "));
    expect(evacuations.sort()).toEqual(["evacuate srv-001", "evacuate srv-002", "evacuate srv-003"]);
    expect([...s.world.servers.values()].filter((v) => v.host === "compute-1")).toEqual([]);
  }, 60_000);

  it("leadership ends while an event pass waits on the store: the evacuation in flight is cancelled at once", async () => {
    link = await startTcpProxy(etcd.clientPort);
    const s = await soloWithEvacuationInFlight(link, 1);
    const calls = [...s.world.calls];
    // An event pass that does not come back (etcd slow or unreachable for this call).
    const store = s.app.store as EtcdStore;
    let unblock!: () => void;
    const blocked = new Promise<void>((r) => (unblock = r));
    const original = store.unprocessedEvents.bind(store);
    store.unprocessedEvents = async (limit) => {
      await blocked;
      return original(limit);
    };
    try {
      s.app.coordinator.kick();
      await s.app.ha!.election.resign();
      const lateMs = await cancelledWithin(s, "the evacuation in flight to be cancelled");
      // Well inside the TTL/2 margin (1.5 s) between a step-down and the earliest takeover.
      expect(lateMs).toBeLessThanOrEqual(250);
      expect(s.world.calls).toEqual(calls);
    } finally {
      unblock();
    }
  }, 60_000);
});
