import { describe, expect, it } from "vitest";
import type { RecoveryDetail } from "../../src/domain/model.js";
import { recoveryDetail } from "../../src/domain/journal.js";
import type { ServedLifeboat } from "../kit/served.js";
import { usePairPerTest, type HaPair } from "../kit/pair.js";
import { alertPayload, postAlert, waitFor } from "../kit/http.js";

/**
 * Notifications in an active-passive pair: only the leader delivers (its worker runs with
 * its coordinator); when it dies with messages still undelivered, the new leader sends them.
 */

const HOST = "compute-1";
const ha = usePairPerTest();

async function failAndAlert(p: HaPair, to: ServedLifeboat[]): Promise<void> {
  p.sandbox.failHost(HOST);
  const cloud = p.sandbox.cloud;
  await waitFor(
    () => {
      cloud.settle();
      return cloud.clock.now() - cloud.state.hosts.get(HOST)!.updatedAtMs > cloud.state.opts.serviceDownTimeMs + 1_000;
    },
    15_000,
    `${HOST} down in Nova`,
  );
  for (const i of to) expect((await postAlert(i.url, alertPayload({ host: HOST }))).status).toBe(202);
}

const said = (i: ServedLifeboat, msg: string): number => i.lines.filter((l) => l.msg === msg).length;

describe("notification delivery in an HA pair", () => {
  it("only the leader delivers; killed with a message undelivered, the new leader sends it, under the same Message-ID", async () => {
    const p = await ha.start({
      sandbox: { cloud: { serviceDownTimeSeconds: 2, reportIntervalSeconds: 0.5, evacuationDurationMs: 300, generate: { hosts: 3, serversPerHost: 2 } }, powerDelayMs: 200 },
      config: {
        gates: { confirmations: [{ driver: "nova-service", stale_seconds: 1, checks: 1, interval_seconds: 0 }, { driver: "bmc" }] },
        evacuation: { poll_interval_seconds: 0.25 },
        notifications: { smtp: { timeout_seconds: 60 }, retry: { initial_backoff_seconds: 0.5, max_backoff_seconds: 1 } },
      },
      ttlSeconds: 3,
    });
    const a = await p.leader();
    const b = p.other(a);
    p.sandbox.smtp.holdNext(1); // the relay takes the first message and never answers it

    await failAndAlert(p, [a, b]);
    const r = await waitFor(async () => (await p.store.listRecoveries({ host: HOST, limit: 1 }))[0], 20_000, "a recovery");
    await waitFor(async () => (await p.store.getRecovery(r.id))?.state === "completed", 60_000, "the recovery to complete");
    await waitFor(() => p.sandbox.smtp.held === 1 && said(a, "notification sent") > 0, 30_000, "the leader to send, and the relay to hold one message");
    // (A leader that lost and regained its term on a busy machine starts it again: at least once.)
    expect(said(a, "delivery worker started")).toBeGreaterThanOrEqual(1);
    expect(said(b, "delivery worker started")).toBe(0);
    expect(said(b, "notification sent")).toBe(0);
    const held = p.sandbox.smtp.messages[0]!;

    a.kill("SIGKILL");
    await a.exited;
    // What the relay had accepted from the dead leader that its journal does not say was
    // sent: those (and only those) may be sent again — at least once, under the same Message-ID.
    const sentInJournal = new Set((await p.store.notifications(r.id)).filter((n) => n.state === "sent").map((n) => n.messageId));
    const unjournaled = new Set(p.sandbox.smtp.messages.map((m) => m.headers["message-id"]).filter((id) => !sentInJournal.has(id)));
    expect((await p.leader({ among: [b], timeoutMs: 20_000 })).id).toBe(b.id);
    const after = await waitFor(
      async () => {
        const d: RecoveryDetail | null = await recoveryDetail(p.store, r.id);
        return d?.delivery?.state === "delivered" ? d : undefined;
      },
      60_000,
      "the new leader to deliver what was pending",
    );
    // Its log lines arrive through a pipe: wait for them.
    await waitFor(() => said(b, "notification sent") > 0, 10_000, "the new leader's log of the message it sent");
    expect(said(b, "delivery worker started")).toBe(1);
    const copies = p.sandbox.smtp.messages.filter((m) => m.headers["message-id"] === held.headers["message-id"]);
    expect(copies).toHaveLength(2);
    expect(after.notifications.find((n) => n.messageId === held.headers["message-id"])).toMatchObject({ state: "sent" });
    // Every other message once, but one the relay had accepted and the old leader had not yet
    // journaled as sent when it died (or when its worker restarted, its term lost and regained
    // on a busy machine): delivery is at least once, never twice for a message journaled sent.
    const ids = p.sandbox.smtp.messages.map((m) => m.headers["message-id"]);
    const twice = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))].filter((id) => id !== held.headers["message-id"]);
    const unexplained = twice.filter((id) => !unjournaled.has(id));
    expect(unexplained.length === 0 || said(a, "delivery worker started") > 1, `${unexplained.length} message(s) journaled as sent were sent again`).toBe(true);
  }, 150_000);
});
