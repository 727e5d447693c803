import { describe, expect, it } from "vitest";
import { Lifeboat } from "../../src/app/lifecycle.js";
import { ConflictError } from "../../src/domain/errors.js";
import { memoryLogger, testConfig } from "../support/lifeboat.js";
import { RecordingNotifier, World, WorldCloud, WorldFencing } from "../support/world.js";

describe("host operations", () => {
  it("a release is refused by an instance that does not lead (HA follower), with where to send it", async () => {
    const world = World.standard();
    const app = new Lifeboat({
      config: testConfig(),
      logger: memoryLogger().logger,
      drivers: {
        fencing: new WorldFencing(world),
        evacuation: new WorldCloud(world),
        notifier: new RecordingNotifier(world),
      },
    });
    await app.store.init();
    try {
      // The coordinator is not running: this instance does not lead.
      const err = await app.hosts.release("compute-1", "ops").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect((err as Error).message).toMatch(/does not lead: send the release to the leader/);
      expect(await app.store.listRecoveries({ host: "compute-1" })).toEqual([]);
    } finally {
      await app.store.close();
    }
  });
});
