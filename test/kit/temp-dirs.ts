import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Temporary directories the tests make (journals, config files, certificates), removed when
 * the test file ends (test/setup/temp-dirs.ts) if the test did not remove them itself. A
 * worker process is ended without its exit handlers running, so "on exit" is too late.
 */
const made = new Set<string>();

/** A new directory under the system's temp dir, named `lifeboat-<name>-…`. */
export function makeTempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `lifeboat-${name}-`));
  made.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  made.delete(dir);
}

/** Every directory made in this process and not yet removed. */
export function removeAllTempDirs(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}
