import type { ChainResult } from "../../domain/ports/fencing.js";
import {
  isAbortable,
  isTerminal,
  type GateDecision,
  type InstanceResult,
  type Recovery,
  type RecoveryDetail,
  type StepRecord,
  type Transition,
} from "../../domain/model.js";
import type { ConsoleStatus, HeldHost, HostView, SilencesView } from "./deps.js";

/**
 * Journal data → what the templates show. Every string here goes through mustache's
 * escaping; nothing is marked safe. Times stay ISO in `datetime` attributes (the page's
 * script shows them relative), so a page's HTML changes only when its data does.
 */

export const recoveryHref = (id: string): string => `/console/recoveries/${encodeURIComponent(id)}`;
export const hostHref = (host: string): string => `/console/hosts/${encodeURIComponent(host)}`;

export function shortTime(iso: string | undefined | null): string {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m - h * 60} min`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function statusView(s: ConsoleStatus, silences: SilencesView | null): Record<string, unknown> {
  const blocked = s.openByState.blocked ?? 0;
  const open = Object.values(s.openByState).reduce((a, b) => a + (b ?? 0), 0);
  return {
    instance: s.instance,
    version: s.version,
    store: s.store,
    dryRun: s.dryRun,
    leads: s.leader.self,
    leaderId: s.leader.id,
    noLeader: !s.leader.self && s.leader.id === null,
    follows: !s.leader.self && s.leader.id !== null,
    paused: s.pause.paused,
    pause: { by: s.pause.by, reason: s.pause.reason, at: s.pause.at, atText: shortTime(s.pause.at) },
    storm: { tripped: s.storm.tripped, since: s.storm.since, sinceText: shortTime(s.storm.since), hosts: s.storm.blockedHosts.join(", ") },
    silences: silences ? { list: silences.pausing.map((x) => ({ ...x, endsText: shortTime(x.endsAt) })), any: silences.pausing.length > 0, error: silences.error } : null,
    open,
    blocked,
    openStates: Object.entries(s.openByState).map(([state, n]) => ({ state, n })),
  };
}

export interface ProgressView {
  max: number;
  value: number;
  evacuated: number;
  failed: number;
  reissued: number;
  text: string;
}

/** Evacuation progress over the instances lifeboat chose to move (skipped ones do not count). */
export function progress(instances: InstanceResult[]): ProgressView | null {
  const chosen = instances.filter((i) => i.state !== "skipped" && i.state !== "unprotected");
  if (chosen.length === 0) return null;
  const evacuated = chosen.filter((i) => i.state === "evacuated" || i.state === "would-evacuate").length;
  const failed = chosen.filter((i) => i.state === "failed").length;
  const reissued = chosen.filter((i) => i.attempts > 1).length;
  const parts = [`${evacuated} of ${chosen.length} evacuated`];
  if (failed) parts.push(`${failed} failed`);
  if (reissued) parts.push(`${reissued} re-issued`);
  return { max: chosen.length, value: evacuated + failed, evacuated, failed, reissued, text: parts.join(", ") };
}

/** One row of a recoveries table. */
export function recoveryRow(r: Recovery, extra: { progress?: ProgressView | null } = {}): Record<string, unknown> {
  const ended = isTerminal(r.state);
  return {
    id: r.id,
    href: recoveryHref(r.id),
    host: r.host,
    hostHref: hostHref(r.host),
    state: r.state,
    dryRun: r.dryRun,
    trigger: r.trigger,
    detectedAt: r.detectedAt,
    detectedText: shortTime(r.detectedAt),
    createdText: shortTime(r.createdAt),
    updatedAt: r.updatedAt,
    updatedText: shortTime(r.updatedAt),
    reason: truncate(r.reason, 160),
    blocked: r.state === "blocked",
    cancellable: isAbortable(r.state),
    ended,
    took: ended ? duration(Date.parse(r.updatedAt) - Date.parse(r.detectedAt)) : "",
    progress: extra.progress ?? null,
  };
}

export function heldView(h: HeldHost): Record<string, unknown> {
  return {
    host: h.host,
    hostHref: hostHref(h.host),
    recoveryId: h.recoveryId,
    recoveryHref: h.recoveryId ? recoveryHref(h.recoveryId) : null,
    since: h.since,
    sinceText: shortTime(h.since),
    by: h.by,
    release: h.release ? { ...h.release, running: h.release.state === "running" } : null,
  };
}

interface Milestone {
  name: string;
  at: string;
  atText: string;
  after: string;
}

/** detection → validated, fenced, isolated, evacuated, done: when each was reached. */
export function milestones(d: RecoveryDetail): Milestone[] {
  const start = Date.parse(d.detectedAt);
  const firstInto = (states: string[]): Transition | undefined => d.timeline.find((t) => states.includes(t.to));
  const out: Milestone[] = [];
  const add = (name: string, t: Transition | undefined): void => {
    if (t) out.push({ name, at: t.at, atText: shortTime(t.at), after: duration(Date.parse(t.at) - start) });
  };
  add("validated", d.timeline.find((t) => t.from === "validating" && t.to === "fencing"));
  add("fenced", d.timeline.find((t) => t.from === "fencing" && t.to === "isolating"));
  add("isolated", d.timeline.find((t) => t.from === "isolating" && t.to === "evacuating"));
  add("evacuated", d.timeline.find((t) => t.from === "evacuating"));
  add("done", firstInto(["completed", "partial", "failed", "aborted"]));
  return out;
}

/** Gate decisions grouped by validation pass (a pass ends when a gate is asked again). */
export function validationPasses(decisions: GateDecision[]): { n: number; at: string; atText: string; decisions: Record<string, unknown>[] }[] {
  const passes: GateDecision[][] = [];
  let current: GateDecision[] = [];
  for (const d of decisions) {
    if (current.some((c) => c.gate === d.gate)) {
      passes.push(current);
      current = [];
    }
    current.push(d);
  }
  if (current.length) passes.push(current);
  return passes.map((p, i) => ({
    n: i + 1,
    at: p[0]!.at,
    atText: shortTime(p[0]!.at),
    decisions: p.map((d) => ({ gate: d.gate, result: d.result, reason: d.reason, at: d.at, atText: shortTime(d.at) })),
  }));
}

/** The fence attempts of a recovery, device by device, in each device's own words. */
export function fenceAttempts(steps: StepRecord[], fence: ChainResult | undefined): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const step = steps.find((s) => s.key === "fence");
  const chain = isChain(step?.result) ? step.result : (fence ?? null);
  if (chain) {
    for (const a of chain.attempts) {
      out.push({ device: a.device, driver: a.driver, ok: a.result.ok, state: a.result.state, words: a.result.message, took: duration(a.result.durationMs), tries: a.result.attempts });
    }
  } else if (step?.result && typeof step.result === "object") {
    const r = step.result as { skipped?: boolean; reason?: string; dryRun?: boolean; wouldUse?: string; status?: { device: string; driver: string; status?: { state: string; raw: string }; error?: string }[] };
    if (r.skipped) out.push({ device: "none", driver: "", ok: true, state: "off", words: r.reason ?? "skipped", took: "", tries: 0 });
    for (const s of r.status ?? []) out.push({ device: s.device, driver: s.driver, ok: s.status?.state === "off", state: s.status?.state ?? "unknown", words: `dry run: ${s.error ?? s.status?.raw ?? ""}`, took: "", tries: 0 });
  } else if (step?.error) {
    out.push({ device: "chain", driver: "", ok: false, state: "unknown", words: step.error, took: "", tries: step.attempts });
  }
  return out;
}

function isChain(v: unknown): v is ChainResult {
  return typeof v === "object" && v !== null && Array.isArray((v as ChainResult).attempts);
}

export function recoveryView(d: RecoveryDetail): Record<string, unknown> {
  const p = progress(d.instances);
  const fence = fenceAttempts(d.steps, d.fence);
  return {
    ...recoveryRow(d, { progress: p }),
    fenceState: d.fenceState,
    outcome: d.outcome ?? "",
    approved: d.approved,
    approvedBy: d.approvedBy ?? "",
    confirmedOff: d.confirmedOff,
    fullReason: d.reason,
    milestones: milestones(d),
    timeline: d.timeline.map((t) => ({ seq: t.seq, from: t.from ?? "", to: t.to, at: t.at, atText: shortTime(t.at), reason: t.reason, actor: t.actor ?? "" })),
    passes: validationPasses(d.decisions),
    fence,
    steps: d.steps.map((s) => ({ key: s.key, state: s.state, attempts: s.attempts, startedText: shortTime(s.startedAt), finishedText: shortTime(s.finishedAt), error: s.error ?? "" })),
    instances: d.instances.map((i) => ({
      name: i.name,
      id: i.instanceId,
      project: i.projectId,
      was: i.originalStatus,
      state: i.state,
      attempts: i.attempts,
      target: i.targetHost ?? "",
      error: i.error ?? "",
      note: i.note ?? "",
    })),
    notifications: d.notifications.map((n) => ({ channel: n.channel, kind: n.kind, recipient: n.recipient, subject: n.subject, state: n.state, attempts: n.attempts, error: n.error ?? "", sentText: shortTime(n.sentAt) })),
    hasInstances: d.instances.length > 0,
    hasNotifications: d.notifications.length > 0,
    hasDecisions: d.decisions.length > 0,
    hasFence: fence.length > 0,
  };
}

export function hostPageView(h: HostView): Record<string, unknown> {
  return {
    host: h.host,
    held: h.hold?.fenced === true,
    hold: h.hold ? { ...h.hold, atText: shortTime(h.hold.at), recoveryHref: h.hold.recoveryId ? recoveryHref(h.hold.recoveryId) : null } : null,
    release: h.release ? { ...h.release, startedText: shortTime(h.release.startedAt), finishedText: shortTime(h.release.finishedAt), running: h.release.state === "running" } : null,
    openRecovery: h.openRecovery ? { id: h.openRecovery, href: recoveryHref(h.openRecovery) } : null,
    releasable: h.hold?.fenced === true && !h.openRecovery && h.release?.state !== "running",
    devices: h.devices.map((d) => ({ ...d, lastKnown: d.lastKnown ? { ...d.lastKnown, atText: shortTime(d.lastKnown.at), href: recoveryHref(d.lastKnown.recoveryId) } : null })),
    hasDevices: h.devices.length > 0,
    recoveries: h.recoveries.map((r) => recoveryRow(r)),
  };
}
