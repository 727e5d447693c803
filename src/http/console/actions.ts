import { isAbortable, isTerminal } from "../../domain/model.js";
import type { ActionResult, ConsoleDeps } from "./deps.js";
import { HOST_NAME } from "./pages.js";
import { recoveryHref } from "./views.js";

/**
 * The operator actions of the console: a confirmation page that names what will happen
 * (built from the journal as it is now), then the action itself through ConsoleDeps, which
 * applies the control API's rules.
 */
export const ACTIONS = ["approve", "cancel", "pause", "resume", "release"] as const;
export type ActionName = (typeof ACTIONS)[number];

export function isAction(s: string): s is ActionName {
  return (ACTIONS as readonly string[]).includes(s);
}

/** What the action acts on, from a query or a form body. */
export interface ActionInput {
  ids: string[];
  host: string;
  reason: string | undefined;
}

const RECOVERY_ID = /^[\w.-]{1,100}$/;
/** At most this many recoveries in one approval. */
export const MAX_IDS = 100;

export function actionInput(src: Record<string, unknown>): ActionInput | { error: string } {
  const raw = src.id;
  const ids = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((x): x is string => typeof x === "string" && x !== "");
  if (ids.length > MAX_IDS) return { error: `id: at most ${MAX_IDS} recoveries at once` };
  const bad = ids.find((i) => !RECOVERY_ID.test(i));
  if (bad !== undefined) return { error: "id: expected recovery ids" };
  const host = typeof src.host === "string" ? src.host : "";
  if (host && !HOST_NAME.test(host)) return { error: "host: expected a host name" };
  const reason = typeof src.reason === "string" && src.reason.trim() !== "" ? src.reason.trim() : undefined;
  if (reason !== undefined && reason.length > 1000) return { error: "reason: at most 1000 characters" };
  return { ids: [...new Set(ids)], host, reason };
}

export interface ConfirmView {
  action: ActionName;
  heading: string;
  subjects: { text: string; href?: string; note?: string }[];
  consequences: string[];
  ids: string[];
  host: string;
  askReason: boolean;
  reasonRequired: boolean;
  confirmLabel: string;
  buttonClass: string;
  refusal: string | null;
}

/** The confirmation page of an action, naming its consequence; `refusal` when it cannot be done now. */
export async function confirmView(deps: ConsoleDeps, action: ActionName, input: ActionInput): Promise<ConfirmView> {
  const base = { action, ids: input.ids, host: input.host, askReason: false, reasonRequired: false, buttonClass: "primary", refusal: null, subjects: [] };
  switch (action) {
    case "approve": {
      if (input.ids.length === 0) return { ...base, heading: "Approve recoveries", consequences: [], confirmLabel: "Approve", refusal: "Select at least one blocked recovery to approve." };
      const found = await Promise.all(input.ids.map((id) => deps.recovery(id)));
      const subjects = input.ids.map((id, i) => {
        const r = found[i];
        if (!r) return { text: id, note: "no such recovery: will be refused" };
        const note = isTerminal(r.state) ? `already ended (${r.state}): will be refused` : r.state !== "blocked" ? `${r.state}, not blocked: the approval is recorded and used if it blocks later` : undefined;
        return { text: `${r.host} — ${r.state}: ${r.reason}`, href: recoveryHref(id), ...(note ? { note } : {}) };
      });
      const hosts = found.filter((r) => r && !isTerminal(r.state)).map((r) => r!.host);
      const n = input.ids.length;
      return {
        ...base,
        heading: n === 1 ? "Approve this recovery?" : `Approve these ${n} recoveries?`,
        subjects,
        consequences: [
          `Your approval lets ${hosts.length ? hosts.join(", ") : "them"} past the policy gates that hold ${n === 1 ? "it" : "them"} back: the storm guard, the pause switch, required approval, cooldown, excluded hosts. A silence in Alertmanager is lifted only by its end, and evidence (Nova's heartbeat, the BMC) is never overridden.`,
          "It does not override evidence: Nova must still see each host down and its fencing device must still answer, or the recovery stays blocked.",
          `Once validated, lifeboat powers ${hosts.length === 1 ? hosts[0] : "each host"} off through its fencing device, forces it down and disables it in Nova, and rebuilds its instances on other hosts. That cannot be undone; the host stays out of service until someone releases it.`,
        ],
        confirmLabel: n === 1 ? "Approve" : `Approve ${n} recoveries`,
        buttonClass: "danger",
      };
    }
    case "cancel": {
      const id = input.ids[0];
      const r = id ? await deps.recovery(id) : null;
      if (!id || !r) return { ...base, heading: "Cancel a recovery", consequences: [], confirmLabel: "Cancel recovery", refusal: `No recovery ${id ?? ""}.` };
      const subjects = [{ text: `${r.host} — ${r.state}: ${r.reason}`, href: recoveryHref(r.id) }];
      if (!isAbortable(r.state)) {
        return { ...base, heading: "This recovery cannot be cancelled", subjects, consequences: [], confirmLabel: "Cancel recovery", refusal: `It is ${r.state}: past the point of no return (fencing), it finishes on its own.` };
      }
      return {
        ...base,
        ids: [id],
        heading: `Cancel the recovery of ${r.host}?`,
        subjects,
        consequences: [
          `The recovery ends as aborted. Nothing was done to ${r.host} yet: it was not fenced and none of its instances moved.`,
          `If ${r.host} is really down, its instances stay down: a new alert for it starts a new recovery, or start one by hand with lifeboat recover ${r.host}.`,
        ],
        askReason: true,
        confirmLabel: "Cancel the recovery",
        buttonClass: "danger",
      };
    }
    case "pause": {
      const s = await deps.status();
      if (s.pause.paused) return { ...base, heading: "Automation is already paused", consequences: [], confirmLabel: "Pause", refusal: `Paused by ${s.pause.by} at ${s.pause.at}: ${s.pause.reason}` };
      return {
        ...base,
        heading: "Pause all automation?",
        consequences: [
          "Every recovery that has not reached fencing stops at the pause gate and waits, blocked, until someone resumes. New alerts are still journaled.",
          "Recoveries already fencing, isolating or evacuating finish: past the point of no return lifeboat does not stop halfway.",
        ],
        askReason: true,
        reasonRequired: true,
        confirmLabel: "Pause automation",
        buttonClass: "danger",
      };
    }
    case "resume": {
      const [s, blocked] = await Promise.all([deps.status(), deps.recoveries({ states: ["blocked"], offset: 0, limit: 100 })]);
      if (!s.pause.paused) return { ...base, heading: "Automation is not paused", consequences: [], confirmLabel: "Resume", refusal: "Nothing to resume." };
      const subjects = blocked.rows.map((r) => ({ text: `${r.host} — blocked: ${r.reason}`, href: recoveryHref(r.id) }));
      return {
        ...base,
        heading: "Resume automation?",
        subjects,
        consequences: [
          `Paused by ${s.pause.by}: ${s.pause.reason}.`,
          blocked.rows.length
            ? `Recoveries blocked only by the pause (of those listed) go on at their next check: their hosts may be powered off and their instances rebuilt elsewhere within seconds.`
            : "No recovery is waiting: new alerts are acted on again.",
        ],
        confirmLabel: "Resume automation",
      };
    }
    case "release": {
      const host = input.host;
      if (!host) return { ...base, heading: "Release a host", consequences: [], confirmLabel: "Release", refusal: "host: required" };
      const h = await deps.host(host);
      const subjects = [{ text: host, href: `/console/hosts/${encodeURIComponent(host)}` }];
      const refusal = h.openRecovery
        ? `${host} has an open recovery ${h.openRecovery}: release refused while the host is still failing.`
        : h.release?.state === "running"
          ? `A release of ${host} is already running.`
          : null;
      return {
        ...base,
        heading: `Release ${host}?`,
        subjects,
        consequences: [
          `lifeboat powers ${host} on through its fencing device, waits for nova-compute to report and for Nova to clean up its evacuation records, un-forces it, waits for it to be up, and enables it in Nova.`,
          `Nova may then schedule new instances on ${host}. Release it only once it is repaired.${h.hold?.fenced ? "" : ` lifeboat does not hold ${host} down now.`}`,
        ],
        confirmLabel: `Release ${host}`,
        refusal,
      };
    }
  }
}

/** Carry the action out; the answer says what happened, in the control API's terms. */
export async function perform(deps: ConsoleDeps, action: ActionName, input: ActionInput, actor: string): Promise<ActionResult> {
  switch (action) {
    case "approve": {
      if (input.ids.length === 0) return { ok: false, status: 400, message: "id: select at least one recovery" };
      const results = [];
      for (const id of input.ids) results.push(await deps.actions.approve(id, actor));
      const failed = results.filter((r): r is Extract<ActionResult, { ok: false }> => !r.ok);
      const done = results.length - failed.length;
      if (failed.length === 0) return { ok: true, message: done === 1 ? (results[0] as { message: string }).message : `${done} recoveries approved` };
      const why = failed.map((f) => f.message).join("; ");
      return { ok: false, status: failed[0]!.status, message: done ? `${done} approved; refused: ${why}` : why };
    }
    case "cancel":
      if (!input.ids[0]) return { ok: false, status: 400, message: "id: required" };
      return deps.actions.cancel(input.ids[0], actor, input.reason);
    case "pause":
      return deps.actions.pause(actor, input.reason ?? "paused from the console");
    case "resume":
      return deps.actions.resume(actor);
    case "release":
      if (!input.host) return { ok: false, status: 400, message: "host: required" };
      return deps.actions.release(input.host, actor);
  }
}
