import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/types.js";
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
