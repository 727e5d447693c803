import type { MessageKind } from "../../../src/notify/config.js";
import type { InstanceView, MessageView, RecoveryView, StormView, TenantView, UnknownHostsView } from "../../../src/notify/templates.js";

/**
 * Representative views of every message kind, written out by hand (not built by the
 * planner, so they stay put when the planner changes): each kind once with every optional
 * section present and values that need escaping, and once with the sections empty.
 */

const XSS = `<script>alert("x" + 'y')</script>`;
const LINKS = [
  { label: "Recovery", url: "https://lifeboat.example:9095/api/v1/recoveries/r-0001" },
  { label: "Alert source", url: "http://prometheus.example:9090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0&g0.tab=1" },
  { label: "Dashboard", url: "https://grafana.example/d/lifeboat" },
];

function instance(over: Partial<InstanceView> & Pick<InstanceView, "id" | "name" | "state" | "fate" | "tenantFate">): InstanceView {
  return {
    projectId: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    originalStatus: "ACTIVE",
    attempts: 1,
    evacuated: false,
    notRecovered: false,
    ...over,
  };
}

const INSTANCES: InstanceView[] = [
  instance({ id: "11111111-aaaa", name: "web-1", state: "evacuated", targetHost: "compute-3", evacuated: true, fate: "evacuated to compute-3", tenantFate: "restarted on another host" }),
  instance({
    id: "22222222-bbbb",
    name: XSS,
    state: "failed",
    error: "Nova said 409: Cannot 'evacuate' instance while it is in task_state rebuilding & <locked>",
    attempts: 3,
    notRecovered: true,
    fate: "FAILED after 3 attempt(s): Nova said 409: Cannot 'evacuate' instance while it is in task_state rebuilding & <locked>",
    tenantFate: "could not be restarted elsewhere; it is still down",
  }),
  instance({
    id: "33333333-cccc",
    name: "batch-7",
    projectId: "0f9e8d7c6b5a49382716f5e4d3c2b1a0",
    projectName: "research",
    state: "skipped",
    originalStatus: "SHUTOFF",
    note: "was SHUTOFF",
    fate: "skipped (was SHUTOFF)",
    tenantFate: "left as it was (it was not running)",
  }),
  instance({ id: "44444444-dddd", name: "scratch", state: "unprotected", notRecovered: true, fate: "not protected (no lifeboat:protect tag)", tenantFate: "not protected; it is still down" }),
];

function recovery(kind: MessageKind, over: Partial<RecoveryView> = {}): RecoveryView {
  return {
    kind,
    prefix: "",
    dryRun: false,
    dashboard_url: "https://grafana.example/d/lifeboat",
    api_url: "https://lifeboat.example:9095",
    links: LINKS,
    id: "r-0001",
    host: "compute-1",
    incidentKey: "compute-1|2026-03-01T09:59:00.000Z",
    state: "completed",
    outcome: "partial",
    outcomeText: "partly done",
    trigger: "alert",
    reason: `ComputeNodeDown firing; "labels" <host=compute-1>`,
    detectedAt: "2026-03-01T09:59:00.000Z",
    createdAt: "2026-03-01T09:59:00.100Z",
    updatedAt: "2026-03-01T10:02:05.000Z",
    approvedBy: "alice@ops <tty>",
    alerts: [
      { alertname: "ComputeNodeDown", status: "firing", startsAt: "2026-03-01T09:59:00.000Z", generatorURL: LINKS[1]!.url },
      { alertname: "NodeExporterDown", status: "resolved", startsAt: "2026-03-01T09:58:30.000Z" },
    ],
    timeline: [
      { at: "2026-03-01T09:59:30.000Z", offset: "+0s", from: "pending", to: "validating", reason: "grace period over, alert still firing", duration: "1s" },
      { at: "2026-03-01T09:59:31.200Z", offset: "+1s", from: "validating", to: "fencing", reason: "all gates pass (nova-service, storm-guard)", actor: "alice", duration: "12s" },
      { at: "2026-03-01T09:59:43.200Z", offset: "+13s", from: "fencing", to: "evacuating", reason: "fenced: powered off by ipmi 10.0.0.7:623" },
      { at: "2026-03-01T10:02:05.000Z", offset: "+2m35s", from: "evacuating", to: "completed", reason: "2 of 4 instances not recovered" },
    ],
    decisions: [
      { at: "2026-03-01T09:59:30.000Z", gate: "nova-service", result: "pass", reason: "nova-compute on compute-1 is down (last heartbeat 95 s ago)", blocking: false },
      { at: "2026-03-01T09:59:30.000Z", gate: "storm-guard", result: "pass", reason: "1 host failed in 10 min (max 2) & <none> held", blocking: false },
    ],
    fence: {
      state: "off",
      stateText: "powered off",
      device: "ipmi 10.0.0.7:623",
      message: "powered off by ipmi 10.0.0.7:623 (Chassis Power is off)",
      attempts: [
        { device: "redfish https://10.0.0.8", driver: "redfish", ok: false, state: "unknown", message: "connect ETIMEDOUT 10.0.0.8:443" },
        { device: "ipmi 10.0.0.7:623", driver: "ipmi", ok: true, state: "off", message: "Chassis Power is off" },
      ],
    },
    instances: INSTANCES,
    counts: { total: 4, evacuated: 1, failed: 1, skipped: 1, unprotected: 1, other: 0, notRecovered: 2 },
    countsText: "1 evacuated, 1 failed, 1 skipped, 1 unprotected",
    locksLeft: [{ id: "11111111-aaaa", name: "web-1", error: "Nova said 503: <html>Service Unavailable</html>" }],
    tenants: [
      { projectId: "a1b2c3d4e5f60718293a4b5c6d7e8f90", recipientsText: "bob@example.org, carol@example.org", problems: [] },
      { projectId: "0f9e8d7c6b5a49382716f5e4d3c2b1a0", projectName: "research", recipientsText: "nobody", problems: ["Keystone said 403", "no email for user 'dave'"] },
    ],
    approveCommand: "lifeboat approve r-0001",
    confirmOffCommand: "lifeboat recover compute-1 --confirm-off",
    ...over,
  };
}

/** A recovery with nothing in its lists and no optional value. */
function bareRecovery(kind: MessageKind, over: Partial<RecoveryView> = {}): RecoveryView {
  const { approvedBy: _a, dashboard_url: _d, api_url: _u, ...rest } = recovery(kind);
  return {
    ...rest,
    prefix: "[DRY RUN] ",
    dryRun: true,
    links: [],
    outcome: "completed",
    outcomeText: "would be done (dry run)",
    trigger: "manual",
    alerts: [],
    timeline: [],
    decisions: [],
    fence: { state: "would-fence", stateText: "would be fenced (dry run)", attempts: [] },
    instances: [],
    counts: { total: 0, evacuated: 0, failed: 0, skipped: 0, unprotected: 0, other: 0, notRecovered: 0 },
    countsText: "no instances",
    locksLeft: [],
    tenants: [],
    ...over,
  };
}

function tenant(over: Partial<TenantView> = {}): TenantView {
  return {
    kind: "tenant",
    prefix: "",
    dryRun: false,
    links: [],
    id: "r-0001",
    host: "compute-1",
    outcome: "partial",
    detectedAt: "2026-03-01T09:59:00.000Z",
    projectId: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    projectName: "web & <shop>",
    projectLabel: "web & <shop> (a1b2c3d4e5f60718293a4b5c6d7e8f90)",
    instances: INSTANCES.slice(0, 2),
    counts: { total: 2, evacuated: 1, failed: 1, skipped: 0, unprotected: 0, other: 0, notRecovered: 1 },
    anyEvacuated: true,
    anyNotRecovered: true,
    ...over,
  };
}

function storm(over: Partial<StormView> = {}): StormView {
  return {
    kind: "storm",
    prefix: "",
    dryRun: false,
    dashboard_url: "https://grafana.example/d/lifeboat",
    links: [LINKS[2]!],
    at: "2026-03-01T10:00:00.000Z",
    reason: "3 hosts failed within 10 minutes (limit 2) & <more>",
    hosts: ["compute-1", "compute-2", "compute-<b>3</b>"],
    hostCount: 3,
    hostList: "compute-1, compute-2, compute-<b>3</b>",
    until: "2026-03-01T10:30:00.000Z",
    recoveryId: "r-0003",
    ...over,
  };
}

function unknownHosts(over: Partial<UnknownHostsView> = {}): UnknownHostsView {
  return {
    kind: "unknown-hosts",
    prefix: "",
    dryRun: false,
    dashboard_url: "https://grafana.example/d/lifeboat",
    links: [LINKS[2]!],
    at: "2026-03-01T10:00:00.000Z",
    since: "2026-03-01T09:00:00.000Z",
    hosts: [{ host: "Compute-1.example.org.", likely: "compute-1" }, { host: "<gpu-9>" }],
    hostCount: 5,
    moreCount: 3,
    alertCount: 12,
    anyLikely: true,
    ...over,
  };
}

export interface ViewCase {
  name: string;
  kind: MessageKind;
  view: MessageView;
}

export const VIEW_CASES: ViewCase[] = [
  { name: "operator-summary.full", kind: "operator-summary", view: recovery("operator-summary") },
  { name: "operator-summary.bare", kind: "operator-summary", view: bareRecovery("operator-summary") },
  {
    name: "blocked.full",
    kind: "blocked",
    view: recovery("blocked", {
      state: "blocked",
      outcome: "aborted",
      blockReason: "storm guard: 3 hosts failed in 10 min (max 2) & <more>",
      blockedGatesText: "storm-guard, silences",
      approvable: true,
      previousGatesText: "nova-service",
      liftText: "expire the silence <ops-maintenance> in Alertmanager",
      decisions: [
        { at: "2026-03-01T09:59:30.000Z", gate: "storm-guard", result: "block", reason: "3 hosts failed in 10 min (max 2)", blocking: true },
        { at: "2026-03-01T09:59:30.000Z", gate: "silences", result: "undecided", reason: "Alertmanager said 503 <html>", blocking: true },
      ],
    }),
  },
  {
    name: "blocked.bare",
    kind: "blocked",
    view: bareRecovery("blocked", { state: "blocked", outcome: "aborted", blockReason: "maintenance window", blockedGatesText: "(not recorded)", approvable: false }),
  },
  {
    name: "fence-failed.full",
    kind: "fence-failed",
    view: recovery("fence-failed", {
      state: "failed",
      outcome: "failed",
      outcomeText: "failed",
      reason: "every fence device failed\nsee the attempts below",
      fence: {
        state: "unknown",
        stateText: "unknown",
        message: "no device confirmed the power off & <nothing> was done",
        attempts: [
          { device: "redfish https://10.0.0.8", driver: "redfish", ok: false, state: "unknown", message: "connect ETIMEDOUT 10.0.0.8:443" },
          { device: "ipmi 10.0.0.7:623", driver: "ipmi", ok: false, state: "on", message: "Chassis Power is on" },
        ],
      },
    }),
  },
  { name: "fence-failed.bare", kind: "fence-failed", view: bareRecovery("fence-failed", { state: "failed", outcome: "failed", fence: { state: "unknown", stateText: "unknown", attempts: [] } }) },
  { name: "storm.full", kind: "storm", view: storm() },
  {
    name: "storm.bare",
    kind: "storm",
    view: (() => {
      const { until: _u, recoveryId: _r, dashboard_url: _d, ...rest } = storm({ links: [], prefix: "[DRY RUN] ", dryRun: true });
      return rest;
    })(),
  },
  { name: "unknown-hosts.full", kind: "unknown-hosts", view: unknownHosts() },
  {
    name: "unknown-hosts.bare",
    kind: "unknown-hosts",
    view: unknownHosts({ links: [], hosts: [{ host: "gpu-9" }], hostCount: 1, moreCount: 0, alertCount: 1, anyLikely: false }),
  },
  { name: "tenant.full", kind: "tenant", view: tenant() },
  {
    name: "tenant.bare",
    kind: "tenant",
    view: (() => {
      const { projectName: _p, ...rest } = tenant({
        prefix: "[DRY RUN] ",
        dryRun: true,
        projectLabel: "a1b2c3d4e5f60718293a4b5c6d7e8f90\r\nBcc: victim@example.org",
        instances: INSTANCES.slice(0, 1),
        counts: { total: 1, evacuated: 1, failed: 0, skipped: 0, unprotected: 0, other: 0, notRecovered: 0 },
        anyNotRecovered: false,
      });
      return rest;
    })(),
  },
];
