import { startSandbox, type Sandbox, type SandboxOptions } from "../../packages/sandbox/src/environment.js";
import { EtcdStore } from "../../src/store/etcd.js";
import { afterAll, afterEach, beforeAll } from "vitest";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { startRecordingProxy, type ProxiedRequest, type ProxyHooks, type RecordingProxy } from "./recording-proxy.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";
import { ADMIN_TOKEN, removeDir, tempDir, deepMerge, lifeboatConfigData, uniquePrefix } from "./config.js";
import { serveLifeboat, type ServedLifeboat } from "./served.js";

/**
 * An active-passive pair: two `lifeboat serve` processes sharing one etcd prefix, against
 * one simulated site. Each instance reaches etcd through its own TCP relay (so a test can
 * cut one instance's path only) and the cloud and the BMCs through its own recording proxy
 * (so every request is attributed to the instance that sent it).
 */
export const IDS = ["lifeboat-a", "lifeboat-b"] as const;
export type InstanceId = (typeof IDS)[number];

export interface HaPairOptions {
  etcd: EtcdServer;
  sandbox?: SandboxOptions;
  /** Deep-merged over the site's config (lifeboatConfigData); the store section is the pair's etcd. */
  config?: Record<string, unknown>;
  ttlSeconds?: number;
}

export interface HaPair {
  readonly sandbox: Sandbox;
  readonly prefix: string;
  readonly ttlMs: number;
  /** The instances now running (restart() replaces one). */
  readonly instances: Record<InstanceId, ServedLifeboat>;
  /** Each instance's TCP relay to etcd. */
  readonly etcdLinks: Record<InstanceId, TcpProxy>;
  /** Every request to the cloud and the BMCs, with the instance that sent it. */
  readonly requests: ProxiedRequest[];
  /** The shared store, read from the test (its own client, straight to etcd). */
  readonly store: EtcdStore;
  /** Hooks every proxy (cloud and BMCs, both instances) calls: hold a request, act on an answer. */
  readonly hooks: ProxyHooks;
  /** Start an instance again (after it was killed), on the same config, proxies and relay. */
  restart(i: ServedLifeboat): Promise<ServedLifeboat>;
  /**
   * The instance that every one of `among` (default both) reports as leader, once exactly
   * one of them says it leads. Default timeout 15 s.
   */
  leader(opts?: { among?: ServedLifeboat[]; timeoutMs?: number }): Promise<ServedLifeboat>;
  other(i: ServedLifeboat): ServedLifeboat;
  close(): Promise<void>;
}

export interface StatusAnswer {
  instance: string;
  leader: { self: boolean; id: string | null };
  store: string;
}

export async function status(url: string): Promise<StatusAnswer> {
  const res = await fetch(`${url}/api/v1/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`status ${res.status}: ${await res.text()}`);
  return (await res.json()) as StatusAnswer;
}

export async function leaderGauge(url: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const m = /^lifeboat_leader(?:\{[^}]*\})? (\S+)$/m.exec(await res.text());
  if (!m) throw new Error("no lifeboat_leader in /metrics");
  return Number(m[1]);
}

export async function startHaPair(opts: HaPairOptions): Promise<HaPair> {
  const ttlSeconds = opts.ttlSeconds ?? 3;
  const sandbox = await startSandbox(opts.sandbox);
  const dir = tempDir();
  const prefix = uniquePrefix();
  const requests: ProxiedRequest[] = [];
  const closers: (() => Promise<void>)[] = [];
  const instances = {} as Record<InstanceId, ServedLifeboat>;
  const etcdLinks = {} as Record<InstanceId, TcpProxy>;
  const hooks: ProxyHooks = {};
  const store = new EtcdStore({ connection: { endpoints: [opts.etcd.endpoint], requestTimeoutMs: 5_000 }, prefix });
  // Stops everything the pair started: on a failed start, and at close().
  const teardown = async (): Promise<void> => {
    await Promise.allSettled(Object.values(instances).map((i) => i.stop()));
    for (const c of closers) await c().catch(() => undefined);
    await store.close().catch(() => undefined);
    await sandbox.close();
    removeDir(dir);
  };
  try {
    const configs = {} as Record<InstanceId, Record<string, unknown>>;
    for (const id of IDS) {
      const link = await startTcpProxy(opts.etcd.clientPort);
      etcdLinks[id] = link;
      closers.push(() => link.close());
      const cloud: RecordingProxy = await startRecordingProxy({ upstream: sandbox.cloud.baseUrl, instance: id, target: "cloud", log: requests, hooks });
      const bmc: RecordingProxy = await startRecordingProxy({ upstream: sandbox.redfish.url, instance: id, target: "bmc", log: requests, hooks });
      closers.push(() => cloud.close(), () => bmc.close());
      configs[id] = lifeboatConfigData(
        deepMerge(opts.config ?? {}, {
          openstack: { auth: { auth_url: `${cloud.url}/identity/v3` } },
          fencing: { hosts: Object.fromEntries(sandbox.hosts.map((h) => [h, { address: bmc.url }])) },
        }),
        {
          site: sandbox,
          dir,
          logLevel: "info",
          etcd: { endpoints: [link.endpoint], prefix, instanceId: id, leaseTtlSeconds: ttlSeconds, requestTimeoutSeconds: 1, dialTimeoutSeconds: 1 },
        },
      );
    }
    // Both start at once; every one that started is kept (and stopped below) even if the other failed.
    const started = await Promise.allSettled(
      IDS.map(async (id) => {
        instances[id] = await serveLifeboat(configs[id], { name: id, ready: "listening" });
      }),
    );
    for (const r of started) if (r.status === "rejected") throw r.reason;
    await store.init();
  } catch (err) {
    await teardown();
    throw err;
  }

  const pair: HaPair = {
    sandbox,
    prefix,
    ttlMs: ttlSeconds * 1000,
    instances,
    etcdLinks,
    requests,
    store,
    hooks,
    async restart(i) {
      instances[i.id as InstanceId] = await i.restart();
      return instances[i.id as InstanceId];
    },
    async leader({ among = IDS.map((id) => instances[id]), timeoutMs = 15_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      for (;;) {
        const live = among;
        const answers = await Promise.all(live.map((i) => status(i.url).catch((err: unknown) => (err instanceof Error ? err.message : String(err)))));
        const ok = answers.filter((a): a is StatusAnswer => typeof a !== "string");
        const selves = ok.filter((a) => a.leader.self);
        if (selves.length === 1 && ok.length === live.length && ok.every((a) => a.leader.id === selves[0]!.instance)) return instances[selves[0]!.instance as InstanceId];
        last = JSON.stringify(answers);
        if (Date.now() > deadline) throw new Error(`no single leader within ${timeoutMs} ms: ${last}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    other: (i) => (i.id === IDS[0] ? instances[IDS[1]] : instances[IDS[0]]),
    close: teardown,
  };
  return pair;
}

/**
 * The hooks of a test file whose tests each run a pair: one etcd for the file; each test's
 * pair closed after it, with both instances' output printed when the test failed.
 */
export function usePairPerTest(): { start(opts: Omit<HaPairOptions, "etcd">): Promise<HaPair> } {
  let etcd: EtcdServer | undefined;
  let pair: HaPair | undefined;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterEach(async (ctx) => {
    if (pair && ctx.task.result?.state === "fail") {
      for (const i of Object.values(pair.instances)) console.error(`---- ${i.id} ----\n${i.output().slice(-20_000)}`);
    }
    await pair?.close();
    pair = undefined;
  });
  afterAll(async () => {
    await etcd?.stop();
  });
  return {
    async start(opts) {
      if (!etcd) throw new Error("usePairPerTest: etcd is not running (start a pair inside a test)");
      pair = await startHaPair({ ...opts, etcd });
      return pair;
    },
  };
}
