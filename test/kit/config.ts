import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Sandbox, SandboxOptions } from "../../packages/sandbox/src/environment.js";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { makeTempDir, removeTempDir } from "./temp-dirs.js";

/**
 * The one config builder of the tests and benchmarks: a lifeboat config as plain data (to
 * write to a file for a `lifeboat serve` process) or parsed, for a lifeboat on the in-memory
 * world or on a simulated site, on SQLite or etcd, with the test's overrides deep-merged.
 */

export const WEBHOOK_TOKEN = "test-webhook-token";
export const ADMIN_TOKEN = "test-admin-token";

/** Where the lifeboat under test runs, and how quickly things happen there. */
export interface ConfigPlace {
  /** Directory of its SQLite journal (lifeboat.db); default: a new temporary directory. */
  dir?: string;
  /**
   * The simulated site its drivers reach (Keystone, Nova, Redfish BMCs, SMTP). None: the
   * in-memory world's drivers are handed to it in the process.
   */
  site?: Sandbox;
  /**
   * - `quick` (default): no grace, quick re-checks (the in-memory world: gates agree at once).
   * - `fast`: for a site started with `fastSite()`: the nova-service gate agrees after 1 s,
   *   evacuations are polled every 50 ms.
   * - `paced`: production's pace for blocked recoveries (re-checked every 15 s): the benchmarks.
   */
  pace?: "quick" | "fast" | "paced";
  /** server.listen (default 127.0.0.1:0). */
  listen?: string;
  /** logging.level (default: the config's own). */
  logLevel?: string;
  /** The etcd store instead of SQLite. */
  etcd?: EtcdPlace;
}

export interface EtcdPlace {
  endpoints: string[];
  prefix: string;
  instanceId: string;
  leaseTtlSeconds?: number;
  requestTimeoutSeconds?: number;
  dialTimeoutSeconds?: number;
}

/** The config as plain data: base for the place, then the pace, then `overrides`, then the place's own settings. */
export function lifeboatConfigData(overrides: Record<string, unknown> = {}, place: ConfigPlace = {}): Record<string, unknown> {
  // On etcd the SQLite path is replaced below: no directory is made for it.
  const dir = place.dir ?? (place.etcd ? tmpdir() : tempDir());
  const common = {
    server: { listen: "127.0.0.1:0", auth: { bearer_token: WEBHOOK_TOKEN }, admin_token: ADMIN_TOKEN },
    store: { path: join(dir, "lifeboat.db") },
  };
  let data: Record<string, unknown>;
  if (place.site) {
    data = deepMerge(place.site.config({ graceSeconds: 0 }), {
      ...common,
      recovery: { recheck_interval_seconds: 0.2, step_retries: 2 },
      openstack: { retries: 2, timeout_seconds: 10 },
      // The simulated nova-api acts on a request as it arrives: an unanswered evacuate call
      // cannot be acted on after a few seconds (production sites allow for their queues).
      evacuation: { no_answer_window_seconds: 5 },
    });
  } else {
    data = deepMerge(common, {
      recovery: { grace_seconds: 0, recheck_interval_seconds: 0.05, step_retries: 1 },
      gates: {
        confirmations: [{ driver: "nova-service", stale_seconds: 30, checks: 1, interval_seconds: 0 }, { driver: "bmc" }],
        silences: { enabled: false },
        cooldown_seconds: 0,
      },
      evacuation: { poll_interval_seconds: 0.01 },
    });
  }
  if (place.pace === "fast") {
    data = deepMerge(data, {
      gates: { confirmations: [{ driver: "nova-service", stale_seconds: 1, checks: 1, interval_seconds: 0 }, { driver: "bmc" }] },
      evacuation: { poll_interval_seconds: 0.05, instance_timeout_seconds: 20 },
    });
  } else if (place.pace === "paced") {
    data = deepMerge(data, { recovery: { recheck_interval_seconds: 15 } });
  }
  data = deepMerge(data, overrides);
  if (place.listen !== undefined) data = deepMerge(data, { server: { listen: place.listen } });
  if (place.logLevel !== undefined) data = deepMerge(data, { logging: { level: place.logLevel } });
  if (place.etcd) {
    const e = place.etcd;
    data.store = {
      driver: "etcd",
      endpoints: e.endpoints,
      prefix: e.prefix,
      instance_id: e.instanceId,
      ...(e.leaseTtlSeconds !== undefined ? { lease_ttl_seconds: e.leaseTtlSeconds } : {}),
      ...(e.requestTimeoutSeconds !== undefined ? { request_timeout_seconds: e.requestTimeoutSeconds } : {}),
      ...(e.dialTimeoutSeconds !== undefined ? { dial_timeout_seconds: e.dialTimeoutSeconds } : {}),
    };
  }
  return data;
}

/** The same, parsed: a config the schema refuses fails here, with its problems. */
export function lifeboatConfig(overrides: Record<string, unknown> = {}, place: ConfigPlace = {}): Config {
  return parseConfigData(lifeboatConfigData(overrides, place));
}

/** Parse config data built here (or edited after): refused with its problems named. */
export function parseConfigData(data: Record<string, unknown>): Config {
  const r = parseConfig(stringify(data), {});
  if (!r.ok) throw new Error(`test config invalid: ${JSON.stringify(r.problems)}`);
  return r.config;
}

/** A simulated site with short durations, for `pace: "fast"`: Nova notices a dead host after 1 s, a rebuild takes 300 ms, a BMC powers off in 100 ms. */
export function fastSite(over: { cloud?: NonNullable<SandboxOptions["cloud"]>; powerDelayMs?: number } = {}): SandboxOptions {
  return {
    powerDelayMs: over.powerDelayMs ?? 100,
    cloud: { serviceDownTimeSeconds: 1, reportIntervalSeconds: 0.25, evacuationDurationMs: 300, ...over.cloud },
  };
}

/** An etcd key prefix of its own, for one test's lifeboats. */
export function uniquePrefix(): string {
  return `/lifeboat-ha-${randomBytes(6).toString("hex")}/`;
}

export function tempDir(): string {
  return makeTempDir("test");
}

export function removeDir(dir: string): void {
  removeTempDir(dir);
}

/** `b` merged into `a`: nested mappings merged, anything else replaced. */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isPlain(prev) && isPlain(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
