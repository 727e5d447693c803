import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runChecks } from "../../src/doctor/runner.js";
import { storeCheck } from "../../src/doctor/store.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { etcdStoreSchema } from "../../src/store/config.js";
import { startEtcd, type EtcdServer } from "../support/etcd.js";
import { tempDir, lifeboatConfig } from "../kit/config.js";

/** The store check: SQLite writable (or creatable), a real etcd reachable and writable. */

describe("store check, SQLite", () => {
  it("a database not created yet: ok when its directory (or the nearest existing parent) is writable", async () => {
    const dir = tempDir();
    const r = await runChecks([storeCheck(lifeboatConfig({ store: { path: join(dir, "state/sub/lifeboat.db") } }).store)]);
    expect(r.rows[0]).toMatchObject({ check: "store", result: "ok" });
    expect(r.rows[0]!.detail).toBe(`not created yet; ${dir} is writable (lifeboat serve creates it)`);
  });

  it("an existing database: write lock taken and released, nothing changed", async () => {
    const dir = tempDir();
    const path = join(dir, "lifeboat.db");
    const store = new SqliteStore(path);
    await store.init();
    await store.close();
    const r = await runChecks([storeCheck(lifeboatConfig({ store: { path } }).store)]);
    expect(r.rows[0]).toMatchObject({ result: "ok", target: `sqlite ${path}` });
    expect(r.rows[0]!.detail).toBe("writable (journal wal), 0 recovery record(s)");
  });

  it("a path under a regular file fails", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "not-a-dir"), "x");
    const r = await runChecks([storeCheck(lifeboatConfig({ store: { path: join(dir, "not-a-dir", "lifeboat.db") } }).store)]);
    expect(r.rows[0]).toMatchObject({ result: "fail", detail: `${join(dir, "not-a-dir")} is not a directory` });
  });

  it("a file that is not a database fails", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "x"));
    writeFileSync(join(dir, "x", "lifeboat.db"), "this is not sqlite, just text long enough to have a header".repeat(10));
    const r = await runChecks([storeCheck(lifeboatConfig({ store: { path: join(dir, "x", "lifeboat.db") } }).store)]);
    expect(r.rows[0]).toMatchObject({ result: "fail" });
    expect(r.rows[0]!.detail).toMatch(/not a database/);
  });
});

describe("store check, etcd", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const cfg = (over: Record<string, unknown> = {}) =>
    etcdStoreSchema.parse({ driver: "etcd", endpoints: [etcd.endpoint], prefix: "/doctor-test/", instance_id: "doctor-a", request_timeout_seconds: 1, dial_timeout_seconds: 1, ...over });

  it("reachable: version, prefix readable and writable, nobody leads yet", async () => {
    const r = await runChecks([storeCheck(cfg())]);
    expect(r.rows[0]).toMatchObject({ check: "store", target: `etcd ${etcd.endpoint}`, result: "ok" });
    expect(r.rows[0]!.detail).toMatch(/^etcd \d+\.\d+\.\d+, prefix \/doctor-test\/ readable and writable; nobody leads; this instance is doctor-a$/);
  });

  it("hung etcd (SIGSTOP): the row fails within the configured deadlines", async () => {
    etcd.pause();
    try {
      const started = Date.now();
      const r = await runChecks([storeCheck(cfg())]);
      expect(r.rows[0]).toMatchObject({ result: "fail" });
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      etcd.resume();
    }
  });
});
