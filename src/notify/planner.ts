import type { ChainResult } from "../domain/ports/fencing.js";
import type { GateDecision, InstanceResult, Outcome, RecoveryDetail } from "../domain/model.js";
import { PLANNER_CHANNEL, TERMINAL_STATES } from "../domain/model.js";
import { locksLeft } from "../domain/unlocks.js";
import type { UnknownHostsNotice } from "../domain/ports/notifier.js";
import type { MessageKind, NotificationsConfig, OperatorKind } from "./config.js";
import type { PlannedMessage } from "./dispatcher.js";
import type { ProjectRecipients } from "./recipients.js";
import {
  oneLine,
  renderLine,
  renderMessage,
  type AlertView,
  type BaseView,
  type CountsView,
  type FenceView,
  type InstanceView,
  type LinkView,
  type MessageView,
  type RecoveryView,
  type StormView,
  type TenantRecipientsView,
  type TenantView,
  type TimelineView,
  type UnknownHostsView,
} from "./templates.js";

/**
 * Turns what happened (a RecoveryDetail, a storm trip) into the messages to deliver: the
 * views the templates render, who gets what on which channel, and each message's dedup key.
 *
 * Dedup keys are stable per incident (host + incidentKey), kind, channel and recipient, so a
 * re-run after a crash, or a second call for the same incident, finds them already sent:
 *   operator-summary|<host>|<incident>|email|<address>
 *   tenant|<host>|<incident>|<project>|<address>
 *   blocked|<host>|<incident>|<block episode>|webhook:<name>
 *   fence-failed|<host>|<incident>|email|<address>
 *   storm|<tripped at>|email|<address>
 *   unknown-hosts|<notice at>|email|<address>
 *   plan|recovery-finished|<host>|<incident>      (the planning entry of the two first ones)
 */

export interface PlanContext {
  config: NotificationsConfig;
  /** Names of the channels that exist: "email", "webhook:<name>". */
  channels: ReadonlySet<string>;
}

export interface StormInfo {
  hosts: string[];
  reason: string;
  at: string;
  /** When the held recoveries go ahead on their own, unless another host fails first. */
  until?: string;
  /** The recovery that tripped the guard: its journal holds the storm messages' records. */
  recoveryId?: string;
}

/** Alerts for hosts lifeboat cannot act on, gathered since the last notice. */
export type UnknownHostsInfo = UnknownHostsNotice;

// ---- plans -------------------------------------------------------------------------------

export function planRecoveryFinished(detail: RecoveryDetail, tenants: readonly ProjectRecipients[], ctx: PlanContext): PlannedMessage[] {
  const view = recoveryView(detail, "operator-summary", ctx, { tenants: tenants.map(tenantRecipientsView) });
  const out = operatorMessages("operator-summary", view, detailKey("operator-summary", detail), operatorMode(detail, ctx), ctx);
  if (ctx.channels.has("email") && ctx.config.tenants.enabled && view.outcome !== "aborted") {
    for (const t of tenants) {
      if (t.recipients.length === 0) continue;
      const tv = tenantView(detail, t);
      if (tv.instances.length === 0) continue;
      const rendered = renderMessage("tenant", tv, ctx.config.templates);
      for (const r of t.recipients) {
        out.push({
          channel: "email",
          dedupKey: `tenant|${detail.host}|${detail.incidentKey}|${t.projectId}|${r.email}`,
          projectId: t.projectId,
          // Tenants are never told of a dry run.
          mode: detail.dryRun ? "would-send" : "send",
          message: { kind: "tenant", recipient: r.email, ...rendered, data: { ...tv, subject: rendered.subject } },
        });
      }
    }
  }
  return out;
}

/**
 * The planning entry of `planRecoveryFinished` when tenants are to be told: who they are
 * takes Keystone and Nova lookups, done by the delivery worker rather than the caller.
 */
export function planTenantLookup(detail: RecoveryDetail): PlannedMessage {
  const projects = new Set(detail.instances.map((i) => i.projectId)).size;
  return {
    channel: PLANNER_CHANNEL,
    dedupKey: `plan|recovery-finished|${detail.host}|${detail.incidentKey}`,
    mode: "send",
    plan: "recovery-finished",
    message: {
      kind: "recovery-finished",
      recipient: `people of ${projects} project(s)`,
      subject: "finding the affected projects' people, then queuing the summary and their mails",
      text: "",
      data: {},
    },
  };
}

export function planBlocked(detail: RecoveryDetail, reason: string, ctx: PlanContext): PlannedMessage[] {
  const block = detail.block;
  // What blocks it now: each gate's latest decision (a re-check records a changed block anew).
  const current = latestPerGate(detail.decisions);
  const blockingGates = current.filter((d) => d.result === "block" || d.result === "undecided").map((d) => d.gate);
  const gates = block?.gates.length ? block.gates : blockingGates;
  const view = recoveryView({ ...detail, decisions: current }, "blocked", ctx, {
    blockReason: oneLine(reason || detail.reason),
    blockedGatesText: gates.length ? gates.join(", ") : "(not recorded)",
    approvable: block?.approvable ?? true,
    ...(block?.previous?.length ? { previousGatesText: block.previous.join(", ") } : {}),
    ...liftOf(detail),
  });
  // One message per block episode (src/engine/block.ts): the pipeline keys each one.
  const episode = block?.episode ?? block?.at ?? `#${detail.timeline.filter((t) => t.to === "blocked").length}`;
  return operatorMessages("blocked", view, `${detailKey("blocked", detail)}|${episode}`, operatorMode(detail, ctx), ctx);
}

export function planFenceFailed(detail: RecoveryDetail, ctx: PlanContext): PlannedMessage[] {
  const view = recoveryView(detail, "fence-failed", ctx, {});
  return operatorMessages("fence-failed", view, detailKey("fence-failed", detail), operatorMode(detail, ctx), ctx);
}

export function planStorm(info: StormInfo, ctx: PlanContext): PlannedMessage[] {
  const hosts = info.hosts.map(oneLine);
  const view: StormView = {
    ...baseView("storm", false, ctx),
    at: info.at,
    reason: oneLine(info.reason),
    hosts,
    hostCount: hosts.length,
    hostList: hosts.join(", "),
    ...(info.until !== undefined ? { until: info.until } : {}),
    ...(info.recoveryId !== undefined ? { recoveryId: info.recoveryId } : {}),
  };
  return operatorMessages("storm", view, `storm|${info.at}`, "send", ctx);
}

export function planUnknownHosts(info: UnknownHostsInfo, ctx: PlanContext): PlannedMessage[] {
  const hosts = info.hosts.map((h) => ({ host: oneLine(h.host), ...(h.likely !== null ? { likely: oneLine(h.likely) } : {}) }));
  const view: UnknownHostsView = {
    ...baseView("unknown-hosts", false, ctx),
    at: info.at,
    since: info.since,
    hosts,
    hostCount: info.hostCount,
    moreCount: Math.max(0, info.hostCount - hosts.length),
    alertCount: info.alertCount,
    anyLikely: hosts.some((h) => h.likely !== undefined),
  };
  return operatorMessages("unknown-hosts", view, `unknown-hosts|${info.at}`, "send", ctx);
}

function detailKey(kind: MessageKind, d: RecoveryDetail): string {
  return `${kind}|${d.host}|${d.incidentKey}`;
}

function operatorMode(detail: RecoveryDetail, ctx: PlanContext): PlannedMessage["mode"] {
  return detail.dryRun && !ctx.config.notify_in_dry_run ? "would-send" : "send";
}

/** The operators' copies (email) and the webhooks' copies of one operator message. */
function operatorMessages(kind: OperatorKind, view: MessageView, keyBase: string, mode: PlannedMessage["mode"], ctx: PlanContext): PlannedMessage[] {
  const rendered = renderMessage(kind, view, ctx.config.templates);
  const data = { ...view, subject: rendered.subject, text: rendered.text };
  const out: PlannedMessage[] = [];
  if (ctx.channels.has("email")) {
    for (const op of new Set(ctx.config.operators.map((o) => o.toLowerCase()))) {
      out.push({ channel: "email", dedupKey: `${keyBase}|email|${op}`, mode, message: { kind, recipient: op, ...rendered, data } });
    }
  }
  for (const w of ctx.config.webhooks) {
    const channel = `webhook:${w.name}`;
    if (!w.kinds.includes(kind) || !ctx.channels.has(channel)) continue;
    out.push({ channel, dedupKey: `${keyBase}|${channel}`, mode, message: { kind, recipient: w.name, ...rendered, data } });
  }
  return out;
}

// ---- views -------------------------------------------------------------------------------

function baseView(kind: MessageKind, dryRun: boolean, ctx: PlanContext, extraLinks: LinkView[] = []): BaseView {
  const c = ctx.config;
  const links: LinkView[] = [...extraLinks];
  if (c.dashboard_url) links.push({ label: "Dashboard", url: c.dashboard_url });
  return {
    kind,
    prefix: dryRun ? "[DRY RUN] " : "",
    dryRun,
    ...(c.dashboard_url !== undefined ? { dashboard_url: c.dashboard_url } : {}),
    ...(c.api_url !== undefined ? { api_url: c.api_url.replace(/\/+$/, "") } : {}),
    links: links.filter((l) => isHttpUrl(l.url)),
  };
}

export function recoveryView(
  d: RecoveryDetail,
  kind: MessageKind,
  ctx: PlanContext,
  extra: Partial<Pick<RecoveryView, "tenants" | "blockReason" | "blockedGatesText" | "approvable" | "previousGatesText" | "liftText">>,
): RecoveryView {
  const c = ctx.config;
  const alerts: AlertView[] = Object.values(d.alerts).map((a) => ({
    alertname: oneLine(a.alertname),
    status: a.status,
    startsAt: a.startsAt,
    ...(a.generatorURL && isHttpUrl(a.generatorURL) ? { generatorURL: a.generatorURL } : {}),
  }));
  const apiUrl = c.api_url?.replace(/\/+$/, "");
  const links: LinkView[] = [];
  if (apiUrl) links.push({ label: "Recovery", url: renderLine(c.recovery_url, { api_url: apiUrl, id: d.id, host: d.host }) });
  for (const url of new Set(alerts.map((a) => a.generatorURL).filter((u): u is string => !!u))) links.push({ label: "Alert source", url });
  const fence = fenceView(d);
  const instances = d.instances.map(instanceView);
  const counts = countsOf(d.instances);
  const outcome = outcomeOf(d);
  return {
    ...baseView(kind, d.dryRun, ctx, links),
    id: d.id,
    host: d.host,
    incidentKey: d.incidentKey,
    state: d.state,
    outcome,
    outcomeText: outcomeText(outcome, d.dryRun),
    trigger: d.trigger,
    reason: oneLine(d.reason),
    detectedAt: d.detectedAt,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    ...(d.approvedBy !== undefined ? { approvedBy: oneLine(d.approvedBy) } : {}),
    alerts,
    timeline: timelineView(d),
    decisions: d.decisions.map((x) => ({ at: x.at, gate: x.gate, result: x.result, reason: oneLine(x.reason), blocking: x.result === "block" || x.result === "undecided" })),
    fence,
    instances,
    counts,
    countsText: countsText(counts),
    locksLeft: locksLeft(d).map((l) => ({ id: l.instanceId, name: oneLine(l.name), error: oneLine(l.error) })),
    tenants: extra.tenants ?? [],
    ...(extra.blockReason !== undefined ? { blockReason: extra.blockReason } : {}),
    ...(extra.blockedGatesText !== undefined ? { blockedGatesText: extra.blockedGatesText } : {}),
    ...(extra.approvable !== undefined ? { approvable: extra.approvable } : {}),
    ...(extra.previousGatesText !== undefined ? { previousGatesText: oneLine(extra.previousGatesText) } : {}),
    ...(extra.liftText !== undefined ? { liftText: extra.liftText } : {}),
    approveCommand: renderLine(c.approve_command, { id: d.id, host: d.host }),
    confirmOffCommand: renderLine(c.confirm_off_command, { id: d.id, host: d.host }),
  };
}

export function tenantView(d: RecoveryDetail, t: ProjectRecipients): TenantView {
  const mine = d.instances.filter((i) => i.projectId === t.projectId);
  const instances = mine.map((i) => ({ ...instanceView(i), ...(t.projectName !== undefined ? { projectName: oneLine(t.projectName) } : {}) }));
  const counts = countsOf(mine);
  const projectName = t.projectName !== undefined ? oneLine(t.projectName) : undefined;
  return {
    // Tenants' mails carry no operator links (dashboards, API).
    kind: "tenant",
    prefix: d.dryRun ? "[DRY RUN] " : "",
    dryRun: d.dryRun,
    links: [],
    id: d.id,
    host: d.host,
    outcome: outcomeOf(d),
    detectedAt: d.detectedAt,
    projectId: t.projectId,
    ...(projectName !== undefined ? { projectName } : {}),
    projectLabel: projectName ? `${projectName} (${t.projectId})` : t.projectId,
    instances,
    counts,
    anyEvacuated: counts.evacuated > 0,
    anyNotRecovered: counts.notRecovered > 0,
  };
}

function tenantRecipientsView(t: ProjectRecipients): TenantRecipientsView {
  return {
    projectId: t.projectId,
    ...(t.projectName !== undefined ? { projectName: oneLine(t.projectName) } : {}),
    recipientsText: t.recipients.length ? t.recipients.map((r) => r.email).join(", ") : "nobody found",
    problems: t.problems.map(oneLine),
  };
}

function instanceView(i: InstanceResult): InstanceView {
  const name = oneLine(i.name) || i.instanceId;
  const error = i.error !== undefined ? oneLine(i.error) : undefined;
  const note = i.note !== undefined ? oneLine(i.note) : undefined;
  const target = i.targetHost !== undefined ? oneLine(i.targetHost) : undefined;
  let fate: string;
  let tenantFate: string;
  switch (i.state) {
    case "evacuated":
      fate = `evacuated to ${target ?? "another host"}`;
      tenantFate = `restarted on host ${target ?? "(another host)"}${i.originalStatus === "SHUTOFF" ? " (it stays SHUTOFF, as it was)" : ""}`;
      break;
    case "failed":
      fate = `FAILED: ${error ?? "no error recorded"}`;
      tenantFate = `could not be recovered: ${error ?? "the evacuation failed"}`;
      break;
    case "skipped":
      fate = `skipped: ${note ?? "no reason recorded"}`;
      tenantFate = `not recovered: ${note ?? "skipped"}`;
      break;
    case "unprotected":
      fate = `not protected: ${note ?? "not opted in to HA"}`;
      tenantFate = `not recovered: it is not protected by high availability${note ? ` (${note})` : ""}`;
      break;
    case "would-evacuate":
      fate = `would be evacuated (dry run)${target ? ` to ${target}` : ""}`;
      tenantFate = "would be restarted on another host (dry run)";
      break;
    default:
      fate = `not finished (${i.state})`;
      tenantFate = "recovery still in progress";
  }
  return {
    id: i.instanceId,
    name,
    projectId: i.projectId,
    state: i.state,
    originalStatus: i.originalStatus,
    ...(target !== undefined ? { targetHost: target } : {}),
    ...(error !== undefined ? { error } : {}),
    ...(note !== undefined ? { note } : {}),
    attempts: i.attempts,
    fate,
    tenantFate,
    evacuated: i.state === "evacuated",
    notRecovered: i.state === "failed" || i.state === "skipped" || i.state === "unprotected",
  };
}

function countsOf(instances: readonly InstanceResult[]): CountsView {
  const n = (s: InstanceResult["state"]): number => instances.filter((i) => i.state === s).length;
  const evacuated = n("evacuated");
  const failed = n("failed");
  const skipped = n("skipped");
  const unprotected = n("unprotected");
  return {
    total: instances.length,
    evacuated,
    failed,
    skipped,
    unprotected,
    other: instances.length - evacuated - failed - skipped - unprotected,
    notRecovered: failed + skipped + unprotected,
  };
}

function countsText(c: CountsView): string {
  if (c.total === 0) return "no instances";
  const parts = [
    [c.evacuated, "evacuated"],
    [c.failed, "failed"],
    [c.skipped, "skipped"],
    [c.unprotected, "unprotected"],
    [c.other, "other"],
  ] as const;
  return parts
    .filter(([k]) => k > 0)
    .map(([k, w]) => `${k} ${w}`)
    .join(", ");
}

/** The recovery's outcome; while still notifying, what it is going to be. */
export function outcomeOf(d: RecoveryDetail): Outcome {
  if (d.outcome) return d.outcome;
  if (TERMINAL_STATES.includes(d.state)) return d.state as Outcome;
  const failed = d.instances.some((i) => i.state === "failed");
  const evacuated = d.instances.some((i) => i.state === "evacuated" || i.state === "would-evacuate");
  if (failed) return evacuated ? "partial" : "failed";
  return "completed";
}

function outcomeText(o: Outcome, dryRun: boolean): string {
  const text = { completed: "completed", partial: "PARTIAL (some instances failed)", failed: "FAILED", aborted: "aborted" }[o];
  return dryRun ? `${text} (dry run)` : text;
}

function timelineView(d: RecoveryDetail): TimelineView[] {
  const start = d.timeline[0] ? Date.parse(d.timeline[0].at) : NaN;
  return d.timeline.map((t, i) => {
    const next = d.timeline[i + 1];
    const at = Date.parse(t.at);
    return {
      at: t.at,
      offset: Number.isFinite(start) && Number.isFinite(at) ? `+${duration(at - start)}` : "",
      from: t.from ?? "(new)",
      to: t.to,
      reason: oneLine(t.reason),
      ...(t.actor !== undefined ? { actor: oneLine(t.actor) } : {}),
      ...(next && Number.isFinite(at) && Number.isFinite(Date.parse(next.at)) ? { duration: duration(Date.parse(next.at) - at) } : {}),
    };
  });
}

/** 0 → "0s", 850 → "850ms", 12_000 → "12s", 65_000 → "1m05s", 3_720_000 → "1h02m". */
export function duration(ms: number): string {
  const v = Math.max(0, ms);
  if (v === 0) return "0s";
  if (v < 1000) return `${Math.round(v)}ms`;
  const s = Math.floor(v / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

// ---- fence -------------------------------------------------------------------------------

const FENCE_STATE_TEXT: Record<string, string> = {
  off: "powered off (confirmed by the fence device)",
  "confirmed-off-by-operator": "declared powered off by an operator (--confirm-off)",
  "would-fence": "would be fenced (dry run)",
  "not-attempted": "not attempted",
  unknown: "UNKNOWN: no device confirmed power off",
};

function isChainResult(v: unknown): v is ChainResult {
  if (!v || typeof v !== "object") return false;
  const o = v as Record<string, unknown>;
  return typeof o.ok === "boolean" && typeof o.message === "string" && Array.isArray(o.attempts);
}

/** The fence chain's result: what the fencing stage recorded, else its journaled step's result. */
function findChainResult(d: RecoveryDetail): ChainResult | null {
  if (d.fence) return d.fence;
  const step = d.steps.find((s) => s.key === "fence")?.result;
  return isChainResult(step) ? step : null;
}

function fenceView(d: RecoveryDetail): FenceView {
  const chain = findChainResult(d);
  const device = chain?.device;
  return {
    state: d.fenceState,
    stateText: FENCE_STATE_TEXT[d.fenceState] ?? d.fenceState,
    ...(device !== undefined ? { device: oneLine(device) } : {}),
    ...(chain ? { message: oneLine(chain.message) } : {}),
    attempts: (chain?.attempts ?? []).map((a) => ({
      device: oneLine(String(a.device)),
      driver: oneLine(String(a.driver)),
      ok: a.result?.ok === true,
      state: String(a.result?.state ?? "unknown"),
      message: oneLine(String(a.result?.message ?? "")),
    })),
  };
}

/** Each gate's latest decision, in the order they were recorded (the gates' order within a check). */
function latestPerGate(decisions: readonly GateDecision[]): GateDecision[] {
  const latest = new Map<string, GateDecision>();
  for (const d of decisions) {
    latest.delete(d.gate);
    latest.set(d.gate, d);
  }
  return [...latest.values()];
}

interface SilenceFact {
  id: string;
  endsAt?: string;
}

/**
 * What lifts a block an approval does not: a silence in Alertmanager ends when it expires or
 * is expired; lifeboat's re-check then goes on by itself if the host is still down.
 */
function liftOf(d: RecoveryDetail): Pick<RecoveryView, "liftText"> {
  const latest = d.decisions.filter((x: GateDecision) => x.gate === "silences").at(-1);
  const list = latest?.result === "block" ? latest.details?.silences : undefined;
  if (!Array.isArray(list) || list.length === 0) return {};
  const silences = list.filter((x): x is SilenceFact => !!x && typeof x === "object" && typeof (x as SilenceFact).id === "string");
  if (silences.length === 0) return {};
  const each = silences.map((x) => `silence ${oneLine(x.id)}${x.endsAt ? ` (ends ${oneLine(x.endsAt)})` : ""}`).join(", ");
  const expire = silences.map((x) => `amtool silence expire ${oneLine(x.id)}`).join("; ");
  return {
    liftText: `the end of ${each}: when it expires, or when someone expires it in Alertmanager (${expire}), lifeboat goes ahead by itself if ${oneLine(d.host)} is still down. An approval does not lift a silence.`,
  };
}

// ---- helpers -----------------------------------------------------------------------------

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

