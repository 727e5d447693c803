import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { stringify } from "yaml";
import { Lifeboat } from "../../src/app/lifecycle.js";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { createLogger, type Logger } from "../../src/logging.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Clock } from "../../src/util/clock.js";
import { RecordingNotifier, World, WorldCloud, WorldFencing } from "./world.js";

export const WEBHOOK_TOKEN = "test-webhook-token";
export const ADMIN_TOKEN = "test-admin-token";

/** A valid config for tests: fast gates, no waiting, the given overrides deep-merged. */
export function testConfig(overrides: Record<string, unknown> = {}, dir = tempDir()): Config {
  const base: Record<string, unknown> = {
    server: { listen: "127.0.0.1:0", auth: { bearer_token: WEBHOOK_TOKEN }, admin_token: ADMIN_TOKEN },
    store: { path: join(dir, "lifeboat.db") },
    recovery: { grace_seconds: 0, recheck_interval_seconds: 0.05, step_retries: 1 },
    gates: {
      confirmations: [{ driver: "nova-service", stale_seconds: 30, checks: 1, interval_seconds: 0 }, { driver: "bmc" }],
      silences: { enabled: false },
      cooldown_seconds: 0,
    },
    evacuation: { poll_interval_seconds: 0.01 },
  };
  const merged = deepMerge(base, overrides);
  const r = parseConfig(stringify(merged), {});
  if (!r.ok) throw new Error(`test config invalid: ${JSON.stringify(r.problems)}`);
  return r.config;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "lifeboat-test-"));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
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
 * A lifeboat wired to an in-memory world (shared across restarts when passed in). With a
 * `clock`, lifeboat and its journal both read it (a test moves time instead of waiting).
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

/** An Alertmanager v4 payload for one alert, shaped like the captured fixture. */
export function alertPayload(opts: {
  host: string;
  status?: "firing" | "resolved";
  alertname?: string;
  startsAt?: string;
  fingerprint?: string;
  extraLabels?: Record<string, string>;
}): Record<string, unknown> {
  const status = opts.status ?? "firing";
  const alertname = opts.alertname ?? "ComputeNodeDown";
  const startsAt = opts.startsAt ?? "2026-11-25T12:10:55.045Z";
  const labels = { alertname, host: opts.host, instance: `${opts.host}:9100`, job: "node", severity: "critical", ...opts.extraLabels };
  return {
    receiver: "lifeboat",
    status,
    alerts: [
      {
        status,
        labels,
        annotations: { summary: `Compute node ${opts.host} is down` },
        startsAt,
        endsAt: status === "firing" ? "0001-01-01T00:00:00Z" : "2026-11-25T12:30:00Z",
        generatorURL: "http://127.0.0.1:9090/graph?g0.expr=up",
        fingerprint: opts.fingerprint ?? fingerprintOf(opts.host + alertname),
      },
    ],
    groupLabels: { alertname },
    commonLabels: labels,
    commonAnnotations: { summary: `Compute node ${opts.host} is down` },
    externalURL: "http://127.0.0.1:9093",
    version: "4",
    groupKey: `{}:{alertname="${alertname}"}`,
    truncatedAlerts: 0,
  };
}

function fingerprintOf(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const c of Buffer.from(s)) h = ((h ^ BigInt(c)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, "0");
}

export async function postAlert(
  url: string,
  payload: unknown,
  opts: { token?: string | null; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
  const token = opts.token === undefined ? WEBHOOK_TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/api/v1/alerts`, { method: "POST", headers, body: opts.body ?? JSON.stringify(payload) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}

export async function api(url: string, method: string, path: string, body?: unknown, token: string = ADMIN_TOKEN): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "x-lifeboat-actor": "tester" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
}

/** Poll until `fn` returns a truthy value (or fail after `timeoutMs`). */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
