import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logging.js";
import { Metrics } from "../../src/metrics.js";
import { enqueue, storeSink, type PlannedMessage } from "../../src/notify/dispatcher.js";
import { MIGRATIONS } from "../../src/store/sqlite-migrations.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { removeDir, tempDir } from "../kit/config.js";

/**
 * A journal written by the lifeboat before background delivery (schema 1), opened by this
 * one: notifications an earlier crash left pending carry no payload. Those of an ended
 * recovery are closed as failed; those of a recovery still under way are queued again when
 * its notifying step runs again.
 */
describe("sqlite journal from before background delivery", () => {
  it("closes the stale pending notifications of ended recoveries, and queues those of a running one again", async () => {
    const dir = tempDir();
    const path = join(dir, "lifeboat.db");
    const db = new Database(path);
    db.exec(MIGRATIONS[0]!);
    db.pragma("user_version = 1");
    const at = "2026-01-01T00:00:00.000Z";
    const recovery = db.prepare(
      `INSERT INTO recoveries(id, host, incident_key, state, trigger, dry_run, confirmed_off, approved, fence_state, reason, detected_at, created_at, updated_at, grace_until, alerts, facts)
       VALUES (?, ?, ?, ?, 'alert', 0, 0, 0, 'off', 'x', ?, ?, ?, ?, '{}', '{}')`,
    );
    recovery.run("r-ended", "compute-1", "i-1", "completed", at, at, at, at);
    recovery.run("r-running", "compute-2", "i-2", "notifying", at, at, at, at);
    const note = db.prepare(`INSERT INTO notifications(recovery_id, dedup_key, channel, kind, recipient, subject, state, attempts) VALUES (?, ?, 'email', 'operator-summary', 'ops@x.example', 's', ?, 1)`);
    note.run("r-ended", "k-ended", "pending");
    note.run("r-ended", "k-sent", "sent");
    note.run("r-running", "k-running", "pending");
    db.close();

    const store = new SqliteStore(path);
    await store.init();
    try {
      expect((await store.notifications("r-ended")).map((n) => [n.dedupKey, n.state, n.error])).toEqual([
        ["k-ended", "failed", "interrupted in an earlier version of lifeboat; not sent again"],
        ["k-sent", "sent", undefined],
      ]);
      expect((await store.notifications("r-running"))[0]).toMatchObject({ state: "pending" });
      expect(await store.pendingNotifications(10)).toEqual([]);

      const planned: PlannedMessage = { channel: "email", dedupKey: "k-running", mode: "send", message: { kind: "operator-summary", recipient: "ops@x.example", subject: "s", text: "t", data: {} } };
      const r = await enqueue([planned], storeSink(store, "r-running"), { channels: new Set(["email"]), metrics: new Metrics({ version: "t", defaultMetrics: false }), logger: silentLogger(), messageDomain: "x.example" });
      expect(r.queued).toBe(1);
      expect((await store.pendingNotifications(10)).map((e) => e.record.dedupKey)).toEqual(["k-running"]);
    } finally {
      await store.close();
      removeDir(dir);
    }
  });
});
