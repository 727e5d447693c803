import { Lifeboat } from "../app/lifecycle.js";
import { formatProblems, loadConfigFile } from "../config/load.js";
import { listenAddress } from "../util/zod.js";
import { buildDrivers } from "../app/drivers.js";
import { createLogger } from "../logging.js";
import { errorMessage } from "../util/errors.js";
import { VERSION } from "../version.js";

/** `lifeboat serve`: refuse a bad config with every problem and its path, else run until SIGTERM/SIGINT. */
export async function serve(opts: { config: string; listen?: string }): Promise<void> {
  const loaded = loadConfigFile(opts.config);
  if (!loaded.ok) {
    console.error(`lifeboat: refusing to start: ${opts.config} has ${loaded.problems.length} problem(s)\n${formatProblems(loaded.problems)}`);
    process.exitCode = 1;
    return;
  }
  const listen = opts.listen !== undefined ? listenAddress().safeParse(opts.listen) : null;
  if (listen && !listen.success) {
    console.error(`lifeboat: refusing to start: --listen ${opts.listen}: ${listen.error.issues.map((i) => i.message).join("; ")}`);
    process.exitCode = 1;
    return;
  }
  const config = loaded.config;
  const logger = createLogger({ level: config.logging.level });
  let app: Lifeboat;
  try {
    app = new Lifeboat({ config, logger, drivers: (ctx) => buildDrivers(config, ctx) });
  } catch (err) {
    console.error(`lifeboat: refusing to start: ${errorMessage(err)}`);
    process.exitCode = 1;
    return;
  }
  logger.info({ version: VERSION, config: opts.config, store: config.store.driver === "sqlite" ? config.store.path : `etcd ${config.store.endpoints.join(",")}`, hosts: Object.keys(config.fencing.hosts).length }, "lifeboat starting");
  try {
    await app.start(opts.listen ? { listen: opts.listen } : {});
  } catch (err) {
    logger.fatal({ err: errorMessage(err) }, "lifeboat could not start");
    await app.stop().catch(() => undefined);
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping: recoveries in flight resume at their stage on the next start");
    app
      .stop()
      .then(() => logger.info("stopped"))
      .catch((err: unknown) => {
        logger.error({ err: errorMessage(err) }, "error while stopping");
        process.exitCode = 1;
      });
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}
