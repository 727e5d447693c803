import { runDoctor } from "../doctor/doctor.js";
import { formatDoctorReport } from "../doctor/table.js";

/**
 * `lifeboat doctor --config FILE`: check everything a recovery will need and print one
 * table; exit 0 when nothing failed (warnings allowed), 1 otherwise.
 */
export async function doctorCommand(configFile: string): Promise<number> {
  const r = await runDoctor(configFile);
  process.stdout.write(formatDoctorReport(r));
  const code = r.ok ? 0 : 1;
  // Every check is bounded and closes what it opened; should a library still hold a socket
  // (a peer that never answers QUIT), do not let it keep the command alive.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}
