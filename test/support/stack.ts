import { join } from "node:path";
import { stringify } from "yaml";
import { Lifeboat } from "../../src/app/lifecycle.js";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { buildDrivers } from "../../src/app/drivers.js";
import { startSandbox, type Sandbox, type SandboxOptions } from "../../packages/sandbox/src/environment.js";
import { ADMIN_TOKEN, WEBHOOK_TOKEN, deepMerge, memoryLogger, tempDir } from "./lifeboat.js";

export { deepMerge };

/**
 * lifeboat with its real drivers (Keystone + Nova over HTTP, Redfish fencing, SMTP) against
 * the simulated site: the closest to production that runs in one test process.
 */
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

/** The lifeboat config (plain data) for a site, with test overrides deep-merged. */
export function stackConfigData(sandbox: Sandbox, dir: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base = deepMerge(sandbox.config({ graceSeconds: 0 }), {
    server: { listen: "127.0.0.1:0", auth: { bearer_token: WEBHOOK_TOKEN }, admin_token: ADMIN_TOKEN },
    store: { path: join(dir, "lifeboat.db") },
    recovery: { recheck_interval_seconds: 0.2, step_retries: 2 },
    openstack: { retries: 2, timeout_seconds: 10 },
    // The simulated nova-api acts on a request as it arrives: an unanswered evacuate call
    // cannot be acted on after a few seconds (production sites allow for their queues).
    evacuation: { no_answer_window_seconds: 5 },
  });
  return deepMerge(base, overrides);
}

export function parseOrThrow(data: Record<string, unknown>): Config {
  const r = parseConfig(stringify(data), {});
  if (!r.ok) throw new Error(`stack config invalid: ${JSON.stringify(r.problems)}`);
  return r.config;
}

export async function startStack(opts: { sandbox?: SandboxOptions; config?: Record<string, unknown>; listen?: boolean } = {}): Promise<Stack> {
  const sandbox = await startSandbox(opts.sandbox);
  const dir = tempDir();
  const config = parseOrThrow(stackConfigData(sandbox, dir, opts.config));
  const { logger, lines } = memoryLogger("debug");
  const make = (): Lifeboat => new Lifeboat({ config, logger, drivers: (ctx) => buildDrivers(config, ctx) });
  let app = make();
  await app.start({ listen: opts.listen === false ? false : "127.0.0.1:0" });
  const stack: Stack = {
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
    },
  };
  return stack;
}
