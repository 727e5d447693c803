import { join } from "node:path";
import { stringify } from "yaml";
import { Lifeboat } from "../app/lifecycle.js";
import { buildDrivers } from "../app/drivers.js";
import { parseConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { silentLogger } from "../logging.js";
import type { Site } from "./sandbox-package.js";

/** The demos' tokens: printed for the console login, never used outside this process. */
export const WEBHOOK_TOKEN = "demo-webhook-token";
export const ADMIN_TOKEN = "demo-admin-token";

/**
 * A lifeboat for a demo: the simulated site's config (its real drivers: Keystone and Nova
 * over HTTP, Redfish fencing, SMTP), the journal in `dir`, quiet logs; started on a free port.
 */
export async function startDemoLifeboat(site: Site, dir: string, graceSeconds: number): Promise<{ lifeboat: Lifeboat; config: Config }> {
  const data = {
    ...site.config({ graceSeconds }),
    server: { listen: "127.0.0.1:0", auth: { bearer_token: WEBHOOK_TOKEN }, admin_token: ADMIN_TOKEN },
    store: { path: join(dir, "lifeboat.db") },
    logging: { level: "warn" },
  };
  const parsed = parseConfig(stringify(data), {});
  if (!parsed.ok) throw new Error(`demo config invalid: ${JSON.stringify(parsed.problems)}`);
  const config = parsed.config;
  const lifeboat = new Lifeboat({ config, logger: silentLogger(), drivers: (ctx) => buildDrivers(config, ctx) });
  try {
    await lifeboat.start({ listen: "127.0.0.1:0" });
  } catch (err) {
    await lifeboat.stop().catch(() => undefined);
    throw err;
  }
  return { lifeboat, config };
}
