import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import type { EvacuateCall } from "../../src/domain/model.js";
import { MIGRATIONS } from "../../src/store/sqlite-migrations.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/domain/journal.js";
import { describeStoreConformance } from "./conformance.js";

describeStoreConformance("sqlite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-"));
  const path = join(dir, "lifeboat.db");
  const opened: Store[] = [];
  const open = async (): Promise<Store> => {
    const s = new SqliteStore(path);
    await s.init();
    opened.push(s);
    return s;
  };
  const store = await open();
  return {
    store,
    open,
    cleanup: async () => {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("SQLite schema upgrades", () => {
  it("a journal written before instances had an evacuate call opens, keeps its rows, and records calls from then on", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-"));
    const path = join(dir, "lifeboat.db");
    try {
      // The first schema, as an older lifeboat left it, with an instance mid-evacuation.
      const old = new Database(path);
      old.exec(MIGRATIONS[0]!);
      old.pragma("user_version = 1");
      old.prepare(
        `INSERT INTO recoveries(id, host, incident_key, state, trigger, dry_run, confirmed_off, approved, fence_state, reason,
           detected_at, created_at, updated_at, grace_until, alerts, facts)
         VALUES ('r-1', 'compute-1', 'compute-1|x', 'evacuating', 'alert', 0, 0, 0, 'off', 'evacuating', 't', 't', 't', 't', '{}', '{}')`,
      ).run();
      old.prepare(
        `INSERT INTO instances(recovery_id, instance_id, name, project_id, original_status, state, priority, attempts)
         VALUES ('r-1', 'i-1', 'db', 'p1', 'ACTIVE', 'evacuating', 0, 1)`,
      ).run();
      old.close();

      const store = new SqliteStore(path);
      await store.init();
      try {
        const [rec] = await store.instances("r-1");
        // Left evacuating by an older lifeboat, which did not journal its calls: one may have
        // been sent, at the latest when the upgrade opened the journal.
        const { evacuateCall: maybeSent, ...kept } = rec!;
        expect(kept).toEqual({ recoveryId: "r-1", instanceId: "i-1", name: "db", projectId: "p1", originalStatus: "ACTIVE", state: "evacuating", priority: 0, attempts: 1 });
        expect(maybeSent).toEqual({ attempt: 1, sentAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as unknown, migrationsBefore: [] });
        expect(maybeSent?.settled).toBeUndefined();
        const call: EvacuateCall = { attempt: 1, sentAt: "2026-01-01T00:00:00.000Z", migrationsBefore: [3] };
        await store.putInstance({ ...rec!, evacuateCall: call });
        expect((await store.instances("r-1"))[0]!.evacuateCall).toEqual(call);
      } finally {
        await store.close();
      }
      const check = new Database(path, { readonly: true });
      expect(check.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
      check.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
