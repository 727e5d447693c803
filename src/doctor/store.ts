import { accessSync, constants, existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { createEtcdClient } from "../etcd/client.js";
import { withDeadline } from "../etcd/deadline.js";
import { etcdConnectionFromConfig } from "../store/config.js";
import type { LeaderRecord } from "../ha/leader.js";
import type { EtcdStoreConfig, SqliteStoreConfig, StoreConfig } from "../store/config.js";
import { EtcdStore } from "../store/etcd.js";
import { errorMessage } from "../util/errors.js";
import type { DoctorCheck, DoctorRow } from "./types.js";

/**
 * The store every step is journaled to before it happens: SQLite must be writable (the
 * file, or the directory it will be created in), etcd reachable with the configured TLS
 * and credentials, its layout one this lifeboat reads, and writes accepted.
 */
export function storeCheck(cfg: StoreConfig): DoctorCheck {
  return cfg.driver === "sqlite" ? sqliteCheck(cfg) : etcdCheck(cfg);
}

function sqliteCheck(cfg: SqliteStoreConfig): DoctorCheck {
  const path = resolve(cfg.path);
  return {
    check: "store",
    target: `sqlite ${path}`,
    timeoutMs: 10_000,
    run: () => Promise.resolve([sqliteRow(path)]),
  };
}

function sqliteRow(path: string): DoctorRow {
  const target = `sqlite ${path}`;
  const fail = (detail: string): DoctorRow => ({ check: "store", target, result: "fail", detail });
  if (!existsSync(path)) {
    // serve creates it (and missing directories): the nearest existing directory must let it.
    let dir = dirname(path);
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    try {
      if (!statSync(dir).isDirectory()) return fail(`${dir} is not a directory`);
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      return fail(`cannot create the database: ${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
    }
    return { check: "store", target, result: "ok", detail: `not created yet; ${dir} is writable (lifeboat serve creates it)` };
  }
  let db: Database.Database | undefined;
  try {
    accessSync(dirname(path), constants.W_OK);
    db = new Database(path, { fileMustExist: true, timeout: 3000 });
    const mode = String(db.pragma("journal_mode", { simple: true }));
    // Take the write lock and let it go: proves the file is writable without changing it.
    db.exec("BEGIN IMMEDIATE; ROLLBACK;");
    const recoveries = tableExists(db, "recoveries") ? Number((db.prepare("SELECT count(*) AS n FROM recoveries").get() as { n: number }).n) : 0;
    return { check: "store", target, result: "ok", detail: `writable (journal ${mode}), ${recoveries} recovery record(s)` };
  } catch (err) {
    return fail(`not writable: ${(err as NodeJS.ErrnoException).code ?? ""} ${errorMessage(err)}`.trim());
  } finally {
    db?.close();
  }
}

function tableExists(db: Database.Database, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

function etcdCheck(cfg: EtcdStoreConfig): DoctorCheck {
  const target = `etcd ${cfg.endpoints.join(",")}`;
  return {
    check: "store",
    target,
    // status, init (one transaction), ping, leader: each bounded by request_timeout_seconds.
    timeoutMs: cfg.dial_timeout_seconds * 1000 + 4 * cfg.request_timeout_seconds * 1000 + 2000,
    run: async (): Promise<DoctorRow[]> => {
      const client = createEtcdClient(etcdConnectionFromConfig(cfg));
      const store = EtcdStore.fromConfig(cfg, client);
      try {
        const rt = cfg.request_timeout_seconds * 1000;
        const status = await withDeadline(client.maintenance.status(), rt, "status");
        await store.init();
        await store.ping();
        const leaderKv = await withDeadline(client.get(`${cfg.prefix}leader`).string(), rt, "leader lookup");
        let leader = "nobody leads";
        if (leaderKv) {
          try {
            leader = `leader ${(JSON.parse(leaderKv) as LeaderRecord).instanceId}`;
          } catch {
            leader = "leader record unreadable";
          }
        }
        return [{ check: "store", target, result: "ok", detail: `etcd ${status.version}, prefix ${cfg.prefix} readable and writable; ${leader}; this instance is ${cfg.instance_id}` }];
      } finally {
        await store.close().catch(() => undefined);
        client.close();
      }
    },
  };
}
