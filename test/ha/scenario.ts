import { expect } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import type { ServedLifeboat } from "../kit/served.js";
import type { HaPair } from "../kit/pair.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";

/** The host dies; wait until Nova calls it down, then Alertmanager posts to `to`. */
export async function failAndAlert(p: HaPair, host: string, to: ServedLifeboat[]): Promise<void> {
  p.sandbox.failHost(host);
  // Nova calls it down once its last heartbeat is service_down_time old; the gate wants 1 s more.
  const cloud = p.sandbox.cloud;
  await waitFor(
    () => {
      cloud.settle();
      const h = cloud.state.hosts.get(host)!;
      return cloud.clock.now() - h.updatedAtMs > cloud.state.opts.serviceDownTimeMs + 1_000;
    },
    15_000,
    `${host} down in Nova`,
  );
  for (const i of to) expect((await postAlert(i.url, alertPayload({ host }))).status).toBe(202);
}

/** The host's recovery, once it ended. */
export async function finished(p: HaPair, host: string, timeoutMs: number): Promise<RecoveryDetail> {
  const r = await waitFor(async () => (await p.store.listRecoveries({ host, limit: 1 }))[0], timeoutMs, `a recovery of ${host}`);
  await waitFor(async () => ["completed", "partial", "failed", "aborted"].includes((await p.store.getRecovery(r.id))!.state), timeoutMs, `${host} finished`);
  return (await recoveryDetail(p.store, r.id))!;
}
