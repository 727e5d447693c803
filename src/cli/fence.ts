import { formatProblems, loadConfigFile } from "../config/load.js";
import { createFencing } from "../fencing/service.js";
import { anyStatusFailed, fenceStatusRows, formatStatusTable } from "../fencing/status-table.js";
import { createLogger } from "../logging.js";
import { Metrics } from "../metrics.js";
import { VERSION } from "../version.js";

/** `lifeboat fence status`: every host's power state through every device of its chain. */
export async function fenceStatusCommand(configFile: string, hosts: string[], json: boolean): Promise<number> {
  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) {
    console.error(`${configFile}: ${loaded.problems.length} problem(s)\n${formatProblems(loaded.problems)}`);
    return 1;
  }
  const logger = createLogger({ level: "warn", destination: process.stderr });
  const fencing = createFencing(loaded.config.fencing, { logger, metrics: new Metrics({ version: VERSION, defaultMetrics: false }) });
  const rows = await fenceStatusRows(fencing, hosts.length ? hosts : undefined);
  console.log(json ? JSON.stringify(rows, null, 2) : formatStatusTable(rows));
  return anyStatusFailed(rows) ? 1 : 0;
}
