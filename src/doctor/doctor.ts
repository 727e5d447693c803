import type { Config } from "../config/schema.js";
import { silentLogger, type Logger } from "../logging.js";
import { Secret } from "../util/secret.js";
import { configRows } from "./config-check.js";
import { fencingCheck } from "./fencing.js";
import { alertmanagerCheck, prometheusCheck } from "./monitoring.js";
import { smtpCheck, webhookChecks } from "./notify.js";
import { openstackCheck } from "./openstack.js";
import { report, runChecks } from "./runner.js";
import { storeCheck } from "./store.js";
import type { DoctorCheck, DoctorReport } from "./types.js";

export interface DoctorOptions {
  /** Environment for `${VAR}` in the config and OS_* credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where the drivers' own logs go (default: nowhere; the table says it all). */
  logger?: Logger;
}

/**
 * `lifeboat doctor`: the config first (nothing else can be asked without it), then every
 * peer a recovery needs, asked at once: OpenStack, each host's fencing devices, the
 * monitoring APIs, the mail server and webhooks, the store.
 */
export async function runDoctor(configFile: string, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const env = opts.env ?? process.env;
  const { config, rows } = configRows(configFile, env);
  if (!config) return report(rows);
  const checked = await checkConfig(config, { env, logger: opts.logger ?? silentLogger() });
  return report([...rows, ...checked.rows]);
}

/** Every check of a loaded config, concurrently; rows in a fixed order. */
export async function checkConfig(config: Config, deps: { env?: NodeJS.ProcessEnv; logger: Logger }): Promise<DoctorReport> {
  const openstack = openstackCheck(config, { logger: deps.logger, ...(deps.env ? { env: deps.env } : {}) });
  const checks: DoctorCheck[] = [
    openstack.check,
    fencingCheck(config.fencing, { logger: deps.logger }),
    alertmanagerCheck(config),
    prometheusCheck(config),
    smtpCheck(config.notifications),
    ...webhookChecks(config.notifications),
    storeCheck(config.store),
  ].filter((c): c is DoctorCheck => c !== null);
  try {
    return await runChecks(checks, { secrets: [...configSecrets(config), ...openstack.secrets] });
  } finally {
    openstack.close();
  }
}

/**
 * Every secret of the config, to scrub from each row as a second net. Webhook URLs count:
 * chat tools put the token in the path.
 */
export function configSecrets(config: Config): Secret[] {
  const out: Secret[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof Secret) out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === "object") Object.values(v).forEach(walk);
  };
  walk(config);
  for (const w of config.notifications.webhooks) out.push(new Secret(w.url));
  return out;
}
