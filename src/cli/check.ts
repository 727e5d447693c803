import { formatProblems, loadConfigFile } from "../config/load.js";
import { checkFailedHosts } from "../nova/monitor.js";
import { createLogger } from "../logging.js";
import { NovaClient } from "../openstack/nova.js";
import { createKeystoneSession } from "../openstack/keystone.js";
import { errorMessage } from "../util/errors.js";
import { table } from "../util/table.js";

/**
 * `lifeboat check`: the native monitor, once (freezer-dr's command). Prints "No failed
 * nodes" and exits 0, or lists the failed nova-compute hosts and exits 1; 2 when Nova
 * cannot be asked.
 */
export async function checkCommand(configFile: string, json: boolean): Promise<number> {
  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) {
    console.error(`${configFile}: ${loaded.problems.length} problem(s)\n${formatProblems(loaded.problems)}`);
    return 2;
  }
  const logger = createLogger({ level: "warn", destination: process.stderr });
  const session = createKeystoneSession(loaded.config.openstack, { logger });
  try {
    const nova = new NovaClient(session, { logger });
    await nova.negotiate();
    const failed = await checkFailedHosts(nova, { staleSeconds: loaded.config.monitor.stale_seconds });
    if (json) console.log(JSON.stringify({ failed }, null, 2));
    else if (failed.length === 0) console.log("No failed nodes");
    else {
      const age = (s: number | null): string => (s === null ? "?" : `${Math.floor(s)}s`);
      console.log(table(["HOST", "ZONE", "LAST HEARTBEAT", "AGE"], failed.map((f) => [f.host, f.zone ?? "", f.updatedAt ?? "never", age(f.heartbeatAgeSeconds)])));
    }
    return failed.length === 0 ? 0 : 1;
  } catch (err) {
    console.error(`lifeboat: cannot ask Nova: ${errorMessage(err)}`);
    return 2;
  } finally {
    session.close();
  }
}
