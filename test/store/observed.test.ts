import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { JournalChanges, observeWrites, type JournalChange } from "../../src/store/observed.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { StateConflictError } from "../../src/domain/journal.js";
import { removeDir, tempDir } from "../kit/config.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

describe("observed store (the console's change signal)", () => {
  it("tells each successful journal write of a recovery or a setting, never a read or a failed write", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const changes = new JournalChanges();
    const store = observeWrites(new SqliteStore(join(dir, "j.db")), changes);
    await store.init();
    const seen: JournalChange[] = [];
    const off = changes.on((c) => seen.push(c));
    const at = new Date().toISOString();
    const r = await store.createRecovery({ host: "compute-1", incidentKey: "k", kind: "alert", trigger: "alert", dryRun: false, confirmedOff: false, detectedAt: at, graceUntil: at, reason: "x" });
    await store.getRecovery(r.id);
    await store.listRecoveries({});
    await store.transition(r.id, "pending", "validating", "go");
    await expect(store.transition(r.id, "pending", "validating", "again")).rejects.toBeInstanceOf(StateConflictError);
    await store.recordDecisions([{ recoveryId: r.id, gate: "bmc", result: "pass", reason: "ok", at }]);
    await store.putStep({ recoveryId: r.id, key: "fence", state: "started", attempts: 1, startedAt: at });
    await store.putInstance({ recoveryId: r.id, instanceId: "i", name: "vm", projectId: "p", originalStatus: "ACTIVE", state: "pending", priority: 0, attempts: 0 });
    await store.putSetting("pause", { paused: true });
    expect(seen).toEqual([
      { recoveryId: r.id, host: "compute-1" },
      { recoveryId: r.id, host: "compute-1" },
      { recoveryId: r.id },
      { recoveryId: r.id },
      { recoveryId: r.id },
      { setting: "pause" },
    ]);
    off();
    expect(changes.listening).toBe(0);
    await store.putSetting("pause", { paused: false });
    expect(seen).toHaveLength(6);
    expect(store.kind).toBe("sqlite");
    await store.close();
  });
});
