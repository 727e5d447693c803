import type { ChainResult } from "../../../src/domain/ports/fencing.js";
import type { InstanceResult, RecoveryDetail, RecoveryState } from "../../../src/domain/model.js";
import { SqliteStore } from "../../../src/store/sqlite.js";
import { recoveryDetail } from "../../../src/domain/journal.js";

export const P1 = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
export const P2 = "0f9e8d7c6b5a49382716f5e4d3c2b1a0";
export const GENERATOR_URL = "http://prometheus.example:9090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0&g0.tab=1";
export const XSS_NAME = "<script>alert(1)</script>";

/** A store whose clock the test moves: every journal entry gets a known time. */
export async function testStore(): Promise<{ store: SqliteStore; clock: { t: number } }> {
  const clock = { t: Date.parse("2026-03-01T10:00:00.000Z") };
  const store = new SqliteStore(":memory:", { now: () => new Date(clock.t).toISOString() });
  await store.init();
  return { store, clock };
}

const FENCE: ChainResult = {
  ok: true,
  device: "ipmi 10.0.0.7:623",
  message: "powered off by ipmi 10.0.0.7:623 (Chassis Power is off)",
  attempts: [
    { device: "redfish https://10.0.0.8", driver: "redfish", result: { ok: false, state: "unknown", already: false, message: "connect ETIMEDOUT 10.0.0.8:443", durationMs: 10_000, attempts: 3 } },
    { device: "ipmi 10.0.0.7:623", driver: "ipmi", result: { ok: true, state: "off", already: false, message: "Chassis Power is off", durationMs: 2100, attempts: 1 } },
  ],
};

export interface ScenarioOptions {
  host?: string;
  dryRun?: boolean;
  /** Stop after fencing failed (state failed, fence unknown). */
  fenceFails?: boolean;
  /** Stop in blocked. */
  blocked?: boolean;
}

/**
 * One recovery of `compute-1` journaled the way the pipeline journals it: alert, gate
 * decisions, fence step, isolation, five instances of two projects with every fate.
 */
export async function scenario(store: SqliteStore, clock: { t: number }, opts: ScenarioOptions = {}): Promise<RecoveryDetail> {
  const host = opts.host ?? "compute-1";
  const detectedAt = new Date(clock.t - 60_000).toISOString();
  const r = await store.createRecovery({
    host,
    incidentKey: `${host}|${detectedAt}`,
    kind: "alert", trigger: "alert",
    dryRun: opts.dryRun ?? false,
    confirmedOff: false,
    detectedAt,
    graceUntil: new Date(clock.t + 30_000).toISOString(),
    reason: "ComputeNodeDown firing",
    alerts: {
      fp1: { alertname: "ComputeNodeDown", status: "firing", startsAt: detectedAt, generatorURL: GENERATOR_URL, labels: { host, severity: "critical" } },
    },
  });
  const step = (ms: number): void => {
    clock.t += ms;
  };
  let state: RecoveryState = "pending";
  const go = async (to: RecoveryState, reason: string, patch = {}) => {
    await store.transition(r.id, state, to, reason, patch);
    state = to;
  };
  step(30_000);
  await go("validating", "grace period over, alert still firing");
  const at = () => new Date(clock.t).toISOString();
  await store.recordDecisions([{ recoveryId: r.id, gate: "nova-service", result: "pass", reason: `nova-compute on ${host} is down (last heartbeat 95 s ago)`, at: at() }]);
  if (opts.blocked) {
    await store.recordDecisions([{ recoveryId: r.id, gate: "storm-guard", result: "block", reason: "3 hosts failed in 10 min (max 2)", at: at() }]);
    step(1200);
    await go("blocked", "storm guard: 3 hosts failed in 10 min (max 2)", { block: { gates: ["storm-guard"], recheck: true, approvable: true, at: at(), episode: at(), signature: "storm-guard:block", since: at() } });
    return (await recoveryDetail(store, r.id))!;
  }
  await store.recordDecisions([{ recoveryId: r.id, gate: "storm-guard", result: "pass", reason: "1 host failed in 10 min (max 2)", at: at() }]);
  step(800);
  await go("fencing", "all gates pass (nova-service, storm-guard)");
  step(12_000);
  if (opts.fenceFails) {
    const failed: ChainResult = {
      ok: false,
      message: "no fence device confirmed power off",
      attempts: [{ device: "ipmi 10.0.0.7:623", driver: "ipmi", result: { ok: false, state: "unknown", already: false, message: "Error: Unable to establish IPMI v2 / RMCP+ session", durationMs: 20_000, attempts: 3 } }],
    };
    await store.putStep({ recoveryId: r.id, key: "fence", state: "failed", attempts: 1, startedAt: at(), finishedAt: at(), result: failed, error: failed.message });
    await go("failed", "fencing failed: no fence device confirmed power off", { fenceState: "unknown", outcome: "failed" });
    return (await recoveryDetail(store, r.id))!;
  }
  await store.putStep({ recoveryId: r.id, key: "fence", state: "succeeded", attempts: 1, startedAt: at(), finishedAt: at(), result: FENCE });
  await go("isolating", "fenced: ipmi 10.0.0.7:623 reads power off", { fenceState: opts.dryRun ? "would-fence" : "off" });
  step(1500);
  await go("evacuating", "nova-compute forced down and disabled");
  const inst = (i: Partial<InstanceResult> & Pick<InstanceResult, "instanceId" | "name" | "projectId" | "state">): InstanceResult => ({
    recoveryId: r.id,
    originalStatus: "ACTIVE",
    priority: 0,
    attempts: 1,
    ...i,
  });
  const instances: InstanceResult[] = opts.dryRun
    ? [
        inst({ instanceId: "11111111-aaaa-4000-8000-000000000001", name: "web-1", projectId: P1, userId: "alice", state: "would-evacuate" }),
        inst({ instanceId: "22222222-bbbb-4000-8000-000000000002", name: "batch-1", projectId: P2, userId: "gina", state: "would-evacuate" }),
      ]
    : [
        inst({ instanceId: "11111111-aaaa-4000-8000-000000000001", name: "web-1", projectId: P1, userId: "alice", state: "evacuated", targetHost: "compute-3" }),
        inst({ instanceId: "11111111-aaaa-4000-8000-000000000003", name: XSS_NAME, projectId: P1, userId: "alice", state: "evacuated", targetHost: "compute-4", originalStatus: "SHUTOFF" }),
        inst({ instanceId: "11111111-aaaa-4000-8000-000000000004", name: "db-1", projectId: P1, userId: "alice", state: "failed", attempts: 3, error: "No valid host was found. There are not enough hosts available." }),
        inst({ instanceId: "22222222-bbbb-4000-8000-000000000002", name: "batch-1", projectId: P2, userId: "gina", state: "unprotected", attempts: 0, note: "not opted in (metadata HA_Enabled is not true)" }),
        inst({ instanceId: "22222222-bbbb-4000-8000-000000000005", name: "cache-1", projectId: P2, userId: "gina", state: "skipped", attempts: 0, note: "already in ERROR before the failure" }),
      ];
  for (const i of instances) await store.putInstance(i);
  step(45_000);
  const failed = instances.some((i) => i.state === "failed");
  await go("notifying", failed ? "1 of 3 evacuations failed" : "every protected instance evacuated");
  return (await recoveryDetail(store, r.id))!;
}
