import { Writable } from "node:stream";
import { afterEach } from "vitest";
import { startSandbox, type Sandbox, type SandboxOptions } from "../../packages/sandbox/src/environment.js";
import { buildDrivers } from "../../src/app/drivers.js";
import { Lifeboat } from "../../src/app/lifecycle.js";
import type { Config } from "../../src/config/schema.js";
import { createLogger, type Logger } from "../../src/logging.js";
import type { Store } from "../../src/domain/journal.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Clock } from "../../src/util/clock.js";
import { fastSite, lifeboatConfig, lifeboatConfigData, removeDir, tempDir, type EtcdPlace } from "./config.js";
import { serveLifeboat, type ServeOptions, type ServedLifeboat } from "./served.js";
import { RecordingNotifier, World, WorldCloud, WorldFencing } from "./world.js";

/**
 * The builders of a lifeboat under test, all on the one config builder (config.ts):
 *
 * - `makeLifeboat`: in this process, on the in-memory world (fencing, cloud and notifier
 *   are the world's; nothing over the network): the engine's own behaviour, fast.
 * - `startStack`: in this process, with its real drivers (Keystone and Nova over HTTP,
 *   Redfish, SMTP) against a simulated site: the closest to production in one process.
 * - `serveOnSite`: `lifeboat serve` child processes on a simulated site, on SQLite or etcd
 *   (served.ts): what operators run, to kill with SIGKILL; two on one etcd prefix are an HA
 *   pair (pair.ts, with the relays a test cuts).
 */

/** A logger whose JSON lines are kept in memory (to assert on them, e.g. no secret leaks). */
export function memoryLogger(level = "debug"): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}

export interface TestLifeboat {
  app: Lifeboat;
  world: World;
  notifier: RecordingNotifier;
  cloud: WorldCloud;
  logs: string[];
}

/**
 * A lifeboat wired to an in-memory world (shared across restarts when passed in), not
 * started. With a `clock`, lifeboat and its journal both read it (a test moves time instead
 * of waiting).
 */
export function makeLifeboat(config: Config, world: World = World.standard(), opts: { unfenceable?: string[]; clock?: Clock } = {}): TestLifeboat {
  const { logger, lines } = memoryLogger();
  const notifier = new RecordingNotifier(world);
  const cloud = new WorldCloud(world);
  const clock = opts.clock;
  const app = new Lifeboat({
    config,
    logger,
    drivers: { fencing: new WorldFencing(world, opts.unfenceable), evacuation: cloud, notifier },
    ...(clock && config.store.driver === "sqlite"
      ? { clock, store: new SqliteStore(config.store.path, { now: () => new Date(clock.now()).toISOString() }) }
      : {}),
  });
  return { app, world, notifier, cloud, logs: lines };
}

/** A started lifeboat in this process with its real drivers, on a simulated site of its own. */
export interface Stack {
  sandbox: Sandbox;
  app: Lifeboat;
  config: Config;
  logs: string[];
  dir: string;
  /** A second lifeboat on the same store and site (restart after a crash). */
  restart(): Promise<Lifeboat>;
  close(): Promise<void>;
}

export interface StackOptions {
  /**
   * "fast": a site started with fastSite({ cloud, powerDelayMs }) and the lifeboat settings
   * that fit it (config.ts, pace "fast"). Otherwise the site `sandbox` describes.
   */
  pace?: "fast";
  sandbox?: SandboxOptions;
  cloud?: NonNullable<SandboxOptions["cloud"]>;
  powerDelayMs?: number;
  config?: Record<string, unknown>;
  /** false: no HTTP listener. */
  listen?: boolean;
  /** The journal, built for each start (default: the config's own). */
  store?: (config: Config) => Store;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const fast = opts.pace === "fast";
  const sandbox = await startSandbox(fast ? fastSite({ ...(opts.cloud ? { cloud: opts.cloud } : {}), ...(opts.powerDelayMs !== undefined ? { powerDelayMs: opts.powerDelayMs } : {}) }) : opts.sandbox);
  const dir = tempDir();
  const config = lifeboatConfig(opts.config, { site: sandbox, dir, ...(fast ? { pace: "fast" as const } : {}) });
  const { logger, lines } = memoryLogger("debug");
  const make = (): Lifeboat => new Lifeboat({ config, logger, drivers: (ctx) => buildDrivers(config, ctx), ...(opts.store ? { store: opts.store(config) } : {}) });
  let app = make();
  await app.start({ listen: opts.listen === false ? false : "127.0.0.1:0" });
  return {
    sandbox,
    get app() {
      return app;
    },
    config,
    logs: lines,
    dir,
    restart: async () => {
      await app.stop().catch(() => undefined);
      app = make();
      await app.start({ listen: "127.0.0.1:0" });
      return app;
    },
    close: async () => {
      await app.stop().catch(() => undefined);
      await sandbox.close();
      removeDir(dir);
    },
  };
}

/**
 * A `lifeboat serve` process on `site` (pace "fast" unless given), its journal in `dir`
 * (kept across restarts: start it again after a kill), logging at info.
 */
export function serveOnSite(
  site: Sandbox,
  dir: string,
  overrides: Record<string, unknown> = {},
  opts: ServeOptions & { pace?: "fast" | "quick" | "paced"; etcd?: EtcdPlace } = {},
): Promise<ServedLifeboat> {
  const { pace = "fast", etcd, ...serve } = opts;
  return serveLifeboat(lifeboatConfigData(overrides, { site, dir, pace, logLevel: "info", ...(etcd ? { etcd } : {}) }), serve);
}

/**
 * What a test made, closed after it (in reverse order): sites, lifeboat processes,
 * directories. Call at the top of a test file.
 */
export function useCleanup(): {
  /** A site, a served lifeboat, a stack: anything with stop() or close(). */
  add<T extends { stop(): Promise<unknown> } | { close(): Promise<unknown> }>(thing: T): T;
  /** A temporary directory removed after the test. */
  dir(): string;
} {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  return {
    add(thing) {
      closers.push("stop" in thing ? () => thing.stop() : () => thing.close());
      return thing;
    },
    dir() {
      const d = tempDir();
      closers.push(() => Promise.resolve(removeDir(d)));
      return d;
    },
  };
}
