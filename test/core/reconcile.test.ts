import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { CloudPort, ComputeServiceInfo } from "../../src/domain/ports/cloud.js";
import { reconcileIsolatedHosts } from "../../src/engine/reconcile.js";
import { updateHostState } from "../../src/engine/host-states.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { memoryLogger } from "../kit/lifeboat.js";
import { tempDir } from "../kit/config.js";

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function service(host: string, over: Partial<ComputeServiceInfo> = {}): ComputeServiceInfo {
  return { host, state: "up", status: "enabled", forcedDown: false, disabledReason: null, updatedAt: null, zone: null, ...over };
}

describe("start-up reconciliation (one read of the holds)", () => {
  it("holds a host lifeboat isolated, clears a hold Nova shows back in service, and reads the holds once, not once per host", async () => {
    const store = new SqliteStore(join(tempDir(), "lifeboat.db"));
    stores.push(store);
    await store.init();
    const at = "2026-12-05T10:00:00.000Z";
    await updateHostState(store, "compute-2", () => ({ host: "compute-2", fenced: true, recoveryId: "r-1", by: "test", at }));
    const services = [
      service("compute-1", { state: "down", status: "disabled", forcedDown: true, disabledReason: `lifeboat: recovery r-9 fenced ${at}` }),
      service("compute-2"),
      ...Array.from({ length: 50 }, (_, i) => service(`compute-${i + 3}`)),
    ];
    const cloud = { listComputeServices: () => Promise.resolve(services) } as unknown as CloudPort;
    const single = vi.spyOn(store, "getHostState");

    const report = await reconcileIsolatedHosts({ store, evacuation: cloud, logger: memoryLogger().logger, now: () => at });

    expect(report).toEqual({ isolated: ["compute-1"], holdsAdded: ["compute-1"], holdsCleared: ["compute-2"] });
    // Only the holds it changes are read on their own (their compare-and-swap), none of the 50 others.
    expect(single.mock.calls.map((c) => c[0]).sort()).toEqual(["compute-1", "compute-2"]);
    single.mockRestore();
    expect(await store.getHostState("compute-1")).toMatchObject({ fenced: true, recoveryId: "r-9", by: "start-up reconciliation" });
    expect(await store.getHostState("compute-2")).toMatchObject({ fenced: false, recoveryId: "r-1" });
  });
});
